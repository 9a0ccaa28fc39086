// Tab-separated tables as pandas writes and reads them (MMBench): a header row, then
// one record per row; a field that starts with '"' is quoted ("" inside = one quote)
// and may then hold tabs and newlines.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace ficoco::eval {

struct TsvRow {
  int line = 0;                     // line where the record starts (1-based)
  std::vector<std::string> fields;
};

struct TsvTable {
  std::vector<std::string> header;
  std::vector<TsvRow> rows;
  int Column(const std::string& name) const;  // -1 when absent
  // Field of a row by column name; "" when the column is absent or the row is short.
  std::string Get(const TsvRow& row, const std::string& name) const;
};

// Throws Error naming the file when it cannot be read, is empty, or has an
// unterminated quoted field (with the line where it starts).
TsvTable ReadTsv(const std::string& path);

}  // namespace ficoco::eval
