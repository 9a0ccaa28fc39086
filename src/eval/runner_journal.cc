#include "eval/runner_journal.h"

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "eval/eval_text.h"

namespace ficoco::eval {

Journal::Journal(const std::string& path) : path_(path) {
  // Open (creating) and lock first: a second `ficoco eval` on the same file (a requeued
  // job while the old one still runs) must not interleave lines with this one.
  file_ = std::fopen(path.c_str(), "ab");
  if (file_ == nullptr) Fail("cannot open '", path, "' for appending: ", std::strerror(errno));
  if (flock(fileno(file_), LOCK_EX | LOCK_NB) != 0) {
    std::fclose(file_);
    file_ = nullptr;
    Fail("'", path, "' is being written by another process (another `ficoco eval` with the same --out and shard?)");
  }
  try {
    ReadExisting();
  } catch (...) {
    std::fclose(file_);  // the destructor does not run for a throwing constructor
    file_ = nullptr;
    throw;
  }
}

void Journal::ReadExisting() {
  const std::string& path = path_;
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  // Our lines end with '\n' written in the same call, so a missing final newline means
  // the process stopped mid-record: cut the fragment off (appends go to the new end).
  const size_t keep = bytes.empty() || bytes.back() == '\n' ? bytes.size() : bytes.rfind('\n') + 1;  // npos + 1 == 0
  if (keep != bytes.size()) {
    dropped_ = bytes.size() - keep;
    bytes.resize(keep);
    if (ftruncate(fileno(file_), static_cast<off_t>(keep)) != 0)
      Fail("cannot cut the truncated last line of '", path, "': ", std::strerror(errno));
  }
  for (JsonLine& l : ParseJsonLinesStrict(bytes, path, "not written by an interrupted `ficoco eval`?"))
    records_.push_back(std::move(l.value));
}

Journal::~Journal() {
  if (file_ != nullptr) std::fclose(file_);
}

void Journal::Append(const nlohmann::json& record) {
  // Model output may hold invalid UTF-8 (byte tokens of a random model): written as U+FFFD.
  const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    Fail("cannot write to '", path_, "': ", std::strerror(errno));
  records_.push_back(record);
}

}  // namespace ficoco::eval
