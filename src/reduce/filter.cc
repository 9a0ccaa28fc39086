#include "reduce/filter.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"

namespace ficoco {

void L2Normalize(std::vector<float>& v) {
  double sq = 0;
  for (float x : v) sq += static_cast<double>(x) * x;
  if (sq == 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(sq));
  for (float& x : v) x *= inv;
}

std::vector<float> WeightedSum(float a, const std::vector<float>& x, float b, const std::vector<float>& y) {
  if (x.size() != y.size()) Fail("WeightedSum: lengths ", x.size(), " and ", y.size(), " differ");
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = a * x[i] + b * y[i];
  return out;
}

void ApplyLocalPenalty(std::vector<float>& scores, const std::vector<TokenMeta>& candidate_meta, int grid, int window,
                       float coefficient) {
  if (scores.size() != candidate_meta.size())
    Fail("local penalty: ", scores.size(), " scores for ", candidate_meta.size(), " candidates");
  if (grid < 1 || window < 1) Fail("local penalty: grid ", grid, " and window ", window, " must be positive");
  const int blocks = (grid + window - 1) / window;
  // Per block, the candidate with the largest score (−1: block has no alive token).
  std::vector<int64_t> best(static_cast<size_t>(blocks) * blocks, -1);
  for (size_t i = 0; i < scores.size(); ++i) {
    const TokenMeta& m = candidate_meta[i];
    if (m.grid_row < 0 || m.grid_row >= grid || m.grid_col < 0 || m.grid_col >= grid)
      Fail("local penalty: candidate ", i, " (token ", m.orig_index, ") has no cell on the ", grid, "x", grid, " grid");
    int64_t& b = best[static_cast<size_t>((m.grid_row / window) * blocks + m.grid_col / window)];
    if (b < 0 || scores[i] > scores[static_cast<size_t>(b)]) b = static_cast<int64_t>(i);
  }
  for (int64_t b : best) {
    if (b < 0) continue;
    float& s = scores[static_cast<size_t>(b)];
    s = s > 0 ? s * coefficient : s / coefficient;
  }
}

FilterResult DiscardHighest(std::vector<int32_t> candidates, std::vector<float> scores, int64_t n) {
  if (candidates.size() != scores.size()) Fail("filter: ", scores.size(), " scores for ", candidates.size(), " candidates");
  if (n < 0 || n > static_cast<int64_t>(candidates.size()))
    Fail("filter: cannot discard ", n, " of ", candidates.size(), " candidate tokens");
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  // Highest score first; equal scores: the earlier row goes first (deterministic).
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<bool> gone(candidates.size(), false);
  for (int64_t i = 0; i < n; ++i) gone[order[static_cast<size_t>(i)]] = true;
  FilterResult r;
  for (size_t i = 0; i < candidates.size(); ++i) (gone[i] ? r.discard : r.keep).push_back(candidates[i]);
  r.candidates = std::move(candidates);
  r.scores = std::move(scores);
  return r;
}

}  // namespace ficoco
