#include "kernels/decode_attention.h"

#include <algorithm>
#include <type_traits>

#include "kernels/simd.h"
#include "kernels/softmax.h"

namespace ficoco {
namespace {

// Portable form: one key at a time.
void ScoresScalar(const float* q, const Matrix& k, int64_t kv_offset, int64_t visible, int d, float* scores) {
  for (int64_t j = 0; j < visible; ++j) {
    const float* kv = k.row(j) + kv_offset;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int c = 0; c < d; ++c) dot += q[c] * kv[c];
    scores[j] = dot;
  }
}

void WeightedSumScalar(const float* p, const Matrix& v, int64_t kv_offset, int64_t visible, int d, float* out) {
  std::fill_n(out, d, 0.0f);
  for (int64_t j = 0; j < visible; ++j) {
    const float* vv = v.row(j) + kv_offset;
#pragma omp simd
    for (int c = 0; c < d; ++c) out[c] += p[j] * vv[c];
  }
}

#if defined(__AVX512F__)
// A dot product of one key is a chain of d/16 dependent FMAs plus a horizontal sum, so
// one key at a time leaves the core waiting on latency. Four keys run as four
// independent chains against the query held in registers (ND = d/16 vectors).
template <int ND>
void ScoresAvx512(const float* q, const Matrix& k, int64_t kv_offset, int64_t visible, float* scores) {
  __m512 qv[ND];
  for (int c = 0; c < ND; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  int64_t j = 0;
  for (; j + 4 <= visible; j += 4) {
    __m512 acc[4];
    for (int r = 0; r < 4; ++r) {
      const float* kv = k.row(j + r) + kv_offset;
      acc[r] = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kv));
      for (int c = 1; c < ND; ++c) acc[r] = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kv + 16 * c), acc[r]);
    }
    for (int r = 0; r < 4; ++r) scores[j + r] = _mm512_reduce_add_ps(acc[r]);
  }
  for (; j < visible; ++j) {
    const float* kv = k.row(j) + kv_offset;
    __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kv));
    for (int c = 1; c < ND; ++c) acc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kv + 16 * c), acc);
    scores[j] = _mm512_reduce_add_ps(acc);
  }
}

// The output row stays in ND registers for the whole pass over the values (the portable
// loop reloads and stores it for every key).
template <int ND>
void WeightedSumAvx512(const float* p, const Matrix& v, int64_t kv_offset, int64_t visible, float* out) {
  __m512 o[ND];
  for (int c = 0; c < ND; ++c) o[c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < visible; ++j) {
    const float* vv = v.row(j) + kv_offset;
    const __m512 pj = _mm512_set1_ps(p[j]);
    for (int c = 0; c < ND; ++c) o[c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vv + 16 * c), o[c]);
  }
  for (int c = 0; c < ND; ++c) _mm512_storeu_ps(out + 16 * c, o[c]);
}

// Head sizes with a register-resident form: 32 (MiniLLaVA), 64, 128 (LLaMA-7B/13B).
bool Avx512Row(const float* q, const Matrix& k, const Matrix& v, int64_t kv_offset, int64_t visible, int d,
               float scale, const std::vector<float>* key_bias, float* scores, float* out) {
  auto run = [&](auto nd) {
    constexpr int ND = decltype(nd)::value;
    ScoresAvx512<ND>(q, k, kv_offset, visible, scores);
    for (int64_t j = 0; j < visible; ++j)
      scores[j] = scores[j] * scale + (key_bias != nullptr ? (*key_bias)[static_cast<size_t>(j)] : 0.0f);
    SoftmaxRow(scores, visible);
    WeightedSumAvx512<ND>(scores, v, kv_offset, visible, out);
    return true;
  };
  switch (d) {
    case 32: return run(std::integral_constant<int, 2>{});
    case 64: return run(std::integral_constant<int, 4>{});
    case 128: return run(std::integral_constant<int, 8>{});
    default: return false;
  }
}
#endif

}  // namespace

void DecodeAttentionRow(const float* q, const Matrix& k, const Matrix& v, int64_t kv_offset, int64_t visible,
                        int d, float scale, const std::vector<float>* key_bias, float* scores, float* out) {
#if defined(__AVX512F__)
  if (Avx512Row(q, k, v, kv_offset, visible, d, scale, key_bias, scores, out)) return;
#endif
  ScoresScalar(q, k, kv_offset, visible, d, scores);
  for (int64_t j = 0; j < visible; ++j)
    scores[j] = scores[j] * scale + (key_bias != nullptr ? (*key_bias)[static_cast<size_t>(j)] : 0.0f);
  SoftmaxRow(scores, visible);
  WeightedSumScalar(scores, v, kv_offset, visible, d, out);
}

}  // namespace ficoco
