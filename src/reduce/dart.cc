// DART (baselines.md §9): "duplication matters more" than importance. Once, after the
// attention of LLM layer K − 1 (K = --fastv-k), a few pivot tokens are picked by the L1
// norm of their keys, and for every pivot the image tokens least similar to it are
// kept, so the survivors cover the image with little duplication. No attention
// weights are needed.
//
// Choices of ours (documented in the method summary):
// * Budget exact: every pivot takes G = ⌈R / pivots⌉ tokens until the R = keep − image
//   pivots slots are full (the official code keeps image pivots + pivots·G, N + 4).
// * Order: pivots are visited by ascending sequence row, image pivots first (the
//   official code iterates a Python set). Ties: the lower row first everywhere.
// * Similarity: DART compares h = final RMSNorm(output of layer K − 1). Our hook runs
//   before layer K − 1's MLP and has no norm weights, so we use the cosine of the
//   residual stream there. The per-token RMS scale cancels in a cosine; the final
//   norm's per-channel weights and that one MLP update do not. We prefer it to the
//   keys, whose RoPE rotation makes tokens look dissimilar for being far apart.
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "reduce/filter.h"
#include "reduce/baselines_llm.h"
#include "reduce/budget.h"

namespace ficoco {

namespace {

float KeyL1(const AttentionSignals& attention, int64_t key_row) {
  const float* k = attention.keys().row(key_row);  // post-RoPE, all key heads
  double sum = 0;
  for (int64_t c = 0; c < attention.keys().cols(); ++c) sum += std::fabs(k[c]);
  return static_cast<float>(sum);
}

float Cosine(const Matrix& h, int32_t a, int32_t b) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t c = 0; c < h.cols(); ++c) {
    dot += static_cast<double>(h.at(a, c)) * h.at(b, c);
    na += static_cast<double>(h.at(a, c)) * h.at(a, c);
    nb += static_cast<double>(h.at(b, c)) * h.at(b, c);
  }
  return na == 0 || nb == 0 ? 0.0f : static_cast<float>(dot / std::sqrt(na * nb));
}

// The `n` rows with the largest `score` (ties: lower row), ascending.
std::vector<int32_t> TopRows(const std::vector<int32_t>& rows, const std::vector<float>& score, int64_t n) {
  return KeepMostImportant(rows, score, std::min<int64_t>(n, static_cast<int64_t>(rows.size()))).keep;
}

}  // namespace

LayerPlan DartPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams& p) {
  const std::vector<int32_t> image = ImageRows(layer.meta, "DART", layer.layer);
  const int64_t n_keep = static_cast<int64_t>(image.size()) - n_remove;
  std::vector<int32_t> text;  // the question and "ASSISTANT:" after the image
  for (size_t i = static_cast<size_t>(image.back()) + 1; i < layer.meta.size(); ++i)
    if (layer.meta[i].role != TokenRole::Visual) text.push_back(static_cast<int32_t>(i));

  // Pivots: the image and text tokens whose post-RoPE keys have the largest L1 norm,
  // half of --dart-pivots each (the odd one to the image).
  auto l1 = [&](const std::vector<int32_t>& rows) {
    std::vector<float> s;
    for (int32_t r : rows) s.push_back(KeyL1(layer.attention, layer.cache_offset + r));
    return s;
  };
  const std::vector<int32_t> image_pivots = TopRows(image, l1(image), std::min<int64_t>((p.dart_pivots + 1) / 2, n_keep));
  const std::vector<int32_t> text_pivots = TopRows(text, l1(text), p.dart_pivots / 2);

  // Duplication-aware selection: each pivot in turn adds the image tokens least
  // cosine-similar to it among those not yet retained, G per pivot, until the budget.
  std::vector<int32_t> retained_at(static_cast<size_t>(image.back()) + 1, -1);  // selection step, by row
  int32_t step = 0;
  for (int32_t r : image_pivots) retained_at[static_cast<size_t>(r)] = step++;
  std::vector<int32_t> pivots = image_pivots;
  pivots.insert(pivots.end(), text_pivots.begin(), text_pivots.end());
  const int64_t slots = n_keep - static_cast<int64_t>(image_pivots.size());
  const auto n_pivots = static_cast<int64_t>(pivots.size());
  const int64_t per_pivot = n_pivots == 0 ? 0 : (slots + n_pivots - 1) / n_pivots;
  for (int32_t pivot : pivots) {
    std::vector<int32_t> candidates;
    std::vector<float> dissimilarity;
    for (int32_t r : image)
      if (retained_at[static_cast<size_t>(r)] < 0) {
        candidates.push_back(r);
        dissimilarity.push_back(-Cosine(layer.hidden, pivot, r));
      }
    const int64_t take = std::min<int64_t>(per_pivot, n_keep - step);
    for (int32_t r : TopRows(candidates, dissimilarity, take)) retained_at[static_cast<size_t>(r)] = step++;
  }
  if (step != n_keep) Fail("DART: layer ", layer.layer, " retained ", step, " image tokens instead of ", n_keep);

  // Filter result: the selection step is the score (discarded tokens rank last).
  std::vector<float> importance;
  for (int32_t r : image) {
    const int32_t at = retained_at[static_cast<size_t>(r)];
    importance.push_back(-static_cast<float>(at < 0 ? n_keep : at));
  }
  // Correlate: the pivot × candidate cosines served the selection only. Compress: drop.
  return LayerPlan{KeepMostImportant(image, importance, n_keep), Routing::PruneAll(n_remove), CompressRule::Prune, {}};
}

// Same shape as FastV: everything at once after layer K − 1.
ReductionSchedule DartSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  return FastvSchedule(cfg, p, keep);
}

MethodInfo DartMethod() {
  return {.name = "dart",
          .site = MethodSite::Llm,
          .summary = "DART (baselines §9): once, after the attention of LLM layer K − 1 (--fastv-k), take --dart-pivots "
                     "pivots (image and text tokens with the largest key L1 norm), then for each pivot in row order "
                     "keep the image tokens least cosine-similar to it (residual stream at the hook, not the final-"
                     "normed output); exactly --keep's count, not the original's N + 4; drop the rest.",
          .params = {"--keep", "--tflops", "--fastv-k", "--dart-pivots", "--positions"},
          .llm_plan = DartPlan,
          .schedule = DartSchedule};
}

}  // namespace ficoco
