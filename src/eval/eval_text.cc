#include "eval/eval_text.h"

#include <cctype>
#include <sstream>

#include "base/error.h"
#include "io/json_file.h"

namespace ficoco::eval {

std::string IdText(const nlohmann::json& id) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<long long>());
  return id.dump();
}

bool IsValidId(const nlohmann::json& id) {
  return id.is_number_integer() || (id.is_string() && !id.get<std::string>().empty());
}

std::vector<TextLine> ReadLines(const std::string& path) {
  const std::string bytes = ReadTextFile(path);
  std::vector<TextLine> lines;
  size_t start = 0;
  int number = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    const bool unterminated = end == std::string::npos;
    if (unterminated) end = bytes.size();
    TextLine line{++number, bytes.substr(start, end - start), unterminated};
    if (!line.text.empty() && line.text.back() == '\r') line.text.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

nlohmann::json ReadJsonFile(const std::string& path) {
  const std::string text = ReadTextFile(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    Fail(path, ": not valid JSON: ", e.what());
  }
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string TrimSpace(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string LowerAscii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string StringField(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return "";
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<nlohmann::json> ParseObjectLine(const TextLine& line, const std::string& file,
                                              std::vector<Problem>& problems, const std::string& truncated) {
  if (TrimSpace(line.text).empty()) return std::nullopt;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line.text);
  } catch (const nlohmann::json::exception& e) {
    problems.push_back({file, line.number, line.last_unterminated ? truncated : std::string("malformed JSON: ") + e.what()});
    return std::nullopt;
  }
  if (!j.is_object()) {
    problems.push_back({file, line.number, "expected a JSON object, got " + std::string(j.type_name())});
    return std::nullopt;
  }
  return j;
}

std::vector<JsonLine> ParseJsonLinesStrict(const std::string& bytes, const std::string& path, const std::string& hint) {
  std::vector<JsonLine> out;
  std::istringstream lines(bytes);
  std::string text;
  int number = 0;
  while (std::getline(lines, text)) {
    ++number;
    if (text.empty()) continue;
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      Fail(path, ":", number, ": malformed line (", hint, "): ", e.what());
    }
    if (!value.is_object()) Fail(path, ":", number, ": malformed line (", hint, "): expected a JSON object");
    out.push_back({number, std::move(text), std::move(value)});
  }
  return out;
}

Problem MakeProblem(const std::string& file, int line, const std::string& message) {
  return Problem{file, line, message};
}

}  // namespace ficoco::eval
