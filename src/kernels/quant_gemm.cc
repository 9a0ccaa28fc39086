#include "kernels/quant_gemm.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "base/error.h"
#include "base/weight_buffer.h"
#include "kernels/quant_gemv.h"
#include "kernels/simd.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

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

// The packed layouts of quant_gemm.h. Q4_1 and Q4_K share Q4M: per block of 32 both are
// "scale times an unsigned nibble plus a min".
enum class Layout { kQ8, kQ4, kQ4M, kQ6 };

Layout LayoutOf(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return Layout::kQ4;
    case GgmlType::Q4_1: case GgmlType::Q4_K: return Layout::kQ4M;
    case GgmlType::Q6_K: return Layout::kQ6;
    default: return Layout::kQ8;
  }
}

constexpr bool IsNibbles(Layout l) { return l == Layout::kQ4 || l == Layout::kQ4M; }
// Bytes of weight codes per group and block: 32 k-values x 16 columns, 4 or 8 bits each.
constexpr int64_t WeightBytes(Layout l) { return IsNibbles(l) ? 4 * 64 : 8 * 64; }
// Q6 scales each 16-element half of a block separately; the others one scale per block.
constexpr int Parts(Layout l) { return l == Layout::kQ6 ? 2 : 1; }
// Rows of 16 float32 after the codes: scales (one row per part), plus Q4M's mins.
constexpr int64_t FloatRows(Layout l) { return l == Layout::kQ8 || l == Layout::kQ4 ? 1 : 2; }
// The unsigned storage offset the VNNI and scalar paths remove through the accumulator.
constexpr int32_t Offset(Layout l) {
  return l == Layout::kQ4 ? 8 : l == Layout::kQ8 ? 128 : l == Layout::kQ6 ? 32 : 0;
}

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

// The activation rows of one call, quantized to blocks of 32, with what each layout
// needs of their sums: `corr` starts the integer accumulator of each block part
// (-offset * the part's sum; parts = 1, or 2 halves of 16 for Q6) and, for Q4M,
// `dsum` = d_x * (block sum), the factor of the weight's min.
struct QuantRows {
  std::vector<int8_t> q;      // [m, k]
  std::vector<float> d;       // [m, nb] block scales
  std::vector<int32_t> corr;  // [m, nb * parts] accumulator starts
  std::vector<float> dsum;    // [m, nb] Q4M only
};

QuantRows QuantizeRows(const float* x, int64_t m, int64_t k, int32_t offset, int parts, bool scaled_sums) {
  const int64_t nb = k / kBlock, part_len = kBlock / parts;
  QuantRows a;
  a.q.resize(static_cast<size_t>(m * k));
  a.d.resize(static_cast<size_t>(m * nb));
  a.corr.resize(static_cast<size_t>(m * nb * parts));
  if (scaled_sums) a.dsum.resize(static_cast<size_t>(m * nb));
#pragma omp parallel for schedule(static) if (m > 8)
  for (int64_t i = 0; i < m; ++i) {
    int8_t* q = a.q.data() + i * k;
    QuantizeActivationRow(x + i * k, k, q, a.d.data() + i * nb);
    for (int64_t b = 0; b < nb; ++b) {
      int32_t block_sum = 0;
      for (int p = 0; p < parts; ++p) {
        int32_t s = 0;
        for (int64_t t = 0; t < part_len; ++t) s += q[b * kBlock + p * part_len + t];
        a.corr[static_cast<size_t>((i * nb + b) * parts + p)] = -offset * s;
        block_sum += s;
      }
      if (scaled_sums)
        a.dsum[static_cast<size_t>(i * nb + b)] = a.d[static_cast<size_t>(i * nb + b)] * static_cast<float>(block_sum);
    }
  }
  return a;
}

