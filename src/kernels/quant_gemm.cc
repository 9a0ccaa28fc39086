#include "kernels/quant_gemm.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "base/error.h"
#include "base/weight_buffer.h"
#include "kernels/quant_gemv.h"
#include "kernels/simd.h"
#include "tensor/dtype.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define FICOCO_QGEMM_VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define FICOCO_QGEMM_AVX2 1
#define FICOCO_QGEMM_INLINE inline __attribute__((always_inline))
#endif

namespace ficoco {
namespace {

constexpr int64_t kBlock = 32;
// Register tile: MR activation rows x NG groups of 16 columns (MR*NG int32 and MR*NG fp32
// accumulators, plus the unpacked weights, fit the 32 zmm registers). Overridable at
// compile time for tuning experiments.
#ifndef FICOCO_QGEMM_MR
#define FICOCO_QGEMM_MR 4
#endif
#ifndef FICOCO_QGEMM_NG
#define FICOCO_QGEMM_NG 2
#endif
constexpr int64_t kMaxRowTile = FICOCO_QGEMM_MR;  // activation rows per micro-kernel call
constexpr int64_t kGroupTile = FICOCO_QGEMM_NG;   // column groups per micro-kernel call
#ifndef FICOCO_QGEMM_DECODE_NG
#define FICOCO_QGEMM_DECODE_NG 4
#endif
constexpr int kDecodeGroupTile = FICOCO_QGEMM_DECODE_NG;  // column groups per call for one row

int64_t WeightBytesPerBlockGroup(GgmlType t) { return t == GgmlType::Q4_0 ? 4 * 64 : 8 * 64; }
int32_t Offset(GgmlType t) { return t == GgmlType::Q4_0 ? 8 : 128; }

#if defined(FICOCO_QGEMM_VNNI) || defined(FICOCO_QGEMM_AVX2)
// Column groups per OpenMP work item: a panel of about 256 KiB of packed weights stays in
// L2 while every row tile passes over it; a multiple of the micro-kernel's group tile (at
// least one tile) so the full-width kernel covers all but the last panel's tail.
int64_t PanelGroups(const QuantPackedWeight& w, int64_t group_tile) {
  const int64_t group_bytes = w.blocks_per_row() * w.block_group_bytes();
  int64_t panel = std::max<int64_t>(group_tile, (256 << 10) / group_bytes);
  return panel - panel % group_tile;
}

// The parallel schedule both SIMD paths share: OpenMP over column panels of
// PanelGroups(w, group_tile) groups; inside a panel, row tiles of up to row_tile rows.
// tile(r0, rows, g_begin, g_end) multiplies one row tile with one panel.
template <class Tile>
void ForEachPanelRowTile(const QuantPackedWeight& w, int64_t m, int64_t row_tile, int64_t group_tile,
                         const Tile& tile) {
  const int64_t groups = w.groups();
  const int64_t panel = PanelGroups(w, group_tile);
  const int64_t panels = (groups + panel - 1) / panel;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t g_begin = p * panel, g_end = std::min(groups, g_begin + panel);
    for (int64_t r0 = 0; r0 < m; r0 += row_tile) tile(r0, std::min(row_tile, m - r0), g_begin, g_end);
  }
}
#endif

// The activation rows of one call, quantized to blocks of 32.
struct QuantRows {
  std::vector<int8_t> q;      // [m, k]
  std::vector<float> d;       // [m, nb] block scales
  std::vector<int32_t> corr;  // [m, nb] -offset * sum of the block's q (accumulator start)
};

QuantRows QuantizeRows(const float* x, int64_t m, int64_t k, int32_t offset) {
  const int64_t nb = k / kBlock;
  QuantRows a;
  a.q.resize(static_cast<size_t>(m * k));
  a.d.resize(static_cast<size_t>(m * nb));
  a.corr.resize(static_cast<size_t>(m * nb));
#pragma omp parallel for schedule(static) if (m > 8)
  for (int64_t i = 0; i < m; ++i) {
    int8_t* q = a.q.data() + i * k;
    QuantizeActivationRow(x + i * k, k, q, a.d.data() + i * nb);
    for (int64_t b = 0; b < nb; ++b) {
      int32_t s = 0;
      for (int64_t t = 0; t < kBlock; ++t) s += q[b * kBlock + t];
      a.corr[static_cast<size_t>(i * nb + b)] = -offset * s;
    }
  }
  return a;
}

void CheckCall(const char* fn, const QuantPackedWeight& w, int64_t m) {
  if (w.empty()) Fail(fn, ": empty packed weight");
  if (m < 0) Fail(fn, ": negative row count ", m);
}

#if defined(FICOCO_QGEMM_VNNI)
inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// y rows r0 .. r0+MR-1, column groups g0 .. g0+NG-1, over the whole k: integer block sums
// with vpdpbusd (16 columns x 4 k-values per instruction), then per block
// acc += float(sum) * d_x * d_w.
template <int MR, int NG, bool kQ4>
void MicroKernel(const QuantPackedWeight& w, const QuantRows& a, int64_t r0, int64_t g0, int64_t m_stride,
                 float* y, int64_t n_out, const float* bias) {
  const int64_t nb = w.blocks_per_row(), k = w.k(), bgb = w.block_group_bytes();
  constexpr int64_t wbytes = kQ4 ? 4 * 64 : 8 * 64;
  const int8_t* xq[MR];
  const float* dx[MR];
  const int32_t* corr[MR];
  for (int i = 0; i < MR; ++i) {
    xq[i] = a.q.data() + (r0 + i) * k;
    dx[i] = a.d.data() + (r0 + i) * nb;
    corr[i] = a.corr.data() + (r0 + i) * nb;
  }
  const uint8_t* wg[NG];
  for (int g = 0; g < NG; ++g) wg[g] = w.data() + (g0 + g) * nb * bgb;
  __m512 facc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) facc[i][g] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i acc[MR][NG];
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_set1_epi32(corr[i][b]);
    if constexpr (kQ4) {
      for (int v = 0; v < 4; ++v) {
        __m512i lo[NG], hi[NG];
        for (int g = 0; g < NG; ++g) {
          const __m512i raw = _mm512_load_si512(wg[g] + b * bgb + v * 64);
          lo[g] = _mm512_and_si512(raw, low4);
          hi[g] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
        }
        for (int i = 0; i < MR; ++i) {
          const __m512i xl = Broadcast4(xq[i] + b * kBlock + 4 * v);
          const __m512i xh = Broadcast4(xq[i] + b * kBlock + 16 + 4 * v);
          for (int g = 0; g < NG; ++g) {
            acc[i][g] = _mm512_dpbusd_epi32(acc[i][g], lo[g], xl);
            acc[i][g] = _mm512_dpbusd_epi32(acc[i][g], hi[g], xh);
          }
        }
      }
    } else {
      for (int v = 0; v < 8; ++v) {
        __m512i wv[NG];
        for (int g = 0; g < NG; ++g) wv[g] = _mm512_load_si512(wg[g] + b * bgb + v * 64);
        for (int i = 0; i < MR; ++i) {
          const __m512i xv = Broadcast4(xq[i] + b * kBlock + 4 * v);
          for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_dpbusd_epi32(acc[i][g], wv[g], xv);
        }
      }
    }
    for (int g = 0; g < NG; ++g) {
      const __m512 dw = _mm512_load_ps(reinterpret_cast<const float*>(wg[g] + b * bgb + wbytes));
      for (int i = 0; i < MR; ++i) {
        const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][g]), _mm512_set1_ps(dx[i][b]));
        facc[i][g] = _mm512_fmadd_ps(s, dw, facc[i][g]);
      }
    }
  }
  for (int g = 0; g < NG; ++g) {
    const int64_t c0 = (g0 + g) * kQuantGroup;
    const int64_t cols = std::min<int64_t>(kQuantGroup, n_out - c0);
    const __mmask16 mask = static_cast<__mmask16>((1u << cols) - 1u);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + c0) : _mm512_setzero_ps();
    for (int i = 0; i < MR; ++i)
      _mm512_mask_storeu_ps(y + (r0 + i) * m_stride + c0, mask, _mm512_add_ps(facc[i][g], bv));
  }
}

