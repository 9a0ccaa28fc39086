#include "kernels/gemv.h"

#include <immintrin.h>

#include "base/error.h"
#include "kernels/gemm.h"

namespace ficoco {
namespace {

float DotF32(const float* x, const float* w, int64_t k) {
  int64_t i = 0;
  float acc = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  for (; i + 32 <= k; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(w + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(w + i + 16), a1);
  }
  acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#endif
  for (; i < k; ++i) acc += x[i] * w[i];
  return acc;
}

float DotF16(const float* x, const uint16_t* w, int64_t k) {
  int64_t i = 0;
  float acc = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  for (; i + 32 <= k; i += 32) {
    __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    __m512 w1 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16)));
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), w0, a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), w1, a1);
  }
  acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#endif
  for (; i < k; ++i) acc += x[i] * F16ToF32(w[i]);
  return acc;
}

float DotBF16(const float* x, const uint16_t* w, int64_t k) {
  int64_t i = 0;
  float acc = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  for (; i + 32 <= k; i += 32) {
    __m512i w0 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i))), 16);
    __m512i w1 =
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16))), 16);
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_castsi512_ps(w0), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_castsi512_ps(w1), a1);
  }
  acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#endif
  for (; i < k; ++i) acc += x[i] * BF16ToF32(w[i]);
  return acc;
}

}  // namespace

float DotF32Row(const float* x, const void* w_row, DType wt, int64_t k) {
  switch (wt) {
    case DType::F32: return DotF32(x, static_cast<const float*>(w_row), k);
    case DType::F16: return DotF16(x, static_cast<const uint16_t*>(w_row), k);
    case DType::BF16: return DotBF16(x, static_cast<const uint16_t*>(w_row), k);
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
