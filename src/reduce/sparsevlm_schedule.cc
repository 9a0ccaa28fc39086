// SparseVLM's schedule: v1.5's fixed counts for its three budgets, geometric stages
// over the sparse layers otherwise (see the header of sparsevlm.cc).
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "reduce/baselines_sparsevlm.h"
#include "reduce/budget.h"

namespace ficoco {
namespace {
constexpr int kReferenceDepth = 32;  // Vicuna-7B
constexpr int64_t kReferencePatches = 576;
struct V15Counts {
  int64_t keep;
  int64_t topk[3];  // score.py's sparse_token_list_<keep>: kept by top-k after layers 2, 6, 15
};
constexpr V15Counts kV15[] = {{192, {300, 200, 110}}, {128, {303, 110, 36}}, {64, {66, 30, 17}}};
int64_t Net(int64_t deleted) { return deleted - SparseVlmClusters(deleted); }
int64_t MaxNet(int64_t visual) { return visual >= 2 ? Net(visual - 1) : 0; }  // one image token stays
}  // namespace

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

}  // namespace ficoco