template <bool kQ4, int NG>
void RowTile(const QuantPackedWeight& w, const QuantRows& a, int64_t r0, int64_t rows, int64_t g0, float* y,
             const float* bias) {
  const int64_t n = w.n_out();
  switch (rows) {
    case 1: return MicroKernel<1, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
    case 2: return MicroKernel<2, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
    case 3: return MicroKernel<3, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
#if FICOCO_QGEMM_MR > 4
    case 4: return MicroKernel<4, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
    case 5: return MicroKernel<5, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
#endif
#if FICOCO_QGEMM_MR > 6
    case 6: return MicroKernel<6, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
    case 7: return MicroKernel<7, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
#endif
    default: return MicroKernel<FICOCO_QGEMM_MR, NG, kQ4>(w, a, r0, g0, n, y, n, bias);
  }
}

template <bool kQ4, int NG>
void GemmVnniTiled(const QuantPackedWeight& w, const QuantRows& a, int64_t m, int64_t row_tile, float* y,
                   const float* bias) {
  ForEachPanelRowTile(w, m, row_tile, NG, [&](int64_t r0, int64_t rows, int64_t g_begin, int64_t g_end) {
    int64_t g = g_begin;
    for (; g + NG <= g_end; g += NG) RowTile<kQ4, NG>(w, a, r0, rows, g, y, bias);
    for (; g < g_end; ++g) RowTile<kQ4, 1>(w, a, r0, rows, g, y, bias);
  });
}

