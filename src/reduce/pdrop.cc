// PyramidDrop (baselines.md §5): the LLM is cut into stages at the layers of
// --pdrop-layers (8, 16, 24 of 32); at each boundary the image tokens the last
// instruction token attends to least are dropped, every stage keeping the same share λ
// of what it received, so the image shrinks like a pyramid. λ is chosen so that the
// mean number of image tokens over the layers is the budget.
//
// Deviation, where our hook sits: the original re-projects layer ℓ − 1's output with
// layer ℓ's input norm, q_proj, k_proj and RoPE to rank before layer ℓ; we rank with
// the attention layer ℓ − 1 has just computed (its last row), as FastV does, since
// layer ℓ's projections are not available in layer ℓ − 1's hook. Its positions are
// renumbered compactly after each drop: that is this method's default position policy.
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "reduce/filter.h"
#include "reduce/baselines_llm.h"
#include "reduce/budget.h"

namespace ficoco {

namespace {
const std::vector<int> kPdropDefault = {8, 16, 24};  // the official eval scripts' layer_list
constexpr int kPdropReferenceDepth = 32;             // Vicuna-7B, where that list is defined
}  // namespace

std::vector<int> PdropStageLayers(const std::vector<int>& pdrop_layers, int depth) {
  std::vector<int> stages;
  if (pdrop_layers == kPdropDefault && depth != kPdropReferenceDepth) {
    for (int l : pdrop_layers) {
      const int scaled = std::clamp(static_cast<int>(std::lround(static_cast<double>(l) * depth / kPdropReferenceDepth)),
                                    1, std::max(1, depth - 1));
      if (stages.empty() || scaled > stages.back()) stages.push_back(scaled);
    }
  } else {
    stages = pdrop_layers;
  }
  if (stages.empty()) Fail("--pdrop-layers is empty");
  for (int l : stages)
    if (l < 1 || l > depth - 1)
      Fail("--pdrop-layers: PyramidDrop prunes before layer ", l, ", but the LLM has ", depth,
           " layers (stages must be in 1..", depth - 1, ")");
  return stages;
}

LayerPlan PdropPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams&) {
  std::vector<int32_t> image = ImageRows(layer.meta, "PyramidDrop", layer.layer);
  // Filter: the last instruction token's head-mean softmax attention on the image
  // tokens still present; the stage keeps the top ones.
  const std::vector<float> attention = LastTokenAttention(layer, image);
  const int64_t n_keep = static_cast<int64_t>(image.size()) - n_remove;
  FilterResult filter = KeepMostImportant(std::move(image), attention, n_keep);
  // Correlate: none. Compress: drop.
  return LayerPlan{std::move(filter), Routing::PruneAll(n_remove), CompressRule::Prune, {}};
}

ReductionSchedule PdropSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  std::vector<int> hooks = PdropStageLayers(p.pdrop_layers, cfg.text.num_hidden_layers);
  for (int& l : hooks) l -= 1;  // pruning before layer ℓ happens in layer ℓ − 1's hook
  ReductionSchedule s = NoReduction(cfg);
  s.llm = LlmGeometricStages(cfg, hooks, cfg.vision.num_patches(), keep);
  return s;
}

MethodInfo PdropMethod() {
  return {.name = "pdrop",
          .site = MethodSite::Llm,
          .summary = "PyramidDrop (baselines §5): before each LLM layer of --pdrop-layers (default 8,16,24 of 32, "
                     "scaled to other depths) keep the same share of the image tokens, those the last instruction "
                     "token attends to most, the share set so the mean over layers is --keep; drop the rest. Positions "
                     "are renumbered compactly, as its original does (--positions original keeps the prompt's).",
          .params = {"--keep", "--tflops", "--pdrop-layers", "--positions"},
          .llm_plan = PdropPlan,
          .schedule = PdropSchedule,
          .positions = PositionPolicy::Compact};
}

}  // namespace ficoco
