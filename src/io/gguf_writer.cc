#include "io/gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "base/error.h"
#include "tensor/tensor.h"

namespace ficoco {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

constexpr uint32_t kGgufVersion = 3;
constexpr int kMaxArrayDepth = 8;  // as the reader accepts

template <class T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

uint64_t AlignUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

GgufWriter::GgufWriter(std::string path, uint32_t alignment)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp"), alignment_(alignment) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
    Fail(path_, ": GGUF alignment ", alignment_, " must be a power of two");
  if (alignment_ != 32) {
    keys_.insert("general.alignment");
    PutString(&kv_bytes_, "general.alignment");
    Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(GgufType::UINT32));
    Put<uint32_t>(&kv_bytes_, alignment_);
    ++n_kv_;
  }
}

GgufWriter::~GgufWriter() {
  if (!finished_) {
    // Abandoned (an exception unwound past it): leave neither a partial file nor the temp.
    if (out_.is_open()) out_.close();
    std::error_code ec;
    std::filesystem::remove(tmp_path_, ec);
  }
}

void GgufWriter::Key(const std::string& key, GgufType type) {
  if (header_written_) Fail(path_, ": metadata key '", key, "' added after tensor data");
  if (key.empty()) Fail(path_, ": empty metadata key");
  if (key == "general.alignment" && alignment_ == 32 && !keys_.count(key))
    Fail(path_, ": metadata key 'general.alignment' is set through the GgufWriter alignment argument");
  if (!keys_.insert(key).second) Fail(path_, ": duplicate metadata key '", key, "'");
  PutString(&kv_bytes_, key);
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(type));
  ++n_kv_;
}

void GgufWriter::AddU8(const std::string& key, uint8_t v) { Key(key, GgufType::UINT8); Put(&kv_bytes_, v); }
void GgufWriter::AddI8(const std::string& key, int8_t v) { Key(key, GgufType::INT8); Put(&kv_bytes_, v); }
void GgufWriter::AddU16(const std::string& key, uint16_t v) { Key(key, GgufType::UINT16); Put(&kv_bytes_, v); }
void GgufWriter::AddI16(const std::string& key, int16_t v) { Key(key, GgufType::INT16); Put(&kv_bytes_, v); }
void GgufWriter::AddU32(const std::string& key, uint32_t v) { Key(key, GgufType::UINT32); Put(&kv_bytes_, v); }
void GgufWriter::AddI32(const std::string& key, int32_t v) { Key(key, GgufType::INT32); Put(&kv_bytes_, v); }
void GgufWriter::AddU64(const std::string& key, uint64_t v) { Key(key, GgufType::UINT64); Put(&kv_bytes_, v); }
void GgufWriter::AddI64(const std::string& key, int64_t v) { Key(key, GgufType::INT64); Put(&kv_bytes_, v); }
void GgufWriter::AddF32(const std::string& key, float v) { Key(key, GgufType::FLOAT32); Put(&kv_bytes_, v); }
void GgufWriter::AddF64(const std::string& key, double v) { Key(key, GgufType::FLOAT64); Put(&kv_bytes_, v); }
void GgufWriter::AddBool(const std::string& key, bool v) { Key(key, GgufType::BOOL); Put<uint8_t>(&kv_bytes_, v ? 1 : 0); }
void GgufWriter::AddString(const std::string& key, const std::string& v) { Key(key, GgufType::STRING); PutString(&kv_bytes_, v); }

void GgufWriter::AddStringArray(const std::string& key, const std::vector<std::string>& v) {
  Key(key, GgufType::ARRAY);
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(GgufType::STRING));
  Put<uint64_t>(&kv_bytes_, v.size());
  for (const std::string& s : v) PutString(&kv_bytes_, s);
}

namespace {
template <class T>
void PutArray(std::string* out, GgufType elem, const std::vector<T>& v) {
  Put<uint32_t>(out, static_cast<uint32_t>(elem));
  Put<uint64_t>(out, v.size());
  for (const T& x : v) Put<T>(out, x);
}
}  // namespace