template <bool kQ4>
void GemmVnni(const QuantPackedWeight& w, const QuantRows& a, int64_t m, float* y, const float* bias) {
  // One row (decode) streams the weights once with no reuse, so what limits it is how many
  // loads are in flight. Each group's integer sum is a chain of dependent vpdpbusd (8 per
  // block); with the prefill tile's 2 groups, the chains' latency, not memory, set the pace.
  // More groups per call give the core more independent chains.
  if (m == 1) return GemmVnniTiled<kQ4, kDecodeGroupTile>(w, a, m, 1, y, bias);
  GemmVnniTiled<kQ4, kGroupTile>(w, a, m, kMaxRowTile, y, bias);
}
#endif

#if defined(FICOCO_QGEMM_AVX2)
// AVX2 + FMA path on the same packed layout. One 256-bit vector is half of a 64-byte group
// vector: 8 columns x 4 consecutive k-values, int32 lane c' holding column 8h + c' of half
// h. AVX2 has no vpdpbusd; its unsigned x signed byte product is vpmaddubsw, which adds
// PAIRS of products into SATURATING int16 lanes, then vpmaddwd against ones adds the two
// pairs of each column's 4 k-values into int32. Every bound below keeps vpmaddubsw's int16
// results exact. They rely on |activation| <= 127: QuantizeActivationRow clamps to
// [-127, 127], so -128 never occurs on the activation side.
//   Q4_0: the stored nibble u = q + 8 (0..15) is the unsigned operand and the offset is
//     removed through the accumulator start, as in the VNNI path. A pair is at most
//     2 * 15 * 127 = 3810, so a column's int16 lane can collect all 8 pairs of a block
//     (4 vectors x low/high nibbles: <= 30480 < 32767) before one widening per block.
//   Q8_0: the stored byte q + 128 (0..255) would give pairs up to 2 * 255 * 127 = 64770
//     and saturate. So the signed weight is recovered (XOR 0x80) and the sign moves to
//     the activation: q * x = |q| * (x * sign(q)). |q| <= 128 read as unsigned (a stored
//     -128 in a foreign GGUF becomes 0x80 = 128, still correct) and |x * sign(q)| <= 127,
//     so a pair is at most 2 * 128 * 127 = 32512: exact. No offset, no correction term.
//     Two pairs may exceed int16, so each vpmaddubsw is widened on its own.
// Register tile: MR rows x NG groups = MR x 2NG halves, one integer and one float
// accumulator each, against 16 ymm registers on AVX2 machines. MR = 4, NG = 1 needs more
// than 16, so the compiler keeps some accumulators on the stack; measured anyway on an
// x86-64-v3 build (busy host, 1 thread, CPU time) it beats MR = 2 for Q8_0, whose XOR and
// abs of each weight vector are then shared by more rows (38 vs 45-63 ms for
// 128 x 4096 x 4096), and ties for Q4_0; MR = 3 and NG = 2 were no better. Overridable
// for tuning like the VNNI tile.
#ifndef FICOCO_QGEMM_AVX2_MR
#define FICOCO_QGEMM_AVX2_MR 4
#endif
#ifndef FICOCO_QGEMM_AVX2_NG
#define FICOCO_QGEMM_AVX2_NG 1
#endif
constexpr int64_t kAvx2RowTile = FICOCO_QGEMM_AVX2_MR;
constexpr int64_t kAvx2GroupTile = FICOCO_QGEMM_AVX2_NG;