// The activations as the VNNI and scalar paths use them for layout l.
QuantRows QuantizeRowsFor(Layout l, const float* x, int64_t m, int64_t k) {
  return QuantizeRows(x, m, k, Offset(l), Parts(l), l == Layout::kQ4M);
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

// y rows r0 .. r0+MR-1, column groups g0 .. g0+NG-1, over the whole k: integer sums of
// each block part with vpdpbusd (16 columns x 4 k-values per instruction), then per part
// acc += float(sum) * d_x * scale_w, and for Q4M per block acc += (d_x * sum x) * min_w.
template <int MR, int NG, Layout L>
void MicroKernel(const QuantPackedWeight& w, const QuantRows& a, int64_t r0, int64_t g0, int64_t m_stride,
                 float* y, int64_t n_out, const float* bias) {
  const int64_t nb = w.blocks_per_row(), k = w.k(), bgb = w.block_group_bytes();
  constexpr int64_t wbytes = WeightBytes(L);
  constexpr int kP = Parts(L);
  constexpr int kVecsPerPart = 8 / kP;  // byte layouts: 8 vectors of 4 k-values per block
  const int8_t* xq[MR];
  const float* dx[MR];
  const int32_t* corr[MR];
  for (int i = 0; i < MR; ++i) {
    xq[i] = a.q.data() + (r0 + i) * k;
    dx[i] = a.d.data() + (r0 + i) * nb;
    corr[i] = a.corr.data() + (r0 + i) * nb * kP;
  }
  const uint8_t* wg[NG];
  for (int g = 0; g < NG; ++g) wg[g] = w.data() + (g0 + g) * nb * bgb;
  __m512 facc[MR][NG];
  for (int i = 0; i < MR; ++i)
    for (int g = 0; g < NG; ++g) facc[i][g] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    // One part of the block (the whole block, or one Q6 half): the part index is a
    // template argument so every loop below has constant bounds and is fully unrolled,
    // keeping the accumulators in registers.
    auto block_part = [&]<int part>() __attribute__((always_inline)) {
      __m512i acc[MR][NG];
      for (int i = 0; i < MR; ++i)
        for (int g = 0; g < NG; ++g)
          acc[i][g] = L == Layout::kQ4M ? _mm512_setzero_si512() : _mm512_set1_epi32(corr[i][b * kP + part]);
      if constexpr (IsNibbles(L)) {
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
        for (int v = part * kVecsPerPart; v < (part + 1) * kVecsPerPart; ++v) {
          __m512i wv[NG];
          for (int g = 0; g < NG; ++g) wv[g] = _mm512_load_si512(wg[g] + b * bgb + v * 64);
          for (int i = 0; i < MR; ++i) {
            const __m512i xv = Broadcast4(xq[i] + b * kBlock + 4 * v);
            for (int g = 0; g < NG; ++g) acc[i][g] = _mm512_dpbusd_epi32(acc[i][g], wv[g], xv);
          }
        }
      }
      for (int g = 0; g < NG; ++g) {
        const __m512 dw = _mm512_load_ps(reinterpret_cast<const float*>(wg[g] + b * bgb + wbytes) + 16 * part);
        for (int i = 0; i < MR; ++i) {
          const __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][g]), _mm512_set1_ps(dx[i][b]));
          facc[i][g] = _mm512_fmadd_ps(s, dw, facc[i][g]);
        }
      }
    };
    block_part.template operator()<0>();
    if constexpr (kP == 2) block_part.template operator()<1>();
    if constexpr (L == Layout::kQ4M) {
      for (int g = 0; g < NG; ++g) {
        const __m512 mw = _mm512_load_ps(reinterpret_cast<const float*>(wg[g] + b * bgb + wbytes) + 16);
        for (int i = 0; i < MR; ++i)
          facc[i][g] = _mm512_fmadd_ps(_mm512_set1_ps(a.dsum[static_cast<size_t>((r0 + i) * nb + b)]), mw, facc[i][g]);
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

template <Layout L, int NG>
void RowTile(const QuantPackedWeight& w, const QuantRows& a, int64_t r0, int64_t rows, int64_t g0, float* y,
             const float* bias) {
  const int64_t n = w.n_out();
  switch (rows) {
    case 1: return MicroKernel<1, NG, L>(w, a, r0, g0, n, y, n, bias);
    case 2: return MicroKernel<2, NG, L>(w, a, r0, g0, n, y, n, bias);
    case 3: return MicroKernel<3, NG, L>(w, a, r0, g0, n, y, n, bias);
#if FICOCO_QGEMM_MR > 4
    case 4: return MicroKernel<4, NG, L>(w, a, r0, g0, n, y, n, bias);
    case 5: return MicroKernel<5, NG, L>(w, a, r0, g0, n, y, n, bias);
#endif
#if FICOCO_QGEMM_MR > 6
    case 6: return MicroKernel<6, NG, L>(w, a, r0, g0, n, y, n, bias);
    case 7: return MicroKernel<7, NG, L>(w, a, r0, g0, n, y, n, bias);
#endif
    default: return MicroKernel<FICOCO_QGEMM_MR, NG, L>(w, a, r0, g0, n, y, n, bias);
  }
}

template <Layout L>
void GemmVnni(const QuantPackedWeight& w, const QuantRows& a, int64_t m, float* y, const float* bias) {
  const int64_t n = w.n_out();
  if (m == 1) {
    // One row (decode) streams the weights once with no reuse, so what limits it is how many
    // loads are in flight. Each group's integer sum is a chain of dependent vpdpbusd (8 per
    // block); with the prefill tile's 2 groups, the chains' latency, not memory, set the
    // pace. More groups per call give the core more independent chains.
    ForEachPanelRowTile(w, 1, 1, kDecodeGroupTile, [&](int64_t, int64_t, int64_t g_begin, int64_t g_end) {
      int64_t g = g_begin;
      for (; g + kDecodeGroupTile <= g_end; g += kDecodeGroupTile)
        MicroKernel<1, kDecodeGroupTile, L>(w, a, 0, g, n, y, n, bias);
      for (; g < g_end; ++g) MicroKernel<1, 1, L>(w, a, 0, g, n, y, n, bias);
    });
    return;
  }
  ForEachPanelRowTile(w, m, kMaxRowTile, kGroupTile, [&](int64_t r0, int64_t rows, int64_t g_begin, int64_t g_end) {
    int64_t g = g_begin;
    for (; g + kGroupTile <= g_end; g += kGroupTile) RowTile<L, kGroupTile>(w, a, r0, rows, g, y, bias);
    for (; g < g_end; ++g) RowTile<L, 1>(w, a, r0, rows, g, y, bias);
  });
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
//   Q4M (Q4_1, Q4_K): the same nibble sums as Q4_0 (codes 0..15); the codes are the
//     unsigned factor already, so there is no offset, and the min enters per block in float.
//   Q6 (Q6_K): the stored code q (0..63) is the unsigned operand, offset 32 removed per
//     16-element half like Q4_0's. A pair is at most 2 * 63 * 127 = 16002, so two
//     vpmaddubsw results (<= 32004) share an int16 lane before widening; four would not.
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
// multiplies signed weights, so none; the others as in the VNNI path.
int32_t Avx2Offset(Layout l) { return l == Layout::kQ8 ? 0 : Offset(l); }

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

// Q6: the sums of 16-element half `part` of the block (vectors 4 part .. 4 part + 3),
// unsigned codes times activations, offset not yet removed. Two vpmaddubsw results are
// added in int16 (<= 32004) before each widening.
template <int MR, int NG>
FICOCO_QGEMM_INLINE void PartSumsQ6(const uint8_t* const* blk, const int8_t* const* xb, int part,
                                    __m256i (&sum)[MR][2 * NG]) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2 * NG; ++h) sum[i][h] = _mm256_setzero_si256();
  for (int v = 4 * part; v < 4 * part + 4; v += 2) {
    for (int h = 0; h < 2 * NG; ++h) {
      const __m256i w0 = LoadHalf(blk[h / 2], v, h % 2), w1 = LoadHalf(blk[h / 2], v + 1, h % 2);
      for (int i = 0; i < MR; ++i) {
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w0, Broadcast4Avx2(xb[i] + 4 * v)),
                                           _mm256_maddubs_epi16(w1, Broadcast4Avx2(xb[i] + 4 * v + 4)));
        sum[i][h] = _mm256_add_epi32(sum[i][h], _mm256_madd_epi16(p, ones));
        KeepInRegister(sum[i][h]);
      }
    }
  }
}

