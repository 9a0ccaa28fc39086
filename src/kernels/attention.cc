#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <omp.h>

#include "base/error.h"
#include "kernels/decode_attention.h"
#include "kernels/softmax.h"

namespace ficoco {
namespace {

// Query rows up to which attention reads the keys and values where they are.
constexpr int64_t kInPlaceMaxQueries = 4;

// Decode: a few query rows against the whole cache, read in place (the batched path below
// copies the cache head-major first: reading and writing all of it for a product that reads
// it once). Threads split the positions, not the heads: each then reads whole rows one
// after the other, a stream the hardware prefetcher follows, where a split of the heads gave
// each thread a piece of every row (BM_DecodeAttentionAllLayers, a 7B's f16 cache at 636
// positions, 2 threads: 32-36 ms per step split by heads, 15-24 ms split by positions; see
// docs/quantized.md). Each thread's part is an unnormalised softmax over its positions; the
// parts are then combined, flash-decoding style, rescaled to the common maximum.
void InPlaceAttention(const Matrix& q, const KvRows& k, const KvRows& v, int h, int group, int d, float scale,
                      const AttentionMask& mask, GemmContext::AttentionScratch& scratch, Matrix& out) {
  const int64_t tq = q.rows(), tk = k.rows, hd = static_cast<int64_t>(h) * d;
  const int64_t slots = static_cast<int64_t>(omp_get_max_threads()) * tq;
  scratch.scores.resize(static_cast<size_t>(h * tq * tk));
  scratch.part_out.resize(static_cast<size_t>(slots * hd));
  scratch.part_max.resize(static_cast<size_t>(slots * h));
  scratch.part_sum.resize(static_cast<size_t>(slots * h));
  float* scores = scratch.scores.data();
  float* part_out = scratch.part_out.data();
  float* part_max = scratch.part_max.data();
  float* part_sum = scratch.part_sum.data();
  out.Resize(tq, hd);
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    for (int64_t i = 0; i < tq; ++i) {
      const int64_t visible = mask.causal ? std::min<int64_t>(tk, mask.query_offset + i + 1) : tk;
      const int64_t slot = static_cast<int64_t>(t) * tq + i;
      // scores[(hi * tq + i) * tk + j]: head-major, as the batched path has them
      DecodeAttentionSpan(q.row(i), k, v, h, group, d, visible * t / nt, visible * (t + 1) / nt, scale,
                          mask.key_bias, scores + i * tk, tq * tk, part_out + slot * hd, part_max + slot * h,
                          part_sum + slot * h);
    }
#pragma omp barrier
    // out = Σ_parts e^(m_part - m) · part_out / Σ_parts e^(m_part - m) · part_sum, heads split.
    const int h0 = static_cast<int>(static_cast<int64_t>(h) * t / nt);
    const int h1 = static_cast<int>(static_cast<int64_t>(h) * (t + 1) / nt);
    for (int64_t i = 0; i < tq; ++i) {
      for (int hi = h0; hi < h1; ++hi) {
        float m = -std::numeric_limits<float>::infinity();
        for (int u = 0; u < nt; ++u) m = std::max(m, part_max[(u * tq + i) * h + hi]);
        float* o = out.row(i) + static_cast<int64_t>(hi) * d;
        std::fill_n(o, d, 0.0f);
        float denominator = 0.0f;
        for (int u = 0; u < nt; ++u) {
          const int64_t slot = static_cast<int64_t>(u) * tq + i;
          if (part_sum[slot * h + hi] == 0.0f) continue;  // nothing visible in that part
          const float w = std::exp(part_max[slot * h + hi] - m);
          denominator += w * part_sum[slot * h + hi];
          const float* po = part_out + slot * hd + static_cast<int64_t>(hi) * d;
          for (int c = 0; c < d; ++c) o[c] += w * po[c];
        }
        if (denominator > 0.0f)
          for (int c = 0; c < d; ++c) o[c] /= denominator;
      }
    }
  }
}

}  // namespace

