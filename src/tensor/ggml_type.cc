#include "tensor/ggml_type.h"

#include <array>
#include <climits>

#include "base/error.h"

namespace ficoco {
namespace {

constexpr std::array<GgmlTypeTraits, 20> kGgmlTypes{{
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},
    {GgmlType::Q4_1, "Q4_1", 32, 20},
    {GgmlType::Q5_0, "Q5_0", 32, 22},
    {GgmlType::Q5_1, "Q5_1", 32, 24},
    {GgmlType::Q8_0, "Q8_0", 32, 34},
    {GgmlType::Q8_1, "Q8_1", 32, 36},
    {GgmlType::Q2_K, "Q2_K", 256, 84},
    {GgmlType::Q3_K, "Q3_K", 256, 110},
    {GgmlType::Q4_K, "Q4_K", 256, 144},
    {GgmlType::Q5_K, "Q5_K", 256, 176},
    {GgmlType::Q6_K, "Q6_K", 256, 210},
    {GgmlType::Q8_K, "Q8_K", 256, 292},
    {GgmlType::I8, "I8", 1, 1},
    {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},
    {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},
    {GgmlType::BF16, "BF16", 1, 2},
}};

}  // namespace

const GgmlTypeTraits* FindGgmlType(uint32_t type) {
  for (const GgmlTypeTraits& t : kGgmlTypes)
    if (static_cast<uint32_t>(t.type) == type) return &t;
  return nullptr;
}

const GgmlTypeTraits& GgmlTraits(GgmlType type) {
  const GgmlTypeTraits* t = FindGgmlType(static_cast<uint32_t>(type));
  if (t == nullptr) Fail("GgmlTraits: unknown ggml type ", static_cast<uint32_t>(type));
  return *t;
}

std::optional<uint64_t> GgmlTensorBytes(GgmlType type, const std::vector<int64_t>& gguf_dims) {
  const GgmlTypeTraits* t = FindGgmlType(static_cast<uint32_t>(type));
  if (t == nullptr || gguf_dims.empty()) return std::nullopt;
  for (int64_t d : gguf_dims)
    if (d <= 0) return std::nullopt;
  if (gguf_dims[0] % t->block_elems != 0) return std::nullopt;
  uint64_t n = static_cast<uint64_t>(gguf_dims[0] / t->block_elems);
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(t->block_bytes), &n)) return std::nullopt;
  for (size_t i = 1; i < gguf_dims.size(); ++i)
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(gguf_dims[i]), &n)) return std::nullopt;
  if (n > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return n;
}

const char* GgmlTypeName(GgmlType type) {
  const GgmlTypeTraits* t = FindGgmlType(static_cast<uint32_t>(type));
  return t != nullptr ? t->name : "unknown";
}

}  // namespace ficoco
