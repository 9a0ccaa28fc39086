// Keys or values as attention reads them: rows of fp32 or of IEEE half floats.
//
// The KV cache may hold half floats: a decode step reads the whole cache once per layer,
// so at LLaVA's 636-token prompt a 7B's fp32 cache is 0.67 GB of reads per new token next
// to the ~3.8 GB of Q4_0 weights; halving it is what llama.cpp's default f16 cache does.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "tensor/tensor.h"

namespace ficoco {

enum class KvType { F32, F16 };

// "f32", "f16"; Error naming the accepted values otherwise.
KvType ParseKvType(const std::string& name);
const char* KvTypeName(KvType t);
// The command-line choice: "auto" (unset: the engine picks from the compute type), "f16", "f32".
std::optional<KvType> ParseKvCacheChoice(const std::string& name);
inline int64_t KvTypeSize(KvType t) { return t == KvType::F16 ? 2 : 4; }

// A borrowed [rows, cols] row-major block of keys or values.
struct KvRows {
  KvType type = KvType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  static KvRows Of(const Matrix& m) { return KvRows{KvType::F32, m.data(), m.rows(), m.cols()}; }
  const float* f32_row(int64_t r) const { return static_cast<const float*>(data) + r * cols; }
  const uint16_t* f16_row(int64_t r) const { return static_cast<const uint16_t*>(data) + r * cols; }
  // Widens elements [c0, c0 + n) of row r into out.
  void Read(int64_t r, int64_t c0, int64_t n, float* out) const;
};

}  // namespace ficoco