void MultiHeadAttention(GemmContext& gemm, const Matrix& q, const Matrix& k, const Matrix& v,
                        const AttentionShape& shape, const AttentionMask& mask, Matrix& out,
                        std::vector<float>* probs) {
  MultiHeadAttention(gemm, q, KvRows::Of(k), KvRows::Of(v), shape, mask, out, probs);
}

void MultiHeadAttention(GemmContext& gemm, const Matrix& q, const KvRows& k, const KvRows& v,
                        const AttentionShape& shape, const AttentionMask& mask, Matrix& out,
                        std::vector<float>* probs) {
  const int64_t tq = q.rows(), tk = k.rows;
  const int h = shape.num_heads, hkv = shape.num_kv_heads, d = shape.head_dim;
  if (q.cols() != static_cast<int64_t>(h) * d || k.cols != static_cast<int64_t>(hkv) * d || v.cols != k.cols ||
      v.rows != tk || h % hkv != 0 || v.type != k.type)
    Fail("MultiHeadAttention: inconsistent shapes q ", q.rows(), "x", q.cols(), " k ", k.rows, "x", k.cols);
  const int group = h / hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  if (mask.key_bias != nullptr && static_cast<int64_t>(mask.key_bias->size()) != tk)
    Fail("MultiHeadAttention: key bias has ", mask.key_bias->size(), " entries for ", tk, " keys");

  GemmContext::AttentionScratch& scratch = gemm.attention_scratch();
  if (tq <= kInPlaceMaxQueries && probs == nullptr) {
    InPlaceAttention(q, k, v, h, group, d, scale, mask, scratch, out);
    return;
  }
  // Head-major copies [H, T, d] so each head is one contiguous operand.
  std::vector<float>& qh = scratch.q;
  std::vector<float>& kh = scratch.k;
  std::vector<float>& vh = scratch.v;
  qh.resize(static_cast<size_t>(h * tq * d));
  kh.resize(static_cast<size_t>(h * tk * d));
  vh.resize(static_cast<size_t>(h * tk * d));
#pragma omp parallel for collapse(2) schedule(static)
  for (int hi = 0; hi < h; ++hi) {
    for (int64_t t = 0; t < std::max(tq, tk); ++t) {
      if (t < tq) {
        const float* src = q.row(t) + hi * d;
        float* dst = qh.data() + (hi * tq + t) * d;
        for (int i = 0; i < d; ++i) dst[i] = src[i] * scale;
      }
      if (t < tk) {
        const int kvh = hi / group;
        k.Read(t, kvh * d, d, kh.data() + (hi * tk + t) * d);
        v.Read(t, kvh * d, d, vh.data() + (hi * tk + t) * d);
      }
    }
  }
  std::vector<float>& scores = scratch.scores;
  scores.resize(static_cast<size_t>(h * tq * tk));
  gemm.BatchedMatMulF32(h, tq, tk, d, qh.data(), kh.data(), /*trans_b=*/true, scores.data());

#pragma omp parallel for collapse(2) schedule(static)
  for (int hi = 0; hi < h; ++hi) {
    for (int64_t i = 0; i < tq; ++i) {
      float* row = scores.data() + (hi * tq + i) * tk;
      const int64_t visible = mask.causal ? std::min<int64_t>(tk, mask.query_offset + i + 1) : tk;
      if (mask.key_bias != nullptr)
        for (int64_t j = 0; j < visible; ++j) row[j] += (*mask.key_bias)[static_cast<size_t>(j)];
      SoftmaxRow(row, visible);
      for (int64_t j = visible; j < tk; ++j) row[j] = 0.0f;
    }
  }
  if (probs != nullptr) *probs = scores;

  std::vector<float>& oh = scratch.out;
  oh.resize(static_cast<size_t>(h * tq * d));
  gemm.BatchedMatMulF32(h, tq, d, tk, scores.data(), vh.data(), /*trans_b=*/false, oh.data());
  out.Resize(tq, static_cast<int64_t>(h) * d);
#pragma omp parallel for collapse(2) schedule(static)
  for (int hi = 0; hi < h; ++hi)
    for (int64_t t = 0; t < tq; ++t) std::copy_n(oh.data() + (hi * tq + t) * d, d, out.row(t) + hi * d);
}

}  // namespace ficoco
