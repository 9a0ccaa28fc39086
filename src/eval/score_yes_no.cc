// Yes/no scorers: POPE (per-split binary metrics) and MME (acc + acc+ per subtask).
#include <filesystem>
#include <map>
#include <unordered_map>

#include "base/error.h"
#include "eval/eval_text.h"
#include "eval/metrics/yes_no.h"
#include "eval/score_benchmarks.h"
#include "eval/score_common.h"

namespace ficoco::eval {
namespace {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (std::string part = TrimSpace(s.substr(start, end - start)); !part.empty()) out.push_back(part);
    start = end + 1;
  }
  return out;
}

// The file stem after its last '_': "coco_pope_random.json" (LLaVA) or
// "pope_labels_random.jsonl" (MiniLLaVA) -> "random".
std::string SplitFromFileName(const std::string& path) {
  const std::string stem = std::filesystem::path(path).stem().string();
  const size_t cut = stem.rfind('_');
  return cut == std::string::npos || cut + 1 == stem.size() ? stem : stem.substr(cut + 1);
}

bool YesNo(const std::string& s, bool* yes) {
  const std::string t = LowerAscii(TrimSpace(s));
  if (t != "yes" && t != "no") return false;
  *yes = t == "yes";
  return true;
}

const std::vector<std::string> kPerception = {"existence", "count",     "position", "color",   "posters",
                                              "celebrity", "scene",     "landmark", "artwork", "OCR"};
const std::vector<std::string> kCognition = {"commonsense_reasoning", "numerical_calculation", "text_translation",
                                             "code_reasoning"};

}  // namespace

ScoreResult ScorePope(const AnswerSet& answers, const std::string& annotations, const std::string& questions) {
  if (annotations.empty()) Fail("pope needs --annotations: ", FindBenchmark("pope").annotations);
  std::vector<Problem> problems;
  const QuestionFilter f = LoadFilter("pope", questions, problems);
  std::unordered_map<std::string, std::string> split_of_question;
  if (f.questions)
    for (const Question& q : f.questions->questions) split_of_question[q.key] = q.category;
  std::vector<std::string> keys, splits;
  std::vector<bool> labels;
  std::unordered_map<std::string, std::string> where;
  for (const std::string& file : SplitComma(annotations)) {
    for (const TextLine& line : ReadLines(file)) {
      const std::optional<nlohmann::json> parsed = ParseObjectLine(line, file, problems);
      if (!parsed) continue;
      const nlohmann::json& j = *parsed;
      auto bad = [&](const std::string& m) { problems.push_back({file, line.number, m}); };
      bool yes = false;
      if (!j.contains("question_id") || !IsValidId(j["question_id"]) || !YesNo(StringField(j, "label"), &yes)) {
        bad("needs question_id and label \"yes\" or \"no\"");
        continue;
      }
      const std::string key = IdText(j["question_id"]);
      if (f.questions && !f.keys.count(key)) continue;  // not asked
      const std::string here = file + ":" + std::to_string(line.number);
      if (auto [it, fresh] = where.emplace(key, here); !fresh) {
        bad("duplicate label for question_id " + key + " (first at " + it->second + " kept)");
        continue;
      }
      std::string split = split_of_question.count(key) ? split_of_question[key] : StringField(j, "category");
      if (split.empty()) split = SplitFromFileName(file);
      keys.push_back(key);
      splits.push_back(split);
      labels.push_back(yes);
    }
  }
  if (f.questions)
    for (const Question& q : f.questions->questions)
      if (!where.count(q.key)) problems.push_back({f.path, q.line, "question_id " + q.key + " has no label (not scored)"});
  const MatchResult m = MatchAnswers(keys, answers, [](const Answer& a) { return a.key; }, problems);
  std::map<std::string, BinaryCounts> by_split;
  long long unusable = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    // Unanswered or empty: counted as the wrong reply (LLaVA's rule would call "" a yes).
    const bool usable = Usable(m.answer[i]);
    unusable += !usable;
    by_split[splits[i]].Add(usable ? PopeSaysYes(m.answer[i]->text) : !labels[i], labels[i]);
  }
  ScoreResult r;
  r.bench = "pope";
  r.headline_name = "f1";
  nlohmann::json table = Table("POPE per split (%)", {"split", "n", "accuracy", "precision", "recall", "f1", "yes-ratio"});
  nlohmann::json per = nlohmann::json::object();
  double f1_sum = 0, acc_sum = 0;
  for (const auto& [split, c] : by_split) {
    per[split] = {{"n", c.total()},  {"tp", c.tp}, {"fp", c.fp}, {"tn", c.tn}, {"fn", c.fn},
                  {"accuracy", 100 * c.accuracy()}, {"precision", 100 * c.precision()},
                  {"recall", 100 * c.recall()}, {"f1", 100 * c.f1()}, {"yes_ratio", 100 * c.yes_ratio()}};
    table["rows"].push_back({split, c.total(), 100 * c.accuracy(), 100 * c.precision(), 100 * c.recall(), 100 * c.f1(),
                             100 * c.yes_ratio()});
    f1_sum += c.f1();
    acc_sum += c.accuracy();
  }
  const double n = static_cast<double>(by_split.size());
  r.headline = n > 0 ? 100 * f1_sum / n : 0;  // the mean over splits, as LLaVA's tables report
  r.details["splits"] = per;
  r.details["f1_mean"] = r.headline;
  r.details["accuracy_mean"] = n > 0 ? 100 * acc_sum / n : 0;
  r.details["tables"] = nlohmann::json::array({table});
  r.problems = std::move(problems);
  FinishResult(r, m, answers, keys.size());
  return r;
}

