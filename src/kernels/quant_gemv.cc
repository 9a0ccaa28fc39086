#include "kernels/quant_gemv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "kernels/simd.h"
#include "tensor/dtype.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define FICOCO_QGEMV_VNNI 1
#define FICOCO_QGEMV_INLINE __attribute__((always_inline))
#endif

namespace ficoco {
namespace {

constexpr int64_t kBlock = 32;       // elements per Q8_0 / Q4_0 block
constexpr int64_t kQ8Bytes = 34;     // fp16 d + 32 int8
constexpr int64_t kQ4Bytes = 18;     // fp16 d + 16 bytes of nibbles
constexpr int64_t kMaxRows = 4;      // activation rows handled per pass over W

// Integer dot product of one weight block with 32 quantized activations.
int32_t BlockDotQ8(const uint8_t* blk, const int8_t* xq) {
  const auto* qs = reinterpret_cast<const int8_t*>(blk + 2);
  int32_t s = 0;
  for (int i = 0; i < kBlock; ++i) s += static_cast<int32_t>(qs[i]) * xq[i];
  return s;
}

int32_t BlockDotQ4(const uint8_t* blk, const int8_t* xq) {
  const uint8_t* qs = blk + 2;
  int32_t s = 0;
  for (int i = 0; i < 16; ++i) {
    s += (static_cast<int32_t>(qs[i] & 15) - 8) * xq[i];
    s += (static_cast<int32_t>(qs[i] >> 4) - 8) * xq[i + 16];
  }
  return s;
}

float BlockDot(bool q4, const uint8_t* blk, const int8_t* xq, float dx) {
  const int32_t s = q4 ? BlockDotQ4(blk, xq) : BlockDotQ8(blk, xq);
  return F16ToF32At(blk) * dx * static_cast<float>(s);
}

// The quantized activation rows of one call.
struct Activations {
  int64_t k = 0, nb = 0;
  std::vector<int8_t> q;   // [m, k]
  std::vector<float> d;    // [m, nb]
#if defined(FICOCO_QGEMV_VNNI)
  // Per row and per pair of blocks (16 lanes of 4 elements: lanes 0..7 the first block,
  // 8..15 the second): the offset correction -off * sum of the lane's 4 activations
  // (see RowsVnni).
  std::vector<int32_t> corr;  // [m, nb/2, 16]
#endif
};

void CheckArgs(const char* fn, GgmlType type, int64_t n_out, int64_t k, int64_t m) {
  if (!QuantGemvSupports(type)) Fail(fn, ": unsupported weight type ", GgmlTypeName(type), " (Q8_0 or Q4_0)");
  if (k <= 0 || k % kBlock != 0) Fail(fn, ": k = ", k, " is not a positive multiple of 32");
  if (n_out < 0 || m < 0) Fail(fn, ": negative size (n_out = ", n_out, ", m = ", m, ")");
}

Activations QuantizeRows(const float* x, int64_t m, int64_t k, [[maybe_unused]] int32_t offset) {
  Activations a;
  a.k = k;
  a.nb = k / kBlock;
  a.q.resize(static_cast<size_t>(m * k));
  a.d.resize(static_cast<size_t>(m * a.nb));
  for (int64_t i = 0; i < m; ++i) QuantizeActivationRow(x + i * k, k, a.q.data() + i * k, a.d.data() + i * a.nb);
#if defined(FICOCO_QGEMV_VNNI)
  const int64_t pairs = a.nb / 2;
  a.corr.resize(static_cast<size_t>(m * pairs * 16));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t p = 0; p < pairs; ++p) {
      const int8_t* q = a.q.data() + i * k + p * 2 * kBlock;
      int32_t* c = a.corr.data() + (i * pairs + p) * 16;
      for (int l = 0; l < 16; ++l) {
        c[l] = -offset * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
      }
    }
  }
#endif
  return a;
}

// Scalar path: M activation rows (starting at row r0 of `a`) against weight rows.
void RowsScalar(bool q4, const uint8_t* w, int64_t n_out, const Activations& a, int64_t r0, int64_t rows,
                float* y, int64_t y_stride) {
  const int64_t row_bytes = a.nb * (q4 ? kQ4Bytes : kQ8Bytes);
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n_out; ++j) {
    const uint8_t* wr = w + j * row_bytes;
    for (int64_t i = 0; i < rows; ++i) {
      const int8_t* xq = a.q.data() + (r0 + i) * a.k;
      const float* dx = a.d.data() + (r0 + i) * a.nb;
      float acc = 0;
      for (int64_t b = 0; b < a.nb; ++b) acc += BlockDot(q4, wr + b * (q4 ? kQ4Bytes : kQ8Bytes), xq + b * kBlock, dx[b]);
      y[i * y_stride + j] = acc;
    }
  }
}

