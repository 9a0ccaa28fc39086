// Element types of stored tensors and the scalar conversions between them.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace ficoco {

enum class DType : uint8_t { F32, F16, BF16, I64, I32, U8 };

size_t DTypeSize(DType t);
// Safetensors spelling ("F32", "F16", "BF16", "I64", "I32", "U8").
std::string_view DTypeName(DType t);
std::optional<DType> ParseDType(std::string_view name);

inline float BF16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t F32ToBF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE half <-> float through the compiler's _Float16 (F16C instructions on x86).
inline float F16ToF32(uint16_t h) {
  _Float16 v;
  std::memcpy(&v, &h, 2);
  return static_cast<float>(v);
}

// The half float stored at p (no alignment needed; ggml blocks put their scales at odd offsets).
inline float F16ToF32At(const void* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

inline uint16_t F32ToF16(float f) {
  _Float16 v = static_cast<_Float16>(f);
  uint16_t h;
  std::memcpy(&h, &v, 2);
  return h;
}

// Widens `n` elements of a floating-point tensor (F32, F16 or BF16) to float.
void ConvertToF32(DType src_type, const void* src, float* dst, int64_t n);
// Narrows float to F16 or BF16 (or copies for F32).
void ConvertFromF32(const float* src, DType dst_type, void* dst, int64_t n);

}  // namespace ficoco
