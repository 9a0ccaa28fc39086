// GGUF files (llama.cpp / ggml): a defensive, memory-mapped reader.
// Layout (all little-endian): magic "GGUF", uint32 version (3, or 2), uint64 tensor count,
// uint64 metadata KV count, the KVs (string key, uint32 value type, value), the tensor infos
// (string name, uint32 n_dims, uint64 dims[n_dims] innermost first, uint32 ggml type, uint64
// offset relative to the data section), padding to `general.alignment` (default 32), data.
// A string is a uint64 byte length and that many bytes (no terminator); an array is a uint32
// element type, a uint64 count and the elements.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/mmap_file.h"
#include "tensor/ggml_type.h"

namespace ficoco {

// Metadata value types, numbered as in the GGUF specification.
enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* GgufTypeName(GgufType t);  // "uint32", "string", ...; "unknown" otherwise
// Byte size of a fixed-size scalar type (0 for STRING, ARRAY and unknown values).
size_t GgufScalarSize(GgufType t);


// One metadata value. Scalars keep their bits in `u64` (integers zero/sign-extended as
// stored type says: read them through the accessors); numeric/bool arrays point into the
// mapped file (`raw`, `count` elements of `elem_type`); string arrays are copied into
// `strings`; arrays of arrays into `items`.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  uint64_t u64 = 0;     // unsigned scalar / bool (0/1) / bit pattern of floats
  int64_t i64 = 0;      // signed scalar
  double f64 = 0;       // float32 or float64 scalar, widened
  std::string str;      // STRING
  GgufType elem_type = GgufType::UINT8;  // ARRAY
  uint64_t count = 0;                    // ARRAY element count
  const uint8_t* raw = nullptr;          // ARRAY of fixed-size scalars
  std::vector<std::string> strings;      // ARRAY of STRING
  std::vector<GgufValue> items;          // ARRAY of ARRAY
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> dims;   // GGUF / ggml order: dims[0] is the innermost (contiguous) dimension
  std::vector<int64_t> shape;  // PyTorch order: `dims` reversed, shape.back() is contiguous
  uint64_t offset = 0;         // relative to the start of the data section
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
};

class GgufFile {
 public:
  // Maps the file and validates everything before use: magic, version (2 or 3), counts and
  // every string/array length against the bytes left (no allocation from an unchecked
  // length), value types, duplicate keys, general.alignment (uint32, power of two), tensor
  // infos (unique non-empty names, 1..4 dims all positive, known ggml type, innermost dim a
  // multiple of the block size, byte size without overflow, offset aligned), data inside the
  // file, no two tensors overlapping. Throws Error naming the file and the key/tensor/field.
  explicit GgufFile(const std::string& path);
  static GgufFile Open(const std::string& path) { return GgufFile(path); }

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kvs_; }
  bool Has(const std::string& key) const { return kv_index_.count(key) != 0; }
  const GgufValue* Find(const std::string& key) const;
  const GgufValue& Get(const std::string& key) const;  // throws naming the key when missing

  // Typed getters: throw Error naming the file and the key when the key is missing or its
  // value has another type (no silent conversions).
  uint8_t GetU8(const std::string& key) const;
  int8_t GetI8(const std::string& key) const;
  uint16_t GetU16(const std::string& key) const;
  int16_t GetI16(const std::string& key) const;
  uint32_t GetU32(const std::string& key) const;
  int32_t GetI32(const std::string& key) const;
  uint64_t GetU64(const std::string& key) const;
  int64_t GetI64(const std::string& key) const;
  float GetF32(const std::string& key) const;
  double GetF64(const std::string& key) const;
  bool GetBool(const std::string& key) const;
  const std::string& GetString(const std::string& key) const;
  const std::vector<std::string>& GetStringArray(const std::string& key) const;
  std::vector<float> GetF32Array(const std::string& key) const;
  std::vector<int32_t> GetI32Array(const std::string& key) const;
  std::vector<uint32_t> GetU32Array(const std::string& key) const;
  std::vector<int64_t> GetI64Array(const std::string& key) const;
  std::vector<uint64_t> GetU64Array(const std::string& key) const;
  std::vector<uint8_t> GetU8Array(const std::string& key) const;
  std::vector<bool> GetBoolArray(const std::string& key) const;
  // Any integer scalar type whose value fits int64 (for keys writers store as u32 or i32).
  int64_t GetInteger(const std::string& key) const;

  // Tensors in file (header) order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* FindTensor(const std::string& name) const;
  const GgufTensor& GetTensor(const std::string& name) const;  // throws naming the tensor

 private:
  const GgufValue& Typed(const std::string& key, GgufType want) const;
  const GgufValue& TypedArray(const std::string& key, GgufType elem) const;
  template <class T>
  std::vector<T> NumericArray(const std::string& key, GgufType elem) const;

  MappedFile file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace ficoco
