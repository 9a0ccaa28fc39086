// FastV (baselines.md §3): "an image is worth 1/2 tokens after layer 2". Once, after
// the attention of LLM layer K − 1, the image tokens the prompt attends to least are
// dropped; the others reach layers K… with their original positions (or renumbered,
// under --positions compact). Prefill only: the official code's re-ranking at every
// decode step ("dynamic" FastV) is a different algorithm (§12.2).
#include <algorithm>
#include <numeric>

#include "base/error.h"
#include "reduce/filter.h"
#include "reduce/baselines_llm.h"
#include "reduce/budget.h"

namespace ficoco {

std::vector<int32_t> ImageRows(const std::vector<TokenMeta>& meta, const char* method, int layer) {
  std::vector<int32_t> rows;
  for (size_t i = 0; i < meta.size(); ++i)
    if (meta[i].role == TokenRole::Visual) rows.push_back(static_cast<int32_t>(i));
  if (rows.empty()) Fail(method, ": LLM layer ", layer, " has no image tokens to prune");
  return rows;
}


std::vector<float> LastTokenAttention(const TextHookContext& layer, const std::vector<int32_t>& image) {
  // Prefill: the hook's last row is the prompt's last token ("ASSISTANT:"'s colon).
  const int32_t last = static_cast<int32_t>(layer.meta.size()) - 1;
  const Matrix row = layer.attention.MeanOfProbs({last}, image);
  return std::vector<float>(row.data(), row.data() + row.cols());
}

namespace {

// The paper's ranking: the head-mean attention each image token receives, averaged over
// every query row of the prompt (rows before the image, which cannot see it, give 0).
// Needs every row of the layer's attention map, not one.
std::vector<float> MeanReceivedAttention(const TextHookContext& layer, const std::vector<int32_t>& image) {
  std::vector<int32_t> all(layer.meta.size());
  std::iota(all.begin(), all.end(), 0);
  const Matrix probs = layer.attention.MeanOfProbs(all, image);
  std::vector<float> mean(image.size());
  for (size_t j = 0; j < image.size(); ++j) {
    double sum = 0;  // fixed order: the same result whatever the thread count
    for (int64_t r = 0; r < probs.rows(); ++r) sum += probs.at(r, static_cast<int64_t>(j));
    mean[j] = static_cast<float>(sum / static_cast<double>(probs.rows()));
  }
  return mean;
}

}  // namespace

LayerPlan FastvPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams& p) {
  std::vector<int32_t> image = ImageRows(layer.meta, "FastV", layer.layer);
  // Filter: rank the image tokens by the attention they get in this layer (K − 1),
  // head-averaged softmax probabilities under the causal mask.
  const std::vector<float> attention =
      p.fastv_rank == "mean-received" ? MeanReceivedAttention(layer, image) : LastTokenAttention(layer, image);
  const int64_t n_keep = static_cast<int64_t>(image.size()) - n_remove;
  FilterResult filter = KeepMostImportant(std::move(image), attention, n_keep);
  // Correlate: none. Compress: the others are dropped.
  return LayerPlan{std::move(filter), Routing::PruneAll(n_remove), CompressRule::Prune, {}};
}

ReductionSchedule FastvSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  ReductionSchedule s = NoReduction(cfg);
  s.llm = LlmOnce(cfg, p.fastv_k - 1, cfg.vision.num_patches(), keep);
  return s;
}

MethodInfo FastvMethod() {
  return {.name = "fastv",
          .site = MethodSite::Llm,
          .summary = "FastV (baselines §3): once, after the attention of LLM layer K − 1 (--fastv-k, default 2), keep "
                     "the image tokens the last prompt token attends to most (--fastv-rank last-token, its code) or "
                     "that receive the most attention on average (mean-received, its paper; needs the full map); drop "
                     "the rest, spatial order kept.",
          .params = {"--keep", "--tflops", "--fastv-k", "--fastv-rank", "--positions"},
          .llm_plan = FastvPlan,
          .schedule = FastvSchedule};
}

}  // namespace ficoco
