// Shared scoring plumbing (internal): matching answers to ground-truth items with every
// mismatch reported and counted, percentages, and the tables ToMarkdown prints.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "eval/benchmark.h"

namespace ficoco::eval {

struct MatchResult {
  std::vector<const Answer*> answer;  // per item; nullptr = unanswered
  long long answered = 0, unanswered = 0, empty = 0, unknown = 0, duplicate = 0;
};

// Pairs answers with items by key. `key_of` maps an answer to an item key ("" = none).
// Unknown ids, duplicates (the first answer counts), empty answers and unanswered
// items become problems in `problems` (unanswered as one summary line).
MatchResult MatchAnswers(const std::vector<std::string>& item_keys, const AnswerSet& answers,
                         const std::function<std::string(const Answer&)>& key_of, std::vector<Problem>& problems);

// An answer that can be scored: present and not blank. Others count as wrong.
bool Usable(const Answer* a);

// Keys of the questions file, when one is given (restricts the scored items).
struct QuestionFilter {
  std::optional<QuestionSet> questions;
  std::set<std::string> keys;
  std::string path;
};
QuestionFilter LoadFilter(const std::string& bench, const std::string& path, std::vector<Problem>& problems);

double Percent(double num, double den);

// Builds {"title", "columns", "rows"} for ScoreResult::details["tables"].
nlohmann::json Table(const std::string& title, const std::vector<std::string>& columns);

// Mean score per category, as a table row list and a JSON object.
struct CategoryMeans {
  std::map<std::string, std::pair<double, long long>> sums;  // category -> (sum, count)
  void Add(const std::string& category, double score) {
    auto& s = sums[category.empty() ? "(none)" : category];
    s.first += score;
    ++s.second;
  }
  nlohmann::json ToJson() const;                     // {cat: {"n", "accuracy"}}
  nlohmann::json ToTable(const std::string& title) const;
};

// Fills the counts every result reports and copies the answers file's problems.
void FinishResult(ScoreResult& r, const MatchResult& m, const AnswerSet& answers, long long items);

}  // namespace ficoco::eval
