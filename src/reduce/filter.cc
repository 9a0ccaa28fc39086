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

std::vector<int32_t> TopPositions(const std::vector<float>& values, int64_t n) {
  if (n < 0 || n > static_cast<int64_t>(values.size()))
    Fail("TopPositions: ", n, " of ", values.size(), " values requested");
  std::vector<int32_t> pos(values.size());
  std::iota(pos.begin(), pos.end(), 0);
  std::partial_sort(pos.begin(), pos.begin() + n, pos.end(), [&](int32_t a, int32_t b) {
    const float va = values[static_cast<size_t>(a)], vb = values[static_cast<size_t>(b)];
    return va > vb || (va == vb && a < b);
  });
  pos.resize(static_cast<size_t>(n));
  return pos;
}

FilterResult KeepExactly(const std::vector<int32_t>& candidates, std::vector<float> scores, std::vector<int32_t> kept_rows) {
  if (scores.size() != candidates.size()) Fail("KeepExactly: ", scores.size(), " scores for ", candidates.size(), " candidates");
  std::sort(kept_rows.begin(), kept_rows.end());
  FilterResult f;
  f.candidates = candidates;
  f.scores = std::move(scores);
  for (int32_t row : candidates)
    (std::binary_search(kept_rows.begin(), kept_rows.end(), row) ? f.keep : f.discard).push_back(row);
  if (f.keep.size() != kept_rows.size()) Fail("KeepExactly: a kept row is not a candidate");
  return f;
}

FilterResult KeepMostImportant(std::vector<int32_t> candidates, const std::vector<float>& importance, int64_t n_keep) {
  if (candidates.size() != importance.size())
    Fail("filter: ", importance.size(), " scores for ", candidates.size(), " candidates");
  if (n_keep < 0 || n_keep > static_cast<int64_t>(candidates.size()))
    Fail("filter: cannot keep ", n_keep, " of ", candidates.size(), " candidate tokens");
  std::vector<int32_t> kept;
  for (int32_t pos : TopPositions(importance, n_keep)) kept.push_back(candidates[static_cast<size_t>(pos)]);
  std::vector<float> scores;
  for (float a : importance) scores.push_back(-a);
  return KeepExactly(candidates, std::move(scores), std::move(kept));
}

}  // namespace ficoco