// Lanes [0, cols) set: the columns of a half that exist (the last group may be partial).
FICOCO_QGEMM_INLINE __m256i ColumnMask(int64_t cols) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// y rows r0 .. r0+MR-1, column groups g0 .. g0+NG-1, over the whole k: exact integer sums
// per block part, then per part acc += float(sum) * d_x * scale_w (plus Q4M's min term),
// as in the VNNI micro-kernel.
template <int MR, int NG, Layout L>
void MicroKernelAvx2(const QuantPackedWeight& w, const QuantRows& a, int64_t r0, int64_t g0, float* y,
                     const float* bias) {
  constexpr int NH = 2 * NG;
  constexpr int kP = Parts(L);
  const int64_t nb = w.blocks_per_row(), k = w.k(), bgb = w.block_group_bytes(), n = w.n_out();
  constexpr int64_t wbytes = WeightBytes(L);
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
    // As in the VNNI kernel, the part is a template argument: constant loop bounds.
    auto block_part = [&]<int part>() __attribute__((always_inline)) {
      __m256i sum[MR][NH];
      if constexpr (IsNibbles(L))
        BlockSumsQ4<MR, NG>(blk, xb, sum);
      else if constexpr (L == Layout::kQ6)
        PartSumsQ6<MR, NG>(blk, xb, part, sum);
      else
        BlockSumsQ8<MR, NG>(blk, xb, sum);
      for (int h = 0; h < NH; ++h) {
        const __m256 dw =
            _mm256_load_ps(reinterpret_cast<const float*>(blk[h / 2] + wbytes) + 16 * part + 8 * (h % 2));
        for (int i = 0; i < MR; ++i) {
          const size_t ib = static_cast<size_t>((r0 + i) * nb + b);
          __m256i s = sum[i][h];
          if constexpr (L == Layout::kQ4 || L == Layout::kQ6)
            s = _mm256_add_epi32(s, _mm256_set1_epi32(a.corr[ib * kP + part]));
          const __m256 sx = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(a.d[ib]));
          facc[i][h] = _mm256_fmadd_ps(sx, dw, facc[i][h]);
        }
      }
    };
    block_part.template operator()<0>();
    if constexpr (kP == 2) block_part.template operator()<1>();
    if constexpr (L == Layout::kQ4M) {
      for (int h = 0; h < NH; ++h) {
        const __m256 mw = _mm256_load_ps(reinterpret_cast<const float*>(blk[h / 2] + wbytes) + 16 + 8 * (h % 2));
        for (int i = 0; i < MR; ++i)
          facc[i][h] = _mm256_fmadd_ps(_mm256_set1_ps(a.dsum[static_cast<size_t>((r0 + i) * nb + b)]), mw, facc[i][h]);
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

template <Layout L>
void GemmAvx2(const QuantPackedWeight& w, const QuantRows& a, int64_t m, float* y, const float* bias) {
  ForEachPanelRowTile(w, m, kAvx2RowTile, kAvx2GroupTile, [&](int64_t r0, int64_t rows, int64_t g_begin, int64_t g_end) {
    WithRowCount<kAvx2RowTile>(rows, [&]<int R>() {
      int64_t g = g_begin;
      for (; g + kAvx2GroupTile <= g_end; g += kAvx2GroupTile)
        MicroKernelAvx2<R, kAvx2GroupTile, L>(w, a, r0, g, y, bias);
      for (; g < g_end; ++g) MicroKernelAvx2<R, 1, L>(w, a, r0, g, y, bias);
    });
  });
}
#endif

// Runs f.template operator()<L>() with L = l: kernels are compiled per layout.
template <class F>
void WithLayout(Layout l, F&& f) {
  switch (l) {
    case Layout::kQ8: return f.template operator()<Layout::kQ8>();
    case Layout::kQ4: return f.template operator()<Layout::kQ4>();
    case Layout::kQ4M: return f.template operator()<Layout::kQ4M>();
    case Layout::kQ6: return f.template operator()<Layout::kQ6>();
  }
}

// ---- Packing --------------------------------------------------------------------------
// `blk` is one group's block of 32 k-values (block_group_bytes long, zeroed); c the column.

// Codes q[0..31] (element order, 0..15) into the Q4 nibble layout.
void PutNibbleCodes(const uint8_t* q, uint8_t* blk, int64_t c) {
  for (int v = 0; v < 4; ++v)
    for (int t = 0; t < 4; ++t)
      blk[v * 64 + c * 4 + t] = static_cast<uint8_t>(q[4 * v + t] | (q[16 + 4 * v + t] << 4));
}

// ggml's Q4_0 / Q4_1 nibble bytes (byte i = element i | element i + 16 << 4) are already
// the Q4 layout's pairs: 4-byte pieces are copied.
void PutGgmlNibbles(const uint8_t* qs, uint8_t* blk, int64_t c) {
  for (int v = 0; v < 4; ++v) std::memcpy(blk + v * 64 + c * 4, qs + 4 * v, 4);
}

// Byte codes q[0..31] (element order) into the Q8 / Q6 byte layout.
void PutByteCodes(const uint8_t* q, uint8_t* blk, int64_t c) {
  for (int e = 0; e < kBlock; ++e) blk[(e / 4) * 64 + c * 4 + e % 4] = q[e];
}

// Row `row` of the 16-float rows after the codes (scales, then Q6's second scales or
// Q4M's mins).
void PutFloat(uint8_t* blk, Layout l, int row, int64_t c, float v) {
  std::memcpy(blk + WeightBytes(l) + row * 64 + c * 4, &v, 4);
}
float GetFloat(const uint8_t* blk, Layout l, int row, int64_t c) {
  float v;
  std::memcpy(&v, blk + WeightBytes(l) + row * 64 + c * 4, 4);
  return v;
}

// One weight row (n_out index j = column c of `group`) of ggml blocks into the group's
// packed blocks (nb of them, bgb bytes apart).
void PackColumn(GgmlType type, const uint8_t* row, uint8_t* group, int64_t c, int64_t nb, int64_t bgb) {
  const Layout l = LayoutOf(type);
  switch (type) {
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* src = row + b * 34;
        uint8_t q[kBlock];
        for (int e = 0; e < kBlock; ++e) q[e] = src[2 + e] ^ 0x80;  // signed value + 128
        PutByteCodes(q, group + b * bgb, c);
        PutFloat(group + b * bgb, l, 0, c, F16ToF32At(src));
      }
      return;
    case GgmlType::Q4_0:
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* src = row + b * 18;
        PutGgmlNibbles(src + 2, group + b * bgb, c);
        PutFloat(group + b * bgb, l, 0, c, F16ToF32At(src));
      }
      return;
    case GgmlType::Q4_1:  // d, m, qs: weight = d * q + m
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* src = row + b * 20;
        PutGgmlNibbles(src + 4, group + b * bgb, c);
        PutFloat(group + b * bgb, l, 0, c, F16ToF32At(src));
        PutFloat(group + b * bgb, l, 1, c, F16ToF32At(src + 2));
      }
      return;
    case GgmlType::Q4_K:  // 8 blocks of 32 per super-block: scale * q - min
      for (int64_t sb = 0; sb < nb / 8; ++sb) {
        uint8_t q[256];
        float scale[8], min[8];
        UnpackQ4_K(row + sb * 144, q, scale, min);
        for (int j = 0; j < 8; ++j) {
          uint8_t* blk = group + (sb * 8 + j) * bgb;
          PutNibbleCodes(q + 32 * j, blk, c);
          PutFloat(blk, l, 0, c, scale[j]);
          PutFloat(blk, l, 1, c, -min[j]);
        }
      }
      return;
    case GgmlType::Q6_K:  // 8 blocks of 32 per super-block, a scale per 16 elements
      for (int64_t sb = 0; sb < nb / 8; ++sb) {
        uint8_t q[256];
        float scale[16];
        UnpackQ6_K(row + sb * 210, q, scale);
        for (int j = 0; j < 8; ++j) {
          uint8_t* blk = group + (sb * 8 + j) * bgb;
          PutByteCodes(q + 32 * j, blk, c);
          PutFloat(blk, l, 0, c, scale[2 * j]);
          PutFloat(blk, l, 1, c, scale[2 * j + 1]);
        }
      }
      return;
    default:
      Fail("PackQuantWeight: unsupported weight type ", GgmlTypeName(type));
  }
}

