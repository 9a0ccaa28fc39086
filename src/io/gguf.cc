#include "io/gguf.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "base/error.h"
#include "tensor/tensor.h"

namespace ficoco {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;      // arrays of arrays nested deeper than this are refused
constexpr uint32_t kMaxAlignment = 1u << 20;
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;      // key length + 1 key byte + type + smallest value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name len + byte + n_dims + 1 dim + type + offset


// Bounded reads from the mapped bytes; every failure names the file, what was being read and
// where, so a truncated or corrupt file is always an Error and never a read past the end.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void Need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      Fail(path_, ": ", what, " at offset ", pos_, " needs ", n, " bytes but only ", remaining(),
           " remain; file truncated?");
  }
  const uint8_t* Take(uint64_t n, const std::string& what) {
    Need(n, what);
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  template <class T>
  T Read(const std::string& what) {
    T v;
    std::memcpy(&v, Take(sizeof(T), what), sizeof(T));
    return v;
  }
  std::string String(const std::string& what) {
    const uint64_t len = Read<uint64_t>(what + " length");
    if (len > remaining())
      Fail(path_, ": ", what, " at offset ", pos_ - 8, " has length ", len, " but only ", remaining(),
           " bytes remain in the file");
    const uint8_t* p = Take(len, what);
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Smallest number of bytes one element of type `t` occupies (for count checks before allocating).
uint64_t MinElementBytes(GgufType t) {
  if (t == GgufType::STRING) return 8;
  if (t == GgufType::ARRAY) return 4 + 8;
  return GgufScalarSize(t);
}

bool KnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

void ReadScalar(Cursor& c, GgufType t, GgufValue* v, const std::string& what) {
  v->type = t;
  switch (t) {
    case GgufType::UINT8: v->u64 = c.Read<uint8_t>(what); v->i64 = static_cast<int64_t>(v->u64); break;
    case GgufType::UINT16: v->u64 = c.Read<uint16_t>(what); v->i64 = static_cast<int64_t>(v->u64); break;
    case GgufType::UINT32: v->u64 = c.Read<uint32_t>(what); v->i64 = static_cast<int64_t>(v->u64); break;
    case GgufType::UINT64: v->u64 = c.Read<uint64_t>(what); v->i64 = static_cast<int64_t>(v->u64); break;
    case GgufType::INT8: v->i64 = c.Read<int8_t>(what); v->u64 = static_cast<uint64_t>(v->i64); break;
    case GgufType::INT16: v->i64 = c.Read<int16_t>(what); v->u64 = static_cast<uint64_t>(v->i64); break;
    case GgufType::INT32: v->i64 = c.Read<int32_t>(what); v->u64 = static_cast<uint64_t>(v->i64); break;
    case GgufType::INT64: v->i64 = c.Read<int64_t>(what); v->u64 = static_cast<uint64_t>(v->i64); break;
    case GgufType::FLOAT32: v->f64 = c.Read<float>(what); break;
    case GgufType::FLOAT64: v->f64 = c.Read<double>(what); break;
    case GgufType::BOOL: {
      const uint8_t b = c.Read<uint8_t>(what);
      if (b > 1) Fail(what, ": bool value is ", static_cast<int>(b), " (must be 0 or 1)");
      v->u64 = b;
      break;
    }
    default: Fail(what, ": not a scalar type");
  }
}

void ReadValue(const std::string& path, Cursor& c, uint32_t raw_type, GgufValue* v, const std::string& what,
               int depth) {
  if (!KnownValueType(raw_type)) Fail(path, ": ", what, ": unknown value type ", raw_type);
  const GgufType t = static_cast<GgufType>(raw_type);
  v->type = t;
  if (t == GgufType::STRING) {
    v->str = c.String(what);
    return;
  }
  if (t != GgufType::ARRAY) {
    ReadScalar(c, t, v, path + ": " + what);
    return;
  }
  if (depth >= kMaxArrayDepth) Fail(path, ": ", what, ": arrays nested deeper than ", kMaxArrayDepth);
  const uint32_t elem = c.Read<uint32_t>(what + " array element type");
  if (!KnownValueType(elem)) Fail(path, ": ", what, ": unknown array element type ", elem);
  v->elem_type = static_cast<GgufType>(elem);
  const uint64_t count = c.Read<uint64_t>(what + " array length");
  const uint64_t min_bytes = MinElementBytes(v->elem_type);
  if (count > c.remaining() / min_bytes)
    Fail(path, ": ", what, ": array length ", count, " of ", GgufTypeName(v->elem_type), " cannot fit in the ",
         c.remaining(), " bytes left in the file");
  v->count = count;
  if (v->elem_type == GgufType::STRING) {
    v->strings.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) v->strings.push_back(c.String(what + "[" + std::to_string(i) + "]"));
  } else if (v->elem_type == GgufType::ARRAY) {
    v->items.resize(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
      const std::string w = what + "[" + std::to_string(i) + "]";
      // An array element carries its own element type and length (no outer type tag).
      ReadValue(path, c, static_cast<uint32_t>(GgufType::ARRAY), &v->items[i], w, depth + 1);
    }
  } else {
    v->raw = c.Take(count * min_bytes, what + " array data");
    if (v->elem_type == GgufType::BOOL) {
      for (uint64_t i = 0; i < count; ++i)
        if (v->raw[i] > 1) Fail(path, ": ", what, "[", i, "]: bool value is ", static_cast<int>(v->raw[i]), " (must be 0 or 1)");
    }
  }
}

struct RawTensor {
  size_t index;
  uint64_t begin, end;
};

}  // namespace