ScoreResult ScoreMme(const AnswerSet& answers, const std::string& annotations, const std::string& questions) {
  const std::string truth = annotations.empty() ? questions : annotations;
  if (truth.empty()) Fail("mme needs --annotations (or a --questions file whose lines carry \"answer\")");
  const std::string suffix = FindBenchmark("mme").prompt_suffix;
  // Questions are matched by (question_id, question text without the answer-format line).
  auto norm = [&](std::string text) {
    if (EndsWith(text, suffix)) text.resize(text.size() - suffix.size());
    return TrimSpace(text);
  };
  struct Item {
    std::string key, id, subtask, image;
    bool yes = false;
  };
  std::vector<Problem> problems;
  std::vector<Item> items;
  std::set<std::string> seen;
  std::unordered_map<std::string, int> id_count;
  for (const TextLine& line : ReadLines(truth)) {
    const std::optional<nlohmann::json> parsed = ParseObjectLine(line, truth, problems);
    if (!parsed) continue;
    const nlohmann::json& j = *parsed;
    auto bad = [&](const std::string& m) { problems.push_back({truth, line.number, m}); };
    std::string text = StringField(j, "text");
    if (text.empty()) text = StringField(j, "question");
    Item it;
    if (!j.contains("question_id") || !IsValidId(j["question_id"]) || text.empty() ||
        !YesNo(StringField(j, "answer"), &it.yes)) {
      bad("needs question_id, text and answer \"Yes\" or \"No\"");
      continue;
    }
    it.id = IdText(j["question_id"]);
    it.key = it.id + "\t" + norm(text);
    it.subtask = StringField(j, "category");
    if (it.subtask.empty()) it.subtask = it.id.substr(0, it.id.find('/'));
    it.image = StringField(j, "image").empty() ? it.id : StringField(j, "image");
    if (!seen.insert(it.key).second) {
      bad("duplicate question (" + it.id + ", same text): first kept");
      continue;
    }
    ++id_count[it.id];
    items.push_back(std::move(it));
  }
  if (!annotations.empty() && !questions.empty()) {
    const QuestionFilter f = LoadFilter("mme", questions, problems);
    std::set<std::string> asked;
    for (const Question& q : f.questions->questions) asked.insert(q.key + "\t" + norm(q.prompt));
    std::vector<Item> kept;
    for (Item& it : items)
      if (asked.count(it.key)) kept.push_back(std::move(it));
    items = std::move(kept);
  }
  std::vector<std::string> keys;
  std::unordered_map<std::string, std::string> only_key_of_id;
  for (const Item& it : items) {
    keys.push_back(it.key);
    if (id_count[it.id] == 1) only_key_of_id[it.id] = it.key;
  }
  auto key_of = [&](const Answer& a) {
    const std::string k = a.key + "\t" + norm(a.prompt);
    if (seen.count(k)) return k;
    auto it = only_key_of_id.find(a.key);  // an id with one question needs no text
    return it == only_key_of_id.end() ? std::string() : it->second;
  };
  const MatchResult m = MatchAnswers(keys, answers, key_of, problems);
  struct Sub {
    long long n = 0, correct = 0, other = 0;
    std::map<std::string, std::pair<int, int>> images;  // image -> (questions, correct)
  };
  std::map<std::string, Sub> subs;
  for (size_t i = 0; i < items.size(); ++i) {
    Sub& s = subs[items[i].subtask];
    bool ok = false;
    if (Usable(m.answer[i])) {
      const MmeReply reply = ParseMmeReply(m.answer[i]->text);
      s.other += reply == MmeReply::Other;
      ok = reply == (items[i].yes ? MmeReply::Yes : MmeReply::No);
    }
    ++s.n;
    s.correct += ok;
    auto& img = s.images[items[i].image];
    ++img.first;
    img.second += ok;
  }
  ScoreResult r;
  r.bench = "mme";
  r.headline_name = "perception";
  nlohmann::json per = nlohmann::json::object();
  nlohmann::json table = Table("MME subtasks", {"subtask", "group", "questions", "acc", "acc+", "score"});
  double perception = 0, cognition = 0, other_total = 0;
  auto group_of = [](const std::string& name) {
    for (const auto& p : kPerception) if (p == name) return "perception";
    for (const auto& c : kCognition) if (c == name) return "cognition";
    return "other";
  };
  for (const auto& [name, s] : subs) {
    long long both = 0;
    for (const auto& [img, qc] : s.images) both += qc.second == qc.first;
    const double acc = Percent(s.correct, s.n), acc_plus = Percent(both, s.images.size());
    const std::string group = group_of(name);
    per[name] = {{"group", group}, {"questions", s.n}, {"images", s.images.size()}, {"acc", acc},
                 {"acc_plus", acc_plus}, {"score", acc + acc_plus}, {"other_replies", s.other}};
    table["rows"].push_back({name, group, s.n, acc, acc_plus, acc + acc_plus});
    (group == std::string("perception") ? perception : group == std::string("cognition") ? cognition : other_total) += acc + acc_plus;
  }
  r.headline = perception;
  r.details["perception"] = perception;
  r.details["cognition"] = cognition;
  if (other_total > 0) r.details["unlisted_subtasks_total"] = other_total;
  r.details["subtasks"] = per;
  r.details["tables"] = nlohmann::json::array({table});
  r.problems = std::move(problems);
  FinishResult(r, m, answers, items.size());
  return r;
}

}  // namespace ficoco::eval
