// `ficoco eval` / `eval-merge` / `eval-report` end to end on the llava-tiny fixture
// (random weights: answers are noise, so the tests check what does not depend on
// them: order, determinism across resumes and shards, error answers, counts, scoring
// wiring) plus the runner's pieces (shards, progress text, the resumable journal).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <signal.h>
#include <unistd.h>

#include "base/error.h"
#include "eval/progress.h"
#include "eval/runner.h"
#include "eval/runner_journal.h"
#include "eval/shard.h"
#include "test_support.h"

namespace ficoco {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Q(const std::string& s) { return "'" + s + "'"; }
std::string Data(const std::string& name) { return test::SourceDir() + "/tests/data/eval-run/" + name; }

test::CommandResult Cli(const std::string& args) { return test::RunCommand(test::CliPath() + " " + args); }

// Common options of every eval run: fixture model, its images, f32 and one thread so
// that runs are bit-reproducible.
std::string EvalBase(const std::string& bench, const std::string& questions) {
  return "eval --model " + Q(test::LlavaTinyDir()) + " --tokenizer " + Q(test::LlamaTokenizerDir() + "/tokenizer.model") +
         " --images " + Q(test::LlavaTinyDir() + "/images") + " --compute f32 --threads 1 --progress lines --bench " + bench +
         " --questions " + Q(questions);
}
std::string GqaRun(const std::string& out, const std::string& extra = "") {
  return EvalBase("gqa", Data("gqa_questions.jsonl")) + " --annotations " + Q(Data("gqa_annotations.json")) + " --out " +
         Q(out) + " " + extra;
}

std::vector<json> JsonLines(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(test::ReadFile(path));
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

// ---- pieces ----

TEST(EvalShard, ParsesAndSelectsByPositionModN) {
  const eval::Shard s = eval::ParseShard("1/3");
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.count, 3);
  std::vector<size_t> taken;
  for (size_t p = 0; p < 8; ++p)
    if (s.Takes(p)) taken.push_back(p);
  EXPECT_EQ(taken, (std::vector<size_t>{1, 4, 7}));
  EXPECT_TRUE(eval::ParseShard("").whole());
  EXPECT_EQ(eval::AnswersFileName(s), "answers.shard-1-of-3.jsonl");
  EXPECT_EQ(eval::AnswersFileName(eval::Shard{}), "answers.jsonl");
  eval::Shard back;
  ASSERT_TRUE(eval::ShardFromFileName("/x/y/answers.shard-2-of-5.jsonl", &back));
  EXPECT_EQ(back.index, 2);
  EXPECT_EQ(back.count, 5);
  EXPECT_FALSE(eval::ShardFromFileName("answers.jsonl", &back));
  for (const char* bad : {"3/3", "1/0", "a/b", "1-3", "-1/3"})
    test::ExpectError([&] { eval::ParseShard(bad); }, {"--shard", bad});
}

TEST(EvalProgress, FormatsRateAndEta) {
  EXPECT_EQ(eval::FormatDuration(65), "1:05");
  EXPECT_EQ(eval::FormatDuration(3725), "1:02:05");
  EXPECT_EQ(eval::FormatDuration(-1), "?");
  // 10 answered in this run (2 resumed) in 5 s: 2 q/s, 88 left → 44 s.
  EXPECT_EQ(eval::FormatProgress(12, 100, 2, 5.0), "12/100 (12%) 2.00 q/s, ETA 0:44");
  EXPECT_EQ(eval::FormatProgress(2, 100, 2, 5.0), "2/100 (2%) 0.00 q/s, ETA ?");
}

TEST(EvalProgress, PlainLinesWhenNotATerminal) {
  const std::string path = test::MakeTempDir("progress") + "/log.txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  {
    eval::ProgressMeter m(3, 1, f, /*tty=*/false, /*interval_s=*/1000);
    for (int i = 0; i < 2; ++i) m.Step();
    m.Finish();
  }
  std::fclose(f);
  const std::string log = test::ReadFile(path);
  // Resume note, start line, first fresh answer, last answer; no bar, no carriage return.
  EXPECT_NE(log.find("resuming: 1 of 3"), std::string::npos) << log;
  EXPECT_NE(log.find("progress: 1/3"), std::string::npos) << log;
  EXPECT_NE(log.find("progress: 2/3"), std::string::npos) << log;
  EXPECT_NE(log.find("progress: 3/3 (100%)"), std::string::npos) << log;
  EXPECT_EQ(log.find('\r'), std::string::npos) << log;
}

