// ggml's tensor element types (the tensor types of GGUF files) and how each is stored:
// one table shared by the GGUF reader/writer and the quantization code.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace ficoco {

// Tensor element types, numbered as ggml's `enum ggml_type`.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

// Storage of one ggml type: `block_elems` consecutive elements of the innermost dimension
// are stored in `block_bytes` bytes (1 and the element size for plain types).
struct GgmlTypeTraits {
  GgmlType type;
  const char* name;
  int64_t block_elems;
  int64_t block_bytes;
};
// nullptr for a type number this reader does not know.
const GgmlTypeTraits* FindGgmlType(uint32_t type);
const GgmlTypeTraits& GgmlTraits(GgmlType type);  // throws Error for an unknown value
// Bytes of a tensor with GGUF dims (innermost first), or nullopt when a dim is not positive,
// the innermost dim is not a multiple of the block size, or the size overflows.
std::optional<uint64_t> GgmlTensorBytes(GgmlType type, const std::vector<int64_t>& gguf_dims);
// GGUF spelling: "F32", "Q4_0", "Q4_K", ...; "unknown" for a value not in the table.
const char* GgmlTypeName(GgmlType type);
inline uint32_t GgufTypeId(GgmlType type) { return static_cast<uint32_t>(type); }

}  // namespace ficoco