// The stored (unsigned) code of column c, element e of a packed block.
int32_t StoredCode(Layout l, const uint8_t* blk, int64_t c, int64_t e) {
  if (IsNibbles(l)) {
    const uint8_t byte = blk[((e % 16) / 4) * 64 + c * 4 + e % 4];
    return e < 16 ? (byte & 15) : (byte >> 4);
  }
  return blk[(e / 4) * 64 + c * 4 + e % 4];
}

}  // namespace

int64_t QuantPackedWeight::block_group_bytes() const {
  const Layout l = LayoutOf(type_);
  return WeightBytes(l) + FloatRows(l) * kQuantGroup * 4;
}

bool QuantGemmSupports(GgmlType type) {
  return type == GgmlType::Q8_0 || type == GgmlType::Q4_0 || type == GgmlType::Q4_1 || type == GgmlType::Q4_K ||
         type == GgmlType::Q6_K;
}

const char* QuantGemmSupportedNames() { return "Q8_0, Q4_0, Q4_1, Q4_K or Q6_K"; }

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
  if (!QuantGemmSupports(type))
    Fail("PackQuantWeight: unsupported weight type ", GgmlTypeName(type), " (", QuantGemmSupportedNames(), ")");
  const auto block_elems = static_cast<int64_t>(QuantBlockElements(type));
  if (k <= 0 || k % block_elems != 0)
    Fail("PackQuantWeight: k = ", k, " is not a positive multiple of ", block_elems, " (the ", GgmlTypeName(type),
         " block)");
  if (n_out < 1) Fail("PackQuantWeight: n_out = ", n_out, " (must be at least 1)");
  if (ggml_blocks == nullptr) Fail("PackQuantWeight: null block pointer");
  QuantPackedWeight w;
  w.type_ = type;
  w.n_out_ = n_out;
  w.k_ = k;
  const int64_t nb = k / kBlock, bgb = w.block_group_bytes(), groups = w.groups();
  const size_t row_bytes = QuantRowBytes(type, k);
  w.nbytes_ = static_cast<size_t>(groups * nb * bgb);
  w.data_ = AllocateWeightBuffer(w.nbytes_);
  uint8_t* buf = w.data_.get();
  const auto* src = static_cast<const uint8_t*>(ggml_blocks);
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    uint8_t* group = buf + g * nb * bgb;  // zero-filled: a last group's missing columns stay 0
    for (int64_t c = 0; c < kQuantGroup && g * kQuantGroup + c < n_out; ++c)
      PackColumn(type, src + static_cast<size_t>(g * kQuantGroup + c) * row_bytes, group, c, nb, bgb);
  }
  return w;
}

