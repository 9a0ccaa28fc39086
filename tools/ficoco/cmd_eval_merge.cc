// `ficoco eval-merge`: join the answer files of `ficoco eval --shard i/n` runs into one
// answers file in question order, refusing overlaps and holes (src/eval/shard.cc).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "base/error.h"
#include "commands.h"
#include "eval/shard.h"

namespace ficoco::cli {
namespace {

namespace fs = std::filesystem;

struct MergeArgs {
  std::string out, bench, questions;
  std::vector<std::string> files;
};

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream f(path, std::ios::binary);
  for (const std::string& l : lines) f << l << '\n';
  f.close();
  if (!f) Fail("cannot write '", path, "'");
}

// Timings files beside the shard answer files (timings.shard-i-of-n.jsonl), joined in
// the merged answers' order into timings.jsonl beside --out; skipped if any is absent.
int MergeTimings(const eval::MergeResult& merged, const std::string& out) {
  std::map<long long, std::string> by_position;
  for (const std::string& f : merged.shard_files_in_order) {
    eval::Shard s;
    if (!eval::ShardFromFileName(f, &s)) return 0;
    const std::string t = (fs::path(f).parent_path() / eval::TimingsFileName(s)).string();
    if (!fs::exists(t)) return 0;
    std::ifstream in(t, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("question_index") && j["question_index"].is_number_integer())
        by_position[j["question_index"].get<long long>()] = line;  // last wins
    }
  }
  std::vector<std::string> lines;
  for (const eval::AnswerLine& a : merged.lines)
    if (by_position.count(a.question_index)) lines.push_back(by_position[a.question_index]);
  WriteLines((fs::path(out).parent_path() / "timings.jsonl").string(), lines);
  return static_cast<int>(lines.size());
}

int RunMerge(const MergeArgs& a) {
  if (a.questions.empty() != a.bench.empty()) Fail("--questions and --bench go together (the questions file's format)");
  eval::QuestionSet qs;
  if (!a.questions.empty()) qs = eval::LoadQuestions(a.bench, a.questions);
  const eval::MergeResult merged = eval::MergeShardAnswers(a.files, a.questions.empty() ? nullptr : &qs);
  for (const std::string& f : a.files)
    if (fs::exists(a.out) && fs::equivalent(f, a.out)) Fail("--out '", a.out, "' is one of the shard files");
  std::vector<std::string> lines;
  for (const eval::AnswerLine& l : merged.lines) lines.push_back(l.text);
  if (!fs::path(a.out).parent_path().empty()) fs::create_directories(fs::path(a.out).parent_path());
  WriteLines(a.out, lines);
  const int timed = MergeTimings(merged, a.out);
  std::printf("merged %zu answers from %zu file(s) into %s%s\n", lines.size(), a.files.size(), a.out.c_str(),
              timed > 0 ? " (and their timings into timings.jsonl beside it)" : "");
  return 0;
}

}  // namespace

void AddEvalMergeCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<MergeArgs>();
  CLI::App* sub = app.add_subcommand(
      "eval-merge",
      "Merge the answers of `ficoco eval --shard i/n` runs into one answers file in question order. Fails on a question\n"
      "answered twice, an unanswered position, missing or mixed shards. Timings files beside the shards are merged\n"
      "into timings.jsonl beside --out. Rerunning `ficoco eval` (without --shard) on --out's folder then scores.");
  sub->add_option("--out", a->out, "Merged answers file (e.g. RUN/answers.jsonl)")->required();
  sub->add_option("--questions", a->questions, "The questions file: also check every question is answered, by id");
  sub->add_option("--bench", a->bench, "The benchmark (format of --questions)");
  sub->add_option("files", a->files, "Shard answer files (answers.shard-i-of-n.jsonl)")->required();
  sub->callback([a, &exit_code] { exit_code = RunMerge(*a); });
}

}  // namespace ficoco::cli
