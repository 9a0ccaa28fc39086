#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace ficoco {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // 100 MB: far above any real header

// Product of the dimensions times the element size, or false on overflow.
bool CheckedByteSize(const std::vector<int64_t>& shape, size_t elem, uint64_t* out) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

// Short, bounded rendering of a JSON value for error messages.
std::string Brief(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool IsInteger(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

struct RawEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

}  // namespace

size_t TensorSpec::nbytes() const {
  uint64_t n = 0;
  if (!CheckedByteSize(shape, DTypeSize(dtype), &n)) Fail("tensor '", name, "': shape ", ShapeToString(shape), " is invalid or too large");
  return static_cast<size_t>(n);
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const std::string& p = file_.path();
  const size_t size = file_.size();
  if (size < 8) Fail(p, ": file is ", size, " bytes, too short for a safetensors header (needs at least 8)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file_.data()[i];  // little-endian
  if (header_len > kMaxHeaderBytes) Fail(p, ": header length ", header_len, " is absurd (limit ", kMaxHeaderBytes, " bytes); not a safetensors file?");
  if (header_len > size - 8)
    Fail(p, ": header length ", header_len, " exceeds the file size (", size, " bytes); file truncated?");
  const char* hbegin = reinterpret_cast<const char*>(file_.data()) + 8;
  const char* hend = hbegin + header_len;
  const uint8_t* data_area = file_.data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  // Parse, noting duplicate keys (nlohmann silently keeps the last one).
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  size_t duplicate_depth = 0;
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string()) {
          const std::string& k = parsed.get_ref<const std::string&>();
          if (!open_objects.back().insert(k).second && duplicate.empty()) {
            duplicate = k;
            duplicate_depth = open_objects.size();
          }
        }
        break;
      default: break;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(hbegin, hend, cb, /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    Fail(p, ": header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) Fail(p, ": header must be a JSON object, got ", header.type_name());
  if (!duplicate.empty()) {
    if (duplicate_depth == 1) Fail(p, ": duplicate tensor name '", duplicate, "' in header");
    Fail(p, ": duplicate key '", duplicate, "' in header");
  }

  std::vector<RawEntry> entries;
  entries.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) Fail(p, ": __metadata__ must be an object of strings, got ", v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          Fail(p, ": __metadata__ '", m.key(), "' must be a string, got ", Brief(m.value()));
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = p + ": tensor '" + name + "'";
    if (!v.is_object()) Fail(where, ": entry must be an object, got ", Brief(v));
    RawEntry e;
    e.name = name;
    auto dt = v.find("dtype");
    if (dt == v.end()) Fail(where, ": missing dtype");
    if (!dt->is_string()) Fail(where, ": dtype must be a string, got ", Brief(*dt));
    auto parsed = ParseDType(dt->get_ref<const std::string&>());
    if (!parsed) Fail(where, ": unknown dtype '", dt->get<std::string>(), "' (supported: F32 F16 BF16 I64 I32 U8)");
    e.dtype = *parsed;

    auto sh = v.find("shape");
    if (sh == v.end()) Fail(where, ": missing shape");
    if (!sh->is_array()) Fail(where, ": shape must be an array of non-negative integers, got ", Brief(*sh));
    for (const json& d : *sh) {
      if (!IsInteger(d) || (d.is_number_integer() && d.get<int64_t>() < 0) ||
          (d.is_number_unsigned() && d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)))
        Fail(where, ": shape must be an array of non-negative integers, got ", Brief(*sh));
      e.shape.push_back(d.get<int64_t>());
    }

    auto off = v.find("data_offsets");
    if (off == v.end()) Fail(where, ": missing data_offsets");
    if (!off->is_array() || off->size() != 2 || !IsInteger((*off)[0]) || !IsInteger((*off)[1]) ||
        ((*off)[0].is_number_integer() && (*off)[0].get<int64_t>() < 0) ||
        ((*off)[1].is_number_integer() && (*off)[1].get<int64_t>() < 0))
      Fail(where, ": data_offsets must be two non-negative integers [begin, end], got ", Brief(*off));
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) Fail(where, ": data_offsets [", e.begin, ",", e.end, "] have begin > end");

    uint64_t expect = 0;
    if (!CheckedByteSize(e.shape, DTypeSize(e.dtype), &expect))
      Fail(where, ": shape ", ShapeToString(e.shape), " of ", DTypeName(e.dtype), " is too large (byte size overflows)");
    if (e.end - e.begin != expect)
      Fail(where, ": data_offsets [", e.begin, ",", e.end, "] do not match shape ", ShapeToString(e.shape), " of ",
           DTypeName(e.dtype), " (", expect, " bytes)");
    if (e.end > data_size)
      Fail(where, ": data_offsets [", e.begin, ",", e.end, "] extend beyond the data area (", data_size,
           " bytes); file truncated?");
    entries.push_back(std::move(e));
  }

  // File order; then no two non-empty ranges may share a byte.
  std::sort(entries.begin(), entries.end(), [](const RawEntry& a, const RawEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : (a.end != b.end ? a.end < b.end : a.name < b.name);
  });
  const RawEntry* reach = nullptr;  // the non-empty entry reaching furthest so far
  for (const RawEntry& e : entries) {
    if (e.begin == e.end) continue;
    if (reach != nullptr && e.begin < reach->end)
      Fail(p, ": tensor '", e.name, "' data_offsets [", e.begin, ",", e.end, "] overlap tensor '", reach->name,
           "' [", reach->begin, ",", reach->end, "]");
    if (reach == nullptr || e.end > reach->end) reach = &e;
  }

  tensors_.reserve(entries.size());
  for (RawEntry& e : entries) {
    TensorView t;
    t.name = std::move(e.name);
    t.dtype = e.dtype;
    t.shape = std::move(e.shape);
    t.data = data_area + e.begin;
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsFile::ReleasePages(const TensorView& t) const {
  const auto* p = static_cast<const uint8_t*>(t.data);
  if (p == nullptr || p < file_.data() || p + t.nbytes() > file_.data() + file_.size())
    Fail(path(), ": ReleasePages: tensor '", t.name, "' does not belong to this file");
  file_.Release(static_cast<size_t>(p - file_.data()), t.nbytes());
}

// ---------------------------------------------------------------------------------------------

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<TensorSpec> specs,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  for (const TensorSpec& s : specs) {
    if (s.name == "__metadata__" || s.name.empty()) Fail(path_, ": invalid tensor name '", s.name, "'");
    if (!seen.insert(s.name).second) Fail(path_, ": duplicate tensor name '", s.name, "'");
    uint64_t n = 0;
    if (!CheckedByteSize(s.shape, DTypeSize(s.dtype), &n))
      Fail(path_, ": tensor '", s.name, "': shape ", ShapeToString(s.shape), " is invalid or too large");
    header[s.name] = {{"dtype", std::string(DTypeName(s.dtype))},
                      {"shape", s.shape},
                      {"data_offsets", {total_bytes_, total_bytes_ + n}}};
    total_bytes_ += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as the reference writer does

  out_.open(path_, std::ios::binary | std::ios::trunc);
  if (!out_) Fail("cannot create '", path_, "': ", std::strerror(errno));
  unsigned char len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out_.write(reinterpret_cast<const char*>(len), 8);
  out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out_) Fail("cannot write '", path_, "': ", std::strerror(errno));
}

SafetensorsWriter::~SafetensorsWriter() {
  if (!finished_) {
    // Abandoned (an exception unwound past it): do not leave a truncated file behind.
    out_.close();
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

void SafetensorsWriter::Append(const void* bytes, size_t n) {
  if (finished_) Fail(path_, ": Append after Finish");
  if (n > total_bytes_ - written_)
    Fail(path_, ": Append of ", n, " bytes overruns the declared tensors (", written_, " of ", total_bytes_,
         " bytes written)");
  if (n == 0) return;
  out_.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  if (!out_) Fail("cannot write '", path_, "': ", std::strerror(errno));
  written_ += n;
}

void SafetensorsWriter::Finish() {
  if (finished_) return;
  if (written_ != total_bytes_)
    Fail(path_, ": Finish with ", written_, " of ", total_bytes_, " data bytes written");
  out_.flush();
  if (!out_) Fail("cannot write '", path_, "': ", std::strerror(errno));
  out_.close();
  if (out_.fail()) Fail("cannot close '", path_, "': ", std::strerror(errno));
  // Verify what reached the disk: 8 + header length (read back) + every data byte.
  std::ifstream in(path_, std::ios::binary);
  unsigned char len[8] = {};
  in.read(reinterpret_cast<char*>(len), 8);
  if (!in) Fail("cannot read back '", path_, "'");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len[i];
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path_, ec);
  if (ec) Fail("cannot stat '", path_, "': ", ec.message());
  if (size != 8 + header_len + total_bytes_)
    Fail(path_, ": file is ", size, " bytes after writing, expected ", 8 + header_len + total_bytes_);
  finished_ = true;
}

void WriteSafetensors(const std::string& path, const std::vector<TensorView>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const TensorView& t : tensors) specs.push_back({t.name, t.dtype, t.shape});
  SafetensorsWriter w(path, std::move(specs), metadata);
  for (const TensorView& t : tensors) {
    const size_t n = t.nbytes();
    if (n > 0 && t.data == nullptr) Fail(path, ": tensor '", t.name, "' has no data");
    w.Append(t.data, n);
  }
  w.Finish();
}

}  // namespace ficoco
