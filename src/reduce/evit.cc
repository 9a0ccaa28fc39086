// EViT, token reorganisation (Liang et al., ICLR 2022; baselines.md §2) inside the CLIP
// encoder, after a layer's attention and before its MLP: keep the tokens [CLS] attends
// to most, fuse the inattentive ones into one new token (or drop them).
#include <algorithm>
#include <numeric>

#include "base/error.h"
#include "reduce/baselines_vision.h"
#include "reduce/budget.h"

namespace ficoco {

LayerPlan EvitVisionPlan(const VisionHookContext& layer, int64_t n_remove, const ReductionParams& p) {
  // Candidates: every token but [CLS], a token fused in an earlier layer included.
  int32_t cls = -1;
  std::vector<int32_t> candidates;
  for (size_t i = 0; i < layer.meta.size(); ++i) {
    if (layer.meta[i].role == TokenRole::Cls) cls = static_cast<int32_t>(i);
    else candidates.push_back(static_cast<int32_t>(i));
  }
  if (cls < 0) Fail("EViT: vision layer ", layer.layer, " has no [CLS] token (its attention ranks the tokens)");
  // n_remove is net: with fusion one more goes, since the fused token is added.
  const int64_t n_discard = n_remove + (p.evit_fuse ? 1 : 0);
  if (n_remove < 0 || n_discard > static_cast<int64_t>(candidates.size()))
    Fail("EViT: vision layer ", layer.layer, " cannot remove ", n_remove, " of its ", candidates.size(),
         " tokens besides [CLS]", p.evit_fuse ? " (fusion discards one more and appends the fused token)" : "");

  // Filter: attentiveness a_j = [CLS]'s attention probability on token j, averaged over
  // heads. Rank by it (ties: the lower row first) and keep the top k; the recorded
  // score is −a_j (higher = discarded first).
  const Matrix attn = layer.attention.MeanOfProbs({cls}, candidates);
  const float* a = attn.row(0);
  std::vector<size_t> rank(candidates.size());
  std::iota(rank.begin(), rank.end(), 0);
  std::stable_sort(rank.begin(), rank.end(), [&](size_t x, size_t y) { return a[x] > a[y]; });
  const size_t k = candidates.size() - static_cast<size_t>(n_discard);
  std::vector<char> kept(candidates.size(), 0);
  for (size_t r = 0; r < k; ++r) kept[rank[r]] = 1;
  FilterResult filter;
  for (size_t c = 0; c < candidates.size(); ++c) {
    (kept[c] ? filter.keep : filter.discard).push_back(candidates[c]);
    filter.scores.push_back(-a[c]);
  }
  filter.candidates = std::move(candidates);

  // Correlate: with fusion, every inattentive token goes into one new token with weight
  // a_j (not renormalised: the weights sum to their share of [CLS]'s attention, < 1).
  Routing routing = Routing::PruneAll(static_cast<int64_t>(filter.discard.size()));
  if (p.evit_fuse) {
    routing = Routing{};
    for (size_t c = 0; c < filter.candidates.size(); ++c) {
      if (kept[c]) continue;
      routing.dst.push_back(kNewToken);
      routing.alpha.push_back(a[c]);
      routing.src_begin.push_back(static_cast<int32_t>(routing.dst.size()));
    }
  }

  // Compress: the fused token Σ a_j X_j is appended last. Order: [CLS, kept tokens in
  // descending attention, fused token] — raster order is lost.
  std::vector<int32_t> order{cls};
  for (size_t r = 0; r < k; ++r) order.push_back(filter.candidates[rank[r]]);
  return LayerPlan{std::move(filter), std::move(routing), p.evit_fuse ? CompressRule::FuseIntoNew : CompressRule::Prune,
                   std::move(order)};
}

int EvitDefaultStart(const LlavaConfig& cfg, const ReductionParams& p) {
  // FiCoCo-V's paper start ("the 12th layer", index 11 of 24), scaled to the depth;
  // an explicit --vision-start wins. EViT's own models reduce from a quarter of the
  // depth (DeiT blocks 3, 6, 9 of 12), but no LLaVA schedule exists (baselines.md §2).
  ReductionParams paper = p;
  paper.preset = FicocoPreset::Paper;
  return paper.VisionStart(cfg.vision.num_hidden_layers);
}

ReductionSchedule EvitSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  ReductionSchedule s = NoReduction(cfg);
  // Net removals: the fused tokens are among the `keep` tokens that reach the LLM.
  s.vision = VisionSpread(cfg, EvitDefaultStart(cfg, p), keep, "evit");
  return s;
}

MethodInfo EvitMethod() {
  return MethodInfo{
      .name = "evit",
      .site = MethodSite::Vision,
      .summary = "EViT (Liang et al. 2022): in the CLIP layers from --vision-start (default FiCoCo-V's paper start, "
                 "11 of 24), keep the tokens [CLS] attends to most (head-mean probabilities), in descending order, "
                 "and fuse the others into one extra token weighted by that attention (--evit-fuse; off: drop "
                 "them); raster order is lost.",
      .params = {"--keep", "--tflops", "--vision-start", "--evit-fuse"},
      .vision_plan = EvitVisionPlan,
      .schedule = EvitSchedule,
  };
}

}  // namespace ficoco
