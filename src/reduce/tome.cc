// ToMe, Token Merging (Bolya et al., ICLR 2023; baselines.md §1) inside the CLIP encoder,
// after each layer's attention and before its MLP: bipartite soft matching on the
// layer's keys averaged over heads, size-weighted merges with proportional attention.
#include <limits>

#include "base/error.h"
#include "reduce/baselines_vision.h"
#include "reduce/budget.h"
#include "reduce/filter.h"

namespace ficoco {
namespace {

float Dot(const std::vector<float>& a, const std::vector<float>& b) {
  float acc = 0;
  for (size_t c = 0; c < a.size(); ++c) acc += a[c] * b[c];
  return acc;
}

// The first layer whose merges exceed ToMe's ⌊(t − 1)/2⌋ (t tokens, [CLS] included), or −1.
int LayerOverCap(const std::vector<int>& merges, int64_t patches, int64_t* tokens) {
  int64_t t = patches + 1;
  for (size_t l = 0; l < merges.size(); ++l) {
    if (merges[l] > (t - 1) / 2) {
      *tokens = t;
      return static_cast<int>(l);
    }
    t -= merges[l];
  }
  return -1;
}

}  // namespace

LayerPlan TomeVisionPlan(const VisionHookContext& layer, int64_t n_remove, const ReductionParams&) {
  const auto t = static_cast<int64_t>(layer.meta.size());
  if (t == 0 || layer.meta[0].role != TokenRole::Cls)
    Fail("ToMe: vision layer ", layer.layer, " has no [CLS] token at row 0 (it opens set A and is never merged)");
  // Bipartite matching pairs each A token with one B token: at most half of the
  // tokens besides [CLS] can merge in one layer.
  if (n_remove < 0 || n_remove > (t - 1) / 2)
    Fail("ToMe: vision layer ", layer.layer, " has ", t, " tokens ([CLS] included), so it merges at most ⌊(t − 1)/2⌋ = ",
         (t - 1) / 2, " of them; the schedule asks ", n_remove);

  // Similarity: cosine of the layer's keys averaged over heads.
  const Matrix keys = layer.attention.HeadMeanKeys();
  std::vector<std::vector<float>> unit(static_cast<size_t>(t));
  for (int64_t i = 0; i < t; ++i) {
    unit[static_cast<size_t>(i)].assign(keys.row(i), keys.row(i) + keys.cols());
    L2Normalize(unit[static_cast<size_t>(i)]);
  }

  // Split alternately: A = even rows ([CLS] at 0, never a source), B = odd rows. Each
  // A token scores its best cosine to B and points at that B token (ties: the lower
  // row). B tokens are never sources: score −∞.
  std::vector<int32_t> candidates, best_match(static_cast<size_t>(t), -1);
  std::vector<float> scores;
  for (int32_t a = 1; a < t; ++a) {
    candidates.push_back(a);
    float best = -std::numeric_limits<float>::infinity();
    if (a % 2 == 0)
      for (int32_t b = 1; b < t; b += 2) {
        const float cosine = Dot(unit[static_cast<size_t>(a)], unit[static_cast<size_t>(b)]);
        if (best_match[static_cast<size_t>(a)] < 0 || cosine > best) {
          best = cosine;
          best_match[static_cast<size_t>(a)] = b;
        }
      }
    scores.push_back(best);
  }
  // Filter: the r A tokens with the most similar partner (ties: the lower row first).
  FilterResult filter = DiscardHighest(std::move(candidates), std::move(scores), n_remove);

  // Correlate: one-hot, each source into its best match in B.
  Routing routing;
  for (int32_t a : filter.discard) {
    routing.dst.push_back(best_match[static_cast<size_t>(a)]);
    routing.alpha.push_back(1.0f);
    routing.src_begin.push_back(static_cast<int32_t>(routing.dst.size()));
  }

  // Compress: size-weighted average, sizes tracked (and used by proportional attention
  // in later layers). New order, as ToMe concatenates them: the unmerged A tokens in A
  // order ([CLS] first), then all B tokens in order — raster order is lost.
  std::vector<char> merged(static_cast<size_t>(t), 0);
  for (int32_t a : filter.discard) merged[static_cast<size_t>(a)] = 1;
  std::vector<int32_t> order;
  for (int32_t a = 0; a < t; a += 2)
    if (!merged[static_cast<size_t>(a)]) order.push_back(a);
  for (int32_t b = 1; b < t; b += 2) order.push_back(b);
  return LayerPlan{std::move(filter), std::move(routing), CompressRule::SizeWeighted, std::move(order)};
}

ReductionSchedule TomeSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  const int start = p.vision_start >= 0 ? p.vision_start : 0;
  const int64_t patches = cfg.vision.num_patches();
  ReductionSchedule s = NoReduction(cfg);
  s.vision = VisionSpread(cfg, start, keep, "tome");
  int64_t tokens = 0, unused = 0;
  const int layer = LayerOverCap(s.vision, patches, &tokens);
  if (layer >= 0) {
    int64_t least = keep + 1;  // fewer merges per layer: reachable from some keep on
    while (least < patches && LayerOverCap(VisionSpread(cfg, start, least, "tome"), patches, &unused) >= 0) ++least;
    Fail("--keep ", keep, " is out of reach for tome from vision layer ", start, ": layer ", layer, " has ", tokens,
         " tokens ([CLS] included) and ToMe merges at most ⌊(t − 1)/2⌋ = ", (tokens - 1) / 2,
         " of them in one layer, but the schedule asks ", s.vision[static_cast<size_t>(layer)],
         "; the least reachable --keep is ", least, start > 0 ? " (an earlier --vision-start reaches lower)" : "");
  }
  return s;
}

MethodInfo TomeMethod() {
  return MethodInfo{
      .name = "tome",
      .site = MethodSite::Vision,
      .summary = "ToMe (Bolya et al. 2023): in every CLIP layer from --vision-start (default 0), bipartite soft "
                 "matching on head-mean keys merges up to half of the tokens into their most similar partner "
                 "(size-weighted average, sizes tracked, proportional attention); survivors come out as [unmerged "
                 "even positions, odd positions], so raster order is lost.",
      .params = {"--keep", "--tflops", "--vision-start", "--proportional-attention"},
      .vision_plan = TomeVisionPlan,
      .schedule = TomeSchedule,
      .proportional_attention = true,
  };
}

}  // namespace ficoco
