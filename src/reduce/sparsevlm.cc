// SparseVLM v1.5 (baselines.md §4; branch v1.5 of Gumpest/SparseVLMs): fixed per-layer
// counts, recycling on. The text tokens after the image that relate most to it (the
// "raters", picked once from the input embeddings) rank the image tokens at the sparse
// layers 2, 6 and 15; each keeps its top k, deletes the rest, and recycles the deleted
// tokens the raters rate highest (30 %) as DPC-KNN cluster means, inserted right after
// the kept image tokens. Later sparse layers rank recycled tokens like any image token.
//
// Budgets: v1.5's counts (192: 300/200/110, 128: 303/110/36, 64: 66/30/17) are its top-k
// sizes; the recycled tokens come on top (k + c after the layer), so on LLaVA-1.5-7B the
// mean image tokens over the 32 layers is 206.5 / 145.40625 / 82.25, not 192 / 128 / 64:
// SparseVLM's budgets are nominal. Every other --keep (and other depths) uses geometric
// stages over the sparse layers whose mean is --keep.
//
// Deviations: (1) our hook sits before the sparse layer's MLP, so the clusters are formed
// from (and their means taken over) the pre-MLP states, and the new tokens then pass
// through that layer's MLP; the original averages the layer's outputs (pruning alone is
// unaffected: the MLP is per token). (2) The original breaks density ties with 1e-6
// random noise; we break every tie by row (see DpcKnn). (3) When no text token exceeds
// the mean relevance, every text token rates (the original would average an empty set).
// Positions: v1.x renumbers compactly (decode at each layer's cache length):
// that is this method's default position policy (--positions original keeps the ids).
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "base/error.h"
#include "reduce/filter.h"
#include "kernels/gemv.h"
#include "reduce/baselines_llm.h"
#include "reduce/baselines_sparsevlm.h"
#include "reduce/budget.h"

