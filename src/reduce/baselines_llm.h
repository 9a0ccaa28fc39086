// Baselines that prune visual tokens inside the LLM during prefill (baselines.md §3,
// §5, §9): FastV, PyramidDrop and DART. Each drops image tokens after a layer's
// attention (the hook before its MLP; the MLP is per token, so pruning before it
// equals pruning after it) and keeps the survivors in spatial order. Decoding never
// prunes: these are the "static" (prefill-only) forms of §12.2.
#pragma once
#include <cstdint>
#include <vector>

#include "language/llama_decoder.h"
#include "reduce/methods.h"
#include "reduce/params.h"
#include "reduce/plan.h"
#include "reduce/schedule.h"

namespace ficoco {

// FastV (fastv.cc): once, after the attention of layer K − 1 (K = --fastv-k), keep the
// image tokens most attended to by the last prompt token (its code) or, with
// --fastv-rank mean-received, by all prompt tokens on average (its paper).
LayerPlan FastvPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams& params);
ReductionSchedule FastvSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
MethodInfo FastvMethod();

// PyramidDrop (pdrop.cc): before each layer of --pdrop-layers, keep the same share λ
// of the image tokens by the last prompt token's attention; λ makes the mean over the
// layers the budget.
LayerPlan PdropPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams& params);
ReductionSchedule PdropSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
MethodInfo PdropMethod();
// The stage layers ℓ for a decoder of `depth` layers (the hooks are at ℓ − 1). The
// default list {8, 16, 24} is PDrop's choice for 32 layers and is scaled to other
// depths (round(ℓ·depth/32), duplicates merged); any other list is used as given.
// Throws Error unless every stage is in 1..depth − 1.
std::vector<int> PdropStageLayers(const std::vector<int>& pdrop_layers, int depth);

// DART (dart.cc): once, after the attention of layer K − 1, keep the image pivots (key
// L1 norm) and, for every pivot, the image tokens least similar to it.
LayerPlan DartPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams& params);
ReductionSchedule DartSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
MethodInfo DartMethod();

// Shared by the three (fastv.cc).
// Rows of the image tokens, ascending, found from the token records (the span the
// image placeholder expanded to, wherever it is). Throws Error when there are none.
std::vector<int32_t> ImageRows(const std::vector<TokenMeta>& meta, const char* method, int layer);
// Head-mean softmax attention (causal) of the last prompt token on each image row.
std::vector<float> LastTokenAttention(const TextHookContext& layer, const std::vector<int32_t>& image);

}  // namespace ficoco
