// What an evaluation run reports: the per-run summary (OUT/score.json + OUT/report.md:
// score, method, budget, prefill TFLOPs, time to first token, tokens/s, problems) and
// the comparison of several runs (`ficoco eval-report`: one Markdown table and one
// score-vs-TFLOPs plot per benchmark, like the FiCoCo paper's figure 1).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/benchmark.h"

namespace ficoco::eval {

struct RunFacts {
  std::string bench, model_id, method, compute, kv_cache;
  long long keep = -1;
  double tflops_budget = -1;
  int threads = 0;
  long long questions = 0;         // in the questions file
  long long selected = 0;          // asked in this run (after --limit)
  std::vector<Problem> question_problems;
};

// Summary of one run from its answers and timings records (the JSONL lines).
// `score` is null when the run was not scored; `not_scored_reason` then says why.
nlohmann::json SummarizeRun(const RunFacts& facts, const std::vector<nlohmann::json>& answers,
                            const std::vector<nlohmann::json>& timings, const ScoreResult* score,
                            const std::string& not_scored_reason);
// `score_markdown` (ScoreResult::ToMarkdown, "" if not scored) is the breakdown section.
std::string RunReportMarkdown(const nlohmann::json& summary, const std::string& score_markdown);
// OUT/score.json and OUT/report.md.
void WriteRunReport(const std::string& out_dir, const nlohmann::json& summary, const std::string& score_markdown);

// `ficoco eval-report`: reads RUN_DIR/score.json of every run, writes OUT/report.md
// (a table per benchmark) and OUT/<bench>.png (score against LLM prefill TFLOPs, one
// line per method). Returns the files written. Throws Error naming a run directory
// without a readable score.json.
std::vector<std::string> WriteComparisonReport(const std::vector<std::string>& run_dirs, const std::string& out_dir);

// One method's points (x = TFLOPs, y = score) in the plot.
struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
};
// Draws the series (sorted by x, joined by lines; a single point is a marker) with
// axes, ticks, labels and a legend, and writes a PNG. Throws Error naming the path
// if it cannot be written or there is nothing to draw.
void PlotScoreVsTflops(const std::string& png_path, const std::string& title, const std::string& y_label,
                       const std::vector<PlotSeries>& series);

}  // namespace ficoco::eval
