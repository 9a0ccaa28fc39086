#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/simd.h"

namespace ficoco {
namespace {

#if defined(__AVX512F__)
// exp(x) for 16 lanes, written by hand because glibc's vector expf is only reachable
// under -ffast-math: x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two parts for
// exactness), e^r by its degree-7 Taylor polynomial, then scaled by 2^n. Inputs here are <= 0 (max-subtracted); underflow gives 0.
__m512 Exp16(__m512 x) {
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  x = _mm512_max_ps(x, _mm512_set1_ps(-88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
  r = _mm512_fnmadd_ps(n, ln2_lo, r);
  // e^r = 1 + r + r²/2! + … + r⁷/7! (Horner); the truncation error r⁸/8! < 6e-9 here.
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}
#endif

}  // namespace

float ExpShiftRow(float* row, int64_t n, float shift) {
  float sum = 0;
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 vshift = _mm512_set1_ps(shift);
  __m512 vsum = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(row + i), vshift));
    _mm512_storeu_ps(row + i, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  // Lanes summed through memory: GCC 12 warns (-Wuninitialized, inside its own header) when
  // _mm512_reduce_add_ps is inlined here; once per row, the cost is nil.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, vsum);
  for (float lane : lanes) sum += lane;
#endif
  for (; i < n; ++i) sum += (row[i] = std::exp(row[i] - shift));
  return sum;
}

void SoftmaxRow(float* row, int64_t n) {
  if (n <= 0) return;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, row[i]);
  const float inv = 1.0f / ExpShiftRow(row, n, mx);
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

}  // namespace ficoco