void GgufWriter::AddU8Array(const std::string& key, const std::vector<uint8_t>& v) { Key(key, GgufType::ARRAY); PutArray(&kv_bytes_, GgufType::UINT8, v); }
void GgufWriter::AddI32Array(const std::string& key, const std::vector<int32_t>& v) { Key(key, GgufType::ARRAY); PutArray(&kv_bytes_, GgufType::INT32, v); }
void GgufWriter::AddU32Array(const std::string& key, const std::vector<uint32_t>& v) { Key(key, GgufType::ARRAY); PutArray(&kv_bytes_, GgufType::UINT32, v); }
void GgufWriter::AddI64Array(const std::string& key, const std::vector<int64_t>& v) { Key(key, GgufType::ARRAY); PutArray(&kv_bytes_, GgufType::INT64, v); }
void GgufWriter::AddU64Array(const std::string& key, const std::vector<uint64_t>& v) { Key(key, GgufType::ARRAY); PutArray(&kv_bytes_, GgufType::UINT64, v); }
void GgufWriter::AddF32Array(const std::string& key, const std::vector<float>& v) { Key(key, GgufType::ARRAY); PutArray(&kv_bytes_, GgufType::FLOAT32, v); }
void GgufWriter::AddF64Array(const std::string& key, const std::vector<double>& v) { Key(key, GgufType::ARRAY); PutArray(&kv_bytes_, GgufType::FLOAT64, v); }
void GgufWriter::AddBoolArray(const std::string& key, const std::vector<bool>& v) {
  Key(key, GgufType::ARRAY);
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(GgufType::BOOL));
  Put<uint64_t>(&kv_bytes_, v.size());
  for (bool b : v) Put<uint8_t>(&kv_bytes_, b ? 1 : 0);
}

void GgufWriter::Value(const GgufValue& v, int depth) {
  switch (v.type) {
    case GgufType::UINT8: Put<uint8_t>(&kv_bytes_, static_cast<uint8_t>(v.u64)); break;
    case GgufType::INT8: Put<int8_t>(&kv_bytes_, static_cast<int8_t>(v.i64)); break;
    case GgufType::UINT16: Put<uint16_t>(&kv_bytes_, static_cast<uint16_t>(v.u64)); break;
    case GgufType::INT16: Put<int16_t>(&kv_bytes_, static_cast<int16_t>(v.i64)); break;
    case GgufType::UINT32: Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(v.u64)); break;
    case GgufType::INT32: Put<int32_t>(&kv_bytes_, static_cast<int32_t>(v.i64)); break;
    case GgufType::UINT64: Put<uint64_t>(&kv_bytes_, v.u64); break;
    case GgufType::INT64: Put<int64_t>(&kv_bytes_, v.i64); break;
    case GgufType::FLOAT32: Put<float>(&kv_bytes_, static_cast<float>(v.f64)); break;
    case GgufType::FLOAT64: Put<double>(&kv_bytes_, v.f64); break;
    case GgufType::BOOL: Put<uint8_t>(&kv_bytes_, v.u64 != 0 ? 1 : 0); break;
    case GgufType::STRING: PutString(&kv_bytes_, v.str); break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) Fail(path_, ": arrays nested deeper than ", kMaxArrayDepth);
      Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(v.elem_type));
      if (v.elem_type == GgufType::STRING) {
        Put<uint64_t>(&kv_bytes_, v.strings.size());
        for (const std::string& s : v.strings) PutString(&kv_bytes_, s);
      } else if (v.elem_type == GgufType::ARRAY) {
        Put<uint64_t>(&kv_bytes_, v.items.size());
        for (const GgufValue& item : v.items) {
          if (item.type != GgufType::ARRAY) Fail(path_, ": array of arrays holds a ", GgufTypeName(item.type));
          Value(item, depth + 1);
        }
      } else {
        const size_t size = GgufScalarSize(v.elem_type);
        if (size == 0) Fail(path_, ": unknown array element type ", static_cast<uint32_t>(v.elem_type));
        if (v.count > 0 && v.raw == nullptr) Fail(path_, ": numeric array without data");
        Put<uint64_t>(&kv_bytes_, v.count);
        kv_bytes_.append(reinterpret_cast<const char*>(v.raw), static_cast<size_t>(v.count) * size);
      }
      break;
    }
    default: Fail(path_, ": unknown value type ", static_cast<uint32_t>(v.type));
  }
}

void GgufWriter::AddValue(const std::string& key, const GgufValue& v) {
  if (GgufScalarSize(v.type) == 0 && v.type != GgufType::STRING && v.type != GgufType::ARRAY)
    Fail(path_, ": metadata key '", key, "': unknown value type ", static_cast<uint32_t>(v.type));
  Key(key, v.type);
  Value(v, 0);
}

