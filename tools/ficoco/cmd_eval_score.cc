// `ficoco eval-score`: score an answers JSONL (written by `ficoco eval` or by LLaVA's
// own scripts) with the benchmark's official metric; prints Markdown, writes JSON.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "commands.h"
#include "eval/benchmark.h"

namespace ficoco::cli {
namespace {

struct ScoreArgs {
  std::string bench, answers, annotations, questions, json;
};

nlohmann::json ResultJson(const eval::ScoreResult& r, const ScoreArgs& a) {
  nlohmann::json problems = nlohmann::json::array();
  for (const eval::Problem& p : r.problems) problems.push_back({{"file", p.file}, {"line", p.line}, {"message", p.message}});
  return {{"bench", r.bench},
          {"answers", a.answers},
          {"annotations", a.annotations},
          {"questions", a.questions},
          {"headline_name", r.headline_name},
          {"headline", r.headline},
          {"questions_scored", r.questions},
          {"answered", r.answered},
          {"details", r.details},
          {"problems", problems}};
}

int RunScore(const ScoreArgs& a) {
  const eval::BenchmarkInfo& info = eval::FindBenchmark(a.bench);  // names the known ones if wrong
  const eval::AnswerSet answers = eval::ReadAnswers(a.answers);
  const eval::ScoreResult r = eval::ScoreAnswers(info.name, answers, a.annotations, a.questions);
  std::fputs(r.ToMarkdown().c_str(), stdout);
  if (!a.json.empty()) {
    std::ofstream out(a.json, std::ios::binary);
    out << ResultJson(r, a).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    out.close();
    if (!out) Fail("cannot write '", a.json, "'");
  }
  return 0;
}

std::string BenchHelp() {
  std::ostringstream os;
  os << "Benchmark; what --annotations must be:";
  for (const eval::BenchmarkInfo& b : eval::Benchmarks())
    os << "\n  " << b.name << ": " << (b.needs_judge ? "none (free-form answers, needs an external GPT judge)" : b.annotations);
  return os.str();
}

}  // namespace

void AddEvalScoreCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* sub = app.add_subcommand(
      "eval-score",
      "Score an answers JSONL with the benchmark's official metric (VQA accuracy, POPE F1, MME perception, ...).\n"
      "Prints a Markdown summary; unknown ids, duplicates, empty and missing answers are listed with their lines and\n"
      "counted (missing and empty answers score as wrong). See docs/eval-metrics.md.");
  sub->add_option("--bench", a->bench, BenchHelp())->required();
  sub->add_option("--answers", a->answers, "Answers JSONL ({question_id, prompt, text, ...} per line)")->required();
  sub->add_option("--annotations", a->annotations,
                  "Ground truth (see --bench); POPE accepts several label files separated by commas");
  sub->add_option("--questions", a->questions,
                  "The questions file: restricts scoring to its questions; needed by vizwiz (id -> image), used by\n"
                  "pope for the split of each question and by sqa for which questions have an image");
  sub->add_option("--json", a->json, "Also write the full result (details, every problem) to this JSON file");
  sub->callback([a, &exit_code] { exit_code = RunScore(*a); });
}

}  // namespace ficoco::cli
