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
#include "kernels/gemv.h"
#include "reduce/baselines_llm.h"
#include "reduce/baselines_sparsevlm.h"
#include "reduce/budget.h"

namespace ficoco {

namespace {
const std::vector<int> kSparseLayers = {2, 6, 15};  // v1.5's layer_dict
constexpr int kReferenceDepth = 32;                 // Vicuna-7B
constexpr int64_t kReferencePatches = 576;
struct V15Counts {
  int64_t keep;
  int64_t topk[3];  // score.py's sparse_token_list_<keep>: kept by top-k after layers 2, 6, 15
};
constexpr V15Counts kV15[] = {{192, {300, 200, 110}}, {128, {303, 110, 36}}, {64, {66, 30, 17}}};

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

DpcKnnResult DpcKnn(const Matrix& x, int64_t k) {
  const int64_t n = x.rows(), width = x.cols();
  if (k < 1 || k > n) Fail("DPC-KNN: cannot form ", k, " clusters from ", n, " points");
  std::vector<double> dist(static_cast<size_t>(n * n), 0.0);
  auto d = [&](int64_t i, int64_t j) -> double& { return dist[static_cast<size_t>(i * n + j)]; };
  std::vector<float> diff(static_cast<size_t>(width));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      for (int64_t c = 0; c < width; ++c) diff[static_cast<size_t>(c)] = x.at(i, c) - x.at(j, c);
      d(i, j) = d(j, i) = std::sqrt(Dot(diff.data(), diff.data(), width) / static_cast<double>(width));
    }
  const double farthest = *std::max_element(dist.begin(), dist.end());
  DpcKnnResult r;
  std::vector<double> near(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {  // density over the k nearest, the point itself (d = 0) included
    std::copy_n(&d(i, 0), n, near.begin());
    std::partial_sort(near.begin(), near.begin() + k, near.end());
    double sq = 0;
    for (int64_t j = 0; j < k; ++j) sq += near[static_cast<size_t>(j)] * near[static_cast<size_t>(j)];
    r.density.push_back(std::exp(-sq / static_cast<double>(k)));
  }
  std::vector<double> gamma;
  for (int64_t i = 0; i < n; ++i) {  // parent distance: to the nearest denser point (equal density: lower row)
    double delta = farthest;
    for (int64_t j = 0; j < n; ++j) {
      const double rj = r.density[static_cast<size_t>(j)], ri = r.density[static_cast<size_t>(i)];
      if (rj > ri || (rj == ri && j < i)) delta = std::min(delta, d(i, j));
    }
    r.parent_distance.push_back(delta);
    gamma.push_back(delta * r.density[static_cast<size_t>(i)]);
  }
  std::vector<int32_t> rank(static_cast<size_t>(n));
  std::iota(rank.begin(), rank.end(), 0);
  std::stable_sort(rank.begin(), rank.end(),
                   [&](int32_t a, int32_t b) { return gamma[static_cast<size_t>(a)] > gamma[static_cast<size_t>(b)]; });
  r.centres.assign(rank.begin(), rank.begin() + k);
  for (int64_t i = 0; i < n; ++i) {  // nearest centre; equidistant: the one ranked first
    int32_t best = 0;
    for (int32_t g = 1; g < k; ++g)
      if (d(r.centres[static_cast<size_t>(g)], i) < d(r.centres[static_cast<size_t>(best)], i)) best = g;
    r.cluster.push_back(best);
  }
  for (int32_t g = 0; g < k; ++g) r.cluster[static_cast<size_t>(r.centres[static_cast<size_t>(g)])] = g;
  return r;
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

namespace {
// Removals per decoder layer when every sparse layer keeps round(ratio · v) of its v
// image tokens, or the fewest recycling allows (1 + c(v − 1)).
std::vector<int> StageRemovals(int depth, const std::vector<int>& layers, int64_t v0, double ratio) {
  std::vector<int> s(static_cast<size_t>(depth), 0);
  int64_t v = v0;
  for (int l : layers) {
    const int64_t next = std::clamp<int64_t>(std::llround(static_cast<double>(v) * ratio), v - MaxNet(v), v);
    s[static_cast<size_t>(l)] = static_cast<int>(v - next);
    v = next;
  }
  return s;
}
}  // namespace

ReductionSchedule SparseVlmSchedule(const LlavaConfig& cfg, const ReductionParams&, int64_t keep) {
  const int depth = cfg.text.num_hidden_layers;
  const int64_t v0 = cfg.vision.num_patches();
  const std::vector<int> layers = SparseVlmLayers(depth);
  ReductionSchedule s = NoReduction(cfg);
  if (keep < 1 || keep > v0)
    Fail("--keep ", keep, " is impossible in the LLM: ", v0, " visual tokens enter it (keep 1..", v0, ")");
  if (keep == v0) return s;
  if (depth == kReferenceDepth && v0 == kReferencePatches)
    for (const V15Counts& c : kV15)
      if (c.keep == keep) {  // top-k k, then c(v − k) cluster means come back: net v − k − c
        int64_t v = v0;
        for (size_t i = 0; i < layers.size(); ++i) {
          const int64_t net = Net(v - c.topk[i]);
          s.llm[static_cast<size_t>(layers[i])] = static_cast<int>(net);
          v -= net;
        }
        return s;
      }
  if (layers.back() >= depth - 1) Fail("SparseVLM needs a decoder of at least 2 layers, got ", depth);
  const double least = MeanLlmVisual(StageRemovals(depth, layers, v0, 0.0), v0);
  if (static_cast<double>(keep) < least - 0.5)
    Fail("--keep ", keep, " is out of reach for SparseVLM in the LLM: the layers up to ", layers.front(),
         " see every visual token and recycling returns at least one token per sparse layer, so the mean over the "
         "layers is at least ", least, "; choose a larger --keep");
  double lo = 0, hi = 1;  // the mean grows with the kept ratio
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (MeanLlmVisual(StageRemovals(depth, layers, v0, mid), v0) > static_cast<double>(keep) ? hi : lo) = mid;
  }
  s.llm = StageRemovals(depth, layers, v0, lo);
  return s;
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
