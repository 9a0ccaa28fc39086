// VisionZip (baselines.md §6): between the encoder and the projector, keep the
// dominant patches ([CLS]'s favourites) and fold the rest into a few contextual tokens.
//
// Budget: keep = D + C, C = round(--visionzip-contextual · keep) contextual tokens
// (half away from zero; 0.16 gives 64 = 54 + 10, 128 = 108 + 20, 192 = 161 + 31).
// VisionZip's "dominant" count includes [CLS], which it feeds to the LLM (top D − 1
// patches + CLS); LLaVA's feature selection drops [CLS] after this hook here, so D
// dominant PATCHES are kept to feed the LLM the same number of visual tokens.
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "reduce/baselines_prellm.h"
#include "reduce/filter.h"

namespace ficoco {

LayerPlan VisionZipPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& p) {
  const PreLlmTokens tokens = SplitPreLlmTokens(out);
  const int64_t keep = PreLlmKeep(tokens, n_remove, "visionzip");
  const int64_t contextual = std::llround(static_cast<double>(p.visionzip_contextual) * static_cast<double>(keep));
  const int64_t dominant = keep - contextual;

  // Filter, dominant tokens: the top D patches by [CLS] attention (VisionZip sums the
  // heads' probabilities; the head mean ranks the same), ties to the lower index.
  const std::vector<float> attention = ClsAttentionOnPatches(out, tokens, "visionzip");
  std::vector<char> is_dominant(tokens.patches.size(), 0);
  for (int32_t pos : TopPositions(attention, dominant)) is_dominant[static_cast<size_t>(pos)] = 1;
  std::vector<int32_t> dominant_rows, remaining;  // both in original (raster) order
  for (size_t i = 0; i < tokens.patches.size(); ++i)
    (is_dominant[i] ? dominant_rows : remaining).push_back(tokens.patches[i]);

  // Contextual targets: positions 0, δ, 2δ, … of the remaining patches R (the first C),
  // δ = max(1, ⌊|R| / C⌋).
  std::vector<int32_t> targets;
  std::vector<char> is_target(remaining.size(), 0);
  if (contextual > 0) {
    const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(remaining.size()) / contextual);
    for (int64_t i = 0; i < static_cast<int64_t>(remaining.size()) && static_cast<int64_t>(targets.size()) < contextual; i += step) {
      targets.push_back(remaining[static_cast<size_t>(i)]);
      is_target[static_cast<size_t>(i)] = 1;
    }
  }
  std::vector<int32_t> kept = dominant_rows;
  kept.insert(kept.end(), targets.begin(), targets.end());
  std::vector<float> scores(attention.size());
  for (size_t i = 0; i < attention.size(); ++i) scores[i] = -attention[i];
  FilterResult filter = KeepExactly(tokens.patches, std::move(scores), kept);

  // Correlate: every other remaining patch joins the target whose head-mean key is the
  // most cosine-similar (L2-normalised keys; ties: the earlier target, as argmax).
  const Matrix keys = out.attention.HeadMeanKeys();
  auto unit_key = [&](int32_t row) {
    std::vector<float> v(keys.row(row), keys.row(row) + keys.cols());
    L2Normalize(v);
    return v;
  };
  std::vector<std::vector<float>> target_keys;
  for (int32_t t : targets) target_keys.push_back(unit_key(t));
  std::vector<int32_t> target_of(out.meta.size(), -1), members(out.meta.size(), 0);
  for (size_t i = 0; i < remaining.size() && !targets.empty(); ++i) {
    if (is_target[i]) continue;
    const std::vector<float> k = unit_key(remaining[i]);
    size_t best = 0;
    float best_cos = 0;
    for (size_t t = 0; t < targets.size(); ++t) {
      float cos = 0;
      for (size_t c = 0; c < k.size(); ++c) cos += k[c] * target_keys[t][c];
      if (t == 0 || cos > best_cos) best = t, best_cos = cos;
    }
    target_of[static_cast<size_t>(remaining[i])] = targets[best];
    ++members[static_cast<size_t>(targets[best])];
  }

  // Compress: contextual token = x_target + mean(members) = x_target + Σ (1/|members|)·x_member
  // (VisionZip adds the target to the mean; a target without members stays as it is).
  Routing routing;
  for (int32_t r : filter.discard) {
    const int32_t t = target_of[static_cast<size_t>(r)];
    if (t >= 0) {  // none only when C = 0: then the non-dominant patches are simply dropped
      routing.dst.push_back(t);
      routing.alpha.push_back(1.0f / static_cast<float>(members[static_cast<size_t>(t)]));
    }
    routing.src_begin.push_back(static_cast<int32_t>(routing.dst.size()));
  }
  // Output order: [CLS], dominant in spatial order, then contextual in R order.
  std::vector<int32_t> order;
  if (tokens.cls >= 0) order.push_back(tokens.cls);
  order.insert(order.end(), kept.begin(), kept.end());
  return LayerPlan{std::move(filter), std::move(routing), CompressRule::Additive, std::move(order)};
}

MethodInfo VisionZipMethod() {
  return {.name = "visionzip",
          .site = MethodSite::PreLlm,
          .summary = "VisionZip (baselines §6): between encoder and projector, keep the patches with the highest [CLS] "
                     "attention (dominant, spatial order) and merge the rest into --visionzip-contextual of the budget "
                     "contextual tokens (strided targets, key-cosine assignment, target + mean of its members).",
          .params = {"--keep", "--tflops", "--visionzip-contextual"},
          .pre_llm_plan = VisionZipPlan,
          .schedule = PreLlmSchedule};
}

}  // namespace ficoco