const char* GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "uint8";
    case GgufType::INT8: return "int8";
    case GgufType::UINT16: return "uint16";
    case GgufType::INT16: return "int16";
    case GgufType::UINT32: return "uint32";
    case GgufType::INT32: return "int32";
    case GgufType::FLOAT32: return "float32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "uint64";
    case GgufType::INT64: return "int64";
    case GgufType::FLOAT64: return "float64";
  }
  return "unknown";
}

size_t GgufScalarSize(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL: return 1;
    case GgufType::UINT16:
    case GgufType::INT16: return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32: return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}

GgufFile::GgufFile(const std::string& path) : file_(path) {
  const std::string& p = file_.path();
  Cursor c(p, file_.data(), file_.size());

  const uint8_t* magic = c.Take(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    std::string shown;
    for (int i = 0; i < 4; ++i) {
      const char ch = static_cast<char>(magic[i]);
      static const char kHex[] = "0123456789abcdef";
      shown += (ch >= 0x20 && ch < 0x7f) ? std::string(1, ch)
                                         : std::string{'\\', 'x', kHex[magic[i] >> 4], kHex[magic[i] & 15]};
    }
    Fail(p, ": bad magic '", shown, "' (expected 'GGUF'); not a GGUF file");
  }
  version_ = c.Read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) Fail(p, ": unsupported GGUF version ", version_, " (supported: 2, 3)");
  const uint64_t n_tensors = c.Read<uint64_t>("tensor count");
  const uint64_t n_kv = c.Read<uint64_t>("metadata KV count");
  if (n_kv > c.remaining() / kMinKvBytes)
    Fail(p, ": metadata KV count ", n_kv, " cannot fit in the ", c.remaining(), " bytes left in the file");
  // Tensor infos follow the KVs; checking against all that remains is a safe upper bound here.
  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    Fail(p, ": tensor count ", n_tensors, " cannot fit in the ", c.remaining(), " bytes left in the file");

  kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string kwhere = "metadata KV #" + std::to_string(i);
    std::string key = c.String(kwhere + " key");
    if (key.empty()) Fail(p, ": ", kwhere, " has an empty key");
    const std::string where = "metadata key '" + key + "'";
    if (kv_index_.count(key)) Fail(p, ": duplicate ", where);
    const uint32_t type = c.Read<uint32_t>(where + " value type");
    GgufValue v;
    ReadValue(p, c, type, &v, where, 0);
    kv_index_.emplace(key, kvs_.size());
    kvs_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (a->type != GgufType::UINT32)
      Fail(p, ": metadata key 'general.alignment' must be uint32, got ", GgufTypeName(a->type));
    const uint64_t al = a->u64;
    if (al == 0 || (al & (al - 1)) != 0 || al > kMaxAlignment)
      Fail(p, ": metadata key 'general.alignment' is ", al, " (must be a power of two, at most ", kMaxAlignment, ")");
    alignment_ = static_cast<uint32_t>(al);
  }

  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    Fail(p, ": tensor count ", n_tensors, " cannot fit in the ", c.remaining(), " bytes left in the file");
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.String("tensor info #" + std::to_string(i) + " name");
    const std::string where = "tensor '" + t.name + "'";
    if (t.name.empty()) Fail(p, ": tensor info #", i, " has an empty name");
    if (tensor_index_.count(t.name)) Fail(p, ": duplicate ", where);
    const uint32_t n_dims = c.Read<uint32_t>(where + " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) Fail(p, ": ", where, ": n_dims is ", n_dims, " (must be 1..", kMaxDims, ")");
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.Read<uint64_t>(where + " dim " + std::to_string(d));
      if (dim == 0 || dim > static_cast<uint64_t>(INT64_MAX))
        Fail(p, ": ", where, ": dim ", d, " is ", dim, " (must be positive)");
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    t.shape.assign(t.dims.rbegin(), t.dims.rend());
    const uint32_t type = c.Read<uint32_t>(where + " type");
    const GgmlTypeTraits* traits = FindGgmlType(type);
    if (traits == nullptr) Fail(p, ": ", where, ": unknown ggml type ", type);
    t.type = traits->type;
    t.offset = c.Read<uint64_t>(where + " offset");
    if (t.dims[0] % traits->block_elems != 0)
      Fail(p, ": ", where, ": innermost dim ", t.dims[0], " is not a multiple of the ", traits->name, " block size ",
           traits->block_elems);
    const std::optional<uint64_t> bytes = GgmlTensorBytes(t.type, t.dims);
    if (!bytes) Fail(p, ": ", where, ": shape ", ShapeToString(t.shape), " of ", traits->name, " is too large (byte size overflows)");
    t.nbytes = *bytes;
    if (t.offset % alignment_ != 0)
      Fail(p, ": ", where, ": offset ", t.offset, " is not a multiple of the alignment ", alignment_);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = c.pos();
  const uint64_t pad = (alignment_ - header_end % alignment_) % alignment_;
  const uint64_t size = file_.size();
  if (tensors_.empty()) {
    data_offset_ = std::min<uint64_t>(header_end + pad, size);
    return;
  }
  if (pad > size - header_end)
    Fail(p, ": file ends at ", size, " bytes inside the padding before the data section (", header_end + pad,
         "); file truncated?");
  data_offset_ = header_end + pad;
  const uint64_t data_size = size - data_offset_;

  std::vector<RawTensor> ranges;
  ranges.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensor& t = tensors_[i];
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      Fail(p, ": tensor '", t.name, "': data [", t.offset, ", ", t.offset + t.nbytes,
           ") extends beyond the data section (", data_size, " bytes from offset ", data_offset_, "); file truncated?");
    t.data = file_.data() + data_offset_ + t.offset;
    ranges.push_back({i, t.offset, t.offset + t.nbytes});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const RawTensor& a, const RawTensor& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const RawTensor& prev = ranges[i - 1];
    const RawTensor& cur = ranges[i];
    if (cur.begin < prev.end)
      Fail(p, ": tensor '", tensors_[cur.index].name, "' data [", cur.begin, ", ", cur.end, ") overlaps tensor '",
           tensors_[prev.index].name, "' [", prev.begin, ", ", prev.end, ")");
  }
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].second;
}

