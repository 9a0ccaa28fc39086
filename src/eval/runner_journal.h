// An append-only JSONL file that survives interruption: each record is written as one
// line and flushed, and reopening drops a truncated last line (a kill mid-write) so
// the records appended next continue the file exactly as an uninterrupted run would.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ficoco::eval {

class Journal {
 public:
  // Opens `path` for appending (creating it) and locks it (flock): a second writer gets
  // an Error. Complete lines already there are parsed into records(); a malformed
  // complete line is an Error naming path:line.
  explicit Journal(const std::string& path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::vector<nlohmann::json>& records() const { return records_; }
  // Bytes of a truncated last line that were cut off at open (0 if none).
  size_t dropped_bytes() const { return dropped_; }
  // Writes the record as one line and flushes it to the OS.
  void Append(const nlohmann::json& record);

 private:
  void ReadExisting();  // records_ from the file, cutting a truncated last line
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<nlohmann::json> records_;
  size_t dropped_ = 0;
};

}  // namespace ficoco::eval