void QuantGemmScalar(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias) {
  CheckCall("QuantGemmScalar", w, m);
  const Layout l = LayoutOf(w.type());
  const int parts = Parts(l);
  const int64_t part_len = kBlock / parts;
  const int64_t k = w.k(), nb = w.blocks_per_row(), bgb = w.block_group_bytes(), n = w.n_out();
  const QuantRows a = QuantizeRowsFor(l, x, m, k);
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n; ++j) {
    const int64_t g = j / kQuantGroup, c = j % kQuantGroup;
    for (int64_t i = 0; i < m; ++i) {
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = w.data() + (g * nb + b) * bgb;
        const int8_t* xq = a.q.data() + i * k + b * kBlock;
        const size_t ib = static_cast<size_t>(i * nb + b);
        for (int p = 0; p < parts; ++p) {
          int32_t s = a.corr[ib * parts + p];
          for (int64_t e = p * part_len; e < (p + 1) * part_len; ++e) s += StoredCode(l, blk, c, e) * xq[e];
          acc += static_cast<float>(s) * a.d[ib] * GetFloat(blk, l, p, c);
        }
        if (l == Layout::kQ4M) acc += a.dsum[ib] * GetFloat(blk, l, 1, c);
      }
      y[i * n + j] = acc + (bias ? bias[j] : 0.0f);
    }
  }
}

#if defined(FICOCO_QGEMM_AVX2)
void QuantGemmAvx2(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias) {
  CheckCall("QuantGemmAvx2", w, m);
  if (m == 0) return;
  const Layout l = LayoutOf(w.type());
  const QuantRows a = QuantizeRows(x, m, w.k(), Avx2Offset(l), Parts(l), l == Layout::kQ4M);
  WithLayout(l, [&]<Layout L>() { GemmAvx2<L>(w, a, m, y, bias); });
}
#endif

void QuantGemm(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias) {
#if defined(FICOCO_QGEMM_VNNI)
  CheckCall("QuantGemm", w, m);
  if (m == 0) return;
  const Layout l = LayoutOf(w.type());
  const QuantRows a = QuantizeRowsFor(l, x, m, w.k());
  WithLayout(l, [&]<Layout L>() { GemmVnni<L>(w, a, m, y, bias); });
#elif defined(FICOCO_QGEMM_AVX2)
  QuantGemmAvx2(w, x, m, y, bias);
#else
  QuantGemmScalar(w, x, m, y, bias);
#endif
}

}  // namespace ficoco
