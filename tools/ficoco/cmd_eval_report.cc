// `ficoco eval-report`: compare evaluation runs: one Markdown table and one
// score-vs-TFLOPs plot per benchmark (src/eval/report.cc).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "eval/report.h"

namespace ficoco::cli {
namespace {

struct ReportArgs {
  std::string out;
  std::vector<std::string> runs;
};

}  // namespace

void AddEvalReportCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* sub = app.add_subcommand(
      "eval-report",
      "Compare `ficoco eval` runs (their score.json): OUT/report.md with a table per benchmark and OUT/<bench>.png,\n"
      "the score against the mean LLM prefill TFLOPs with one line per method (like the FiCoCo paper's figure 1).");
  sub->add_option("--out", a->out, "Output directory")->required();
  sub->add_option("runs", a->runs, "Run directories of `ficoco eval` (each with score.json)")->required();
  sub->callback([a, &exit_code] {
    for (const std::string& f : eval::WriteComparisonReport(a->runs, a->out)) std::printf("wrote %s\n", f.c_str());
    exit_code = 0;
  });
}

}  // namespace ficoco::cli
