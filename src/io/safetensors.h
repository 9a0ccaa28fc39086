// Safetensors files: a defensive, memory-mapped reader and a streaming writer.
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw little-endian data; offsets are relative to the end of the header.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/mmap_file.h"
#include "tensor/tensor.h"

namespace ficoco {

class SafetensorsFile {
 public:
  // Maps the file and validates every header field before any tensor is used:
  // header length within the file, JSON well-formed, known dtype, shape
  // non-negative, byte size == product(shape) * dtype size (no overflow),
  // offsets inside the data area, no overlapping tensors. Throws Error naming
  // the file and the tensor/field at fault.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* Find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Drops the pages of one tensor from this process (after it was converted at load).
  void ReleasePages(const TensorView& t) const;

 private:
  MappedFile file_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t nbytes() const;
};

// Writes a safetensors file without holding its data in memory: all tensors are
// declared up front (the header needs their offsets), then their bytes are
// appended in declaration order with Append(). Finish() checks every byte came.
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, std::vector<TensorSpec> specs,
                    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
  ~SafetensorsWriter();
  void Append(const void* bytes, size_t n);
  void Finish();

 private:
  std::string path_;
  std::ofstream out_;
  size_t total_bytes_ = 0;
  size_t written_ = 0;
  bool finished_ = false;
};

// Convenience for small files (dumps, tests): writes all views at once, in the given order.
void WriteSafetensors(const std::string& path, const std::vector<TensorView>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace ficoco
