// Multiple-choice scorers: ScienceQA-IMG and MMBench (single pass and circular).
#include <map>
#include <unordered_map>

#include "base/error.h"
#include "eval/eval_text.h"
#include "eval/metrics/choice_letter.h"
#include "eval/score_benchmarks.h"
#include "eval/score_common.h"
#include "eval/tsv.h"

namespace ficoco::eval {

ScoreResult ScoreSqa(const AnswerSet& answers, const std::string& annotations, const std::string& questions) {
  if (annotations.empty()) Fail("sqa needs --annotations: ", FindBenchmark("sqa").annotations);
  const nlohmann::json doc = ReadJsonFile(annotations);
  if (!doc.is_object()) Fail(annotations, ": expected {\"<id>\": {answer, choices, ...}} (ScienceQA problems.json)");
  std::vector<Problem> problems;
  const QuestionFilter f = LoadFilter("sqa", questions, problems);
  std::unordered_map<std::string, const Question*> asked;
  if (f.questions)
    for (const Question& q : f.questions->questions) asked[q.key] = &q;
  bool has_split = false;
  for (auto e = doc.begin(); e != doc.end(); ++e) has_split |= e.value().is_object() && e.value().contains("split");
  struct Item {
    std::string key, subject;
    int answer = 0, choices = 0;
    bool image = false;
  };
  std::vector<Item> items;
  int rec = 0;
  for (auto e = doc.begin(); e != doc.end(); ++e) {
    ++rec;
    const auto& p = e.value();
    if (f.questions ? !asked.count(e.key()) : (has_split && StringField(p, "split") != "test")) continue;
    if (!p.is_object() || !p.contains("answer") || !p["answer"].is_number_integer() || !p.contains("choices") ||
        !p["choices"].is_array() || p["answer"].get<int>() < 0 || p["answer"].get<int>() >= static_cast<int>(p["choices"].size())) {
      problems.push_back({annotations, rec, "problem " + e.key() + ": needs \"choices\" and an \"answer\" index into them"});
      continue;
    }
    Item it{e.key(), StringField(p, "subject"), p["answer"].get<int>(), static_cast<int>(p["choices"].size())};
    it.image = f.questions ? !asked[e.key()]->image.empty() : p.contains("image") && p["image"].is_string();
    items.push_back(std::move(it));
  }
  if (f.questions)
    for (const Question& q : f.questions->questions)
      if (!doc.contains(q.key)) problems.push_back({f.path, q.line, "id " + q.key + " is not in " + annotations + " (not scored)"});
  std::vector<std::string> keys;
  for (const Item& it : items) keys.push_back(it.key);
  const MatchResult m = MatchAnswers(keys, answers, [](const Answer& a) { return a.key; }, problems);
  long long correct = 0, img_n = 0, img_correct = 0, unparsed = 0;
  CategoryMeans subjects;
  for (size_t i = 0; i < items.size(); ++i) {
    const Answer* a = m.answer[i];
    // Without a questions file, LLaVA's own test: the prompt it wrote holds "<image>".
    const bool image = items[i].image || (a != nullptr && a->prompt.find("<image>") != std::string::npos);
    const int chosen = Usable(a) ? SqaChoiceIndex(a->text, items[i].choices) : -1;
    if (Usable(a) && chosen < 0) {
      ++unparsed;
      problems.push_back({answers.path, a->line, "no option letter in the answer to " + a->key + " (scored wrong)"});
    }
    const bool ok = chosen == items[i].answer;
    correct += ok;
    img_n += image;
    img_correct += image && ok;
    subjects.Add(items[i].subject, ok);
  }
  ScoreResult r;
  r.bench = "sqa";
  r.headline_name = img_n > 0 ? "img-accuracy" : "accuracy";
  r.headline = img_n > 0 ? Percent(img_correct, img_n) : Percent(correct, items.size());
  r.details["accuracy"] = Percent(correct, items.size());
  r.details["img_accuracy"] = Percent(img_correct, img_n);
  r.details["img_questions"] = img_n;
  r.details["unparsed_answers"] = unparsed;
  r.details["subjects"] = subjects.ToJson();
  r.details["tables"] = nlohmann::json::array({subjects.ToTable("By subject (all questions)")});
  r.problems = std::move(problems);
  FinishResult(r, m, answers, items.size());
  return r;
}

ScoreResult ScoreMmbench(const std::string& bench, const AnswerSet& answers, const std::string& annotations,
                         const std::string& questions) {
  const std::string truth = annotations.empty() ? questions : annotations;
  if (truth.empty()) Fail(bench, " needs --annotations (or --questions): the MMBench TSV with its answer column");
  std::vector<Problem> problems;
  // The TSV's rows are read as questions (same prompt/option rules), answers from its column.
  QuestionSet rows = LoadQuestions(bench, truth);
  for (const Problem& p : rows.problems) problems.push_back(p);
  const TsvTable table = ReadTsv(truth);
  if (table.Column("answer") < 0) Fail(truth, ": no 'answer' column (the ground truth of MMBench)");
  std::unordered_map<int, std::string> answer_at_line;
  std::unordered_map<int, std::string> l2_at_line;
  for (const TsvRow& row : table.rows) {
    answer_at_line[row.line] = TrimSpace(table.Get(row, "answer"));
    l2_at_line[row.line] = table.Get(row, "l2-category");
  }
  std::set<std::string> asked;
  if (!annotations.empty() && !questions.empty())
    for (const Question& q : LoadQuestions(bench, questions).questions) asked.insert(q.key);
  struct Item {
    const Question* q;
    int answer;
  };
  std::vector<Item> items;
  for (const Question& q : rows.questions) {
    if (!asked.empty() && !asked.count(q.key)) continue;
    const std::string letter = answer_at_line[q.line];
    const int n = static_cast<int>(q.extra["options"].size());
    if (letter.size() != 1 || letter[0] < 'A' || letter[0] - 'A' >= n) {
      problems.push_back({truth, q.line, "index " + q.key + ": answer '" + letter + "' is not one of its options (not scored)"});
      continue;
    }
    items.push_back({&q, letter[0] - 'A'});
  }
  std::vector<std::string> keys;
  for (const Item& it : items) keys.push_back(it.q->key);
  const MatchResult m = MatchAnswers(keys, answers, [](const Answer& a) { return a.key; }, problems);
  // Circular copies share index mod 1e6; a question passes when all its copies do.
  std::map<std::string, std::pair<int, int>> groups;  // group -> (rows, correct)
  long long single_n = 0, single_correct = 0, unparsed = 0;
  CategoryMeans cats, l2;
  for (size_t i = 0; i < items.size(); ++i) {
    const Question& q = *items[i].q;
    const Answer* a = m.answer[i];
    std::vector<std::string> options = q.extra["options"].get<std::vector<std::string>>();
    const int chosen = Usable(a) ? MmbenchChoiceIndex(a->text, options) : -1;
    if (Usable(a) && chosen < 0) {
      ++unparsed;
      problems.push_back({answers.path, a->line, "no option in the answer to index " + a->key + " (scored wrong)"});
    }
    const bool ok = chosen == items[i].answer;
    const bool original = !q.id.is_number_integer() || q.id.get<long long>() < 1000000;
    std::string group = q.key;
    if (q.id.is_number_integer()) group = std::to_string(q.id.get<long long>() % 1000000);
    auto& g = groups[group];
    ++g.first;
    g.second += ok;
    if (original) {
      ++single_n;
      single_correct += ok;
      cats.Add(q.category, ok);
      l2.Add(l2_at_line[q.line], ok);
    }
  }
  long long circular_ok = 0;
  bool rotated = false;
  for (const auto& [name, g] : groups) {
    circular_ok += g.first == g.second;
    rotated |= g.first > 1;
  }
  ScoreResult r;
  r.bench = bench;
  r.details["single_pass_accuracy"] = Percent(single_correct, single_n);
  r.details["circular_accuracy"] = Percent(circular_ok, groups.size());
  r.details["circular_groups"] = groups.size();
  r.details["unparsed_answers"] = unparsed;
  r.headline_name = rotated ? "circular-accuracy" : "accuracy";
  r.headline = rotated ? Percent(circular_ok, groups.size()) : Percent(single_correct, single_n);
  r.details["categories"] = cats.ToJson();
  r.details["l2_categories"] = l2.ToJson();
  r.details["tables"] = nlohmann::json::array({cats.ToTable("By category (single pass)"), l2.ToTable("By l2-category (single pass)")});
  r.problems = std::move(problems);
  FinishResult(r, m, answers, items.size());
  return r;
}

}  // namespace ficoco::eval
