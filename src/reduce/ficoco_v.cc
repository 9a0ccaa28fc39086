// FiCoCo-V (ficoco-spec §2.5): token reduction inside the CLIP vision encoder, after
// a layer's attention and before its MLP, on that layer's head-averaged attention.
#include "base/error.h"
#include "reduce/correlate.h"
#include "reduce/filter.h"
#include "reduce/ficoco.h"

namespace ficoco {

LayerPlan FicocoVisionPlan(const VisionHookContext& layer, int64_t n_discard, const ReductionParams& p) {
  const AttentionSignals& attention = layer.attention;
  // Candidates are the patches; [CLS] is never discarded and never a target.
  int32_t cls = -1;
  std::vector<int32_t> patches;
  std::vector<TokenMeta> patch_meta;
  for (size_t i = 0; i < layer.meta.size(); ++i) {
    if (layer.meta[i].role == TokenRole::Cls) cls = static_cast<int32_t>(i);
    if (layer.meta[i].role == TokenRole::Visual) {
      patches.push_back(static_cast<int32_t>(i));
      patch_meta.push_back(layer.meta[i]);
    }
  }
  if (cls < 0) Fail("FiCoCo-V: vision layer ", layer.layer, " has no [CLS] token (needed for the semantic term)");

  // Filter. Vision-aware redundancy v_i: patch i's mean logit over all patches (how
  // predictable it is from the others). Semantic-aware term c_i: [CLS]'s logit on
  // patch i (how much the image summary needs it). Both L2-normalised.
  std::vector<float> v = attention.RowMeanLogits(patches, patches);
  const Matrix cls_row = attention.MeanLogits({cls}, patches);
  std::vector<float> c(cls_row.data(), cls_row.data() + cls_row.cols());
  L2Normalize(v);
  L2Normalize(c);
  // Eq. 1: s = λ·v − (1−λ)·c. The official code puts λ on the [CLS] term instead.
  const bool paper = p.preset == FicocoPreset::Paper;
  const float w_v = paper ? p.lambda : 1 - p.lambda, w_c = paper ? 1 - p.lambda : p.lambda;
  std::vector<float> scores = WeightedSum(w_v, v, -w_c, c);
  // Local penalty: each window's most redundant patch becomes the likeliest discard,
  // which spreads the discards over the image.
  ApplyLocalPenalty(scores, patch_meta, layer.grid, p.window, p.penalty);
  FilterResult filter = DiscardHighest(std::move(patches), std::move(scores), n_discard);

  // Correlate: each discarded patch's attention to the kept patches only (row-softmax
  // over them: ranks and ratios equal those of the full row); targets at or above the
  // ε-quantile of that row.
  Matrix correlation = attention.MeanLogits(filter.discard, filter.keep);
  SoftmaxRows(correlation);
  Routing routing = QuantileTargets(correlation, filter.keep, p.epsilon,
                                    paper ? TargetCount::PerToken : TargetCount::LayerMax);

  // Compress: self-preserving (Eq. 2).
  return LayerPlan{std::move(filter), std::move(routing), CompressRule::SelfPreserving, {}};
}

}  // namespace ficoco