// The offset QuantizeRows folds into the accumulator start for the AVX2 path: Q8_0
// multiplies signed weights, so none.
int32_t Avx2Offset(GgmlType t) { return t == GgmlType::Q4_0 ? 8 : 0; }

FICOCO_QGEMM_INLINE __m256i Broadcast4Avx2(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Ends the compiler's freedom to reorder a sum: without it GCC 12 computes all products
// of a block first and adds them as a tree, which needs more than 16 ymm registers and
// spills to the stack. The empty asm claims to read and modify v, so each addition happens
// where it is written and the accumulator stays in one register.
FICOCO_QGEMM_INLINE void KeepInRegister(__m256i& v) { __asm__("" : "+x"(v)); }

// Half h (8 columns) of 64-byte vector v of group block `blk`.
FICOCO_QGEMM_INLINE __m256i LoadHalf(const uint8_t* blk, int v, int h) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + v * 64 + h * 32));
}

// sum[i][h]: int32 per column of half h, the block's 32 products (stored nibbles times
// activations, offset not yet removed) for row i. blk[g]: group g's block, xb[i]: row i's
// 32 quantized activations.
template <int MR, int NG>
FICOCO_QGEMM_INLINE void BlockSumsQ4(const uint8_t* const* blk, const int8_t* const* xb,
                                     __m256i (&sum)[MR][2 * NG]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256i s16[MR][2 * NG];
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2 * NG; ++h) s16[i][h] = _mm256_setzero_si256();
  for (int v = 0; v < 4; ++v) {
    for (int h = 0; h < 2 * NG; ++h) {
      const __m256i raw = LoadHalf(blk[h / 2], v, h % 2);
      const __m256i lo = _mm256_and_si256(raw, low4);                         // elements 4v + t
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);  // elements 16 + 4v + t
      for (int i = 0; i < MR; ++i) {
        const __m256i pl = _mm256_maddubs_epi16(lo, Broadcast4Avx2(xb[i] + 4 * v));
        const __m256i ph = _mm256_maddubs_epi16(hi, Broadcast4Avx2(xb[i] + 16 + 4 * v));
        s16[i][h] = _mm256_add_epi16(s16[i][h], _mm256_add_epi16(pl, ph));
        KeepInRegister(s16[i][h]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2 * NG; ++h) sum[i][h] = _mm256_madd_epi16(s16[i][h], ones);
}

// The same for Q8_0 through the sign trick (exact signed sums, nothing to correct).
template <int MR, int NG>
FICOCO_QGEMM_INLINE void BlockSumsQ8(const uint8_t* const* blk, const int8_t* const* xb,
                                     __m256i (&sum)[MR][2 * NG]) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2 * NG; ++h) sum[i][h] = _mm256_setzero_si256();
  for (int v = 0; v < 8; ++v) {
    for (int h = 0; h < 2 * NG; ++h) {
      const __m256i q = _mm256_xor_si256(LoadHalf(blk[h / 2], v, h % 2), flip);  // signed weights
      const __m256i aq = _mm256_abs_epi8(q);  // |q| as unsigned bytes (-128 -> 128)
      for (int i = 0; i < MR; ++i) {
        const __m256i xs = _mm256_sign_epi8(Broadcast4Avx2(xb[i] + 4 * v), q);  // x * sign(q)
        sum[i][h] = _mm256_add_epi32(sum[i][h], _mm256_madd_epi16(_mm256_maddubs_epi16(aq, xs), ones));
        KeepInRegister(sum[i][h]);
      }
    }
  }
}

