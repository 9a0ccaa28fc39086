// Streaming GGUF v3 writer. Metadata KVs are added first, then every tensor is declared
// (name, ggml type, PyTorch-order shape), then the tensor bytes are appended in declaration
// order (a tensor may come in several pieces); the writer inserts the alignment padding.
// Nothing but the header is held in memory. The file is written to `<path>.tmp` and renamed
// to `path` by Finish(); an abandoned writer removes its temporary file.
#pragma once
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace ficoco {

class GgufWriter {
 public:
  // `alignment` (power of two) is stored as `general.alignment` when it is not the default 32.
  explicit GgufWriter(std::string path, uint32_t alignment = 32);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata (only before the first Append). Keys must be unique and non-empty;
  // `general.alignment` is set through the constructor.
  void AddU8(const std::string& key, uint8_t v);
  void AddI8(const std::string& key, int8_t v);
  void AddU16(const std::string& key, uint16_t v);
  void AddI16(const std::string& key, int16_t v);
  void AddU32(const std::string& key, uint32_t v);
  void AddI32(const std::string& key, int32_t v);
  void AddU64(const std::string& key, uint64_t v);
  void AddI64(const std::string& key, int64_t v);
  void AddF32(const std::string& key, float v);
  void AddF64(const std::string& key, double v);
  void AddBool(const std::string& key, bool v);
  void AddString(const std::string& key, const std::string& v);
  void AddStringArray(const std::string& key, const std::vector<std::string>& v);
  void AddU8Array(const std::string& key, const std::vector<uint8_t>& v);
  void AddI32Array(const std::string& key, const std::vector<int32_t>& v);
  void AddU32Array(const std::string& key, const std::vector<uint32_t>& v);
  void AddI64Array(const std::string& key, const std::vector<int64_t>& v);
  void AddU64Array(const std::string& key, const std::vector<uint64_t>& v);
  void AddF32Array(const std::string& key, const std::vector<float>& v);
  void AddF64Array(const std::string& key, const std::vector<double>& v);
  void AddBoolArray(const std::string& key, const std::vector<bool>& v);
  // Any value of GgufValue form, including arrays of arrays (numeric array elements are
  // taken from `raw`, `count` elements of `elem_type`).
  void AddValue(const std::string& key, const GgufValue& v);

  // Declares a tensor (only before the first Append). `shape` is in PyTorch order (last dim
  // contiguous; stored reversed, as GGUF wants); 1..4 positive dims, the last one a multiple
  // of the type's block size.
  void AddTensor(const std::string& name, GgmlType type, const std::vector<int64_t>& shape);

  // Appends tensor bytes in declaration order; the first call writes the header.
  void Append(const void* bytes, size_t n);
  // Convenience: declares nothing, appends exactly one whole tensor's bytes (the next one).
  void AppendTensor(const std::string& name, const void* bytes, size_t n);
  // Writes the header if nothing was appended, checks every declared byte came, renames.
  void Finish();

 private:
  struct Info {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;  // GGUF order
    uint64_t offset;
    uint64_t nbytes;
  };
  void Key(const std::string& key, GgufType type);
  void Value(const GgufValue& v, int depth);
  void WriteHeader();
  void Pad(uint64_t n);
  void Write(const void* p, size_t n);

  std::string path_, tmp_path_;
  uint32_t alignment_;
  std::string kv_bytes_;
  uint64_t n_kv_ = 0;
  std::set<std::string> keys_, names_;
  std::vector<Info> infos_;
  uint64_t data_bytes_ = 0;  // data section size (with padding between tensors)
  std::ofstream out_;
  bool header_written_ = false;
  bool finished_ = false;
  size_t current_ = 0;       // tensor being appended
  uint64_t in_current_ = 0;  // bytes of it written
};

}  // namespace ficoco
