#include "eval/report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/error.h"
#include "eval/progress.h"
#include "eval/shard.h"
#include "io/json_file.h"

namespace ficoco::eval {
namespace {

namespace fs = std::filesystem;

constexpr size_t kListedErrors = 20;

double NumberOr(const nlohmann::json& j, const char* key, double fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Significant digits, for TFLOPs that range from 1e-5 (test models) to 10 (13B).
std::string Sig(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

// Decode speed, "-" when no answer decoded past its first token (nothing to time).
std::string DecodeRate(const nlohmann::json& s) {
  const double rate = NumberOr(s, "decode_tokens_per_s", 0);
  return rate > 0 ? Fixed(rate, 2) : std::string("-");
}

std::string BudgetText(const nlohmann::json& s) {
  const double keep = NumberOr(s, "keep", -1), tflops = NumberOr(s, "tflops_budget", -1);
  if (keep >= 0) return "keep " + std::to_string(static_cast<long long>(keep));
  if (tflops >= 0) return "tflops " + Sig(tflops, 4);
  return "-";
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) Fail("cannot write '", path, "'");
}

}  // namespace

nlohmann::json SummarizeRun(const RunFacts& facts, const std::vector<nlohmann::json>& answers,
                            const std::vector<nlohmann::json>& timings, const ScoreResult* score,
                            const std::string& not_scored_reason) {
  nlohmann::json s = {{"bench", facts.bench},     {"model_id", facts.model_id},     {"method", facts.method},
                      {"keep", facts.keep},       {"tflops_budget", facts.tflops_budget}, {"compute", facts.compute},
                      {"kv_cache", facts.kv_cache},
                      {"threads", facts.threads}, {"questions", facts.questions},   {"selected", facts.selected}};
  // Costs: means over the answers that ran (deterministic, from the answers file).
  long long ran = 0, empty = 0, new_tokens = 0;
  double llm = 0, vision = 0, image_tokens = 0, visual_mean = 0;
  nlohmann::json errors = nlohmann::json::array();
  long long error_count = 0;
  std::set<long long> answered;  // positions (ids may be shared: MME, TextVQA)
  for (const nlohmann::json& a : answers) {
    const nlohmann::json meta = a.value("metadata", nlohmann::json::object());
    answered.insert(static_cast<long long>(NumberOr(meta, "question_index", -1)));
    if (meta.contains("error")) {
      if (errors.size() < kListedErrors) errors.push_back({{"question_id", a["question_id"]}, {"error", meta["error"]}});
      ++error_count;
      continue;
    }
    ++ran;
    if (a.value("text", "").empty()) ++empty;
    llm += NumberOr(meta, "llm_prefill_tflops", 0);
    vision += NumberOr(meta, "vision_tflops", 0);
    image_tokens += NumberOr(meta, "image_tokens", 0);
    visual_mean += NumberOr(meta, "llm_visual_tokens_mean", 0);
    new_tokens += static_cast<long long>(NumberOr(meta, "new_tokens", 0));
  }
  const double n = ran > 0 ? static_cast<double>(ran) : 1.0;
  s["answered"] = answers.size();
  s["errors"] = error_count;
  s["error_examples"] = errors;
  s["empty_answers"] = empty;
  s["llm_prefill_tflops_mean"] = llm / n;
  s["vision_tflops_mean"] = vision / n;
  s["image_tokens_mean"] = image_tokens / n;
  s["llm_visual_tokens_mean"] = visual_mean / n;
  s["new_tokens_mean"] = new_tokens / n;

  // Timings: the last record of each answered position (a kill between the two
  // appends can leave an extra one); none for error answers.
  std::map<long long, const nlohmann::json*> last;
  for (const nlohmann::json& t : timings) {
    const long long position = static_cast<long long>(NumberOr(t, "question_index", -1));
    if (answered.count(position)) last[position] = &t;
  }
  double ttft = 0, total = 0, decode_s = 0, decode_steps = 0;
  for (const auto& [key, t] : last) {
    ttft += NumberOr(*t, "time_to_first_token_s", 0);
    total += NumberOr(*t, "total_s", 0);
    decode_s += NumberOr(*t, "decode_s", 0);
    decode_steps += NumberOr(*t, "decode_steps", 0);
  }
  const double timed = last.empty() ? 1.0 : static_cast<double>(last.size());
  s["timed_answers"] = last.size();
  s["time_to_first_token_s_mean"] = ttft / timed;
  s["total_s_mean"] = total / timed;
  s["decode_tokens_per_s"] = decode_s > 0 ? decode_steps / decode_s : 0.0;

  nlohmann::json problems = nlohmann::json::array();
  for (const Problem& p : facts.question_problems) problems.push_back({{"file", p.file}, {"line", p.line}, {"message", p.message}});
  s["question_problems"] = problems;
  if (score != nullptr) {
    nlohmann::json sp = nlohmann::json::array();
    for (const Problem& p : score->problems) sp.push_back({{"file", p.file}, {"line", p.line}, {"message", p.message}});
    s["score"] = {{"name", score->headline_name}, {"value", score->headline}, {"details", score->details},
                  {"questions", score->questions},  {"answered", score->answered},  {"problems", sp}};
  } else {
    s["score"] = nullptr;
    s["not_scored"] = not_scored_reason;
  }
  return s;
}

std::string RunReportMarkdown(const nlohmann::json& s, const std::string& score_markdown) {
  std::ostringstream md;
  md << "# " << s.value("bench", "?") << ": " << s.value("model_id", "?") << ", " << s.value("method", "?") << " ("
     << BudgetText(s) << ")\n\n";
  if (s["score"].is_object())
    md << "**" << s["score"].value("name", "score") << ": " << Fixed(NumberOr(s["score"], "value", 0), 2) << "**\n\n";
  else
    md << "**not scored**: " << s.value("not_scored", "") << "\n\n";
  md << "| measure | value |\n|---|---|\n"
     << "| questions (file / asked / answered) | " << s.value("questions", 0) << " / " << s.value("selected", 0) << " / "
     << s.value("answered", 0) << " |\n"
     << "| answers with errors (missing/unreadable image) | " << s.value("errors", 0) << " |\n"
     << "| empty answers | " << s.value("empty_answers", 0) << " |\n"
     << "| problems in the questions file | " << s["question_problems"].size() << " |\n";
  if (s["score"].is_object()) md << "| problems found by the scorer | " << s["score"]["problems"].size() << " |\n";
  md << "| visual tokens entering the LLM (mean) | " << Fixed(NumberOr(s, "image_tokens_mean", 0), 1) << " |\n"
     << "| visual tokens per LLM layer (mean) | " << Fixed(NumberOr(s, "llm_visual_tokens_mean", 0), 1) << " |\n"
     << "| LLM prefill TFLOPs (mean) | " << Sig(NumberOr(s, "llm_prefill_tflops_mean", 0), 4) << " |\n"
     << "| vision + projector TFLOPs (mean) | " << Sig(NumberOr(s, "vision_tflops_mean", 0), 4) << " |\n"
     << "| time to first token (mean over " << s.value("timed_answers", 0) << " timed answers) | "
     << Fixed(NumberOr(s, "time_to_first_token_s_mean", 0), 3) << " s |\n"
     << "| decode tokens/s | " << DecodeRate(s) << " |\n"
     << "| new tokens per answer (mean) | " << Fixed(NumberOr(s, "new_tokens_mean", 0), 2) << " |\n"
     << "| compute, KV cache, threads | " << s.value("compute", "?") << ", " << s.value("kv_cache", "?") << ", "
     << s.value("threads", 0) << " |\n\n";
  if (!score_markdown.empty()) md << score_markdown << "\n";
  if (!s["error_examples"].empty()) {
    md << "## Questions that could not be asked\n\n";
    for (const auto& e : s["error_examples"]) md << "- " << AnswerKeyOf(e["question_id"]) << ": " << e.value("error", "") << "\n";
    if (s.value("errors", 0) > static_cast<long long>(s["error_examples"].size()))
      md << "- ... " << s.value("errors", 0) << " in all\n";
    md << "\n";
  }
  auto list_problems = [&md](const char* title, const nlohmann::json& problems) {
    if (problems.empty()) return;
    md << "## " << title << "\n\n";
    size_t shown = 0;
    for (const auto& p : problems) {
      if (shown++ == kListedErrors) {
        md << "- ... " << problems.size() << " in all\n";
        break;
      }
      md << "- " << p.value("file", "") << ":" << p.value("line", 0) << ": " << p.value("message", "") << "\n";
    }
    md << "\n";
  };
  list_problems("Problems in the questions file", s["question_problems"]);
  // (the scorer's problems are listed in its own section, score_markdown)
  return md.str();
}

void WriteRunReport(const std::string& out_dir, const nlohmann::json& summary, const std::string& score_markdown) {
  WriteText((fs::path(out_dir) / "score.json").string(), summary.dump(2) + "\n");
  WriteText((fs::path(out_dir) / "report.md").string(), RunReportMarkdown(summary, score_markdown));
}

std::vector<std::string> WriteComparisonReport(const std::vector<std::string>& run_dirs, const std::string& out_dir) {
  if (run_dirs.empty()) Fail("eval-report: no run directories given");
  struct Run {
    std::string dir;
    nlohmann::json s;
  };
  std::map<std::string, std::vector<Run>> by_bench;
  for (const std::string& dir : run_dirs) {
    const std::string path = (fs::path(dir) / "score.json").string();
    nlohmann::json s = ParseJsonObject(ReadTextFile(path), path);
    if (!s.contains("bench") || !s["bench"].is_string()) Fail(path, ": no \"bench\" (not written by `ficoco eval`?)");
    by_bench[s["bench"].get<std::string>()].push_back({dir, std::move(s)});
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) Fail("cannot create '", out_dir, "': ", ec.message());
  std::vector<std::string> written;
  std::ostringstream md;
  md << "# Evaluation runs\n\n";
  for (auto& [bench, runs] : by_bench) {
    // Methods together, each from the largest budget down (the table reads like the paper's).
    std::stable_sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) {
      const std::string ma = a.s.value("method", ""), mb = b.s.value("method", "");
      if ((ma == "none") != (mb == "none")) return ma == "none";
      if (ma != mb) return ma < mb;
      return NumberOr(a.s, "llm_prefill_tflops_mean", 0) > NumberOr(b.s, "llm_prefill_tflops_mean", 0);
    });
    std::string score_name = "score";
    for (const Run& r : runs)
      if (r.s["score"].is_object()) score_name = r.s["score"].value("name", "score");
    md << "## " << bench << "\n\n"
       << "| run | model | method | budget | visual tokens | LLM prefill TFLOPs | " << score_name
       << " | first token s | decode tok/s | answered | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    // One line per method, or per model and method when several models are compared.
    bool one_model = true;
    for (const Run& r : runs) one_model = one_model && r.s.value("model_id", "") == runs[0].s.value("model_id", "");
    std::map<std::string, PlotSeries> series;
    for (const Run& r : runs) {
      const nlohmann::json& s = r.s;
      const bool scored = s["score"].is_object();
      md << "| " << r.dir << " | " << s.value("model_id", "?") << " | " << s.value("method", "?") << " | " << BudgetText(s)
         << " | " << Fixed(NumberOr(s, "image_tokens_mean", 0), 1) << " | " << Sig(NumberOr(s, "llm_prefill_tflops_mean", 0), 4)
         << " | " << (scored ? Fixed(NumberOr(s["score"], "value", 0), 2) : std::string("not scored")) << " | "
         << Fixed(NumberOr(s, "time_to_first_token_s_mean", 0), 3) << " | " << DecodeRate(s)
         << " | " << s.value("answered", 0) << "/" << s.value("selected", 0) << " | " << s.value("errors", 0) << " |\n";
      if (scored) {
        const std::string name = one_model ? s.value("method", "?") : s.value("model_id", "?") + ": " + s.value("method", "?");
        PlotSeries& ps = series[name];
        ps.name = name;
        ps.points.emplace_back(NumberOr(s, "llm_prefill_tflops_mean", 0), NumberOr(s["score"], "value", 0));
      }
    }
    md << "\n";
    if (!series.empty()) {
      std::vector<PlotSeries> list;
      for (auto& [name, ps] : series) list.push_back(ps);
      const std::string png = (fs::path(out_dir) / (bench + ".png")).string();
      PlotScoreVsTflops(png, bench + ": " + score_name + " vs LLM prefill TFLOPs", score_name, list);
      written.push_back(png);
      md << "![" << bench << "](" << bench << ".png)\n\n";
    } else {
      md << "(no scored run: nothing to plot)\n\n";
    }
  }
  const std::string md_path = (fs::path(out_dir) / "report.md").string();
  WriteText(md_path, md.str());
  written.insert(written.begin(), md_path);
  return written;
}

}  // namespace ficoco::eval