// Lanes [0, cols) set: the columns of a half that exist (the last group may be partial).
FICOCO_QGEMM_INLINE __m256i ColumnMask(int64_t cols) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// y rows r0 .. r0+MR-1, column groups g0 .. g0+NG-1, over the whole k: exact integer block
// sums, then per block acc += float(sum) * d_x * d_w, as in the VNNI micro-kernel.
template <int MR, int NG, bool kQ4>
void MicroKernelAvx2(const QuantPackedWeight& w, const QuantRows& a, int64_t r0, int64_t g0, float* y,
                     const float* bias) {
  constexpr int NH = 2 * NG;
  const int64_t nb = w.blocks_per_row(), k = w.k(), bgb = w.block_group_bytes(), n = w.n_out();
  constexpr int64_t wbytes = kQ4 ? 4 * 64 : 8 * 64;
  const uint8_t* wg[NG];
  for (int g = 0; g < NG; ++g) wg[g] = w.data() + (g0 + g) * nb * bgb;
  __m256 facc[MR][NH];
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < NH; ++h) facc[i][h] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk[NG];
    for (int g = 0; g < NG; ++g) blk[g] = wg[g] + b * bgb;
    const int8_t* xb[MR];
    for (int i = 0; i < MR; ++i) xb[i] = a.q.data() + (r0 + i) * k + b * kBlock;
    __m256i sum[MR][NH];
    if constexpr (kQ4)
      BlockSumsQ4<MR, NG>(blk, xb, sum);
    else
      BlockSumsQ8<MR, NG>(blk, xb, sum);
    for (int h = 0; h < NH; ++h) {
      const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(blk[h / 2] + wbytes) + 8 * (h % 2));
      for (int i = 0; i < MR; ++i) {
        const size_t ib = static_cast<size_t>((r0 + i) * nb + b);
        __m256i s = sum[i][h];
        if constexpr (kQ4) s = _mm256_add_epi32(s, _mm256_set1_epi32(a.corr[ib]));
        const __m256 sx = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(a.d[ib]));
        facc[i][h] = _mm256_fmadd_ps(sx, dw, facc[i][h]);
      }
    }
  }
  for (int h = 0; h < NH; ++h) {
    const int64_t c0 = (g0 + h / 2) * kQuantGroup + 8 * (h % 2);
    if (c0 >= n) continue;
    const __m256i mask = ColumnMask(std::min<int64_t>(8, n - c0));
    const __m256 bv = bias ? _mm256_maskload_ps(bias + c0, mask) : _mm256_setzero_ps();
    for (int i = 0; i < MR; ++i) _mm256_maskstore_ps(y + (r0 + i) * n + c0, mask, _mm256_add_ps(facc[i][h], bv));
  }
}

// Runs f.template operator()<R>() with R = rows, 1 <= rows <= kMax: the micro-kernel's
// row count must be a compile-time constant to keep its accumulators in registers.
template <int kMax, class F>
void WithRowCount(int64_t rows, F&& f) {
  if constexpr (kMax > 1) {
    if (rows < kMax) return WithRowCount<kMax - 1>(rows, f);
  }
  f.template operator()<kMax>();
}

template <bool kQ4>
void GemmAvx2(const QuantPackedWeight& w, const QuantRows& a, int64_t m, float* y, const float* bias) {
  ForEachPanelRowTile(w, m, kAvx2RowTile, kAvx2GroupTile, [&](int64_t r0, int64_t rows, int64_t g_begin, int64_t g_end) {
    WithRowCount<kAvx2RowTile>(rows, [&]<int R>() {
      int64_t g = g_begin;
      for (; g + kAvx2GroupTile <= g_end; g += kAvx2GroupTile)
        MicroKernelAvx2<R, kAvx2GroupTile, kQ4>(w, a, r0, g, y, bias);
      for (; g < g_end; ++g) MicroKernelAvx2<R, 1, kQ4>(w, a, r0, g, y, bias);
    });
  });
}
#endif

}  // namespace

int64_t QuantPackedWeight::block_group_bytes() const { return WeightBytesPerBlockGroup(type_) + kQuantGroup * 4; }

bool QuantGemmSupports(GgmlType type) { return type == GgmlType::Q8_0 || type == GgmlType::Q4_0; }

const char* QuantGemmPath() {
#if defined(FICOCO_QGEMM_VNNI)
  return "avx512-vnni";
#elif defined(FICOCO_QGEMM_AVX2)
  return "avx2";
#else
  return "scalar";
#endif
}

