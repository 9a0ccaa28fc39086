// `ficoco eval`: answer a benchmark's questions with one model and one reduction
// setting, resumably. The model is loaded once; every question goes through
// RunPipeline (as `ficoco run` does) with greedy decoding and the benchmark's token
// limit. Answers are appended (one flushed line each) to OUT/answers.jsonl, which a
// rerun reads back to skip what is done; timings go to OUT/timings.jsonl so the
// answers file itself is deterministic (byte-identical across resumes and shards).
#pragma once
#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/benchmark.h"
#include "eval/shard.h"
#include "kernels/gemm.h"
#include "model/llava_weights.h"
#include "reduce/budget.h"
#include "reduce/params.h"

namespace ficoco::eval {

struct EvalOptions {
  std::string model_dir;
  std::string mmproj;        // with a GGUF model_dir: the llama.cpp mmproj GGUF
  std::string tokenizer;     // "" = MODEL/tokenizer.model, or the GGUF's vocabulary
  std::string model_id;      // answers' model_id; "" = the model directory's name
  std::string bench, questions, images;
  std::string annotations;   // ground truth for scoring ("" = none given)
  std::string out_dir;
  std::string method = "none";
  ReductionParams params;    // validated, preset and positions applied
  Budget budget;
  long long limit = -1;      // at most this many questions of the (shard's) selection; -1 = all
  Shard shard;
  int max_new_tokens = 0;    // 0 = the benchmark's setting
  ComputeType compute = ComputeType::BF16;
  WeightType weights = WeightType::Checkpoint;  // text-model linears (--weights)
  std::optional<KvType> kv_cache;               // --kv-cache (unset: from the compute type)
  int threads = 1;           // recorded in the report (the caller sets the thread pools)
  std::FILE* log = stderr;   // progress and notes
  bool tty = false;          // redraw a progress bar instead of periodic lines
  double progress_interval_s = 30;
};

struct EvalOutcome {
  long long selected = 0;      // questions this run is responsible for (shard, limit)
  long long resumed = 0;       // already in the answers file at start
  long long answered_now = 0;  // answered by this run (errors included)
  long long errors = 0;        // answers carrying metadata.error (whole file)
  std::string answers_path;
  bool scored = false;
  std::string not_scored_reason;  // when !scored
  nlohmann::json summary;         // what OUT/score.json holds (whole runs only)
};

// Runs the evaluation. Throws Error for bad options, unreadable inputs, an answers
// file that belongs to another run (other method/budget/model/questions), and a
// pipeline failure (the answers so far stay on disk; rerun to resume).
// A question whose image is missing or unreadable is answered with an empty text and
// metadata.error, counted and reported, never skipped.
EvalOutcome RunEval(const EvalOptions& options);

// The deterministic answer_id of one answer (LLaVA writes a random shortuuid here);
// the prompt is part of it because MME and TextVQA give several questions one id.
std::string AnswerIdFor(const std::string& model_id, const std::string& key, const std::string& prompt,
                        const std::string& method, const Budget& budget);

}  // namespace ficoco::eval
