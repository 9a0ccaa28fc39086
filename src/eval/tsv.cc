#include "eval/tsv.h"

#include "base/error.h"
#include "io/json_file.h"

namespace ficoco::eval {

int TsvTable::Column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

std::string TsvTable::Get(const TsvRow& row, const std::string& name) const {
  const int c = Column(name);
  return c >= 0 && c < static_cast<int>(row.fields.size()) ? row.fields[c] : "";
}

TsvTable ReadTsv(const std::string& path) {
  const std::string s = ReadTextFile(path);
  std::vector<TsvRow> records;
  size_t i = 0;
  int line = 1;
  while (i < s.size()) {
    TsvRow row;
    row.line = line;
    std::string field;
    bool end_of_record = false;
    while (!end_of_record) {
      field.clear();
      if (i < s.size() && s[i] == '"') {
        const int start_line = line;
        ++i;
        while (true) {
          if (i >= s.size()) Fail(path, ":", start_line, ": quoted field never closed");
          if (s[i] == '"') {
            if (i + 1 < s.size() && s[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (s[i] == '\n') ++line;
          field += s[i++];
        }
        // Anything between the closing quote and the separator is kept as pandas does.
        while (i < s.size() && s[i] != '\t' && s[i] != '\n') field += s[i++];
      } else {
        while (i < s.size() && s[i] != '\t' && s[i] != '\n') field += s[i++];
      }
      if (!field.empty() && field.back() == '\r' && (i >= s.size() || s[i] == '\n')) field.pop_back();
      row.fields.push_back(field);
      if (i >= s.size() || s[i] == '\n') {
        end_of_record = true;
        if (i < s.size()) ++line;
      }
      ++i;  // past the tab or newline
    }
    if (row.fields.size() == 1 && row.fields[0].empty()) continue;  // blank line
    records.push_back(std::move(row));
  }
  if (records.empty()) Fail(path, ": empty table (expected a header row)");
  TsvTable table;
  table.header = records.front().fields;
  table.rows.assign(records.begin() + 1, records.end());
  return table;
}

}  // namespace ficoco::eval