namespace ficoco {

namespace {
const std::vector<int> kSparseLayers = {2, 6, 15};  // v1.5's layer_dict
constexpr int kReferenceDepth = 32;                 // Vicuna-7B
float Dot(const float* a, const float* b, int64_t n) { return DotF32Row(a, b, DType::F32, n); }
int64_t Net(int64_t deleted) { return deleted - SparseVlmClusters(deleted); }
int64_t MaxNet(int64_t visual) { return visual >= 2 ? Net(visual - 1) : 0; }  // one image token stays
}  // namespace

std::vector<int> SparseVlmLayers(int depth) {
  std::vector<int> layers;
  for (int l : kSparseLayers) {
    const int scaled = std::clamp(static_cast<int>(std::lround(static_cast<double>(l) * depth / kReferenceDepth)), 0,
                                  std::max(0, depth - 2));
    if (layers.empty() || scaled > layers.back()) layers.push_back(scaled);
  }
  return layers;
}

std::vector<int32_t> SparseVlmRaters(const Matrix& e, const std::vector<TokenMeta>& meta) {
  std::vector<int32_t> image, text;  // text: every token after the image
  for (size_t i = 0; i < meta.size(); ++i) {
    if (meta[i].role == TokenRole::Visual) {
      image.push_back(static_cast<int32_t>(i));
      text.clear();
    } else if (!image.empty()) {
      text.push_back(static_cast<int32_t>(i));
    }
  }
  if (image.empty()) Fail("SparseVLM: the prompt has no image tokens for the text to rate");
  if (text.empty()) Fail("SparseVLM: no text follows the image, so no text token can rate it");
  // relevance_t = mean over image rows v of softmax_t(e_v · e_t).
  std::vector<double> relevance(text.size(), 0.0), row(text.size());
  for (int32_t v : image) {
    double top = -INFINITY, sum = 0;
    for (size_t t = 0; t < text.size(); ++t) top = std::max(top, row[t] = Dot(e.row(v), e.row(text[t]), e.cols()));
    for (double& x : row) sum += (x = std::exp(x - top));
    for (size_t t = 0; t < text.size(); ++t) relevance[t] += row[t] / sum;
  }
  double mean = 0;
  for (double& r : relevance) mean += (r /= static_cast<double>(image.size()));
  mean /= static_cast<double>(text.size());
  std::vector<int32_t> raters;
  for (size_t t = 0; t < text.size(); ++t)
    if (relevance[t] > mean) raters.push_back(text[t]);
  return raters.empty() ? text : raters;
}

int64_t SparseVlmSelected(int64_t deleted) { return deleted > 0 ? 3 * deleted / 10 + 1 : 0; }
int64_t SparseVlmClusters(int64_t deleted) { return deleted > 0 ? SparseVlmSelected(deleted) / 10 + 1 : 0; }

int64_t SparseVlmDeletions(int64_t n_remove, int64_t visual) {
  for (int64_t d = std::max<int64_t>(n_remove, 0); d <= visual - 1; ++d)  // Net(d) ≤ d
    if (Net(d) == n_remove) return d;
  return -1;
}

LayerPlan SparseVlmPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams&) {
  std::vector<int32_t> image = ImageRows(layer.meta, "SparseVLM", layer.layer);  // recycled tokens included
  const int64_t visual = static_cast<int64_t>(image.size());
  const int64_t deleted = SparseVlmDeletions(n_remove, visual);
  if (deleted < 0)
    Fail("SparseVLM: LLM layer ", layer.layer, " cannot remove ", n_remove, " net of its ", visual,
         " image tokens: deleting all but one and recycling removes at most ", MaxNet(visual));
  // The raters' current rows (text tokens are never removed; map by original index).
  std::map<int32_t, int32_t> row_of;
  for (size_t i = 0; i < layer.meta.size(); ++i)
    if (layer.meta[i].role != TokenRole::Visual) row_of[layer.meta[i].orig_index] = static_cast<int32_t>(i);
  std::vector<int32_t> raters;
  for (int32_t r : SparseVlmRaters(layer.input_embeds, layer.input_meta)) {
    const auto it = row_of.find(layer.input_meta[static_cast<size_t>(r)].orig_index);
    if (it == row_of.end()) Fail("SparseVLM: LLM layer ", layer.layer, " lost the rater text token at prompt row ", r);
    raters.push_back(it->second);
  }
  // Filter: score_j = mean over raters of the head-mean attention probabilities on j;
  // keep the top visual − |D| (ties: the lower row).
  const Matrix probs = layer.attention.MeanOfProbs(raters, image);
  std::vector<float> score(image.size());
  for (size_t j = 0; j < image.size(); ++j) {
    double s = 0;  // fixed order: the same whatever the thread count
    for (int64_t r = 0; r < probs.rows(); ++r) s += probs.at(r, static_cast<int64_t>(j));
    score[j] = static_cast<float>(s / static_cast<double>(probs.rows()));
  }
  FilterResult filter = KeepMostImportant(image, score, visual - deleted);
  if (deleted == 0) return LayerPlan{std::move(filter), Routing::PruneAll(0), CompressRule::Prune, {}};

  // Correlate: the deleted tokens in descending score (ties: lower row), the first n_sel
  // clustered by DPC-KNN on their hidden states; the others are dropped.
  std::vector<float> deleted_score;
  for (int32_t row : filter.discard) {
    const auto at = std::lower_bound(image.begin(), image.end(), row) - image.begin();
    deleted_score.push_back(score[static_cast<size_t>(at)]);
  }
  std::vector<size_t> by_score(filter.discard.size());
  std::iota(by_score.begin(), by_score.end(), 0);
  std::stable_sort(by_score.begin(), by_score.end(),
                   [&](size_t a, size_t b) { return deleted_score[a] > deleted_score[b]; });
  const int64_t selected = SparseVlmSelected(deleted), clusters = SparseVlmClusters(deleted);
  Matrix points(selected, layer.hidden.cols());
  for (int64_t s = 0; s < selected; ++s)
    std::copy_n(layer.hidden.row(filter.discard[by_score[static_cast<size_t>(s)]]), points.cols(), points.row(s));
  const DpcKnnResult dpc = DpcKnn(points, clusters);
  std::vector<int32_t> cluster_of(filter.discard.size(), -1), members(static_cast<size_t>(clusters), 0);
  for (int64_t s = 0; s < selected; ++s) {
    cluster_of[by_score[static_cast<size_t>(s)]] = dpc.cluster[static_cast<size_t>(s)];
    ++members[static_cast<size_t>(dpc.cluster[static_cast<size_t>(s)])];
  }
  Routing routing;
  for (int32_t g : cluster_of) {
    if (g >= 0) {
      routing.dst.push_back(NewToken(g));
      routing.alpha.push_back(1.0f / static_cast<float>(members[static_cast<size_t>(g)]));
    }
    routing.src_begin.push_back(static_cast<int32_t>(routing.dst.size()));
  }
  // Compress: cluster g's mean becomes new token g, after the kept image tokens.
  return LayerPlan{std::move(filter), std::move(routing), CompressRule::FuseIntoNew, {}};
}

MethodInfo SparseVlmMethod() {
  return {.name = "sparsevlm",
          .site = MethodSite::Llm,
          .summary = "SparseVLM v1.5 (baselines §4): after LLM layers 2, 6, 15 (of 32, scaled to other depths) keep "
                     "the image tokens the text raters attend to most and recycle the most relevant 30 % of the "
                     "deleted ones as DPC-KNN cluster means placed after the kept image tokens. --keep 192/128/64 use "
                     "v1.5's fixed counts (nominal: layer means 206.5/145.4/82.25); other budgets geometric stages "
                     "whose mean is --keep. Positions are renumbered compactly, as v1.5 does (--positions original "
                     "keeps the prompt's).",
          .params = {"--keep", "--tflops", "--positions"},
          .llm_plan = SparseVlmPlan,
          .schedule = SparseVlmSchedule,
          .positions = PositionPolicy::Compact};
}

}  // namespace ficoco