TEST(EvalProgress, RedrawnBarOnATerminal) {
  const std::string path = test::MakeTempDir("progress-tty") + "/log.txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  {
    eval::ProgressMeter m(4, 0, f, /*tty=*/true);
    for (int i = 0; i < 2; ++i) m.Step();
    m.Finish();
  }
  std::fclose(f);
  const std::string log = test::ReadFile(path);
  // Three redraws (start, 1, 2), the last half full: 15 of 30 cells.
  EXPECT_EQ(std::count(log.begin(), log.end(), '\r'), 3) << log;
  EXPECT_NE(log.find("\r[" + std::string(15, '#') + std::string(15, '.') + "] 2/4 (50%)"), std::string::npos) << log;
  EXPECT_EQ(log.back(), '\n');
}

TEST(EvalJournal, DropsATruncatedLastLineAndContinues) {
  const std::string path = test::MakeTempDir("journal") + "/a.jsonl";
  test::WriteFile(path, "{\"question_id\":1}\n{\"question_id\":2}\n{\"question_id\":3,\"te");
  {
    eval::Journal j(path);
    EXPECT_EQ(j.records().size(), 2u);
    EXPECT_EQ(j.dropped_bytes(), 20u);  // {"question_id":3,"te
    j.Append({{"question_id", 3}, {"text", "x"}});
  }
  EXPECT_EQ(test::ReadFile(path), "{\"question_id\":1}\n{\"question_id\":2}\n{\"question_id\":3,\"text\":\"x\"}\n");
  {  // a second writer of the same file is refused while the first holds it
    eval::Journal first(path);
    test::ExpectError([&] { eval::Journal second(path); }, {path, "another process"});
  }
  {
    eval::Journal again(path);  // released with the first
    EXPECT_EQ(again.records().size(), 3u);
  }
  test::WriteFile(path, "{\"question_id\":1}\nnot json\n");
  test::ExpectError([&] { eval::Journal j(path); }, {path + ":2", "malformed"});
}

std::string ShardLine(const std::string& id, int position, const std::string& prompt = "") {
  return json({{"question_id", id}, {"prompt", prompt}, {"text", "t" + id}, {"metadata", {{"question_index", position}}}})
      .dump();
}

TEST(EvalMerge, OrdersByPositionAndRefusesOverlapsAndHoles) {
  const std::string dir = test::MakeTempDir("merge");
  const std::string s0 = dir + "/answers.shard-0-of-2.jsonl", s1 = dir + "/answers.shard-1-of-2.jsonl";
  test::WriteFile(s0, ShardLine("a", 0) + "\n" + ShardLine("c", 2) + "\n");
  test::WriteFile(s1, ShardLine("b", 1) + "\n");
  const eval::MergeResult m = eval::MergeShardAnswers({s1, s0}, nullptr);
  ASSERT_EQ(m.lines.size(), 3u);
  EXPECT_EQ(m.lines[0].key, "a");
  EXPECT_EQ(m.lines[1].key, "b");
  EXPECT_EQ(m.lines[2].key, "c");
  EXPECT_EQ(m.lines[1].text, ShardLine("b", 1));  // verbatim

  test::ExpectError([&] { eval::MergeShardAnswers({s0}, nullptr); }, {"shard(s) 1 of 2 missing"});
  // Position 1 answered in shard 1 and again (wrongly) in shard 0.
  test::WriteFile(s0, ShardLine("a", 0) + "\n" + ShardLine("b", 1) + "\n");
  test::ExpectError([&] { eval::MergeShardAnswers({s0, s1}, nullptr); }, {"does not belong to shard 0 of 2"});
  // Unnamed files: overlaps and holes by position and id.
  const std::string x = dir + "/x.jsonl", y = dir + "/y.jsonl";
  test::WriteFile(x, ShardLine("a", 0) + "\n" + ShardLine("c", 2) + "\n");
  test::WriteFile(y, ShardLine("c", 2) + "\n");
  test::ExpectError([&] { eval::MergeShardAnswers({x, y}, nullptr); }, {"answered more than once", "position 2"});
  // One id at two positions is fine when the prompts differ (MME), not when they are equal.
  test::WriteFile(y, ShardLine("b", 1, "p1") + "\n" + ShardLine("b", 3, "p2") + "\n");
  EXPECT_EQ(eval::MergeShardAnswers({x, y}, nullptr).lines.size(), 4u);
  test::WriteFile(y, ShardLine("b", 1, "p1") + "\n" + ShardLine("b", 3, "p1") + "\n");
  test::ExpectError([&] { eval::MergeShardAnswers({x, y}, nullptr); }, {"answered more than once", "question_id b"});
  test::WriteFile(y, ShardLine("d", 3) + "\n");
  test::ExpectError([&] { eval::MergeShardAnswers({x, y}, nullptr); }, {"unanswered", "position 1"});
  test::WriteFile(y, ShardLine("b", 1) + "\n{\"question_id\": \"e\", \"meta");
  test::ExpectError([&] { eval::MergeShardAnswers({x, y}, nullptr); }, {y, "truncated"});
}

