#include "reduce/original/evit_original.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"

namespace ficoco::original {

void EvitReorganize(VisionHookContext& ctx, int64_t left_tokens, bool fuse, bool proportional_attention) {
  Matrix& x = ctx.hidden;
  std::vector<TokenMeta>& meta = ctx.meta;
  const int64_t t = x.rows(), dim = x.cols(), n = t - 1;  // n tokens besides [CLS]
  if (t == 0 || meta[0].role != TokenRole::Cls) Fail("EViT (original): expects [CLS] at row 0");
  if (left_tokens < (fuse ? 0 : 1) || left_tokens > n)
    Fail("EViT (original): cannot keep ", left_tokens, " of ", n, " tokens");
  if (left_tokens == n) return;  // nothing to reorganise

  // cls_attn[j] = mean over heads of softmax_j(q_0 · k_j / √d [+ log σ_j]): the [CLS]
  // row of this layer's attention, for every token j = 1 .. t−1.
  const Matrix& q = ctx.attention.queries();
  const Matrix& k = ctx.attention.keys();
  const AttentionShape& shape = ctx.attention.shape();
  const int heads = shape.num_heads, hd = shape.head_dim, group = shape.num_heads / shape.num_kv_heads;
  std::vector<float> cls_attn(static_cast<size_t>(t), 0.0f), logits(static_cast<size_t>(t));
  for (int h = 0; h < heads; ++h) {
    const float* qh = q.row(0) + static_cast<int64_t>(h) * hd;
    for (int64_t j = 0; j < t; ++j) {
      const float* kh = k.row(j) + static_cast<int64_t>(h / group) * hd;
      float dot = 0;
      for (int c = 0; c < hd; ++c) dot += qh[c] * kh[c];
      logits[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<float>(hd)) +
                                       (proportional_attention ? std::log(meta[static_cast<size_t>(j)].size) : 0.0f);
    }
    const float mx = *std::max_element(logits.begin(), logits.end());
    float sum = 0;
    for (float& z : logits) sum += (z = std::exp(z - mx));
    for (int64_t j = 0; j < t; ++j) cls_attn[static_cast<size_t>(j)] += logits[static_cast<size_t>(j)] / sum;
  }
  for (float& a : cls_attn) a /= static_cast<float>(heads);

  // idx = top-k tokens by cls_attn, sorted descending (ties: the lower row first);
  // compl = the others, in ascending row order.
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 1);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t i, int64_t j) {
    return cls_attn[static_cast<size_t>(i)] > cls_attn[static_cast<size_t>(j)];
  });
  std::vector<int64_t> compl_idx(idx.begin() + left_tokens, idx.end());
  idx.resize(static_cast<size_t>(left_tokens));
  std::sort(compl_idx.begin(), compl_idx.end());

  // x ← [x_cls, x_idx, (fused: Σ_{j ∈ compl} cls_attn[j] · x_j)].
  Matrix out(1 + left_tokens + (fuse ? 1 : 0), dim);
  std::vector<TokenMeta> out_meta{meta[0]};
  std::copy_n(x.row(0), dim, out.row(0));
  for (int64_t r = 0; r < left_tokens; ++r) {
    std::copy_n(x.row(idx[static_cast<size_t>(r)]), dim, out.row(1 + r));
    out_meta.push_back(meta[static_cast<size_t>(idx[static_cast<size_t>(r)])]);
  }
  if (fuse) {
    float* extra = out.row(1 + left_tokens);
    std::fill_n(extra, dim, 0.0f);
    // A new token: no original index, no grid cell; it stands for the tokens it absorbed.
    TokenMeta fused{-1, -1, -1, -1, TokenRole::Visual, 0.0f};
    for (int64_t j : compl_idx) {
      const float w = cls_attn[static_cast<size_t>(j)];
      for (int64_t c = 0; c < dim; ++c) extra[c] += w * x.at(j, c);
      fused.size += meta[static_cast<size_t>(j)].size;
    }
    out_meta.push_back(fused);
  }
  x = std::move(out);
  meta = std::move(out_meta);
}

VisionLayerHook EvitHook(std::vector<int> removals_per_layer, bool fuse, bool proportional_attention) {
  return [removals = std::move(removals_per_layer), fuse, proportional_attention](VisionHookContext& ctx) {
    const auto l = static_cast<size_t>(ctx.layer);
    if (l >= removals.size() || removals[l] == 0) return;
    const int64_t left = ctx.hidden.rows() - 1 - removals[l] - (fuse ? 1 : 0);
    EvitReorganize(ctx, left, fuse, proportional_attention);
  };
}

}  // namespace ficoco::original
