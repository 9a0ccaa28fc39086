#include "kernels/decode_attention.h"

#include <algorithm>

#include "kernels/simd.h"
#include "kernels/softmax.h"

namespace ficoco {
namespace {

float Dot(const float* a, const float* b, int d) {
#if defined(__AVX512F__)
  if (d % 16 == 0) {
    // Two accumulators halve the FMA chain; d = 128 is 8 vectors.
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= d; c += 32) {
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), _mm512_loadu_ps(b + c), s0);
      s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c + 16), _mm512_loadu_ps(b + c + 16), s1);
    }
    if (c < d) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), _mm512_loadu_ps(b + c), s0);
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  }
#endif
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}

// o[0..d) += p * v[0..d)
void Axpy(float p, const float* v, float* o, int d) {
#pragma omp simd
  for (int c = 0; c < d; ++c) o[c] += p * v[c];
}

}  // namespace

void DecodeAttentionHeads(const float* q_row, const Matrix& k, const Matrix& v, int h0, int h1, int group, int d,
                          int64_t visible, float scale, const std::vector<float>* key_bias, float* scores,
                          int64_t stride, float* out_row) {
  if (h0 >= h1) return;
  // Scores, position-major: row j of the cache is read once, heads h0..h1 in order.
  for (int64_t j = 0; j < visible; ++j) {
    const float* kr = k.row(j);
    const float bias = key_bias != nullptr ? (*key_bias)[static_cast<size_t>(j)] : 0.0f;
    for (int hi = h0; hi < h1; ++hi)
      scores[hi * stride + j] = Dot(q_row + static_cast<int64_t>(hi) * d, kr + static_cast<int64_t>(hi / group) * d, d) *
                                    scale + bias;
  }
  for (int hi = h0; hi < h1; ++hi) SoftmaxRow(scores + hi * stride, visible);
  // Weighted values, position-major again; the heads' output rows (h1 - h0) * d floats stay
  // in L1 while the value rows stream past.
  float* out = out_row + static_cast<int64_t>(h0) * d;
  std::fill_n(out, static_cast<int64_t>(h1 - h0) * d, 0.0f);
  for (int64_t j = 0; j < visible; ++j) {
    const float* vr = v.row(j);
    for (int hi = h0; hi < h1; ++hi)
      Axpy(scores[hi * stride + j], vr + static_cast<int64_t>(hi / group) * d, out_row + static_cast<int64_t>(hi) * d, d);
  }
}

}  // namespace ficoco
