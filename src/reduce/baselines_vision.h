// Baselines that reduce inside the CLIP vision encoder, written as filter → correlate →
// compress plans (baselines.md §1, §2; ficoco-spec §7):
//   ToMe (tome.cc)  — bipartite soft matching on head-mean keys, size-weighted merges;
//   EViT (evit.cc)  — keep the tokens [CLS] attends to most, fuse the rest into one token.
// Both reorder the survivors as their originals do, so the LLM no longer sees the
// patches in raster order. Direct (non-composed) implementations of both live in
// reduce/original/ and the tests check that the two forms agree.
#pragma once
#include <cstdint>

#include "model/config.h"
#include "reduce/methods.h"
#include "reduce/params.h"
#include "reduce/plan.h"
#include "reduce/schedule.h"
#include "vision/clip_vision.h"

namespace ficoco {

// ToMe in a CLIP layer: merges `n_remove` tokens. Requires [CLS] at row 0 and
// n_remove <= ⌊(t − 1)/2⌋ for the layer's t tokens (throws Error otherwise).
LayerPlan TomeVisionPlan(const VisionHookContext& layer, int64_t n_remove, const ReductionParams& params);
// Spread over the layers from --vision-start (default 0: all layers that reach the
// projector); refuses budgets that would need more than ⌊(t − 1)/2⌋ merges in a layer.
ReductionSchedule TomeSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
MethodInfo TomeMethod();

// EViT in a CLIP layer: removes `n_remove` tokens net (with params.evit_fuse it
// discards n_remove + 1 and appends their fused token).
LayerPlan EvitVisionPlan(const VisionHookContext& layer, int64_t n_remove, const ReductionParams& params);
// Spread over the layers from --vision-start (default: EvitDefaultStart).
ReductionSchedule EvitSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
// --vision-start if given, else FiCoCo-V's paper start (layer 11 of 24) scaled to the
// encoder's depth, so that EViT and FiCoCo-V reduce in the same layers at equal budgets.
int EvitDefaultStart(const LlavaConfig& cfg, const ReductionParams& params);
MethodInfo EvitMethod();

}  // namespace ficoco
