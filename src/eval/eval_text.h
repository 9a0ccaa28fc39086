// Small text helpers shared by the evaluation readers and scorers (internal).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/benchmark.h"

namespace ficoco::eval {

// question_id as text: numbers in decimal, strings as they are (same as Question::key).
std::string IdText(const nlohmann::json& id);
// True for a usable question_id: integer or non-empty string.
bool IsValidId(const nlohmann::json& id);

struct TextLine {
  int number = 0;            // 1-based
  std::string text;          // without the newline (a trailing '\r' removed)
  bool last_unterminated = false;  // the file's last line, with no newline after it
};
// All lines of a file; throws Error naming the file if it cannot be read.
std::vector<TextLine> ReadLines(const std::string& path);

// Parses a whole JSON file (object or array); Error naming the file when invalid.
nlohmann::json ReadJsonFile(const std::string& path);

bool EndsWith(const std::string& s, const std::string& suffix);
std::string TrimSpace(const std::string& s);
std::string LowerAscii(std::string s);
// A string field of `j` or "" when absent/null; Error-free (callers report problems).
std::string StringField(const nlohmann::json& j, const char* name);

// One line of a JSONL file as a JSON object. Blank lines give nullopt silently; a line
// that is not valid JSON or not an object gives nullopt after recording a Problem
// (`truncated` is the message when it is the file's unterminated last line).
std::optional<nlohmann::json> ParseObjectLine(const TextLine& line, const std::string& file,
                                              std::vector<Problem>& problems,
                                              const std::string& truncated = "truncated last line (not valid JSON)");

// Every non-empty line of `bytes` (a JSONL file our own commands wrote) as a JSON object
// with its 1-based number. Strict, for files that must be whole: Error "PATH:LINE:
// malformed line (HINT): ..." on the first line that is not a JSON object.
struct JsonLine {
  int number = 0;
  std::string text;
  nlohmann::json value;
};
std::vector<JsonLine> ParseJsonLinesStrict(const std::string& bytes, const std::string& path, const std::string& hint);

Problem MakeProblem(const std::string& file, int line, const std::string& message);

}  // namespace ficoco::eval