QuantPackedWeight PackQuantWeight(GgmlType type, const void* ggml_blocks, int64_t n_out, int64_t k) {
  if (!QuantGemmSupports(type)) Fail("PackQuantWeight: unsupported weight type ", GgmlTypeName(type), " (Q8_0 or Q4_0)");
  if (k <= 0 || k % kBlock != 0) Fail("PackQuantWeight: k = ", k, " is not a positive multiple of 32");
  if (n_out < 1) Fail("PackQuantWeight: n_out = ", n_out, " (must be at least 1)");
  if (ggml_blocks == nullptr) Fail("PackQuantWeight: null block pointer");
  QuantPackedWeight w;
  w.type_ = type;
  w.n_out_ = n_out;
  w.k_ = k;
  const int64_t nb = k / kBlock, bgb = w.block_group_bytes(), groups = w.groups();
  const bool q4 = type == GgmlType::Q4_0;
  const int64_t src_block = q4 ? 18 : 34, wbytes = WeightBytesPerBlockGroup(type);
  w.nbytes_ = static_cast<size_t>(groups * nb * bgb);
  w.data_ = AllocateWeightBuffer(w.nbytes_);
  uint8_t* buf = w.data_.get();
  const auto* src = static_cast<const uint8_t*>(ggml_blocks);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = buf + (g * nb + b) * bgb;  // zero-filled: missing columns stay 0
      auto* scales = reinterpret_cast<float*>(dst + wbytes);
      for (int64_t c = 0; c < kQuantGroup; ++c) {
        const int64_t j = g * kQuantGroup + c;
        if (j >= n_out) break;
        const uint8_t* blk = src + (j * nb + b) * src_block;
        uint16_t h;
        std::memcpy(&h, blk, 2);
        scales[c] = F16ToF32(h);
        if (q4) {
          for (int v = 0; v < 4; ++v) std::memcpy(dst + v * 64 + c * 4, blk + 2 + 4 * v, 4);
        } else {
          for (int v = 0; v < 8; ++v)
            for (int t = 0; t < 4; ++t) dst[v * 64 + c * 4 + t] = blk[2 + 4 * v + t] ^ 0x80;
        }
      }
    }
  }
  return w;
}

void QuantGemmScalar(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias) {
  CheckCall("QuantGemmScalar", w, m);
  const bool q4 = w.type() == GgmlType::Q4_0;
  const int64_t k = w.k(), nb = w.blocks_per_row(), bgb = w.block_group_bytes(), n = w.n_out();
  const int64_t wbytes = WeightBytesPerBlockGroup(w.type());
  const QuantRows a = QuantizeRows(x, m, k, Offset(w.type()));
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n; ++j) {
    const int64_t g = j / kQuantGroup, c = j % kQuantGroup;
    for (int64_t i = 0; i < m; ++i) {
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w.data() + (g * nb + b) * bgb;
        const int8_t* xq = a.q.data() + i * k + b * kBlock;
        int32_t s = a.corr[static_cast<size_t>(i * nb + b)];
        for (int64_t e = 0; e < kBlock; ++e) {
          int32_t u;
          if (q4) {
            const int64_t v = (e % 16) / 4, t = e % 4;
            const uint8_t byte = blk[v * 64 + c * 4 + t];
            u = e < 16 ? (byte & 15) : (byte >> 4);
          } else {
            u = blk[(e / 4) * 64 + c * 4 + e % 4];
          }
          s += u * xq[e];
        }
        float dw;
        std::memcpy(&dw, blk + wbytes + c * 4, 4);
        acc += static_cast<float>(s) * a.d[static_cast<size_t>(i * nb + b)] * dw;
      }
      y[i * n + j] = acc + (bias ? bias[j] : 0.0f);
    }
  }
}

#if defined(FICOCO_QGEMM_AVX2)
void QuantGemmAvx2(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias) {
  CheckCall("QuantGemmAvx2", w, m);
  if (m == 0) return;
  const QuantRows a = QuantizeRows(x, m, w.k(), Avx2Offset(w.type()));
  if (w.type() == GgmlType::Q4_0)
    GemmAvx2<true>(w, a, m, y, bias);
  else
    GemmAvx2<false>(w, a, m, y, bias);
}
#endif

void QuantGemm(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias) {
#if defined(FICOCO_QGEMM_VNNI)
  CheckCall("QuantGemm", w, m);
  if (m == 0) return;
  const QuantRows a = QuantizeRows(x, m, w.k(), Offset(w.type()));
  if (w.type() == GgmlType::Q4_0)
    GemmVnni<true>(w, a, m, y, bias);
  else
    GemmVnni<false>(w, a, m, y, bias);
#elif defined(FICOCO_QGEMM_AVX2)
  QuantGemmAvx2(w, x, m, y, bias);
#else
  QuantGemmScalar(w, x, m, y, bias);
#endif
}

}  // namespace ficoco
