// TopK by [CLS] attention (baselines.md §11 (a)): between the encoder and the
// projector, keep the patches that the last run layer's [CLS] attends to most (the
// score HiRED and EViT rank by), in raster order; drop the rest. Also the building
// blocks the other pre-LLM baselines share (baselines_prellm.h).
#include <algorithm>
#include <numeric>

#include "base/error.h"
#include "reduce/baselines_prellm.h"
#include "reduce/filter.h"

namespace ficoco {

LayerPlan TopkClsPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams&) {
  const PreLlmTokens tokens = SplitPreLlmTokens(out);
  const int64_t keep = PreLlmKeep(tokens, n_remove, "topk-cls");
  // Filter: head-mean [CLS] attention probability on each patch; the top `keep` stay
  // (ties: the lower patch index stays), survivors keep their raster order.
  const std::vector<float> attention = ClsAttentionOnPatches(out, tokens, "topk-cls");
  std::vector<int32_t> kept;
  for (int32_t pos : TopPositions(attention, keep)) kept.push_back(tokens.patches[static_cast<size_t>(pos)]);
  std::vector<float> scores(attention.size());
  std::transform(attention.begin(), attention.end(), scores.begin(), [](float a) { return -a; });
  // Correlate: none. Compress: drop.
  return LayerPlan{KeepExactly(tokens.patches, std::move(scores), std::move(kept)), Routing::PruneAll(n_remove),
                   CompressRule::Prune, {}};
}

MethodInfo TopkClsMethod() {
  return {.name = "topk-cls",
          .site = MethodSite::PreLlm,
          .summary = "TopK (baselines §11): between encoder and projector, keep the patches with the highest head-mean "
                     "[CLS] attention of the last encoder layer run, in raster order; drop the rest.",
          .params = {"--keep", "--tflops"},
          .pre_llm_plan = TopkClsPlan,
          .schedule = PreLlmSchedule};
}

// ---- Shared by the pre-LLM baselines ----

ReductionSchedule PreLlmSchedule(const LlavaConfig& cfg, const ReductionParams&, int64_t keep) {
  const int64_t patches = cfg.vision.num_patches();
  if (keep < 1 || keep > patches)
    Fail("--keep ", keep, " is impossible: the image has ", patches, " patches (keep 1..", patches, ")");
  ReductionSchedule s = NoReduction(cfg);
  s.pre_llm = static_cast<int>(patches - keep);
  return s;
}

PreLlmTokens SplitPreLlmTokens(const VisionHookContext& out) {
  PreLlmTokens t;
  for (size_t i = 0; i < out.meta.size(); ++i) {
    if (out.meta[i].role == TokenRole::Cls) t.cls = static_cast<int32_t>(i);
    if (out.meta[i].role == TokenRole::Visual) t.patches.push_back(static_cast<int32_t>(i));
  }
  return t;
}

int64_t PreLlmKeep(const PreLlmTokens& tokens, int64_t n_remove, const char* method) {
  const auto patches = static_cast<int64_t>(tokens.patches.size());
  if (n_remove < 0 || n_remove >= patches)
    Fail(method, ": cannot remove ", n_remove, " of the ", patches, " patches of the encoder output (at least one stays)");
  return patches - n_remove;
}

std::vector<float> ClsAttentionOnPatches(const VisionHookContext& out, const PreLlmTokens& tokens, const char* method) {
  if (tokens.cls < 0) Fail(method, ": the encoder output has no [CLS] token (its attention row is the score)");
  const Matrix row = out.attention.MeanOfProbs({tokens.cls}, tokens.patches);
  return std::vector<float>(row.data(), row.data() + row.cols());
}

std::vector<std::vector<int32_t>> NearestByKeyCosine(const Matrix& keys, const std::vector<int32_t>& centres, int64_t k) {
  const int64_t n = keys.rows();
  std::vector<std::vector<float>> unit(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    unit[static_cast<size_t>(i)].assign(keys.row(i), keys.row(i) + keys.cols());
    L2Normalize(unit[static_cast<size_t>(i)]);
  }
  const int64_t take = std::max<int64_t>(0, std::min(k, n - 1));
  std::vector<std::vector<int32_t>> out;
  for (int32_t c : centres) {
    if (c < 0 || c >= n) Fail("NearestByKeyCosine: centre ", c, " outside ", n, " keys");
    std::vector<float> cos(static_cast<size_t>(n), 0.0f);
    std::vector<int32_t> others;
    for (int64_t j = 0; j < n; ++j) {
      if (j == c) continue;
      float dot = 0;
      for (int64_t t = 0; t < keys.cols(); ++t) dot += unit[static_cast<size_t>(c)][t] * unit[static_cast<size_t>(j)][t];
      cos[static_cast<size_t>(j)] = dot;
      others.push_back(static_cast<int32_t>(j));
    }
    std::partial_sort(others.begin(), others.begin() + take, others.end(), [&](int32_t x, int32_t y) {
      const float cx = cos[static_cast<size_t>(x)], cy = cos[static_cast<size_t>(y)];
      return cx > cy || (cx == cy && x < y);
    });
    others.resize(static_cast<size_t>(take));
    out.push_back(std::move(others));
  }
  return out;
}

}  // namespace ficoco