TEST(EvalAnswerId, DeterministicAndDistinct) {
  const Budget keep8{8, -1};
  const std::string id = eval::AnswerIdFor("m", "1", "q?", "ficoco-v", keep8);
  EXPECT_EQ(id, eval::AnswerIdFor("m", "1", "q?", "ficoco-v", keep8));
  EXPECT_NE(id, eval::AnswerIdFor("m", "2", "q?", "ficoco-v", keep8));
  EXPECT_NE(id, eval::AnswerIdFor("m", "1", "other q?", "ficoco-v", keep8));  // MME: one id, two questions
  EXPECT_NE(id, eval::AnswerIdFor("m", "1", "q?", "ficoco-v", Budget{4, -1}));
  EXPECT_EQ(id.size(), 16u);
}

// ---- the CLI ----

TEST(EvalCli, HelpListsEveryOption) {
  auto r = Cli("eval --help");
  for (const char* opt : {"--model", "--bench", "--questions", "--images", "--answers", "--annotations", "--out", "--limit",
                          "--shard", "--threads", "--method", "--keep", "--tflops", "--max-tokens", "--progress",
                          "--tokenizer", "--compute", "--ficoco-preset"})
    EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
  EXPECT_NE(Cli("eval-merge --help").output.find("--questions"), std::string::npos);
  EXPECT_NE(Cli("eval-report --help").output.find("--out"), std::string::npos);
}