void GgufWriter::AddTensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape) {
  if (header_written_) Fail(path_, ": tensor '", name, "' declared after tensor data");
  if (name.empty()) Fail(path_, ": empty tensor name");
  if (names_.count(name)) Fail(path_, ": duplicate tensor '", name, "'");
  const GgmlTypeTraits* traits = FindGgmlType(static_cast<uint32_t>(type));
  if (traits == nullptr) Fail(path_, ": tensor '", name, "': unknown ggml type ", static_cast<uint32_t>(type));
  if (shape.empty() || shape.size() > 4)
    Fail(path_, ": tensor '", name, "': shape ", ShapeToString(shape), " must have 1..4 dims");
  Info info{name, type, std::vector<int64_t>(shape.rbegin(), shape.rend()), 0, 0};
  const std::optional<uint64_t> bytes = GgmlTensorBytes(type, info.dims);
  if (!bytes)
    Fail(path_, ": tensor '", name, "': shape ", ShapeToString(shape), " is invalid for ", traits->name,
         " (dims must be positive, the last a multiple of ", traits->block_elems, ", size without overflow)");
  info.nbytes = *bytes;
  info.offset = data_bytes_;
  data_bytes_ = AlignUp(data_bytes_ + info.nbytes, alignment_);
  names_.insert(name);
  infos_.push_back(std::move(info));
}

void GgufWriter::Write(const void* p, size_t n) {
  out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
  if (!out_) Fail("cannot write '", tmp_path_, "': ", std::strerror(errno));
}

void GgufWriter::Pad(uint64_t n) {
  static const char zeros[64] = {};
  while (n > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof(zeros)));
    Write(zeros, k);
    n -= k;
  }
}

void GgufWriter::WriteHeader() {
  std::string h;
  h.append("GGUF", 4);
  Put<uint32_t>(&h, kGgufVersion);
  Put<uint64_t>(&h, infos_.size());
  Put<uint64_t>(&h, n_kv_);
  h += kv_bytes_;
  for (const Info& t : infos_) {
    PutString(&h, t.name);
    Put<uint32_t>(&h, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Put<uint64_t>(&h, static_cast<uint64_t>(d));
    Put<uint32_t>(&h, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&h, t.offset);
  }
  h.append(static_cast<size_t>(AlignUp(h.size(), alignment_) - h.size()), '\0');
  out_.open(tmp_path_, std::ios::binary | std::ios::trunc);
  if (!out_) Fail("cannot create '", tmp_path_, "': ", std::strerror(errno));
  header_written_ = true;
  Write(h.data(), h.size());
}

void GgufWriter::Append(const void* bytes, size_t n) {
  if (finished_) Fail(path_, ": Append after Finish");
  if (!header_written_) WriteHeader();
  const auto* p = static_cast<const uint8_t*>(bytes);
  while (n > 0) {
    if (current_ >= infos_.size())
      Fail(path_, ": Append of ", n, " more bytes after the last declared tensor was complete");
    const Info& t = infos_[current_];
    const uint64_t k = std::min<uint64_t>(n, t.nbytes - in_current_);
    Write(p, static_cast<size_t>(k));
    p += k;
    n -= static_cast<size_t>(k);
    in_current_ += k;
    if (in_current_ == t.nbytes) {
      Pad(AlignUp(t.offset + t.nbytes, alignment_) - (t.offset + t.nbytes));
      ++current_;
      in_current_ = 0;
    }
  }
}

void GgufWriter::AppendTensor(const std::string& name, const void* bytes, size_t n) {
  if (current_ >= infos_.size()) Fail(path_, ": tensor '", name, "' appended but every declared tensor is complete");
  const Info& t = infos_[current_];
  if (t.name != name || in_current_ != 0)
    Fail(path_, ": tensor '", name, "' appended where tensor '", t.name, "' (declaration order) is due");
  if (n != t.nbytes) Fail(path_, ": tensor '", name, "' has ", n, " bytes, its type and shape need ", t.nbytes);
  Append(bytes, n);
}

void GgufWriter::Finish() {
  if (finished_) return;
  if (!header_written_) WriteHeader();
  if (current_ != infos_.size())
    Fail(path_, ": Finish with tensor '", infos_[current_].name, "' incomplete (", in_current_, " of ",
         infos_[current_].nbytes, " bytes)");
  out_.flush();
  if (!out_) Fail("cannot write '", tmp_path_, "': ", std::strerror(errno));
  const uint64_t expected = static_cast<uint64_t>(out_.tellp());
  out_.close();
  if (out_.fail()) Fail("cannot close '", tmp_path_, "': ", std::strerror(errno));
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(tmp_path_, ec);
  if (ec) Fail("cannot stat '", tmp_path_, "': ", ec.message());
  if (size != expected) Fail(tmp_path_, ": file is ", size, " bytes after writing, expected ", expected);
  std::filesystem::rename(tmp_path_, path_, ec);
  if (ec) Fail("cannot rename '", tmp_path_, "' to '", path_, "': ", ec.message());
  finished_ = true;
}

}  // namespace ficoco
