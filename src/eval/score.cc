// ScoreAnswers: dispatch to the benchmark's scorer; Markdown rendering of a result.
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "eval/benchmark.h"
#include "eval/eval_text.h"
#include "eval/score_benchmarks.h"
#include "eval/score_common.h"

namespace ficoco::eval {
namespace {

std::string Cell(const nlohmann::json& v) {
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v.get<double>());
    return buf;
  }
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

// llava-bench and mm-vet are judged by GPT-4 outside ficoco: report coverage only.
ScoreResult ScoreJudged(const std::string& bench, const AnswerSet& answers, const std::string& questions) {
  std::vector<Problem> problems;
  const QuestionFilter f = LoadFilter(bench, questions, problems);
  std::vector<std::string> keys;
  if (f.questions)
    for (const Question& q : f.questions->questions) keys.push_back(q.key);
  else
    for (const Answer& a : answers.answers) keys.push_back(a.key);
  std::set<std::string> unique(keys.begin(), keys.end());
  keys.assign(unique.begin(), unique.end());
  const MatchResult m = MatchAnswers(keys, answers, [](const Answer& a) { return a.key; }, problems);
  ScoreResult r;
  r.bench = bench;
  r.headline_name = "needs-judge";
  r.headline = 0;
  r.details["judge"] = "answers are free-form; score them with the benchmark's GPT-4 judge "
                       "(LLaVA: llava/eval/eval_gpt_review_bench.py; MM-Vet: its online evaluator)";
  r.problems = std::move(problems);
  FinishResult(r, m, answers, keys.size());
  return r;
}

ScoreResult ScoreAnswers(const std::string& bench, const AnswerSet& answers, const std::string& annotations,
                         const std::string& questions) {
  const BenchmarkInfo& info = FindBenchmark(bench);
  if (info.needs_judge) return ScoreJudged(info.name, answers, questions);
  if (info.name == "vqav2") return ScoreVqav2(answers, annotations, questions);
  if (info.name == "vizwiz") return ScoreVizwiz(answers, annotations, questions);
  if (info.name == "textvqa") return ScoreTextvqa(answers, annotations, questions);
  if (info.name == "gqa") return ScoreGqa(answers, annotations, questions);
  if (info.name == "pope") return ScorePope(answers, annotations, questions);
  if (info.name == "mme") return ScoreMme(answers, annotations, questions);
  if (info.name == "sqa") return ScoreSqa(answers, annotations, questions);
  if (info.name == "mmbench" || info.name == "mmbench-cn") return ScoreMmbench(info.name, answers, annotations, questions);
  Fail("no scorer for benchmark '", bench, "'");
}

std::string ScoreResult::ToMarkdown() const {
  std::ostringstream md;
  md << "## " << bench << "\n\n";
  if (headline_name == "needs-judge") {
    md << "**Not scored here:** " << Cell(details.value("judge", nlohmann::json(""))) << ".\n\n";
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", headline);
    md << "**" << headline_name << ": " << buf << "**\n\n";
  }
  if (details.contains("counts")) {
    md << "| count | value |\n| --- | --- |\n";
    for (auto it = details["counts"].begin(); it != details["counts"].end(); ++it)
      md << "| " << it.key() << " | " << Cell(it.value()) << " |\n";
    md << "\n";
  }
  for (auto it = details.begin(); it != details.end(); ++it)
    if (it.value().is_number() && it.key() != "counts")
      md << "- " << it.key() << ": " << Cell(it.value()) << "\n";
  md << "\n";
  if (details.contains("tables"))
    for (const auto& t : details["tables"]) {
      if (t["rows"].empty()) continue;
      md << "### " << Cell(t["title"]) << "\n\n|";
      for (const auto& c : t["columns"]) md << " " << Cell(c) << " |";
      md << "\n|";
      for (size_t i = 0; i < t["columns"].size(); ++i) md << " --- |";
      md << "\n";
      for (const auto& row : t["rows"]) {
        md << "|";
        for (const auto& v : row) md << " " << Cell(v) << " |";
        md << "\n";
      }
      md << "\n";
    }
  if (!problems.empty()) {
    md << "### Problems (" << problems.size() << ")\n\n";
    const size_t shown = std::min<size_t>(problems.size(), 20);
    for (size_t i = 0; i < shown; ++i) {
      md << "- " << problems[i].file;
      if (problems[i].line > 0) md << ":" << problems[i].line;
      md << ": " << problems[i].message << "\n";
    }
    if (shown < problems.size()) md << "- ... and " << problems.size() - shown << " more (all in the JSON output)\n";
    md << "\n";
  }
  return md.str();
}

}  // namespace ficoco::eval
