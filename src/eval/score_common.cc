#include "eval/score_common.h"

#include <unordered_map>

#include "eval/eval_text.h"

namespace ficoco::eval {

MatchResult MatchAnswers(const std::vector<std::string>& item_keys, const AnswerSet& answers,
                         const std::function<std::string(const Answer&)>& key_of, std::vector<Problem>& problems) {
  MatchResult m;
  m.answer.assign(item_keys.size(), nullptr);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < item_keys.size(); ++i) index.emplace(item_keys[i], i);
  std::unordered_map<std::string, int> first_line;
  for (const Answer& a : answers.answers) {
    const std::string key = key_of(a);
    auto it = key.empty() ? index.end() : index.find(key);
    if (it == index.end()) {
      ++m.unknown;
      problems.push_back({answers.path, a.line, "question_id " + a.key + " is not in the ground truth (not scored)"});
      continue;
    }
    if (m.answer[it->second] != nullptr) {
      ++m.duplicate;
      problems.push_back({answers.path, a.line, "duplicate answer for question_id " + a.key + " (first at line " +
                                                    std::to_string(first_line[key]) + " is scored)"});
      continue;
    }
    m.answer[it->second] = &a;
    first_line[key] = a.line;
    if (TrimSpace(a.text).empty()) {
      ++m.empty;
      problems.push_back({answers.path, a.line, "empty answer for question_id " + a.key + " (scored wrong)"});
    }
  }
  std::vector<std::string> missing;
  for (size_t i = 0; i < item_keys.size(); ++i) {
    if (m.answer[i] != nullptr) {
      ++m.answered;
      continue;
    }
    ++m.unanswered;
    if (missing.size() < 5) missing.push_back(item_keys[i]);
  }
  if (m.unanswered > 0) {
    std::string list;
    for (const std::string& k : missing) list += (list.empty() ? "" : ", ") + k;
    problems.push_back({answers.path, 0, std::to_string(m.unanswered) + " of " + std::to_string(item_keys.size()) +
                                             " questions have no answer, scored wrong (first: " + list +
                                             (m.unanswered > 5 ? ", ..." : "") + ")"});
  }
  return m;
}

bool Usable(const Answer* a) { return a != nullptr && !TrimSpace(a->text).empty(); }

QuestionFilter LoadFilter(const std::string& bench, const std::string& path, std::vector<Problem>& problems) {
  QuestionFilter f;
  f.path = path;
  if (path.empty()) return f;
  f.questions = LoadQuestions(bench, path);
  for (const Problem& p : f.questions->problems) problems.push_back(p);
  for (const Question& q : f.questions->questions) f.keys.insert(q.key);
  return f;
}

double Percent(double num, double den) { return den > 0 ? 100.0 * num / den : 0.0; }

nlohmann::json Table(const std::string& title, const std::vector<std::string>& columns) {
  return {{"title", title}, {"columns", columns}, {"rows", nlohmann::json::array()}};
}

nlohmann::json CategoryMeans::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [cat, s] : sums) j[cat] = {{"n", s.second}, {"accuracy", Percent(s.first, s.second)}};
  return j;
}

nlohmann::json CategoryMeans::ToTable(const std::string& title) const {
  nlohmann::json t = Table(title, {"category", "n", "accuracy"});
  for (const auto& [cat, s] : sums) t["rows"].push_back({cat, s.second, Percent(s.first, s.second)});
  return t;
}

void FinishResult(ScoreResult& r, const MatchResult& m, const AnswerSet& answers, long long items) {
  r.questions = static_cast<int>(items);
  r.answered = static_cast<int>(m.answered);
  r.details["counts"] = {{"questions", items},          {"answered", m.answered},
                         {"unanswered", m.unanswered},  {"empty_answers", m.empty},
                         {"unknown_ids", m.unknown},    {"duplicate_answers", m.duplicate},
                         {"answer_file_problems", static_cast<long long>(answers.problems.size())}};
  r.problems.insert(r.problems.begin(), answers.problems.begin(), answers.problems.end());
}

}  // namespace ficoco::eval
