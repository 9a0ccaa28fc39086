#include "io/json_file.h"

#include <fstream>
#include <sstream>

#include "base/error.h"

namespace ficoco {

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read '", path, "': file missing or unreadable");
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) Fail("cannot read '", path, "'");
  return os.str();
}

nlohmann::json ParseJsonObject(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    Fail(origin, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) Fail(origin, ": must be a JSON object, got ", j.type_name());
  return j;
}

}  // namespace ficoco
