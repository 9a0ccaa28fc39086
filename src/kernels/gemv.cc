#include "kernels/gemv.h"

#include "base/error.h"
#include "kernels/gemm.h"
#include "kernels/simd.h"

namespace ficoco {
namespace {

// Widens 16 weights starting at w[i] to floats.
struct LoadF32 {
  const float* w;
#if defined(__AVX512F__)
  __m512 operator()(int64_t i) const { return _mm512_loadu_ps(w + i); }
#endif
  float operator[](int64_t i) const { return w[i]; }
};

struct LoadF16 {
  const uint16_t* w;
#if defined(__AVX512F__)
  __m512 operator()(int64_t i) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
  }
#endif
  float operator[](int64_t i) const { return F16ToF32(w[i]); }
};

struct LoadBF16 {
  const uint16_t* w;
#if defined(__AVX512F__)
  __m512 operator()(int64_t i) const {  // bf16 is the high half of a float
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
#endif
  float operator[](int64_t i) const { return BF16ToF32(w[i]); }
};

// Two independent accumulators hide the FMA latency; the tail is scalar.
template <class Load>
float Dot(const float* x, Load w, int64_t k) {
  int64_t i = 0;
  float acc = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  for (; i + 32 <= k; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), w(i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), w(i + 16), a1);
  }
  acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#endif
  for (; i < k; ++i) acc += x[i] * w[i];
  return acc;
}

}  // namespace

float DotF32Row(const float* x, const void* w_row, DType wt, int64_t k) {
  switch (wt) {
    case DType::F32: return Dot(x, LoadF32{static_cast<const float*>(w_row)}, k);
    case DType::F16: return Dot(x, LoadF16{static_cast<const uint16_t*>(w_row)}, k);
    case DType::BF16: return Dot(x, LoadBF16{static_cast<const uint16_t*>(w_row)}, k);
    default: Fail("GEMV: unsupported weight dtype ", DTypeName(wt));
  }
}

void GemvRows(const float* x, int64_t m, const TensorView& w, const float* bias, float* y) {
  const int64_t n = w.shape[0], k = w.shape[1];
  const size_t row_bytes = static_cast<size_t>(k) * DTypeSize(w.dtype);
  const auto* base = static_cast<const uint8_t*>(w.data);
  const DType wt = w.dtype;
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n; ++j) {
    const void* wr = base + static_cast<size_t>(j) * row_bytes;
    for (int64_t i = 0; i < m; ++i) {
      float v = DotF32Row(x + i * k, wr, wt, k);
      y[i * n + j] = bias ? v + bias[j] : v;
    }
  }
}

}  // namespace ficoco
