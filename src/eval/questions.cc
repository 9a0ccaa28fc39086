// LoadQuestions: the three question formats LLaVA-1.5's evaluation uses (JSONL for the
// VQA-style benchmarks, ScienceQA's conversation JSON, MMBench's TSV).
#include <set>

#include "base/error.h"
#include "eval/benchmark.h"
#include "eval/eval_text.h"
#include "eval/tsv.h"

namespace ficoco::eval {
namespace {

// LLaVA's question files usually carry the suffix already; add it only when missing.
std::string WithSuffix(const std::string& text, const std::string& suffix) {
  if (suffix.empty() || EndsWith(text, suffix)) return text;
  if (suffix.front() == '\n' && EndsWith(text, suffix.substr(1))) return text;
  return text + suffix;
}

// MME and LLaVA's TextVQA file name questions by their image, so one id can carry
// several questions; for them only a repeated (id, text) pair is a duplicate.
bool IdsShared(const std::string& bench) { return bench == "mme" || bench == "textvqa"; }

QuestionSet LoadJsonl(const BenchmarkInfo& info, const std::string& path) {
  QuestionSet set;
  std::set<std::string> seen;
  for (const TextLine& line : ReadLines(path)) {
    const std::optional<nlohmann::json> parsed = ParseObjectLine(line, path, set.problems);
    if (!parsed) continue;
    const nlohmann::json& j = *parsed;
    auto bad = [&](const std::string& message) { set.problems.push_back({path, line.number, message}); };
    if (!j.contains("question_id") || !IsValidId(j["question_id"])) {
      bad("missing or invalid \"question_id\" (need an integer or a non-empty string)");
      continue;
    }
    if (!j.contains("text") || !j["text"].is_string()) { bad("missing \"text\" (the question, a string)"); continue; }
    if (j.contains("image") && !j["image"].is_null() && !j["image"].is_string()) { bad("\"image\" must be a string"); continue; }
    Question q;
    q.id = j["question_id"];
    q.key = IdText(q.id);
    q.image = StringField(j, "image");
    q.prompt = WithSuffix(j["text"].get<std::string>(), info.prompt_suffix);
    q.category = StringField(j, "category");
    q.extra = nlohmann::json::object();
    q.line = line.number;
    const std::string unique = IdsShared(info.name) ? q.key + "\t" + j["text"].get<std::string>() : q.key;
    if (!seen.insert(unique).second) {
      bad("duplicate question_id " + q.key + (IdsShared(info.name) ? " with the same text" : "") + " (ignored)");
      continue;
    }
    set.questions.push_back(std::move(q));
  }
  return set;
}

// llava_test_CQM-I.json: [{"id", "image"?, "conversations": [{"from": "human", "value"}, ...]}].
QuestionSet LoadSqa(const BenchmarkInfo& info, const std::string& path) {
  const nlohmann::json doc = ReadJsonFile(path);
  if (!doc.is_array()) Fail(path, ": expected a JSON array of ScienceQA records, got ", doc.type_name());
  QuestionSet set;
  std::set<std::string> seen;
  for (size_t k = 0; k < doc.size(); ++k) {
    const int record = static_cast<int>(k) + 1;
    const nlohmann::json& r = doc[k];
    auto bad = [&](const std::string& message) {
      set.problems.push_back({path, record, "record " + std::to_string(record) + ": " + message});
    };
    if (!r.is_object() || !r.contains("id") || !IsValidId(r["id"])) { bad("missing or invalid \"id\""); continue; }
    const nlohmann::json* human = nullptr;
    if (r.contains("conversations") && r["conversations"].is_array() && !r["conversations"].empty())
      human = &r["conversations"][0];
    if (human == nullptr || !human->is_object() || !human->contains("value") || !(*human)["value"].is_string()) {
      bad("missing conversations[0].value (the question)");
      continue;
    }
    Question q;
    q.id = r["id"];
    q.key = IdText(q.id);
    q.image = StringField(r, "image");
    std::string text = (*human)["value"].get<std::string>();
    for (size_t p = text.find("<image>"); p != std::string::npos; p = text.find("<image>")) text.erase(p, 7);
    q.prompt = WithSuffix(TrimSpace(text), info.prompt_suffix);
    q.extra = nlohmann::json::object();
    q.line = record;
    if (!seen.insert(q.key).second) { bad("duplicate id " + q.key + " (ignored)"); continue; }
    set.questions.push_back(std::move(q));
  }
  return set;
}

bool IsNone(const std::string& v) {
  const std::string t = LowerAscii(TrimSpace(v));
  return t.empty() || t == "nan" || t == "none";
}

nlohmann::json IndexId(const std::string& text) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return text;
}

QuestionSet LoadMmbench(const BenchmarkInfo& info, const std::string& path) {
  const TsvTable t = ReadTsv(path);
  for (const char* col : {"index", "question", "A", "B"})
    if (t.Column(col) < 0) Fail(path, ": MMBench TSV has no column '", col, "' (header: index question hint A B C D answer ...)");
  QuestionSet set;
  std::set<std::string> seen;
  for (const TsvRow& row : t.rows) {
    auto bad = [&](const std::string& message) { set.problems.push_back({path, row.line, message}); };
    if (row.fields.size() != t.header.size()) {
      bad("row has " + std::to_string(row.fields.size()) + " fields, the header " + std::to_string(t.header.size()));
      continue;
    }
    const std::string index = TrimSpace(t.Get(row, "index"));
    if (index.empty()) { bad("empty index"); continue; }
    Question q;
    q.id = IndexId(index);
    q.key = IdText(q.id);
    std::string text = t.Get(row, "question");
    if (const std::string hint = t.Get(row, "hint"); !IsNone(hint)) text = hint + "\n" + text;
    nlohmann::json options = nlohmann::json::array(), chars = nlohmann::json::array();
    for (const char* letter : {"A", "B", "C", "D", "E"}) {
      const std::string option = t.Get(row, letter);
      if (IsNone(option)) break;  // options are contiguous from A
      text += std::string("\n") + letter + ". " + option;
      options.push_back(option);
      chars.push_back(letter);
    }
    if (options.size() < 2) { bad("fewer than two options (columns A, B)"); continue; }
    q.prompt = WithSuffix(text, info.prompt_suffix);
    q.category = t.Get(row, "category");
    q.image = t.Get(row, "image_path");
    if (q.image.empty() && t.Column("image") >= 0) {
      // Official files embed the picture as base64; ExtractTsvImages writes them as <index>.<ext>.
      const std::string b64 = t.Get(row, "image");
      q.image = q.key + (b64.rfind("iVBOR", 0) == 0 ? ".png" : ".jpg");
    }
    q.extra = {{"round_id", 0}, {"options", options}, {"option_char", chars}};
    q.line = row.line;
    if (!seen.insert(q.key).second) { bad("duplicate index " + q.key + " (ignored)"); continue; }
    set.questions.push_back(std::move(q));
  }
  return set;
}

}  // namespace

QuestionSet LoadQuestions(const std::string& bench, const std::string& path) {
  const BenchmarkInfo& info = FindBenchmark(bench);
  if (info.name == "sqa") return LoadSqa(info, path);
  if (info.name == "mmbench" || info.name == "mmbench-cn") return LoadMmbench(info, path);
  return LoadJsonl(info, path);
}

}  // namespace ficoco::eval
