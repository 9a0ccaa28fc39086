// FiCoCo-L (ficoco-spec §3.6): token reduction inside the LLM during prefill, after a
// layer's attention and before its MLP, guided by the text that follows the image.
#include "base/error.h"
#include "reduce/correlate.h"
#include "reduce/filter.h"
#include "reduce/ficoco.h"

namespace ficoco {

LayerPlan FicocoLlmPlan(const TextHookContext& layer, int64_t n_discard, const ReductionParams& p) {
  const AttentionSignals& attention = layer.attention;
  const bool paper = p.preset == FicocoPreset::Paper;
  // The image span comes from the token records, wherever the placeholder put it;
  // the text is what follows the image (the question and "ASSISTANT:").
  std::vector<int32_t> visual, text;
  for (size_t i = 0; i < layer.meta.size(); ++i) {
    if (layer.meta[i].role == TokenRole::Visual) visual.push_back(static_cast<int32_t>(i));
    else if (!visual.empty()) text.push_back(static_cast<int32_t>(i));
  }
  if (visual.empty()) Fail("FiCoCo-L: LLM layer ", layer.layer, " has no image tokens to reduce");

  // Filter (Eq. 3) on unmasked head-mean logits: redundancy to the other image tokens
  // minus relevance to the text. The official code sums the first term over the image
  // tokens instead of averaging it.
  std::vector<float> to_image = attention.RowMeanLogits(visual, visual);
  if (!paper)
    for (float& x : to_image) x *= static_cast<float>(visual.size());
  const std::vector<float> to_text = attention.RowMeanLogits(visual, text);
  std::vector<float> scores = WeightedSum(p.beta, to_image, -(1 - p.beta), to_text);
  FilterResult filter = DiscardHighest(std::move(visual), std::move(scores), n_discard);

  // Correlate (Eq. 4): direct logits plus the indirect relation through the text,
  // Σ_t Z̄[i,t]·Z̄[t,j] (divided by M in the paper preset), restricted to kept tokens.
  Matrix correlation = attention.MeanLogits(filter.discard, filter.keep);
  const Matrix via_text_in = attention.MeanLogits(filter.discard, text);
  const Matrix via_text_out = attention.MeanLogits(text, filter.keep);
  const float indirect_scale = (1 - p.gamma) / (paper && !text.empty() ? static_cast<float>(text.size()) : 1.0f);
  for (int64_t i = 0; i < correlation.rows(); ++i)
    for (int64_t j = 0; j < correlation.cols(); ++j) {
      float indirect = 0;
      for (int64_t t = 0; t < via_text_in.cols(); ++t) indirect += via_text_in.at(i, t) * via_text_out.at(t, j);
      correlation.at(i, j) = p.gamma * correlation.at(i, j) + indirect_scale * indirect;
    }
  SoftmaxRows(correlation);
  Routing routing = QuantileTargets(correlation, filter.keep, p.epsilon,
                                    paper ? TargetCount::PerToken : TargetCount::LayerMax);

  // Compress: self-preserving (Eq. 2); the official code adds without normalising.
  return LayerPlan{std::move(filter), std::move(routing), paper ? CompressRule::SelfPreserving : CompressRule::Additive, {}};
}

}  // namespace ficoco
