// ExtractTsvImages: base64 pictures of an MMBench TSV -> image files.
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "eval/benchmark.h"
#include "eval/tsv.h"

namespace ficoco::eval {
namespace {

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 (RFC 4648); whitespace is skipped, '=' ends the data.
bool DecodeBase64(const std::string& text, std::string& out) {
  unsigned int acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    const int v = Sextet(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<unsigned int>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

}  // namespace

int ExtractTsvImages(const std::string& tsv_path, const std::string& out_dir) {
  const TsvTable t = ReadTsv(tsv_path);
  if (t.Column("image") < 0) Fail(tsv_path, ": no 'image' column (base64 pictures) to extract");
  if (t.Column("index") < 0) Fail(tsv_path, ": no 'index' column");
  std::filesystem::create_directories(out_dir);
  int written = 0;
  for (const TsvRow& row : t.rows) {
    std::string index = t.Get(row, "index");
    const std::string b64 = t.Get(row, "image");
    // Named like Question::key: a decimal index is written without padding or spaces.
    try {
      size_t used = 0;
      const long long v = std::stoll(index, &used);
      if (used == index.size()) index = std::to_string(v);
    } catch (const std::exception&) {
    }
    std::string bytes;
    if (b64.empty() || !DecodeBase64(b64, bytes) || bytes.size() < 4)
      Fail(tsv_path, ":", row.line, ": index ", index, ": the image column is not base64 image data");
    const bool png = bytes.compare(0, 4, "\x89PNG") == 0;
    const bool jpeg = static_cast<unsigned char>(bytes[0]) == 0xff && static_cast<unsigned char>(bytes[1]) == 0xd8;
    if (!png && !jpeg) Fail(tsv_path, ":", row.line, ": index ", index, ": decoded image is neither PNG nor JPEG");
    // Same rule as LoadQuestions: "iVBOR" (base64 of the PNG magic) -> .png, else .jpg.
    const std::string path = out_dir + "/" + index + (png ? ".png" : ".jpg");
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) Fail("cannot write '", path, "'");
    ++written;
  }
  return written;
}

}  // namespace ficoco::eval
