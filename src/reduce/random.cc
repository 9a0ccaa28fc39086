// Random baseline (baselines.md §11): between the encoder and the projector, keep
// `keep` patches drawn uniformly without replacement, sorted back into raster order
// (as UniPruneBench's in-LLM variant does); drop the rest. No attention is read.
//
// The draw is reproducible on every platform: std::mt19937_64 seeded with
// --reduce-seed (its output sequence is fixed by the C++ standard), and no standard
// distribution (their algorithms are implementation-defined). A uniform integer in
// [0, m) is r mod m for the first 64-bit output r >= 2^64 mod m (rejection sampling:
// the accepted range holds an exact multiple of m values, so there is no bias). A
// partial Fisher–Yates shuffle of positions 0..P−1 then swaps, for i = 0..keep−1,
// position i with position i + U[0, P − i); the first `keep` positions are kept. The
// same seed keeps the same patches for every image of the same grid.
#include <random>
#include <utility>

#include "base/error.h"
#include "reduce/filter.h"
#include "reduce/baselines_prellm.h"

namespace ficoco {
namespace {

uint64_t UniformBelow(std::mt19937_64& rng, uint64_t m) {
  const uint64_t reject_below = (uint64_t{0} - m) % m;  // 2^64 mod m
  uint64_t r = rng();
  while (r < reject_below) r = rng();
  return r % m;
}

}  // namespace

std::vector<int32_t> RandomPermutationPrefix(int64_t n, int64_t keep, uint64_t seed) {
  if (keep < 0 || keep > n) Fail("random: cannot keep ", keep, " of ", n, " patches");
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < keep; ++i) {
    const auto j = static_cast<int64_t>(UniformBelow(rng, static_cast<uint64_t>(n - i))) + i;
    std::swap(pos[static_cast<size_t>(i)], pos[static_cast<size_t>(j)]);
  }
  return pos;
}

LayerPlan RandomPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& p) {
  const PreLlmTokens tokens = SplitPreLlmTokens(out);
  const int64_t keep = PreLlmKeep(tokens, n_remove, "random");
  // Filter: the first `keep` entries of the seeded shuffle stay; a patch's score is its
  // place in the shuffle (higher = discarded first).
  const std::vector<int32_t> order = RandomPermutationPrefix(static_cast<int64_t>(tokens.patches.size()), keep, p.seed);
  std::vector<float> scores(order.size());
  std::vector<int32_t> kept;
  for (size_t place = 0; place < order.size(); ++place) {
    scores[static_cast<size_t>(order[place])] = static_cast<float>(place);
    if (static_cast<int64_t>(place) < keep) kept.push_back(tokens.patches[static_cast<size_t>(order[place])]);
  }
  // Correlate: none. Compress: drop. Survivors stay in raster order.
  return LayerPlan{KeepExactly(tokens.patches, std::move(scores), std::move(kept)), Routing::PruneAll(n_remove),
                   CompressRule::Prune, {}};
}

MethodInfo RandomMethod() {
  return {.name = "random",
          .site = MethodSite::PreLlm,
          .summary = "Random (baselines §11): between encoder and projector, keep patches drawn uniformly without "
                     "replacement (seeded by --reduce-seed, the same draw for every image), in raster order; drop the rest.",
          .params = {"--keep", "--tflops", "--reduce-seed"},
          .pre_llm_plan = RandomPlan,
          .schedule = PreLlmSchedule};
}

}  // namespace ficoco
