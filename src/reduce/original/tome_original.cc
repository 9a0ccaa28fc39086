#include "reduce/original/tome_original.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/error.h"

namespace ficoco::original {

void TomeMerge(VisionHookContext& ctx, int64_t r) {
  Matrix& x = ctx.hidden;
  std::vector<TokenMeta>& meta = ctx.meta;
  const int64_t t = x.rows(), dim = x.cols();
  if (t == 0 || meta[0].role != TokenRole::Cls) Fail("ToMe (original): expects [CLS] at row 0");

  // 1. At most half of the tokens besides [CLS] can merge.
  r = std::min<int64_t>(r, (t - 1) / 2);
  if (r <= 0) return;

  // 2. Metric: the layer's keys averaged over the heads, each row L2-normalised.
  const Matrix& keys = ctx.attention.keys();
  const int heads = ctx.attention.shape().num_kv_heads, hd = ctx.attention.shape().head_dim;
  std::vector<float> metric(static_cast<size_t>(t * hd));
  for (int64_t i = 0; i < t; ++i) {
    float* m = metric.data() + i * hd;
    for (int c = 0; c < hd; ++c) {
      float sum = 0;
      for (int h = 0; h < heads; ++h) sum += keys.at(i, static_cast<int64_t>(h) * hd + c);
      m[c] = sum / static_cast<float>(heads);
    }
    float norm = 0;
    for (int c = 0; c < hd; ++c) norm += m[c] * m[c];
    norm = std::sqrt(norm);
    if (norm > 0)
      for (int c = 0; c < hd; ++c) m[c] /= norm;
  }

  // 3. Alternate split: set A = positions 0, 2, 4, …; set B = positions 1, 3, 5, ….
  std::vector<int64_t> set_a, set_b;
  for (int64_t i = 0; i < t; ++i) (i % 2 == 0 ? set_a : set_b).push_back(i);

  // 4–5. Cosine of every A token to every B token; row 0 ([CLS]) is −∞ so it never
  // merges. best(a) = max over B, dst(a) = its argmax (the first one on ties).
  const float neg_inf = -std::numeric_limits<float>::infinity();
  std::vector<float> node_max(set_a.size(), neg_inf);
  std::vector<size_t> node_idx(set_a.size(), 0);
  for (size_t ia = 1; ia < set_a.size(); ++ia) {
    const float* ma = metric.data() + set_a[ia] * hd;
    for (size_t ib = 0; ib < set_b.size(); ++ib) {
      const float* mb = metric.data() + set_b[ib] * hd;
      float s = 0;
      for (int c = 0; c < hd; ++c) s += ma[c] * mb[c];
      if (ib == 0 || s > node_max[ia]) {
        node_max[ia] = s;
        node_idx[ia] = ib;
      }
    }
  }

  // 6. Sort A by best similarity, descending (ties keep A order); the first r are the
  // sources, the rest stay unmerged and go back to A order so [CLS] stays first.
  std::vector<size_t> edge_idx(set_a.size());
  std::iota(edge_idx.begin(), edge_idx.end(), 0);
  std::stable_sort(edge_idx.begin(), edge_idx.end(), [&](size_t i, size_t j) { return node_max[i] > node_max[j]; });
  std::vector<size_t> src_idx(edge_idx.begin(), edge_idx.begin() + r);
  std::vector<size_t> unm_idx(edge_idx.begin() + r, edge_idx.end());
  std::sort(unm_idx.begin(), unm_idx.end());

  // 7. Size-weighted merge into B: x_b ← (σ_b x_b + Σ σ_a x_a) / (σ_b + Σ σ_a), and
  // σ_b ← σ_b + Σ σ_a (sums of size-scaled rows, then one division).
  std::vector<float> weighted(set_b.size() * static_cast<size_t>(dim));
  std::vector<float> size_b(set_b.size());
  for (size_t ib = 0; ib < set_b.size(); ++ib) {
    const float s = meta[static_cast<size_t>(set_b[ib])].size;
    size_b[ib] = s;
    for (int64_t c = 0; c < dim; ++c) weighted[ib * dim + c] = s * x.at(set_b[ib], c);
  }
  for (size_t ia : src_idx) {
    const size_t ib = node_idx[ia];
    const float s = meta[static_cast<size_t>(set_a[ia])].size;
    size_b[ib] += s;
    for (int64_t c = 0; c < dim; ++c) weighted[ib * dim + c] += s * x.at(set_a[ia], c);
  }

  // 8. New sequence: [unmerged A tokens, all B tokens in their original order].
  Matrix out(static_cast<int64_t>(unm_idx.size() + set_b.size()), dim);
  std::vector<TokenMeta> out_meta;
  int64_t row = 0;
  for (size_t ia : unm_idx) {
    std::copy_n(x.row(set_a[ia]), dim, out.row(row++));
    out_meta.push_back(meta[static_cast<size_t>(set_a[ia])]);
  }
  for (size_t ib = 0; ib < set_b.size(); ++ib) {
    for (int64_t c = 0; c < dim; ++c) out.at(row, c) = weighted[ib * dim + c] / size_b[ib];
    ++row;
    out_meta.push_back(meta[static_cast<size_t>(set_b[ib])]);
    out_meta.back().size = size_b[ib];
  }
  x = std::move(out);
  meta = std::move(out_meta);
}

VisionLayerHook TomeHook(std::vector<int> merges_per_layer) {
  return [merges = std::move(merges_per_layer)](VisionHookContext& ctx) {
    const auto l = static_cast<size_t>(ctx.layer);
    if (l < merges.size() && merges[l] > 0) TomeMerge(ctx, merges[l]);
  };
}

}  // namespace ficoco::original