#if defined(FICOCO_QGEMV_VNNI)
// _mm512_dpbusd_epi32 multiplies UNSIGNED bytes by SIGNED bytes (4 products summed into
// each int32 lane, no saturation). Both formats are made to fit by putting the weight in
// the unsigned operand with an offset, and removing the offset through the activations:
//   Q4_0: the stored nibble u = q + 8 is already unsigned (0..15), so
//         sum (u - 8) * x = dpbusd(u, x) - 8 * sum x;
//   Q8_0: u = q XOR 0x80 = q + 128 as an unsigned byte (one XOR per weight vector, shared
//         by all activation rows), so sum q * x = dpbusd(u, x) - 128 * sum x.
// The correction -off * sum x depends only on the activation row, so it is computed once
// per call (Activations::corr) and used as the accumulator dpbusd starts from. The
// products fit easily: |u * x| <= 255 * 127, four per lane.
//
// One 512-bit vector holds two blocks (lanes 0..7 block 2p, 8..15 block 2p + 1); each lane's
// int32 sum is converted to float and multiplied by d_w * d_x of its block, and the lanes
// are reduced once per output at the end.
template <int M, bool kQ4>
void RowsVnni(const uint8_t* w, int64_t n_out, const Activations& a, int64_t r0, float* y, int64_t y_stride) {
  constexpr int64_t bb = kQ4 ? kQ4Bytes : kQ8Bytes;
  const int64_t row_bytes = a.nb * bb, pairs = a.nb / 2;
  const int8_t* xq = a.q.data() + r0 * a.k;
  const float* dx = a.d.data() + r0 * a.nb;
  const int32_t* corr = a.corr.data() + r0 * pairs * 16;
  const __m512i pair_lanes = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n_out; ++j) {
    const uint8_t* wr = w + j * row_bytes;
    // Two sets of accumulators (even and odd pairs) so consecutive FMAs do not wait on
    // each other's latency.
    __m512 acc[2][M];
    for (int r = 0; r < M; ++r) acc[0][r] = acc[1][r] = _mm512_setzero_ps();
    auto step = [&](int64_t p, __m512* accs) FICOCO_QGEMV_INLINE {
      const uint8_t* b0 = wr + 2 * p * bb;
      const uint8_t* b1 = b0 + bb;
      __m512i u;
      if constexpr (kQ4) {
        // [qs0, qs0, qs1, qs1] in 128-bit lanes; the 2nd and 4th lane shifted right by 4
        // give the high nibbles, so the bytes are elements 0..31 of block 0, then block 1.
        const __m256i t0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + 2)));
        const __m256i t1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + 2)));
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(t0), t1, 1);
        v = _mm512_mask_srli_epi16(v, static_cast<__mmask32>(0xFF00FF00u), v, 4);
        u = _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
      } else {
        const __m256i t0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2));
        const __m256i t1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 2));
        u = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(t0), t1, 1),
                             _mm512_set1_epi8(static_cast<char>(0x80)));
      }
      uint16_t h0, h1;
      std::memcpy(&h0, b0, 2);
      std::memcpy(&h1, b1, 2);
      const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h0 | static_cast<uint32_t>(h1) << 16)));
      for (int r = 0; r < M; ++r) {
        const __m512i xv = _mm512_loadu_si512(xq + r * a.k + p * 64);
        const __m512i c = _mm512_loadu_si512(corr + (r * pairs + p) * 16);
        const __m512i dot = _mm512_dpbusd_epi32(c, u, xv);
        // d_w * d_x of both blocks, then lanes 0..7 <- block 2p, 8..15 <- block 2p + 1.
        const __m128 dxp = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(dx + r * a.nb + 2 * p)));
        const __m512 s = _mm512_permutexvar_ps(pair_lanes, _mm512_castps128_ps512(_mm_mul_ps(dw, dxp)));
        accs[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, accs[r]);
      }
    };
    int64_t p = 0;
    for (; p + 2 <= pairs; p += 2) {
      step(p, acc[0]);
      step(p + 1, acc[1]);
    }
    if (p < pairs) step(p, acc[0]);
    for (int r = 0; r < M; ++r) {
      float v = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][r], acc[1][r]));
      if (a.nb % 2) {  // odd block count: the last block in scalar code
        const int64_t b = a.nb - 1;
        v += BlockDot(kQ4, wr + b * bb, xq + r * a.k + b * kBlock, dx[r * a.nb + b]);
      }
      y[r * y_stride + j] = v;
    }
  }
}

