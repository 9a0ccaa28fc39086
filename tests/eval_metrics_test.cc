// The official metrics on hand-computed cases: VQA answer normalisation and accuracy,
// POPE parsing and F1, MME acc/acc+, ScienceQA and MMBench letters, GQA exact match;
// then ScoreAnswers on the sample files of tests/data/eval with every expected number
// worked out by hand in the comments.
#include <gtest/gtest.h>

#include "eval/benchmark.h"
#include "eval/metrics/choice_letter.h"
#include "eval/metrics/vqa_answer.h"
#include "eval/metrics/yes_no.h"
#include "test_support.h"

namespace ficoco::eval {
namespace {

std::string Data(const std::string& name) { return test::SourceDir() + "/tests/data/eval/" + name; }

ScoreResult Score(const std::string& bench, const std::string& answers, const std::string& annotations,
                  const std::string& questions = "") {
  return ScoreAnswers(bench, ReadAnswers(Data(answers)), annotations.empty() ? "" : Data(annotations),
                      questions.empty() ? "" : Data(questions));
}

std::vector<std::string> Repeat(std::initializer_list<std::pair<const char*, int>> parts) {
  std::vector<std::string> out;
  for (const auto& [s, n] : parts) out.insert(out.end(), n, s);
  return out;
}

TEST(VqaNormalize, NumbersArticlesAndPeriods) {
  EXPECT_EQ(EvalAiNormalize("Two dogs."), "2 dogs");
  EXPECT_EQ(EvalAiNormalize("2 dogs"), "2 dogs");
  EXPECT_EQ(EvalAiNormalize("a bottle"), "bottle");
  EXPECT_EQ(EvalAiNormalize("The Bottle!"), "bottle");
  EXPECT_EQ(EvalAiNormalize("none"), "0");
  EXPECT_EQ(EvalAiNormalize("Ten"), "10");
  EXPECT_EQ(EvalAiNormalize("eleven"), "eleven");
  EXPECT_EQ(EvalAiNormalize("3.5"), "3.5");   // a period before a digit stays
  EXPECT_EQ(EvalAiNormalize("3.5."), "3.5");  // the final one goes
  EXPECT_EQ(EvalAiNormalize("e.g."), "eg");
}

TEST(VqaNormalize, CommasApostrophesContractions) {
  EXPECT_EQ(EvalAiNormalize("1,000"), "1000");        // EvalAI deletes every comma first
  EXPECT_EQ(EvalAiNormalize("it's"), "it 's");        // "'s" is split off
  EXPECT_EQ(EvalAiNormalize("Dont"), "don't");        // contraction table
  EXPECT_EQ(EvalAiNormalize("its"), "its");           // not in the table
  EXPECT_EQ(EvalAiNormalize("What's up?"), "what 's up");
  // Server-side punctuation rule alone: digit-comma-digit deletes all punctuation,
  // a mark touching a space is deleted, otherwise it becomes a space.
  EXPECT_EQ(VqaProcessPunctuation("1,000", false), "1000");
  EXPECT_EQ(VqaProcessPunctuation("a,b", false), "a b");
  EXPECT_EQ(VqaProcessPunctuation("red, white", false), "red white");
  EXPECT_EQ(VqaProcessPunctuation("t-shirt"), "t shirt");
  EXPECT_EQ(VqaProcessPunctuation("well - known"), "well  known");
  EXPECT_EQ(VqaProcessPunctuation("it's"), "it's");
  EXPECT_EQ(VqaProcessDigitArticle("an  Apple  a day"), "apple day");
}

TEST(VqaNormalize, AtMost32PeriodsRemoved) {
  // The evaluators pass re.UNICODE (= 32) as re.sub's count.
  EXPECT_EQ(VqaProcessPunctuation(std::string(33, '.')), ".");
  EXPECT_EQ(VqaProcessPunctuation(std::string(32, '.')), "");
}

TEST(VqaAccuracy, LeaveOneOutAverages) {
  // 10 humans, 2 say "x": each of those sees 1 other match (1/3), the 8 others see 2 (2/3).
  EXPECT_NEAR(LeaveOneOutAccuracy("x", Repeat({{"x", 2}, {"y", 8}})), (2 * 1.0 / 3 + 8 * 2.0 / 3) / 10, 1e-12);
  EXPECT_NEAR(LeaveOneOutAccuracy("x", Repeat({{"x", 3}, {"y", 7}})), (3 * 2.0 / 3 + 7) / 10, 1e-12);  // 0.9
  EXPECT_DOUBLE_EQ(LeaveOneOutAccuracy("x", Repeat({{"x", 4}, {"y", 6}})), 1.0);
  EXPECT_DOUBLE_EQ(LeaveOneOutAccuracy("z", Repeat({{"x", 10}})), 0.0);
}

TEST(VqaAccuracy, ServerRulesForHumanAnswers) {
  // Non-unanimous humans get the punctuation rule: "1,000" -> "1000" matches.
  EXPECT_DOUBLE_EQ(VqaServerAccuracy("1,000", Repeat({{"1,000", 3}, {"1000", 7}})), 1.0);
  // Unanimous humans are left alone: the prediction (commas removed) no longer matches.
  EXPECT_DOUBLE_EQ(VqaServerAccuracy("1,000", Repeat({{"1,000", 10}})), 0.0);
  EXPECT_NEAR(VqaServerAccuracy("Two dogs.", Repeat({{"2 dogs", 2}, {"dogs", 8}})), 0.6, 1e-12);
  // TextVQA normalises the humans too: "It's" matches "it's".
  EXPECT_NEAR(TextVqaAccuracy("It's", Repeat({{"it's", 2}, {"its", 8}})), 0.6, 1e-12);
}

TEST(YesNo, PopeParsing) {
  EXPECT_TRUE(PopeSaysYes("Yes, there is a dog."));
  EXPECT_FALSE(PopeSaysYes("No."));
  EXPECT_FALSE(PopeSaysYes("There is not a cat."));
  EXPECT_FALSE(PopeSaysYes("no, none"));
  EXPECT_TRUE(PopeSaysYes("I don't think so. No."));  // only the first sentence counts
  EXPECT_TRUE(PopeSaysYes("Nope"));                    // not one of the words
  EXPECT_TRUE(PopeSaysYes("Well,no"));                 // the comma is deleted, not split on: "Wellno"
  EXPECT_FALSE(PopeSaysYes("Well, no"));
  EXPECT_TRUE(PopeSaysYes(""));
}

TEST(YesNo, BinaryMetrics) {
  BinaryCounts c;  // TP 2, FP 2, TN 0, FN 0
  c.Add(true, true);
  c.Add(true, true);
  c.Add(true, false);
  c.Add(true, false);
  EXPECT_DOUBLE_EQ(c.accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(c.precision(), 0.5);
  EXPECT_DOUBLE_EQ(c.recall(), 1.0);
  EXPECT_NEAR(c.f1(), 2 * 0.5 / 1.5, 1e-12);
  EXPECT_DOUBLE_EQ(c.yes_ratio(), 1.0);
  EXPECT_DOUBLE_EQ(BinaryCounts{}.f1(), 0.0);  // no division by zero
}

TEST(YesNo, MmeParsing) {
  EXPECT_EQ(ParseMmeReply("Yes"), MmeReply::Yes);
  EXPECT_EQ(ParseMmeReply("No, there is no cat."), MmeReply::No);
  EXPECT_EQ(ParseMmeReply("Not sure"), MmeReply::No);  // "no" within the first four characters
  EXPECT_EQ(ParseMmeReply("yes."), MmeReply::Yes);
  EXPECT_EQ(ParseMmeReply("The output is 3"), MmeReply::Other);
  EXPECT_EQ(ParseMmeReply("I see no cat"), MmeReply::Other);
}

TEST(Choice, ScienceQaLetters) {
  EXPECT_EQ(SqaChoiceIndex("B", 2), 1);
  EXPECT_EQ(SqaChoiceIndex("A. cat", 2), 0);
  EXPECT_EQ(SqaChoiceIndex("The answer is C.", 3), 2);
  EXPECT_EQ(SqaChoiceIndex("Because ... The answer is B!", 3), 1);
  EXPECT_EQ(SqaChoiceIndex("The answer is B", 3), -1);  // the pattern needs one more character
  EXPECT_EQ(SqaChoiceIndex("The answer is A. The answer is B.", 3), -1);  // two matches
  EXPECT_EQ(SqaChoiceIndex("C", 2), -1);                 // not an option of this question
  EXPECT_EQ(SqaChoiceIndex(" B", 2), -1);                // not exactly a letter
  EXPECT_EQ(SqaChoiceIndex("I think it is the second one", 2), -1);
}

TEST(Choice, MmbenchLetters) {
  const std::vector<std::string> opts = {"red", "blue", "green"};
  EXPECT_EQ(MmbenchChoiceIndex("B", opts), 1);
  EXPECT_EQ(MmbenchChoiceIndex(" (C) ", opts), 2);
  EXPECT_EQ(MmbenchChoiceIndex("A. red", opts), 0);
  EXPECT_EQ(MmbenchChoiceIndex("The answer is C", opts), 2);
  EXPECT_EQ(MmbenchChoiceIndex("blue", opts), 1);
  EXPECT_EQ(MmbenchChoiceIndex("It looks green to me", opts), 2);
  EXPECT_EQ(MmbenchChoiceIndex("D", opts), -1);
  EXPECT_EQ(MmbenchChoiceIndex("A dog", opts), -1);  // the article, not option A
  EXPECT_EQ(MmbenchChoiceIndex("red or blue", opts), -1);
}

TEST(ScoreSamples, Vqav2) {
  // Q1 "Two dogs." vs 2x"2 dogs" 8x"dogs": 0.6. Q2 "1,000" vs 3x"1,000" 7x"1000": 1.
  // Q3 "1,000" vs 10x"1,000" (unanimous, unprocessed): 0. Q4 "a bottle" vs 3x"bottle": 0.9.
  // Q5 "3.5" vs 1x"3.5" 9x"35": 9 * (1/3) / 10 = 0.3. Q6 unanswered: 0.  Mean 2.8 / 6.
  const ScoreResult r = Score("vqav2", "vqav2_answers.jsonl", "vqav2_annotations.json");
  EXPECT_EQ(r.headline_name, "accuracy");
  EXPECT_NEAR(r.headline, 100 * 2.8 / 6, 1e-9);
  EXPECT_NEAR(r.details["categories"]["number"]["accuracy"].get<double>(), 100 * 1.9 / 4, 1e-9);
  EXPECT_NEAR(r.details["categories"]["other"]["accuracy"].get<double>(), 90, 1e-9);
  EXPECT_EQ(r.questions, 6);
  EXPECT_EQ(r.answered, 5);
  EXPECT_EQ(r.details["counts"]["unanswered"], 1);
}

TEST(ScoreSamples, Vqav2BadAnswersAreCountedNotDropped) {
  // Line 1 scores Q1 (0.6); line 2 malformed; line 3 duplicate of Q1; line 4 unknown id;
  // line 5 empty (Q4 wrong); line 6 no id; line 7 truncated. Q2, Q3, Q5, Q6 unanswered.
  const ScoreResult r = Score("vqav2", "vqav2_bad_answers.jsonl", "vqav2_annotations.json");
  EXPECT_NEAR(r.headline, 100 * 0.6 / 6, 1e-9);
  EXPECT_EQ(r.questions, 6);
  const auto& c = r.details["counts"];
  EXPECT_EQ(c["answered"], 2);
  EXPECT_EQ(c["unanswered"], 4);
  EXPECT_EQ(c["empty_answers"], 1);
  EXPECT_EQ(c["unknown_ids"], 1);
  EXPECT_EQ(c["duplicate_answers"], 1);
  EXPECT_EQ(c["answer_file_problems"], 3);
  std::set<int> lines;
  for (const Problem& p : r.problems) lines.insert(p.line);
  for (int l : {2, 3, 4, 5, 6, 7}) EXPECT_TRUE(lines.count(l)) << "no problem reported for line " << l;
}

TEST(ScoreSamples, VizwizByImage) {
  // Q0 "Unanswerable" vs 6x"unanswerable": 1. Q1 "Soup can." vs 2x"soup can" 8x"soup": 0.6.
  const ScoreResult r = Score("vizwiz", "vizwiz_answers.jsonl", "vizwiz_annotations.json", "vizwiz_questions.jsonl");
  EXPECT_NEAR(r.headline, 80, 1e-9);
  EXPECT_NEAR(r.details["categories"]["unanswerable"]["accuracy"].get<double>(), 100, 1e-9);
  test::ExpectError([] { Score("vizwiz", "vizwiz_answers.jsonl", "vizwiz_annotations.json"); }, {"--questions"});
}

TEST(ScoreSamples, TextVqaBothIdConventions) {
  // 301 "It's" vs 2x"it's" 8x"its": 0.6. 302 "STOP": 1. The two "img3" answers are LLaVA's
  // convention (image id + question text): "Acme" vs 3x"acme" 7x"acme inc": 0.9; "blue" vs red: 0.
  const ScoreResult r = Score("textvqa", "textvqa_answers.jsonl", "textvqa_annotations.json");
  EXPECT_NEAR(r.headline, 100 * 2.5 / 4, 1e-9);
  EXPECT_EQ(r.answered, 4);
  const ScoreResult q = Score("textvqa", "textvqa_answers.jsonl", "textvqa_annotations.json", "textvqa_questions.jsonl");
  EXPECT_NEAR(q.headline, 100 * 2.5 / 4, 1e-9);
  EXPECT_EQ(q.questions, 4);
}

TEST(ScoreSamples, GqaExactMatch) {
  // "Yes." -> "yes" right; "left side" wrong; "Blue" -> "blue" right.
  const ScoreResult r = Score("gqa", "gqa_answers.jsonl", "gqa_annotations.json", "gqa_questions.jsonl");
  EXPECT_NEAR(r.headline, 200.0 / 3, 1e-9);
  EXPECT_NEAR(r.details["categories"]["verify"]["accuracy"].get<double>(), 100, 1e-9);
  EXPECT_NEAR(r.details["categories"]["query"]["accuracy"].get<double>(), 50, 1e-9);
}

TEST(ScoreSamples, PopePerSplit) {
  // random: TP 1 (q1), TN 1 (q2), FN 1 (q3 "not"), FP 1 (q4): all metrics 0.5.
  // adversarial: q5 TP, q6 FP (first sentence has no "no"), q7 TP ("Nope"), q8 unanswered
  // -> the wrong reply (FP): TP 2 FP 2: acc .5, precision .5, recall 1, F1 2/3, yes-ratio 1.
  for (const std::string& questions : {std::string("pope_questions.jsonl"), std::string()}) {
    const ScoreResult r = ScoreAnswers("pope", ReadAnswers(Data("pope_answers.jsonl")),
                                       Data("coco_pope_random.json") + "," + Data("coco_pope_adversarial.json"),
                                       questions.empty() ? "" : Data(questions));
    EXPECT_EQ(r.headline_name, "f1");
    EXPECT_NEAR(r.headline, 100 * (0.5 + 2.0 / 3) / 2, 1e-9);
    const auto& adv = r.details["splits"]["adversarial"];
    EXPECT_EQ(adv["tp"], 2);
    EXPECT_EQ(adv["fp"], 2);
    EXPECT_NEAR(adv["recall"].get<double>(), 100, 1e-9);
    EXPECT_NEAR(adv["yes_ratio"].get<double>(), 100, 1e-9);
    EXPECT_NEAR(r.details["splits"]["random"]["f1"].get<double>(), 50, 1e-9);
    EXPECT_EQ(r.details["counts"]["unanswered"], 1);
  }
}

TEST(ScoreSamples, MmePerceptionAndCognition) {
  // existence: 3 of 4 right (img2's "Yes" to the bus is wrong) = 75; acc+ 1 of 2 images = 50 -> 125.
  // code_reasoning: "The output is 3" is neither yes nor no (wrong), "No" right: 50 + 0 -> 50.
  const ScoreResult r = Score("mme", "mme_answers.jsonl", "", "mme_questions.jsonl");
  EXPECT_EQ(r.headline_name, "perception");
  EXPECT_NEAR(r.headline, 125, 1e-9);
  EXPECT_NEAR(r.details["cognition"].get<double>(), 50, 1e-9);
  EXPECT_NEAR(r.details["subtasks"]["existence"]["acc_plus"].get<double>(), 50, 1e-9);
  EXPECT_EQ(r.details["subtasks"]["code_reasoning"]["other_replies"], 1);
  EXPECT_EQ(r.answered, 6);
}

TEST(ScoreSamples, ScienceQaImageSubset) {
  // p1 "B" right, p2 "A. a" right, p3 "The answer is C." right, p5 unparseable (wrong, counted).
  // All 4 test questions: 75; the 3 with an image: 2/3. p4 is a train question: not scored.
  for (const std::string& questions : {std::string("sqa_questions.json"), std::string()}) {
    const ScoreResult r = Score("sqa", "sqa_answers.jsonl", "sqa_problems.json", questions);
    EXPECT_EQ(r.headline_name, "img-accuracy");
    EXPECT_NEAR(r.headline, 200.0 / 3, 1e-9);
    EXPECT_NEAR(r.details["accuracy"].get<double>(), 75, 1e-9);
    EXPECT_EQ(r.details["unparsed_answers"], 1);
    EXPECT_EQ(r.questions, 4);
  }
}

TEST(ScoreSamples, MmbenchCircular) {
  // Originals 0 ("A") and 1 ("C. 3") right: single pass 100. Copies of 0: "The answer is C"
  // and "blue" (option text of B) right; copy 1000001 "A" wrong -> circular 1 of 2 = 50.
  const ScoreResult r = Score("mmbench", "mmbench_answers.jsonl", "mmbench.tsv");
  EXPECT_EQ(r.headline_name, "circular-accuracy");
  EXPECT_NEAR(r.headline, 50, 1e-9);
  EXPECT_NEAR(r.details["single_pass_accuracy"].get<double>(), 100, 1e-9);
  EXPECT_EQ(r.details["circular_groups"], 2);
  EXPECT_EQ(r.questions, 5);
}

TEST(ScoreSamples, JudgedBenchmarksOnlyCount) {
  const ScoreResult r = Score("llava-bench", "llava_bench_answers.jsonl", "", "llava_bench_questions.jsonl");
  EXPECT_EQ(r.headline_name, "needs-judge");
  EXPECT_EQ(r.questions, 2);
  EXPECT_EQ(r.answered, 1);
  EXPECT_NE(r.ToMarkdown().find("judge"), std::string::npos);
}

TEST(ScoreSamples, MissingAnnotationsAreAnError) {
  test::ExpectError([] { Score("vqav2", "vqav2_answers.jsonl", ""); }, {"vqav2", "--annotations"});
  test::ExpectError([] { Score("gqa", "gqa_answers.jsonl", "no_such_file.json"); }, {"no_such_file.json"});
}

}  // namespace
}  // namespace ficoco::eval
