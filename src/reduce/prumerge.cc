// LLaVA-PruMerge and PruMerge+ (baselines.md §7) at a fixed budget (ratio = keep/576,
// as EffiVLM-Bench runs them), between the encoder and the projector.
//
// Filter. Score a_j = [CLS] attention on patch j. The original recomputes a single-head
// attention from layer 23's q/k projections (softmax(q·kᵀ/√1024)), a layer LLaVA never
// runs; we use the last run layer's (22's) real head-mean attention probabilities.
//   prumerge:  the top `keep` patches by a.
//   prumerge+: the top k' = max(1, #IQR outliers of a) (at most keep): PruMerge's
//              adaptive count, a > Q3 + 1.5·IQR; then the spatial samples 0, s, 2s, …
//              (s = max(1, ⌊576/keep⌋)) not already taken, the first keep − k' of them
//              (EffiVLM-Bench's fixed-budget PruMerge+; there are always enough).
// Output order as the original: top tokens in score order, then the samples ascending.
//
// Correlate. Each kept patch i takes its 32 nearest other patches by key cosine (kept
// or not; full-width keys of the same layer; the original uses layer 23's raw keys).
//
// Compress. As the original: x_i' = x_i + Σ_{j∈nbr(i)} a_j x_j (not normalised, every
// x_j read before any update; CompressRule::Additive with explicit source rows, since
// kept neighbours contribute too). The original also appends one extra token
// Σ_{j∉K} a_j x_j; it is left out to keep the budget exact (and a plan has one rule).
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "reduce/filter.h"
#include "reduce/baselines_prellm.h"

namespace ficoco {
namespace {

double Percentile(std::vector<double> sorted, double q) {  // numpy's default (linear)
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

LayerPlan Plan(const VisionHookContext& out, int64_t n_remove, bool plus) {
  const char* name = plus ? "prumerge+" : "prumerge";
  const PreLlmTokens tokens = SplitPreLlmTokens(out);
  const int64_t keep = PreLlmKeep(tokens, n_remove, name);
  const std::vector<float> a = ClsAttentionOnPatches(out, tokens, name);
  const std::vector<int32_t> selected = PruMergeSelect(a, keep, plus);  // patch positions, output order
  std::vector<int32_t> kept;
  for (int32_t pos : selected) kept.push_back(tokens.patches[static_cast<size_t>(pos)]);
  std::vector<float> scores(a.size());
  for (size_t i = 0; i < a.size(); ++i) scores[i] = -a[i];
  FilterResult filter = KeepExactly(tokens.patches, std::move(scores), kept);

  // Correlate: neighbours of each kept patch by cosine of the full-width keys.
  const Matrix& k = out.attention.keys();
  Matrix patch_keys(static_cast<int64_t>(tokens.patches.size()), k.cols());
  for (size_t i = 0; i < tokens.patches.size(); ++i)
    std::copy_n(k.row(tokens.patches[i]), k.cols(), patch_keys.row(static_cast<int64_t>(i)));
  const auto neighbours = NearestByKeyCosine(patch_keys, selected, kPruMergeNeighbours);
  // Invert to "patch → the kept centres that take it" (kept or discarded patches alike:
  // Routing::sources lists them; every source is read before any centre is updated).
  std::vector<std::vector<int32_t>> takers(tokens.patches.size());
  for (size_t c = 0; c < selected.size(); ++c)
    for (int32_t j : neighbours[c]) takers[static_cast<size_t>(j)].push_back(kept[c]);
  Routing routing;
  routing.src_begin = {0};
  for (size_t j = 0; j < tokens.patches.size(); ++j) {
    if (takers[j].empty()) continue;
    std::sort(takers[j].begin(), takers[j].end());
    routing.sources.push_back(tokens.patches[j]);
    for (int32_t t : takers[j]) {
      routing.dst.push_back(t);
      routing.alpha.push_back(a[j]);
    }
    routing.src_begin.push_back(static_cast<int32_t>(routing.dst.size()));
  }
  std::vector<int32_t> order;
  if (tokens.cls >= 0) order.push_back(tokens.cls);
  order.insert(order.end(), kept.begin(), kept.end());
  return LayerPlan{std::move(filter), std::move(routing), CompressRule::Additive, std::move(order)};
}

}  // namespace

int64_t PruMergeOutlierCount(const std::vector<float>& scores) {
  if (scores.empty()) return 0;
  std::vector<double> s(scores.begin(), scores.end());
  std::sort(s.begin(), s.end());
  const double q1 = Percentile(s, 0.25), q3 = Percentile(s, 0.75);
  const double upper = q3 + 1.5 * (q3 - q1);
  return std::count_if(s.begin(), s.end(), [&](double v) { return v > upper; });
}

std::vector<int32_t> PruMergeSelect(const std::vector<float>& scores, int64_t keep, bool plus) {
  const auto n = static_cast<int64_t>(scores.size());
  if (keep < 1 || keep > n) Fail("prumerge: cannot keep ", keep, " of ", n, " patches");
  if (!plus) return TopPositions(scores, keep);
  const int64_t top = std::min(keep, std::max<int64_t>(1, PruMergeOutlierCount(scores)));
  std::vector<int32_t> selected = TopPositions(scores, top);
  std::vector<char> taken(static_cast<size_t>(n), 0);
  for (int32_t pos : selected) taken[static_cast<size_t>(pos)] = 1;
  const int64_t step = std::max<int64_t>(1, n / keep);
  for (int64_t pos = 0; pos < n && static_cast<int64_t>(selected.size()) < keep; pos += step)
    if (!taken[static_cast<size_t>(pos)]) selected.push_back(static_cast<int32_t>(pos));
  if (static_cast<int64_t>(selected.size()) != keep)
    Fail("prumerge+: ", selected.size(), " patches selected for a budget of ", keep);  // cannot happen: ⌈n/s⌉ >= keep
  return selected;
}

LayerPlan PruMergePlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams&) {
  return Plan(out, n_remove, false);
}

LayerPlan PruMergePlusPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams&) {
  return Plan(out, n_remove, true);
}

MethodInfo PruMergeMethod() {
  return {.name = "prumerge",
          .site = MethodSite::PreLlm,
          .summary = "LLaVA-PruMerge at a fixed budget (baselines §7): between encoder and projector, keep the top --keep "
                     "patches by [CLS] attention (score order) and add to each the CLS-attention-weighted discarded patches "
                     "among its 32 key-nearest, kept or not (the extra fused token omitted).",
          .params = {"--keep", "--tflops"},
          .pre_llm_plan = PruMergePlan,
          .schedule = PreLlmSchedule};
}

MethodInfo PruMergePlusMethod() {
  return {.name = "prumerge+",
          .site = MethodSite::PreLlm,
          .summary = "PruMerge+ at a fixed budget (baselines §7, EffiVLM-Bench): the IQR-outlier patches by [CLS] attention "
                     "plus evenly spaced patches up to --keep, then PruMerge's neighbour merge (the extra fused token "
                     "omitted).",
          .params = {"--keep", "--tflops"},
          .pre_llm_plan = PruMergePlusPlan,
          .schedule = PreLlmSchedule};
}

}  // namespace ficoco
