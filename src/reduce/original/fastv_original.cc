#include "reduce/original/fastv_original.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "base/error.h"

namespace ficoco::original {

namespace {

// Adds (1/H)·softmax probability of every image key [s, e] for query `row` into phi.
void AccumulateImageAttention(const AttentionSignals& a, int64_t key_offset, int64_t row, int64_t s, int64_t e,
                              std::vector<double>& phi) {
  const Matrix& q = a.queries();
  const Matrix& k = a.keys();
  const int heads = a.shape().num_heads, d = a.shape().head_dim;
  const int group = heads / a.shape().num_kv_heads;
  const int64_t visible = std::min<int64_t>(k.rows(), key_offset + row + 1);  // causal
  std::vector<double> logits(static_cast<size_t>(visible));
  for (int h = 0; h < heads; ++h) {
    const float* qh = q.row(row) + static_cast<int64_t>(h) * d;
    double top = -INFINITY;
    for (int64_t c = 0; c < visible; ++c) {
      const float* kh = k.row(c) + static_cast<int64_t>(h / group) * d;
      double dot = 0;
      for (int t = 0; t < d; ++t) dot += static_cast<double>(qh[t]) * kh[t];
      logits[static_cast<size_t>(c)] = dot / std::sqrt(static_cast<double>(d));
      top = std::max(top, logits[static_cast<size_t>(c)]);
    }
    double z = 0;
    for (double& x : logits) z += (x = std::exp(x - top));
    for (int64_t j = s; j <= e; ++j)
      if (key_offset + j < visible) phi[static_cast<size_t>(j - s)] += logits[static_cast<size_t>(key_offset + j)] / z / heads;
  }
}

}  // namespace

void FastvOriginal(TextHookContext& layer, const FastvConfig& config) {
  if (layer.layer != config.k - 1 || layer.cache_offset != 0) return;
  const int64_t n = layer.hidden.rows();
  // The image span [s, e]: the rows the placeholder expanded to.
  int64_t s = -1, e = -1;
  for (int64_t i = 0; i < n; ++i)
    if (layer.meta[static_cast<size_t>(i)].role == TokenRole::Visual) {
      if (s < 0) s = i;
      else if (e != i - 1) Fail("FastV (original): the image tokens are not contiguous");
      e = i;
    }
  if (s < 0) return;
  const int64_t image = e - s + 1;
  if (config.attention_rank >= image) return;

  std::vector<double> phi(static_cast<size_t>(image), 0.0);
  if (config.ranking == FastvRanking::LastToken) {
    AccumulateImageAttention(layer.attention, layer.cache_offset, n - 1, s, e, phi);
  } else {
    for (int64_t r = 0; r < n; ++r) AccumulateImageAttention(layer.attention, layer.cache_offset, r, s, e, phi);
    for (double& x : phi) x /= static_cast<double>(n);
  }

  // Top ATTENTION_RANK, then sorted back into sequence order.
  std::vector<int64_t> order(static_cast<size_t>(image));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return phi[a] > phi[b]; });
  order.resize(static_cast<size_t>(std::max<int64_t>(0, config.attention_rank)));
  std::sort(order.begin(), order.end());

  std::vector<int64_t> rows;
  for (int64_t i = 0; i < s; ++i) rows.push_back(i);
  for (int64_t j : order) rows.push_back(s + j);
  for (int64_t i = e + 1; i < n; ++i) rows.push_back(i);
  Matrix hidden(static_cast<int64_t>(rows.size()), layer.hidden.cols());
  std::vector<TokenMeta> meta;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(layer.hidden.row(rows[i]), layer.hidden.cols(), hidden.row(static_cast<int64_t>(i)));
    meta.push_back(layer.meta[static_cast<size_t>(rows[i])]);
  }
  layer.hidden = std::move(hidden);
  layer.meta = std::move(meta);
}

TextLayerHook FastvOriginalHook(FastvConfig config) {
  return [config](TextHookContext& layer) { FastvOriginal(layer, config); };
}

}  // namespace ficoco::original
