// `ficoco eval`: answer a benchmark's questions (resumably, optionally one shard of
// them) and score the answers. The work is in src/eval/runner.cc.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "base/error.h"
#include "commands.h"
#include "eval/runner.h"
#include "reduction_options.h"

namespace ficoco::cli {
namespace {

struct EvalArgs {
  eval::EvalOptions options;
  std::string shard, compute = "bf16", progress = "auto", weights = "auto", kv_cache = "auto";
  ReductionArgs reduction;
  int threads = 0;
};

int RunEvalCommand(EvalArgs& a) {
  eval::EvalOptions& o = a.options;
  o.threads = SetThreads(a.threads);
  o.compute = ParseComputeType(a.compute);
  o.weights = ParseWeightType(a.weights);
  o.kv_cache = ParseKvCacheChoice(a.kv_cache);
  o.shard = eval::ParseShard(a.shard);
  if (o.limit < -1) Fail("--limit must be >= 0, got ", o.limit);
  if (o.max_new_tokens < 0) Fail("--max-tokens must be >= 0 (0 = the benchmark's), got ", o.max_new_tokens);
  o.method = a.reduction.method;
  o.params = a.reduction.Params();
  o.budget = a.reduction.GetBudget();
  o.tty = a.progress == "bar" || (a.progress == "auto" && isatty(fileno(stderr)));
  const eval::EvalOutcome r = eval::RunEval(o);
  std::fprintf(stderr, "%lld question(s) asked in this run, %lld resumed, %lld error answer(s); answers: %s\n",
               r.answered_now, r.resumed, r.errors, r.answers_path.c_str());
  if (r.scored) {
    const nlohmann::json& s = r.summary["score"];
    std::printf("%s %s: %.2f (%s, mean LLM prefill %.4g TFLOPs); report: %s/report.md\n", o.bench.c_str(),
                s["name"].get<std::string>().c_str(), s["value"].get<double>(), o.method.c_str(),
                r.summary["llm_prefill_tflops_mean"].get<double>(), o.out_dir.c_str());
  } else {
    std::printf("not scored: %s\n", r.not_scored_reason.c_str());
  }
  return 0;
}

}  // namespace

void AddEvalCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<EvalArgs>();
  eval::EvalOptions& o = a->options;
  CLI::App* sub = app.add_subcommand(
      "eval",
      "Answer a benchmark's questions with LLaVA-1.5 (greedy, the benchmark's token limit), resumably, and score them.\n"
      "Writes OUT/answers.jsonl (LLaVA's answer format, one flushed line per answer; a rerun skips answered ids),\n"
      "OUT/timings.jsonl, and when scorable OUT/score.json and OUT/report.md. See docs/eval.md.");
  sub->add_option("--model", o.model_dir, "llava-hf model directory, or a llama.cpp GGUF text model (then also --mmproj)")->required();
  sub->add_option("--mmproj", o.mmproj, "With a GGUF --model: the llama.cpp mmproj GGUF (CLIP vision tower + projector)");
  sub->add_option("--tokenizer", o.tokenizer, "SentencePiece tokenizer.model (default: MODEL/tokenizer.model, or the GGUF's own vocabulary)");
  sub->add_option("--model-id", o.model_id, "model_id written in the answers (default: the model directory's name)");
  sub->add_option("--bench", o.bench, "Benchmark: sqa, textvqa, pope, gqa, vqav2, vizwiz, mme, mmbench, mmbench-cn, "
                                      "llava-bench, mm-vet (`ficoco eval-score --help` describes their files)")
      ->required();
  sub->add_option("--questions", o.questions, "The benchmark's questions file in LLaVA's format")->required();
  sub->add_option("--images", o.images, "Folder the questions' image paths are relative to")->required();
  sub->add_option("--annotations,--answers", o.annotations,
                  "Ground truth for scoring (the benchmark's annotation file, as eval-score takes it); without it only "
                  "benchmarks whose questions file holds the answers are scored");
  sub->add_option("--out", o.out_dir, "Output directory (created; an existing one is resumed)")->required();
  sub->add_option("--limit", o.limit, "Ask only the first N questions of the selection (-1 = all); rerun without it to continue")
      ->capture_default_str();
  sub->add_option("--shard", a->shard,
                  "i/n: ask only the questions at positions p with p mod n == i, into OUT/answers.shard-i-of-n.jsonl "
                  "(merge with `ficoco eval-merge`)");
  sub->add_option("--max-tokens", o.max_new_tokens, "Most new tokens per answer (0 = the benchmark's LLaVA setting)")
      ->capture_default_str();
  sub->add_option("--threads", a->threads, "Worker threads (0 = all cores)")->capture_default_str();
  sub->add_option("--compute", a->compute, "bf16 (fast) or f32 (reference parity) for the large products")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "f32"}));
  sub->add_option("--weights", a->weights,
                  "Text-model linear layers: auto (as stored), f16, bf16, or q8_0/q4_0 (quantized at load, int8 kernels)")
      ->capture_default_str();
  sub->add_option("--kv-cache", a->kv_cache,
                  "Element type of the KV cache: auto (f32 with --compute f32, else f16), f16 (half the bytes each decode step reads) or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "f16", "f32"}));

  sub->add_option("--progress", a->progress,
                  "auto: a redrawn bar when stderr is a terminal, otherwise a line every --progress-interval seconds; "
                  "bar; lines")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bar", "lines"}));
  sub->add_option("--progress-interval", o.progress_interval_s, "Seconds between progress lines (not on a terminal)")
      ->capture_default_str();
  AddReductionOptions(sub, a->reduction);
  sub->callback([a, &exit_code] { exit_code = RunEvalCommand(*a); });
}

}  // namespace ficoco::cli