template <bool kQ4>
void RowsVnniAny(const uint8_t* w, int64_t n_out, const Activations& a, int64_t r0, int64_t rows, float* y,
                 int64_t y_stride) {
  switch (rows) {
    case 1: return RowsVnni<1, kQ4>(w, n_out, a, r0, y, y_stride);
    case 2: return RowsVnni<2, kQ4>(w, n_out, a, r0, y, y_stride);
    case 3: return RowsVnni<3, kQ4>(w, n_out, a, r0, y, y_stride);
    default: return RowsVnni<4, kQ4>(w, n_out, a, r0, y, y_stride);
  }
}
#endif

}  // namespace

bool QuantGemvSupports(GgmlType type) { return type == GgmlType::Q8_0 || type == GgmlType::Q4_0; }

const char* QuantGemvPath() {
#if defined(FICOCO_QGEMV_VNNI)
  return "avx512-vnni";
#else
  return "scalar";
#endif
}

void QuantizeActivationRowScalar(const float* x, int64_t k, int8_t* q, float* d) {
  if (k <= 0 || k % kBlock != 0) Fail("QuantizeActivationRow: k = ", k, " is not a positive multiple of 32");
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float amax = 0;
    for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float db = amax / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    d[b] = db;
    for (int i = 0; i < kBlock; ++i) {
      const float v = std::clamp(std::round(xb[i] * id), -127.0f, 127.0f);
      q[b * kBlock + i] = static_cast<int8_t>(v);
    }
  }
}

void QuantizeActivationRow(const float* x, int64_t k, int8_t* q, float* d) {
#if defined(FICOCO_QGEMV_VNNI)
  if (k <= 0 || k % kBlock != 0) Fail("QuantizeActivationRow: k = ", k, " is not a positive multiple of 32");
  // The scalar rule, 16 lanes at a time: round half away from zero is trunc(t) plus the
  // sign of t when |t - trunc(t)| >= 0.5 (the difference is exact in fp32).
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 sign_mask = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * kBlock), v1 = _mm512_loadu_ps(x + b * kBlock + 16);
    const float amax =
        _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask)));
    const float db = amax / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    d[b] = db;
    const __m512 idv = _mm512_set1_ps(id);
    for (int h = 0; h < 2; ++h) {
      const __m512 t = _mm512_mul_ps(h ? v1 : v0, idv);
      __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __mmask16 away =
          _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_sub_ps(t, r), abs_mask), half, _CMP_GE_OQ);
      r = _mm512_mask_add_ps(r, away, r, _mm512_or_ps(_mm512_and_ps(t, sign_mask), one));
      r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kBlock + 16 * h),
                       _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(r)));
    }
  }
#else
  QuantizeActivationRowScalar(x, k, q, d);
#endif
}

void QuantGemvScalar(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
                     float* y) {
  CheckArgs("QuantGemvScalar", type, n_out, k, m);
  const bool q4 = type == GgmlType::Q4_0;
  const Activations a = QuantizeRows(x, m, k, q4 ? 8 : 128);
  for (int64_t r0 = 0; r0 < m; r0 += kMaxRows)
    RowsScalar(q4, static_cast<const uint8_t*>(w), n_out, a, r0, std::min(kMaxRows, m - r0), y + r0 * n_out, n_out);
}

void QuantGemv(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m, float* y) {
#if defined(FICOCO_QGEMV_VNNI)
  CheckArgs("QuantGemv", type, n_out, k, m);
  const bool q4 = type == GgmlType::Q4_0;
  const Activations a = QuantizeRows(x, m, k, q4 ? 8 : 128);
  const auto* wb = static_cast<const uint8_t*>(w);
  for (int64_t r0 = 0; r0 < m; r0 += kMaxRows) {
    const int64_t rows = std::min(kMaxRows, m - r0);
    if (q4)
      RowsVnniAny<true>(wb, n_out, a, r0, rows, y + r0 * n_out, n_out);
    else
      RowsVnniAny<false>(wb, n_out, a, r0, rows, y + r0 * n_out, n_out);
  }
#else
  QuantGemvScalar(type, w, n_out, k, x, m, y);
#endif
}

}  // namespace ficoco
