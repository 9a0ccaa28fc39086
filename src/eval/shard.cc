#include "eval/shard.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "base/error.h"
#include "eval/eval_text.h"

namespace ficoco::eval {
namespace {

// At most this many ids in one error message; the count says how many there are.
constexpr size_t kListed = 10;

template <class Container>
std::string ListSome(const Container& items) {
  std::ostringstream os;
  size_t n = 0;
  for (const auto& item : items) {
    if (n == kListed) {
      os << ", ... (" << items.size() << " in all)";
      break;
    }
    os << (n++ ? ", " : "") << item;
  }
  return os.str();
}

}  // namespace

Shard ParseShard(const std::string& text) {
  if (text.empty()) return Shard{};
  static const std::regex kPattern(R"((\d+)/(\d+))");
  std::smatch m;
  if (!std::regex_match(text, m, kPattern)) Fail("--shard '", text, "': expected i/n, e.g. 0/4");
  Shard s;
  try {
    s.index = std::stoi(m[1].str());
    s.count = std::stoi(m[2].str());
  } catch (const std::exception&) {
    Fail("--shard '", text, "': number out of range");
  }
  if (s.count < 1 || s.index >= s.count) Fail("--shard '", text, "': need 0 <= i < n");
  return s;
}

std::string AnswersFileName(const Shard& s) {
  return s.whole() ? "answers.jsonl" : "answers.shard-" + std::to_string(s.index) + "-of-" + std::to_string(s.count) + ".jsonl";
}

std::string TimingsFileName(const Shard& s) {
  return s.whole() ? "timings.jsonl" : "timings.shard-" + std::to_string(s.index) + "-of-" + std::to_string(s.count) + ".jsonl";
}

bool ShardFromFileName(const std::string& path, Shard* shard) {
  static const std::regex kPattern(R"((answers|timings)\.shard-(\d+)-of-(\d+)\.jsonl)");
  const std::string name = std::filesystem::path(path).filename().string();
  std::smatch m;
  if (!std::regex_match(name, m, kPattern)) return false;
  try {
    shard->index = std::stoi(m[2].str());
    shard->count = std::stoi(m[3].str());
  } catch (const std::exception&) {
    return false;
  }
  return shard->count >= 1 && shard->index < shard->count;
}

std::string AnswerKeyOf(const nlohmann::json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

std::vector<AnswerLine> ReadAnswerLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read answers file '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (!bytes.empty() && bytes.back() != '\n')
    Fail(path, ": the last line is truncated (an interrupted run): rerun that shard to finish it");
  std::vector<AnswerLine> out;
  for (const JsonLine& l : ParseJsonLinesStrict(bytes, path, "an answers file written by `ficoco eval`")) {
    const nlohmann::json& j = l.value;
    const std::string& text = l.text;
    const int line = l.number;
    if (!j.contains("question_id")) Fail(path, ":", line, ": no question_id");
    AnswerLine a{text, AnswerKeyOf(j["question_id"]), j.value("prompt", ""), -1, path, line};
    const auto meta = j.find("metadata");
    if (meta == j.end() || !meta->is_object() || !meta->contains("question_index") ||
        !(*meta)["question_index"].is_number_integer())
      Fail(path, ":", line, ": no integer metadata.question_index (written by `ficoco eval`): cannot place the answer");
    a.question_index = (*meta)["question_index"].get<long long>();
    if (a.question_index < 0) Fail(path, ":", line, ": negative metadata.question_index");
    out.push_back(std::move(a));
  }
  return out;
}

MergeResult MergeShardAnswers(const std::vector<std::string>& files, const QuestionSet* questions) {
  if (files.empty()) Fail("eval-merge: no shard files given");
  // Shard names, when they follow the pattern, must cover 0..n-1 of one n.
  std::map<int, std::string> by_index;
  int count = -1;
  bool named = true;
  std::vector<Shard> shards(files.size());
  for (size_t f = 0; f < files.size(); ++f) named = named && ShardFromFileName(files[f], &shards[f]);
  if (named) {
    for (size_t f = 0; f < files.size(); ++f) {
      if (count >= 0 && shards[f].count != count)
        Fail("eval-merge: '", files[f], "' is shard ", shards[f].index, " of ", shards[f].count, " but '", files[0],
             "' is of ", count, ": the shards come from different splits");
      count = shards[f].count;
      if (!by_index.emplace(shards[f].index, files[f]).second)
        Fail("eval-merge: shard ", shards[f].index, " of ", count, " given twice: '", by_index[shards[f].index], "' and '",
             files[f], "'");
    }
    std::vector<int> absent;
    for (int i = 0; i < count; ++i)
      if (!by_index.count(i)) absent.push_back(i);
    if (!absent.empty()) Fail("eval-merge: shard(s) ", ListSome(absent), " of ", count, " missing");
  }

  MergeResult r;
  std::map<long long, AnswerLine> by_position;
  std::map<std::string, const AnswerLine*> by_key;
  std::vector<std::string> overlaps;
  for (size_t f = 0; f < files.size(); ++f) {
    for (AnswerLine& a : ReadAnswerLines(files[f])) {
      if (named && !shards[f].Takes(static_cast<size_t>(a.question_index)))
        Fail(a.file, ":", a.line, ": question position ", a.question_index, " does not belong to shard ", shards[f].index,
             " of ", shards[f].count);
      auto [it, fresh] = by_position.emplace(a.question_index, a);
      if (!fresh) {
        overlaps.push_back("position " + std::to_string(a.question_index) + " (" + it->second.file + ":" +
                           std::to_string(it->second.line) + " and " + a.file + ":" + std::to_string(a.line) + ")");
        continue;
      }
      const std::string identity = a.key + '\n' + a.prompt;
      if (!by_key.emplace(identity, &it->second).second)
        overlaps.push_back("question_id " + a.key + " (" + by_key[identity]->file + ":" +
                           std::to_string(by_key[identity]->line) + " and " + a.file + ":" + std::to_string(a.line) + ")");
    }
  }
  if (!overlaps.empty()) Fail("eval-merge: answered more than once: ", ListSome(overlaps));

  const long long expected =
      questions != nullptr ? static_cast<long long>(questions->questions.size())
                           : (by_position.empty() ? 0 : by_position.rbegin()->first + 1);
  std::vector<std::string> holes;
  for (long long p = 0; p < expected; ++p)
    if (!by_position.count(p))
      holes.push_back(questions != nullptr ? "question_id " + questions->questions[p].key + " (position " + std::to_string(p) + ")"
                                           : "position " + std::to_string(p));
  if (!holes.empty()) Fail("eval-merge: unanswered: ", ListSome(holes));
  if (questions != nullptr) {
    for (const auto& [p, a] : by_position) {
      if (p >= expected)
        Fail(a.file, ":", a.line, ": question position ", p, " is past the questions file's ", expected, " questions");
      if (questions->questions[p].key != a.key)
        Fail(a.file, ":", a.line, ": position ", p, " is question_id ", questions->questions[p].key,
             " in the questions file, but the answer is for ", a.key);
    }
  }
  for (auto& [p, a] : by_position) r.lines.push_back(std::move(a));
  if (named)
    for (auto& [i, f] : by_index) r.shard_files_in_order.push_back(f);
  else
    r.shard_files_in_order = files;
  return r;
}

}  // namespace ficoco::eval
