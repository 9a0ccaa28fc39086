#include "kernels/decode_attention.h"

#include <algorithm>
#include <limits>

#include "base/error.h"
#include "kernels/simd.h"
#include "kernels/softmax.h"
#include "tensor/dtype.h"

namespace ficoco {
namespace {

#if defined(__AVX512F__)
inline __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 Load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
#endif

inline float Widen(float x) { return x; }
inline float Widen(uint16_t x) { return F16ToF32(x); }

// a · b over d elements; b is fp32 or half.
template <typename T>
float Dot(const float* a, const T* b, int d) {
#if defined(__AVX512F__)
  if (d % 16 == 0) {
    // Two accumulators halve the FMA chain; d = 128 is 8 vectors.
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= d; c += 32) {
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), Load16(b + c), s0);
      s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c + 16), Load16(b + c + 16), s1);
    }
    if (c < d) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), Load16(b + c), s0);
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  }
#endif
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int c = 0; c < d; ++c) s += a[c] * Widen(b[c]);
  return s;
}

// o[0..d) += p * v[0..d); v is fp32 or half.
template <typename T>
void Axpy(float p, const T* v, float* o, int d) {
#if defined(__AVX512F__)
  if (d % 16 == 0) {
    const __m512 pv = _mm512_set1_ps(p);
    for (int c = 0; c < d; c += 16)
      _mm512_storeu_ps(o + c, _mm512_fmadd_ps(pv, Load16(v + c), _mm512_loadu_ps(o + c)));
    return;
  }
#endif
#pragma omp simd
  for (int c = 0; c < d; ++c) o[c] += p * Widen(v[c]);
}

template <typename T>
void Span(const float* q_row, const T* k, const T* v, int64_t k_stride, int64_t v_stride, int h, int group, int d,
          int64_t j0, int64_t j1, float scale, const std::vector<float>* key_bias, float* scores, int64_t stride,
          float* out_row, float* head_max, float* head_sum) {
  // Scores, position-major: row j of the cache is read once, all heads in order.
  for (int64_t j = j0; j < j1; ++j) {
    const T* kr = k + j * k_stride;
    const float bias = key_bias != nullptr ? (*key_bias)[static_cast<size_t>(j)] : 0.0f;
    for (int hi = 0; hi < h; ++hi)
      scores[hi * stride + j] = Dot(q_row + static_cast<int64_t>(hi) * d, kr + static_cast<int64_t>(hi / group) * d, d) *
                                    scale + bias;
  }
  std::fill_n(out_row, static_cast<int64_t>(h) * d, 0.0f);
  for (int hi = 0; hi < h; ++hi) {
    float* row = scores + hi * stride + j0;
    const float mx = j1 > j0 ? *std::max_element(row, row + (j1 - j0)) : -std::numeric_limits<float>::infinity();
    head_max[hi] = mx;
    // A span with nothing visible (empty, or every key biased to -inf) adds nothing.
    head_sum[hi] = mx == -std::numeric_limits<float>::infinity() ? 0.0f : ExpShiftRow(row, j1 - j0, mx);
    if (head_sum[hi] == 0.0f) std::fill_n(row, j1 - j0, 0.0f);
  }
  // Weighted values, position-major again; the output row's h * d floats stay in L1 (16 KiB
  // for a 7B) while the value rows stream past.
  for (int64_t j = j0; j < j1; ++j) {
    const T* vr = v + j * v_stride;
    for (int hi = 0; hi < h; ++hi)
      Axpy(scores[hi * stride + j], vr + static_cast<int64_t>(hi / group) * d, out_row + static_cast<int64_t>(hi) * d, d);
  }
}

}  // namespace

void DecodeAttentionSpan(const float* q_row, const KvRows& k, const KvRows& v, int h, int group, int d, int64_t j0,
                         int64_t j1, float scale, const std::vector<float>* key_bias, float* scores, int64_t stride,
                         float* out_row, float* head_max, float* head_sum) {
  if (k.type == KvType::F32 && v.type == KvType::F32)
    Span(q_row, k.f32_row(0), v.f32_row(0), k.cols, v.cols, h, group, d, j0, j1, scale, key_bias, scores, stride,
         out_row, head_max, head_sum);
  else if (k.type == KvType::F16 && v.type == KvType::F16)
    Span(q_row, k.f16_row(0), v.f16_row(0), k.cols, v.cols, h, group, d, j0, j1, scale, key_bias, scores, stride,
         out_row, head_max, head_sum);
  else
    Fail("DecodeAttentionSpan: keys and values must have the same type");
}

}  // namespace ficoco
