// The benchmarks `ficoco eval` knows, in the formats LLaVA-1.5's own evaluation uses:
// how their question files read, how each question becomes a prompt, and how an
// answers file is scored with the benchmark's official metric.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ficoco::eval {

// A problem in an input file, reported with its place and counted; never dropped silently.
struct Problem {
  std::string file;
  int line = 0;          // 1-based; 0 when the problem is not tied to a line
  std::string message;
};

// One question as `ficoco eval` asks it.
struct Question {
  nlohmann::json id;        // question_id exactly as in the file (number or string)
  std::string key;          // id as text, for maps and resume ("123", "abc")
  std::string image;        // path relative to --images; empty for a text-only question
  std::string prompt;       // user turn as LLaVA asks it (benchmark suffix appended)
  std::string category;     // category / subtask / split; "" if the format has none
  nlohmann::json extra;     // what the answers file must carry back (e.g. MMBench index)
  int line = 0;             // line (or record) of the questions file
};

struct QuestionSet {
  std::vector<Question> questions;
  std::vector<Problem> problems;  // malformed lines, duplicated ids, ...
};

// One answer in LLaVA's answer JSONL: {"question_id", "prompt", "text", "answer_id",
// "model_id", "metadata"}; ficoco adds its own fields under "metadata".
struct Answer {
  nlohmann::json id;
  std::string key;
  std::string prompt;
  std::string text;
  std::string model_id;
  nlohmann::json metadata = nlohmann::json::object();
  int line = 0;
  std::string answer_id;   // "" = AnswerToJson derives a deterministic one
  nlohmann::json extra = nlohmann::json::object();  // other top-level fields (MMBench: round_id, options, option_char)
};

struct AnswerSet {
  std::vector<Answer> answers;
  std::vector<Problem> problems;
  std::string path;        // the file read (names it in scoring problems)
};

struct BenchmarkInfo {
  std::string name;            // "sqa", "textvqa", "pope", "gqa", "vqav2", "vizwiz", "mme", "mmbench", ...
  std::string description;
  std::string prompt_suffix;   // appended to each question by LoadQuestions ("" if none)
  int max_new_tokens = 16;     // LLaVA's setting for the benchmark (greedy decoding)
  bool needs_judge = false;    // llava-bench-in-the-wild, mm-vet: answers written, not scored
  std::string annotations;     // what --annotations must be for eval-score ("" = questions file suffices)
};

// Every supported benchmark, in a stable order.
const std::vector<BenchmarkInfo>& Benchmarks();
// Throws Error naming the benchmark and listing the known ones.
const BenchmarkInfo& FindBenchmark(const std::string& name);

// Reads a questions file in the benchmark's format (JSONL, MMBench TSV, ...).
// Missing file: Error. Bad lines: Problems (with line numbers), the rest is read.
QuestionSet LoadQuestions(const std::string& bench, const std::string& path);

// MMBench's official TSVs embed each picture as base64 in an `image` column: writes
// them to OUT_DIR as <index>.png / <index>.jpg, the names LoadQuestions gives those
// questions. Returns how many were written; Error naming file:line on bad base64.
int ExtractTsvImages(const std::string& tsv_path, const std::string& out_dir);

// Answers JSONL (one object per line). A truncated last line (an interrupted run) is a
// Problem, not an Error.
AnswerSet ReadAnswers(const std::string& path);
nlohmann::json AnswerToJson(const Answer& answer);  // one line of the answers file

struct ScoreResult {
  std::string bench;
  std::string headline_name;   // "accuracy", "f1", "perception", ...
  double headline = 0;         // in percent, as the paper reports it
  nlohmann::json details;      // per split / subtask / category, counts
  std::vector<Problem> problems;  // unknown ids, duplicates, empty answers, unanswered
  int questions = 0, answered = 0;
  std::string ToMarkdown() const;
};

// Scores answers with the benchmark's official metric. `annotations` is the
// benchmark's ground-truth file (see BenchmarkInfo::annotations); `questions` is its
// questions file when the metric needs it (may be empty otherwise). Unanswered and
// empty answers count as wrong (never dropped from the denominator).
ScoreResult ScoreAnswers(const std::string& bench, const AnswerSet& answers, const std::string& annotations,
                         const std::string& questions);

}  // namespace ficoco::eval
