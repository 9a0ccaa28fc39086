// Answers JSONL (LLaVA's format): reading with per-line problems, writing one line.
#include <cstdio>
#include <set>

#include "eval/benchmark.h"
#include "eval/eval_text.h"

namespace ficoco::eval {
namespace {
const std::set<std::string> kStandard = {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"};

// FNV-1a of the id and text: stable across runs and machines (LLaVA writes a random uuid).
std::string StableAnswerId(const std::string& key, const std::string& text) {
  unsigned long long h = 1469598103934665603ull;
  for (const std::string* s : {&key, &text}) {
    for (unsigned char c : *s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", h);
  return buf;
}
}  // namespace

AnswerSet ReadAnswers(const std::string& path) {
  AnswerSet set;
  set.path = path;
  for (const TextLine& line : ReadLines(path)) {
    const std::optional<nlohmann::json> parsed =
        ParseObjectLine(line, path, set.problems, "truncated last line (an interrupted run?); not read");
    if (!parsed) continue;
    const nlohmann::json& j = *parsed;
    auto bad = [&](const std::string& message) { set.problems.push_back({path, line.number, message}); };
    if (!j.contains("question_id") || !IsValidId(j["question_id"])) {
      bad("missing or invalid \"question_id\"");
      continue;
    }
    if (!j.contains("text") || !j["text"].is_string()) { bad("missing \"text\" (the answer, a string)"); continue; }
    Answer a;
    a.id = j["question_id"];
    a.key = IdText(a.id);
    a.prompt = StringField(j, "prompt");
    a.text = j["text"].get<std::string>();
    a.model_id = StringField(j, "model_id");
    a.answer_id = StringField(j, "answer_id");
    if (j.contains("metadata") && j["metadata"].is_object()) a.metadata = j["metadata"];
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!kStandard.count(it.key())) a.extra[it.key()] = it.value();
    a.line = line.number;
    set.answers.push_back(std::move(a));
  }
  return set;
}

nlohmann::json AnswerToJson(const Answer& answer) {
  nlohmann::json j = answer.extra.is_object() ? answer.extra : nlohmann::json::object();
  j["question_id"] = answer.id;
  j["prompt"] = answer.prompt;
  j["text"] = answer.text;
  j["answer_id"] = answer.answer_id.empty() ? StableAnswerId(answer.key, answer.text) : answer.answer_id;
  j["model_id"] = answer.model_id;
  j["metadata"] = answer.metadata.is_object() ? answer.metadata : nlohmann::json::object();
  return j;
}

}  // namespace ficoco::eval