const GgufValue& GgufFile::Get(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) Fail(path(), ": missing metadata key '", key, "'");
  return *v;
}

const GgufValue& GgufFile::Typed(const std::string& key, GgufType want) const {
  const GgufValue& v = Get(key);
  if (v.type != want)
    Fail(path(), ": metadata key '", key, "' is ", GgufTypeName(v.type),
         v.type == GgufType::ARRAY ? std::string(" of ") + GgufTypeName(v.elem_type) : std::string(), ", expected ",
         GgufTypeName(want));
  return v;
}

const GgufValue& GgufFile::TypedArray(const std::string& key, GgufType elem) const {
  const GgufValue& v = Get(key);
  if (v.type != GgufType::ARRAY || v.elem_type != elem)
    Fail(path(), ": metadata key '", key, "' is ", GgufTypeName(v.type),
         v.type == GgufType::ARRAY ? std::string(" of ") + GgufTypeName(v.elem_type) : std::string(),
         ", expected array of ", GgufTypeName(elem));
  return v;
}

template <class T>
std::vector<T> GgufFile::NumericArray(const std::string& key, GgufType elem) const {
  const GgufValue& v = TypedArray(key, elem);
  std::vector<T> out(static_cast<size_t>(v.count));
  if (v.count > 0) std::memcpy(out.data(), v.raw, static_cast<size_t>(v.count) * sizeof(T));
  return out;
}

