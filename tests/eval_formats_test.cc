// Every evaluation format parses: the sample files of tests/data/eval (questions in
// JSONL, ScienceQA JSON and MMBench TSV; answers JSONL), with prompts built as LLaVA
// builds them, problems reported with their lines, and `ficoco eval-score` end to end.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval/benchmark.h"
#include "eval/eval_text.h"
#include "eval/tsv.h"
#include "test_support.h"

namespace ficoco::eval {
namespace {

std::string Data(const std::string& name) { return test::SourceDir() + "/tests/data/eval/" + name; }
const std::string kShort = "\nAnswer the question using a single word or phrase.";

TEST(Benchmarks, TableAndLookup) {
  std::vector<std::string> names;
  for (const BenchmarkInfo& b : Benchmarks()) names.push_back(b.name);
  for (const char* n : {"sqa", "textvqa", "pope", "gqa", "vqav2", "vizwiz", "mme", "mmbench", "mmbench-cn",
                        "llava-bench", "mm-vet"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_TRUE(FindBenchmark("mm-vet").needs_judge);
  EXPECT_FALSE(FindBenchmark("pope").needs_judge);
  test::ExpectError([] { FindBenchmark("vqa3"); }, {"unknown benchmark 'vqa3'", "gqa", "mmbench"});
}

TEST(Questions, JsonlSuffixAddedOnlyWhenAbsent) {
  const QuestionSet s = LoadQuestions("vqav2", Data("vqav2_questions.jsonl"));
  ASSERT_EQ(s.questions.size(), 6u);
  EXPECT_TRUE(s.problems.empty());
  EXPECT_EQ(s.questions[0].prompt, "How many dogs are there?" + kShort);  // had it already
  EXPECT_EQ(s.questions[1].prompt, "How much does it cost?" + kShort);    // appended
  EXPECT_EQ(s.questions[0].id, 1);
  EXPECT_EQ(s.questions[0].key, "1");
  EXPECT_EQ(s.questions[0].image, "val2014/COCO_val2014_000000000001.jpg");
  EXPECT_EQ(s.questions[5].line, 6);
}

TEST(Questions, EveryJsonlSample) {
  struct Case { const char* bench; const char* file; size_t n; };
  for (const Case& c : {Case{"vizwiz", "vizwiz_questions.jsonl", 2}, Case{"textvqa", "textvqa_questions.jsonl", 4},
                        Case{"gqa", "gqa_questions.jsonl", 3}, Case{"pope", "pope_questions.jsonl", 8},
                        Case{"mme", "mme_questions.jsonl", 6}, Case{"llava-bench", "llava_bench_questions.jsonl", 2}}) {
    const QuestionSet s = LoadQuestions(c.bench, Data(c.file));
    EXPECT_EQ(s.questions.size(), c.n) << c.file;
    EXPECT_TRUE(s.problems.empty()) << c.file << ": " << (s.problems.empty() ? "" : s.problems[0].message);
  }
  const QuestionSet v = LoadQuestions("vizwiz", Data("vizwiz_questions.jsonl"));
  EXPECT_EQ(v.questions[1].prompt,
            "What is in this can?\nWhen the provided information is insufficient, respond with 'Unanswerable'." + kShort);
  EXPECT_EQ(LoadQuestions("pope", Data("pope_questions.jsonl")).questions[4].category, "adversarial");
  EXPECT_EQ(LoadQuestions("llava-bench", Data("llava_bench_questions.jsonl")).questions[1].prompt,
            "Describe this photo in detail.");  // no suffix for judged benchmarks
  // MME and LLaVA's TextVQA share a question_id between an image's questions: not duplicates.
  const QuestionSet t = LoadQuestions("textvqa", Data("textvqa_questions.jsonl"));
  EXPECT_EQ(t.questions[2].key, "img3");
  EXPECT_EQ(t.questions[3].key, "img3");
}

TEST(Questions, ScienceQaConversations) {
  const QuestionSet s = LoadQuestions("sqa", Data("sqa_questions.json"));
  ASSERT_EQ(s.questions.size(), 4u);
  EXPECT_EQ(s.questions[0].key, "p1");
  EXPECT_EQ(s.questions[0].image, "p1/image.png");
  EXPECT_EQ(s.questions[0].prompt,
            "Context: A photo of a pet.\nWhich animal is shown?\nA. cat\nB. dog\n"
            "Answer with the option's letter from the given choices directly.");
  EXPECT_EQ(s.questions[1].image, "");  // text-only question
  EXPECT_TRUE(EndsWith(s.questions[1].prompt, "C. c\nAnswer with the option's letter from the given choices directly."));
  EXPECT_EQ(s.questions[1].prompt.find("directly.\nAnswer"), std::string::npos);  // not doubled
}

TEST(Questions, MmbenchTsv) {
  const QuestionSet s = LoadQuestions("mmbench", Data("mmbench.tsv"));
  ASSERT_EQ(s.questions.size(), 5u);
  EXPECT_TRUE(s.problems.empty());
  const Question& q = s.questions[1];
  EXPECT_EQ(q.id, 1);
  EXPECT_EQ(q.prompt,
            "Look at the table.\nHow many \"apples\" are there?\nA. 1\nB. 2\nC. 3\nD. 4\n"
            "Answer with the option's letter from the given choices directly.");
  EXPECT_EQ(q.image, "images/1.png");
  EXPECT_EQ(q.category, "count");
  EXPECT_EQ(q.line, 3);
  EXPECT_EQ(q.extra["option_char"], nlohmann::json({"A", "B", "C", "D"}));
  EXPECT_EQ(s.questions[0].extra["options"], nlohmann::json({"blue", "green", "red"}));  // empty D and "nan" hint dropped
  EXPECT_EQ(s.questions[0].prompt.substr(0, 23), "What color is the sky?\n");
  const QuestionSet cn = LoadQuestions("mmbench-cn", Data("mmbench.tsv"));
  EXPECT_TRUE(EndsWith(cn.questions[0].prompt, "\n请直接回答选项字母。"));
}

TEST(Questions, BadLinesAreProblemsWithLineNumbers) {
  const std::string dir = test::MakeTempDir("evalq");
  test::WriteFile(dir + "/q.jsonl",
                  "{\"question_id\": 1, \"text\": \"a?\"}\n"
                  "not json\n"
                  "\n"
                  "{\"question_id\": 1, \"text\": \"again\"}\n"
                  "{\"text\": \"no id\"}\n"
                  "{\"question_id\": 2}\n"
                  "[1, 2]\n"
                  "{\"question_id\": 3, \"text\": \"b?\", \"image\": 5}\n"
                  "{\"question_id\": 4, \"text\": \"c?\"}\n"
                  "{\"question_id\": 5, \"te");
  const QuestionSet s = LoadQuestions("gqa", dir + "/q.jsonl");
  ASSERT_EQ(s.questions.size(), 2u);
  EXPECT_EQ(s.questions[1].key, "4");
  std::vector<int> lines;
  for (const Problem& p : s.problems) lines.push_back(p.line);
  EXPECT_EQ(lines, (std::vector<int>{2, 4, 5, 6, 7, 8, 10}));
  EXPECT_NE(s.problems[1].message.find("duplicate"), std::string::npos);
  EXPECT_NE(s.problems.back().message.find("truncated"), std::string::npos);
  EXPECT_EQ(s.problems[0].file, dir + "/q.jsonl");
  test::ExpectError([&] { LoadQuestions("gqa", dir + "/missing.jsonl"); }, {"missing.jsonl"});
  test::ExpectError([&] { LoadQuestions("sqa", dir + "/q.jsonl"); }, {"q.jsonl", "JSON"});
}

TEST(Tsv, QuotesTabsAndNewlines) {
  const std::string dir = test::MakeTempDir("tsv");
  test::WriteFile(dir + "/t.tsv", "a\tb\r\n\"x\ty\"\t\"line1\nline2\"\n3\t\"say \"\"hi\"\"\"\n");
  const TsvTable t = ReadTsv(dir + "/t.tsv");
  EXPECT_EQ(t.header, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (std::vector<std::string>{"x\ty", "line1\nline2"}));
  EXPECT_EQ(t.rows[1].line, 4);
  EXPECT_EQ(t.Get(t.rows[1], "b"), "say \"hi\"");
  test::WriteFile(dir + "/bad.tsv", "a\tb\n1\t\"open\n");
  test::ExpectError([&] { ReadTsv(dir + "/bad.tsv"); }, {"bad.tsv:2", "never closed"});
}

TEST(Questions, MmbenchBase64ImagesExtracted) {
  const std::string dir = test::MakeTempDir("mmb64");
  const std::string tsv = dir + "/mmb.tsv";
  test::WriteFile(tsv,
                  "index\tquestion\thint\tA\tB\tanswer\tcategory\timage\n"
                  "5\tWhich?\tnan\tup\tdown\tA\tspatial\tiVBORw0KGgpIRUxMTw==\n"
                  "6\tWhich?\tnan\tup\tdown\tB\tspatial\t/9j/4EpGSUY=\n");
  const QuestionSet s = LoadQuestions("mmbench", tsv);
  ASSERT_EQ(s.questions.size(), 2u);
  EXPECT_EQ(s.questions[0].image, "5.png");
  EXPECT_EQ(s.questions[1].image, "6.jpg");
  EXPECT_EQ(ExtractTsvImages(tsv, dir + "/img"), 2);
  EXPECT_EQ(test::ReadFile(dir + "/img/5.png"), std::string("\x89PNG\r\n\x1a\nHELLO"));
  EXPECT_EQ(test::ReadFile(dir + "/img/6.jpg"), std::string("\xff\xd8\xff\xe0JFIF"));
  test::WriteFile(tsv, "index\tquestion\tA\tB\timage\n7\tq\ta\tb\tnot*base64\n");
  test::ExpectError([&] { ExtractTsvImages(tsv, dir + "/img"); }, {"mmb.tsv:2", "index 7", "base64"});
}

TEST(Answers, ReadAndWriteBack) {
  const AnswerSet s = ReadAnswers(Data("mmbench_answers.jsonl"));
  ASSERT_EQ(s.answers.size(), 5u);
  EXPECT_TRUE(s.problems.empty());
  const Answer& a = s.answers[0];
  EXPECT_EQ(a.key, "0");
  EXPECT_EQ(a.text, "A");
  EXPECT_EQ(a.answer_id, "b0");
  EXPECT_EQ(a.extra["option_char"], nlohmann::json({"A", "B", "C"}));
  const nlohmann::json j = AnswerToJson(a);
  for (const char* k : {"question_id", "prompt", "text", "answer_id", "model_id", "metadata", "round_id", "options"})
    EXPECT_TRUE(j.contains(k)) << k;
  Answer fresh;
  fresh.id = "q7";
  fresh.key = "q7";
  fresh.text = "yes";
  const std::string id1 = AnswerToJson(fresh)["answer_id"].get<std::string>();
  EXPECT_EQ(id1, AnswerToJson(fresh)["answer_id"].get<std::string>());  // deterministic
  fresh.text = "no";
  EXPECT_NE(id1, AnswerToJson(fresh)["answer_id"].get<std::string>());
}

TEST(Answers, ProblemsKeepTheirLines) {
  const AnswerSet s = ReadAnswers(Data("vqav2_bad_answers.jsonl"));
  EXPECT_EQ(s.answers.size(), 4u);  // lines 1, 3, 4, 5 (duplicates are the scorer's business)
  ASSERT_EQ(s.problems.size(), 3u);
  EXPECT_EQ(s.problems[0].line, 2);
  EXPECT_EQ(s.problems[1].line, 6);
  EXPECT_EQ(s.problems[2].line, 7);
  EXPECT_NE(s.problems[2].message.find("truncated"), std::string::npos);
  test::ExpectError([] { ReadAnswers(Data("no_such_answers.jsonl")); }, {"no_such_answers.jsonl"});
}

test::CommandResult Cli(const std::string& args) { return test::RunCommand(test::CliPath() + " " + args + " 2>&1"); }

TEST(EvalScoreCli, MarkdownAndJson) {
  const std::string out = test::MakeTempDir("score") + "/pope.json";
  const auto r = Cli("eval-score --bench pope --answers " + Data("pope_answers.jsonl") + " --annotations " +
                     Data("coco_pope_random.json") + "," + Data("coco_pope_adversarial.json") + " --questions " +
                     Data("pope_questions.jsonl") + " --json " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("**f1: 58.33**"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| adversarial | 4 | 50.00 | 50.00 | 100.00 | 66.67 | 100.00 |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no answer"), std::string::npos) << r.output;  // q8 listed as a problem
  const nlohmann::json j = nlohmann::json::parse(test::ReadFile(out));
  EXPECT_NEAR(j["headline"].get<double>(), 58.3333333, 1e-6);
  EXPECT_EQ(j["details"]["counts"]["unanswered"], 1);
  EXPECT_EQ(j["problems"].size(), 1u);
}

TEST(EvalScoreCli, ClearErrors) {
  auto r = Cli("eval-score --bench nope --answers " + Data("pope_answers.jsonl"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown benchmark 'nope'"), std::string::npos) << r.output;
  r = Cli("eval-score --bench gqa --answers " + Data("gqa_answers.jsonl"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("gqa needs --annotations"), std::string::npos) << r.output;
  r = Cli("eval-score --help");
  for (const char* opt : {"--bench", "--answers", "--annotations", "--questions", "--json", "mm-vet"})
    EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
  r = Cli("eval-images --help");
  for (const char* opt : {"--tsv", "--out"}) EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
  r = Cli("eval-images --tsv " + Data("mmbench.tsv") + " --out " + test::MakeTempDir("noimg"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no 'image' column"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ficoco::eval