TEST(EvalCli, AnswersEveryQuestionInOrderWithErrorEntries) {
  const std::string out = test::MakeTempDir("eval-full");
  auto r = Cli(GqaRun(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto answers = JsonLines(out + "/answers.jsonl");
  const std::vector<std::string> ids{"20001", "20002", "20003", "20004", "20005", "20006", "20007"};
  ASSERT_EQ(answers.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const json& a = answers[i];
    EXPECT_EQ(a["question_id"], ids[i]);
    EXPECT_EQ(a["metadata"]["question_index"], i);
    EXPECT_EQ(a["model_id"], "llava-tiny");
    EXPECT_EQ(a["answer_id"].get<std::string>().size(), 16u);
    EXPECT_NE(a["prompt"].get<std::string>().find("Answer the question using a single word or phrase."), std::string::npos);
    if (ids[i] == "20004") {  // its image does not exist
      EXPECT_EQ(a["text"], "");
      EXPECT_NE(a["metadata"]["error"].get<std::string>().find("missing_image.png"), std::string::npos);
    } else {
      EXPECT_FALSE(a["metadata"].contains("error"));
      EXPECT_EQ(a["metadata"]["image_tokens"], 16);  // 56 px / 14 → 4×4 patches, no reduction
      EXPECT_GT(a["metadata"]["llm_prefill_tflops"].get<double>(), 0);
      EXPECT_LE(a["metadata"]["new_tokens"].get<int>(), 128);
    }
  }
  const json s = json::parse(test::ReadFile(out + "/score.json"));
  EXPECT_EQ(s["errors"], 1);
  EXPECT_EQ(s["answered"], 7);
  EXPECT_EQ(s["timed_answers"], 6);  // error answers are not timed
  ASSERT_TRUE(s["score"].is_object()) << s.dump(2);
  EXPECT_EQ(s["score"]["answered"], 7);
  EXPECT_GT(s["time_to_first_token_s_mean"].get<double>(), 0);
  const std::string md = test::ReadFile(out + "/report.md");
  EXPECT_NE(md.find("20004: image not found"), std::string::npos) << md;
  EXPECT_NE(md.find("LLM prefill TFLOPs"), std::string::npos);
  EXPECT_EQ(JsonLines(out + "/timings.jsonl").size(), 6u);
}

TEST(EvalCli, ScoreUsesTheWrittenAnswers) {
  // Ground truth made from the model's own answers for questions 1, 3 and 5: the GQA
  // accuracy must be 3/7 (the missing-image question and the others are wrong).
  const std::string first = test::MakeTempDir("eval-score-a");
  ASSERT_EQ(Cli(GqaRun(first)).exit_code, 0);
  json truth = json::object();
  int i = 0;
  for (const json& a : JsonLines(first + "/answers.jsonl")) {
    std::string t = a["text"];
    while (!t.empty() && t.back() == '.') t.pop_back();  // GQA's post-processing: no trailing '.', lower case
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    truth[a["question_id"].get<std::string>()] = {{"answer", i % 2 == 0 ? t : "zz-not-this-" + std::to_string(i)}};
    ++i;
  }
  truth["20004"] = {{"answer", "anything"}};  // index 3: the missing image; even indexes 0,2,4,6 minus none
  const std::string dir = test::MakeTempDir("eval-score-b");
  test::WriteFile(dir + "/truth.json", truth.dump());
  auto r = Cli(EvalBase("gqa", Data("gqa_questions.jsonl")) + " --annotations " + Q(dir + "/truth.json") + " --out " + Q(dir + "/run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json s = json::parse(test::ReadFile(dir + "/run/score.json"));
  // Indexes 0, 2, 4, 6 carry the model's own text (4 of 7), unless one of them is empty
  // (an empty answer is wrong by definition).
  int expected = 0;
  i = 0;
  for (const json& a : JsonLines(first + "/answers.jsonl")) expected += (i++ % 2 == 0 && !a["text"].get<std::string>().empty());
  EXPECT_NEAR(s["score"]["value"].get<double>(), 100.0 * expected / 7, 1e-9) << s.dump(2);
}

TEST(EvalCli, ResumeGivesTheSameAnswersFile) {
  const std::string fresh = test::MakeTempDir("eval-fresh"), resumed = test::MakeTempDir("eval-resumed");
  ASSERT_EQ(Cli(GqaRun(fresh)).exit_code, 0);
  const std::string want = test::ReadFile(fresh + "/answers.jsonl");
  // Stopped after 3 questions, then continued.
  auto a = Cli(GqaRun(resumed, "--limit 3"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(JsonLines(resumed + "/answers.jsonl").size(), 3u);
  auto b = Cli(GqaRun(resumed));
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_NE(b.output.find("resuming: 3 of 7"), std::string::npos) << b.output;
  EXPECT_EQ(test::ReadFile(resumed + "/answers.jsonl"), want);
  // Killed in the middle of writing the 6th answer: the fragment is dropped and redone.
  size_t pos = 0;
  for (int k = 0; k < 5; ++k) pos = want.find('\n', pos) + 1;
  test::WriteFile(resumed + "/answers.jsonl", want.substr(0, pos + 20));
  auto c = Cli(GqaRun(resumed));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("truncated line"), std::string::npos) << c.output;
  EXPECT_EQ(test::ReadFile(resumed + "/answers.jsonl"), want);
  // A finished run is only rescored: no model load, nothing appended.
  auto d = Cli(GqaRun(resumed));
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_NE(d.output.find("0 question(s) asked in this run, 7 resumed"), std::string::npos) << d.output;
  EXPECT_EQ(test::ReadFile(resumed + "/answers.jsonl"), want);
  // Nor may answers to other questions (positions must hold the same ids).
  auto other = Cli(EvalBase("gqa", Data("pope_questions.jsonl")) + " --out " + Q(resumed));
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("does not match the questions file"), std::string::npos) << other.output;
  // Another setting must not append to these answers.
  auto e = Cli(GqaRun(resumed, "--method ficoco-v --keep 8"));
  EXPECT_NE(e.exit_code, 0);
  EXPECT_NE(e.output.find("written by another run"), std::string::npos) << e.output;
}

TEST(EvalCli, KilledRunResumesToTheSameFile) {
  // 40 questions on the two fixture images, so that the run is still busy when it is
  // killed (after 2 answers); wherever the kill lands, the final file must not change.
  const std::string dir = test::MakeTempDir("eval-kill");
  std::string questions;
  for (int i = 0; i < 40; ++i) {
    const char* image = i % 2 ? "synthetic_40x24.png" : "grace_hopper.png";
    questions += json({{"question_id", 9000 + i}, {"image", image}, {"text", "Question " + std::to_string(i) + "?"}}).dump() + "\n";
  }
  test::WriteFile(dir + "/q.jsonl", questions);
  auto run = [&](const std::string& out) {
    return EvalBase("gqa", dir + "/q.jsonl") + " --max-tokens 16 --out " + Q(out);
  };
  ASSERT_EQ(Cli(run(dir + "/fresh")).exit_code, 0);
  const std::string want = test::ReadFile(dir + "/fresh/answers.jsonl");
  ASSERT_EQ(JsonLines(dir + "/fresh/answers.jsonl").size(), 40u);

  // exec: the pid printed is the ficoco process itself; its output must not hold the pipe.
  test::WriteFile(dir + "/run.sh", "exec " + test::CliPath() + " " + run(dir + "/killed") + "\n");
  auto bg = test::RunCommand("bash " + Q(dir + "/run.sh") + " >/dev/null 2>&1 & echo $!");
  const int pid = std::stoi(bg.output);
  const std::string path = dir + "/killed/answers.jsonl";
  auto lines_in = [](const std::string& file) {
    if (!fs::exists(file)) return 0L;
    const std::string text = test::ReadFile(file);
    return static_cast<long>(std::count(text.begin(), text.end(), '\n'));
  };
  for (int waited = 0; waited < 600 && lines_in(path) < 2; ++waited) usleep(100000);  // up to 60 s
  ::kill(pid, SIGKILL);
  usleep(300000);  // not our child (bash's): let it die before rerunning
  const long lines_at_kill = lines_in(path);
  EXPECT_GE(lines_at_kill, 2);
  std::printf("killed after %ld of 40 answers\n", lines_at_kill);  // < 40: the kill landed mid-run
  auto r = Cli(run(dir + "/killed"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(test::ReadFile(path), want) << "killed after " << lines_at_kill << " answers";
}

TEST(EvalCli, TwoShardsMergedEqualOneRun) {
  const std::string whole = test::MakeTempDir("eval-whole"), shards = test::MakeTempDir("eval-shards");
  ASSERT_EQ(Cli(GqaRun(whole, "--method ficoco-v --keep 8")).exit_code, 0);
  for (const char* s : {"0/2", "1/2"}) {
    auto r = Cli(GqaRun(shards, std::string("--method ficoco-v --keep 8 --shard ") + s));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("eval-merge"), std::string::npos) << r.output;  // not scored per shard
  }
  EXPECT_EQ(JsonLines(shards + "/answers.shard-0-of-2.jsonl").size(), 4u);  // positions 0, 2, 4, 6
  EXPECT_EQ(JsonLines(shards + "/answers.shard-1-of-2.jsonl").size(), 3u);
  auto only_one = Cli("eval-merge --out " + Q(shards + "/answers.jsonl") + " " + Q(shards + "/answers.shard-1-of-2.jsonl"));
  EXPECT_NE(only_one.exit_code, 0);
  EXPECT_NE(only_one.output.find("shard(s) 0 of 2 missing"), std::string::npos) << only_one.output;
  auto m = Cli("eval-merge --bench gqa --questions " + Q(Data("gqa_questions.jsonl")) + " --out " + Q(shards + "/answers.jsonl") +
               " " + Q(shards + "/answers.shard-1-of-2.jsonl") + " " + Q(shards + "/answers.shard-0-of-2.jsonl"));
  ASSERT_EQ(m.exit_code, 0) << m.output;
  EXPECT_EQ(test::ReadFile(shards + "/answers.jsonl"), test::ReadFile(whole + "/answers.jsonl"));
  EXPECT_EQ(JsonLines(shards + "/timings.jsonl").size(), 6u);
  // Rerunning eval on the merged folder scores it without asking anything again.
  auto s = Cli(GqaRun(shards, "--method ficoco-v --keep 8"));
  ASSERT_EQ(s.exit_code, 0) << s.output;
  const json a = json::parse(test::ReadFile(shards + "/score.json")), b = json::parse(test::ReadFile(whole + "/score.json"));
  for (const char* k : {"name", "value", "details", "questions", "answered"}) EXPECT_EQ(a["score"][k], b["score"][k]) << k;
  EXPECT_EQ(a["score"]["problems"].size(), b["score"]["problems"].size());
  EXPECT_EQ(a["llm_prefill_tflops_mean"], b["llm_prefill_tflops_mean"]);
  EXPECT_EQ(a["image_tokens_mean"], 8.0);
}

struct FormatCase {
  const char* bench;
  const char* questions;
  const char* annotations;  // "" = none needed
  int questions_count;
  bool scored;
};

TEST(EvalCli, EveryFormatRunsEndToEnd) {
  const FormatCase cases[] = {
      {"gqa", "gqa_questions.jsonl", "gqa_annotations.json", 7, true},
      {"pope", "pope_questions.jsonl", "pope_labels.jsonl", 4, true},
      {"textvqa", "textvqa_questions.jsonl", "textvqa_annotations.json", 2, true},
      {"sqa", "sqa_questions.json", "sqa_problems.json", 2, true},
      {"mmbench", "mmbench.tsv", "", 2, true},
      {"mme", "mme_questions.jsonl", "", 4, true},
      {"llava-bench", "llava_bench_questions.jsonl", "", 2, false},
  };
  for (const FormatCase& c : cases) {
    SCOPED_TRACE(c.bench);
    const std::string out = test::MakeTempDir(std::string("eval-") + c.bench);
    std::string cmd = EvalBase(c.bench, Data(c.questions)) + " --out " + Q(out) + " --max-tokens 4";
    if (*c.annotations) cmd += " --annotations " + Q(Data(c.annotations));
    auto r = Cli(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto answers = JsonLines(out + "/answers.jsonl");
    EXPECT_EQ(static_cast<int>(answers.size()), c.questions_count);
    int errors = 0;
    for (const json& a : answers) {
      if (a["metadata"].contains("error")) {
        ++errors;
        continue;
      }
      EXPECT_LE(a["metadata"]["new_tokens"].get<int>(), 4);
    }
    EXPECT_EQ(errors, c.bench == std::string("gqa") ? 1 : 0);  // gqa's sample has one missing image
    const json s = json::parse(test::ReadFile(out + "/score.json"));
    EXPECT_EQ(s["score"].is_object(), c.scored) << s.dump(2);
    if (c.scored) {
      EXPECT_EQ(s["score"]["questions"], c.questions_count) << s.dump(2);
      EXPECT_GE(s["score"]["value"].get<double>(), 0.0);
    } else {
      EXPECT_NE(s["not_scored"].get<std::string>().find("judge"), std::string::npos);
    }
  }
}

// The eval-metrics sample files (tests/data/eval/, written for the scorer tests) run
// end to end too: their image names are pointed at the fixture photo in a temp folder.
TEST(EvalCli, ScorerSamplesRunEndToEnd) {
  const std::string data = test::SourceDir() + "/tests/data/eval/";
  const FormatCase cases[] = {
      {"gqa", "gqa_questions.jsonl", "gqa_annotations.json", 0, true},
      {"pope", "pope_questions.jsonl", "coco_pope_random.json,coco_pope_adversarial.json", 0, true},
      {"textvqa", "textvqa_questions.jsonl", "textvqa_annotations.json", 0, true},
      {"vizwiz", "vizwiz_questions.jsonl", "vizwiz_annotations.json", 0, true},
      {"vqav2", "vqav2_questions.jsonl", "vqav2_annotations.json", 0, true},
      {"sqa", "sqa_questions.json", "sqa_problems.json", 0, true},
      {"mme", "mme_questions.jsonl", "", 0, true},
      {"mmbench", "mmbench.tsv", "", 0, true},
      {"llava-bench", "llava_bench_questions.jsonl", "", 0, false},
  };
  for (const FormatCase& c : cases) {
    SCOPED_TRACE(c.bench);
    const eval::QuestionSet qs = eval::LoadQuestions(c.bench, data + c.questions);
    ASSERT_FALSE(qs.questions.empty());
    const std::string root = test::MakeTempDir(std::string("eval-samples-") + c.bench);
    for (const eval::Question& q : qs.questions) {
      if (q.image.empty()) continue;
      const fs::path link = fs::path(root) / "images" / q.image;
      fs::create_directories(link.parent_path());
      if (!fs::exists(link)) fs::create_symlink(test::LlavaTinyDir() + "/images/grace_hopper.png", link);
    }
    std::string annotations;
    for (std::string rest = c.annotations; !rest.empty();) {
      const size_t comma = rest.find(',');
      annotations += (annotations.empty() ? "" : ",") + data + rest.substr(0, comma);
      rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    }
    std::string cmd = "eval --model " + Q(test::LlavaTinyDir()) + " --tokenizer " +
                      Q(test::LlamaTokenizerDir() + "/tokenizer.model") + " --images " + Q(root + "/images") +
                      " --compute f32 --threads 1 --max-tokens 3 --bench " + c.bench + " --questions " +
                      Q(data + c.questions) + " --out " + Q(root + "/out");
    if (!annotations.empty()) cmd += " --annotations " + Q(annotations);
    auto r = Cli(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const json s = json::parse(test::ReadFile(root + "/out/score.json"));
    EXPECT_EQ(s["answered"], qs.questions.size());
    EXPECT_EQ(s["errors"], 0);
    EXPECT_EQ(s["score"].is_object(), c.scored) << s.dump(2);
  }
}

TEST(EvalCli, BadInputsFailClearly) {
  const std::string out = test::MakeTempDir("eval-bad");
  auto r = Cli(GqaRun(out, "--shard 2/2"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--shard '2/2'"), std::string::npos) << r.output;
  r = Cli(EvalBase("nonsense-bench", Data("gqa_questions.jsonl")) + " --out " + Q(out));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("nonsense-bench"), std::string::npos) << r.output;
  r = Cli(EvalBase("gqa", Data("no_such_file.jsonl")) + " --out " + Q(out));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no_such_file.jsonl"), std::string::npos) << r.output;
  r = Cli(GqaRun(out, "--method ficoco-v"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("needs a budget"), std::string::npos) << r.output;
  r = Cli(GqaRun(out, "--method ficoco-v --keep 99"));  // more than the 16 image tokens
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("question 20001"), std::string::npos) << r.output;
}

TEST(EvalCli, ReportComparesRunsWithAPlot) {
  const std::string root = test::MakeTempDir("eval-report");
  ASSERT_EQ(Cli(GqaRun(root + "/none", "--max-tokens 2")).exit_code, 0);
  ASSERT_EQ(Cli(GqaRun(root + "/v8", "--max-tokens 2 --method ficoco-v --keep 8")).exit_code, 0);
  ASSERT_EQ(Cli(GqaRun(root + "/v4", "--max-tokens 2 --method ficoco-v --keep 4")).exit_code, 0);
  auto r = Cli("eval-report --out " + Q(root + "/cmp") + " " + Q(root + "/none") + " " + Q(root + "/v8") + " " + Q(root + "/v4"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string md = test::ReadFile(root + "/cmp/report.md");
  EXPECT_NE(md.find("## gqa"), std::string::npos) << md;
  EXPECT_NE(md.find("| ficoco-v | keep 8 | 8.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ficoco-v | keep 4 | 4.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| none | - | 16.0 |"), std::string::npos) << md;
  // keep 8 comes before keep 4 (largest budget first), none first of all.
  EXPECT_LT(md.find("| none |"), md.find("keep 8"));
  EXPECT_LT(md.find("keep 8"), md.find("keep 4"));
  const std::string png = test::ReadFile(root + "/cmp/gqa.png");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  auto bad = Cli("eval-report --out " + Q(root + "/cmp2") + " " + Q(root + "/nowhere"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("nowhere/score.json"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace ficoco