uint8_t GgufFile::GetU8(const std::string& key) const { return static_cast<uint8_t>(Typed(key, GgufType::UINT8).u64); }
int8_t GgufFile::GetI8(const std::string& key) const { return static_cast<int8_t>(Typed(key, GgufType::INT8).i64); }
uint16_t GgufFile::GetU16(const std::string& key) const { return static_cast<uint16_t>(Typed(key, GgufType::UINT16).u64); }
int16_t GgufFile::GetI16(const std::string& key) const { return static_cast<int16_t>(Typed(key, GgufType::INT16).i64); }
uint32_t GgufFile::GetU32(const std::string& key) const { return static_cast<uint32_t>(Typed(key, GgufType::UINT32).u64); }
int32_t GgufFile::GetI32(const std::string& key) const { return static_cast<int32_t>(Typed(key, GgufType::INT32).i64); }
uint64_t GgufFile::GetU64(const std::string& key) const { return Typed(key, GgufType::UINT64).u64; }
int64_t GgufFile::GetI64(const std::string& key) const { return Typed(key, GgufType::INT64).i64; }
float GgufFile::GetF32(const std::string& key) const { return static_cast<float>(Typed(key, GgufType::FLOAT32).f64); }
double GgufFile::GetF64(const std::string& key) const { return Typed(key, GgufType::FLOAT64).f64; }
bool GgufFile::GetBool(const std::string& key) const { return Typed(key, GgufType::BOOL).u64 != 0; }
const std::string& GgufFile::GetString(const std::string& key) const { return Typed(key, GgufType::STRING).str; }
const std::vector<std::string>& GgufFile::GetStringArray(const std::string& key) const {
  return TypedArray(key, GgufType::STRING).strings;
}
std::vector<float> GgufFile::GetF32Array(const std::string& key) const { return NumericArray<float>(key, GgufType::FLOAT32); }
std::vector<int32_t> GgufFile::GetI32Array(const std::string& key) const { return NumericArray<int32_t>(key, GgufType::INT32); }
std::vector<uint32_t> GgufFile::GetU32Array(const std::string& key) const { return NumericArray<uint32_t>(key, GgufType::UINT32); }
std::vector<int64_t> GgufFile::GetI64Array(const std::string& key) const { return NumericArray<int64_t>(key, GgufType::INT64); }
std::vector<uint64_t> GgufFile::GetU64Array(const std::string& key) const { return NumericArray<uint64_t>(key, GgufType::UINT64); }
std::vector<uint8_t> GgufFile::GetU8Array(const std::string& key) const { return NumericArray<uint8_t>(key, GgufType::UINT8); }
std::vector<bool> GgufFile::GetBoolArray(const std::string& key) const {
  const GgufValue& v = TypedArray(key, GgufType::BOOL);
  std::vector<bool> out(static_cast<size_t>(v.count));
  for (uint64_t i = 0; i < v.count; ++i) out[i] = v.raw[i] != 0;
  return out;
}

int64_t GgufFile::GetInteger(const std::string& key) const {
  const GgufValue& v = Get(key);
  switch (v.type) {
    case GgufType::UINT8:
    case GgufType::UINT16:
    case GgufType::UINT32:
    case GgufType::INT8:
    case GgufType::INT16:
    case GgufType::INT32:
    case GgufType::INT64: return v.i64;
    case GgufType::UINT64:
      if (v.u64 > static_cast<uint64_t>(INT64_MAX)) Fail(path(), ": metadata key '", key, "' value ", v.u64, " does not fit int64");
      return v.i64;
    default: Fail(path(), ": metadata key '", key, "' is ", GgufTypeName(v.type), ", expected an integer");
  }
}

const GgufTensor* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::GetTensor(const std::string& name) const {
  const GgufTensor* t = FindTensor(name);
  if (t == nullptr) Fail(path(), ": missing tensor '", name, "'");
  return *t;
}

}  // namespace ficoco
