// Baselines that reduce between the CLIP encoder and the projector (baselines.md §6,
// §7, §11): random, topk-cls, pool, visionzip, prumerge, prumerge+. Each runs once, in
// VisionRunOptions::output_hook, on the encoder's final output [CLS + patches] with the
// last run layer's attention (layer 22 for LLaVA-1.5, the one VisionZip and HiRED read)
// and removes `n_remove` patches. [CLS] is never a candidate and LLaVA drops it after
// the hook, so keep = patches − n_remove is the number of tokens reaching the projector.
#pragma once
#include <cstdint>
#include <vector>

#include "reduce/methods.h"
#include "reduce/params.h"
#include "reduce/plan.h"
#include "reduce/schedule.h"
#include "vision/clip_vision.h"

namespace ficoco {

// Plan functions (VisionPlanFn, registered as MethodInfo::pre_llm_plan).
LayerPlan RandomPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& params);      // random.cc
LayerPlan TopkClsPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& params);     // topk_cls.cc
LayerPlan PoolPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& params);        // pool.cc
LayerPlan VisionZipPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& params);   // visionzip.cc
LayerPlan PruMergePlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& params);    // prumerge.cc
LayerPlan PruMergePlusPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams& params);

// Schedules: pre_llm = patches − keep, keep 1..patches (PreLlmSchedule, topk_cls.cc);
// PoolSchedule also refuses keeps with no pooling grid (see PoolGridFor).
ReductionSchedule PreLlmSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
ReductionSchedule PoolSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);

// Registry entries.
MethodInfo RandomMethod();
MethodInfo TopkClsMethod();
MethodInfo PoolMethod();
MethodInfo VisionZipMethod();
MethodInfo PruMergeMethod();
MethodInfo PruMergePlusMethod();

// ---- Building blocks shared by these methods (topk_cls.cc), exposed for tests ----

// [CLS]'s row (−1 if absent) and the patch rows, ascending, of the encoder output.
struct PreLlmTokens {
  int32_t cls = -1;
  std::vector<int32_t> patches;
};
PreLlmTokens SplitPreLlmTokens(const VisionHookContext& out);
// patches − n_remove, checked (at least one patch stays); `method` names the error.
int64_t PreLlmKeep(const PreLlmTokens& tokens, int64_t n_remove, const char* method);
// The last layer's [CLS] attention on each patch: mean over heads of the softmax
// probabilities of [CLS]'s row (all keys, [CLS] included), fp32. Requires [CLS].
std::vector<float> ClsAttentionOnPatches(const VisionHookContext& out, const PreLlmTokens& tokens, const char* method);
// For each centre (a patch position), its k nearest other patches by cosine of the
// L2-normalised rows of `keys` (one row per patch position), most similar first; ties:
// lower position first. Kept and discarded patches alike (PruMerge's correlate).
std::vector<std::vector<int32_t>> NearestByKeyCosine(const Matrix& keys, const std::vector<int32_t>& centres, int64_t k);

// ---- Method internals exposed for tests ----

// random.cc: positions 0..n−1 in the order of a partial Fisher–Yates shuffle that fixes
// its first `keep` entries, driven by std::mt19937_64(seed) (see random.cc).
std::vector<int32_t> RandomPermutationPrefix(int64_t n, int64_t keep, uint64_t seed);

// pool.cc: the h'×w' pooling grid for `keep` cells on a grid×grid patch grid: h' ≥ w',
// both ≤ grid, as close to square as possible. Throws Error naming the nearest
// reachable keeps when no such factorisation exists.
struct PoolShape {
  int rows = 0;  // h'
  int cols = 0;  // w'
};
PoolShape PoolGridFor(int64_t keep, int grid);
// Band i of an axis of `grid` cells cut into n bands: [⌊i·grid/n⌋, ⌊(i+1)·grid/n⌋).
int PoolBandStart(int i, int grid, int n);

// prumerge.cc
// PruMerge's adaptive count: how many values exceed Q3 + 1.5·IQR (numpy's linear
// percentiles, computed in double).
int64_t PruMergeOutlierCount(const std::vector<float>& scores);
// Patch positions kept, in the original's output order: prumerge = the top `keep` by
// score (score order); prumerge+ = the top k' by score, k' = max(1, outliers) (capped at
// keep), then the spatial samples 0, s, 2s, … (s = max(1, ⌊patches/keep⌋)) not already
// taken, ascending, the first keep − k' of them (EffiVLM-Bench's fixed-budget PruMerge+).
std::vector<int32_t> PruMergeSelect(const std::vector<float>& scores, int64_t keep, bool plus);
inline constexpr int64_t kPruMergeNeighbours = 32;  // the original's hard-coded k

}  // namespace ficoco
