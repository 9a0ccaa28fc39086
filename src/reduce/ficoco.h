// The FiCoCo methods' per-layer filter + correlate (ficoco-spec §2.5 and §3.6).
#pragma once
#include "language/llama_decoder.h"
#include "reduce/params.h"
#include "reduce/schedule.h"
#include "reduce/plan.h"
#include "vision/clip_vision.h"

namespace ficoco {

// FiCoCo-V in a CLIP layer: ficoco_v.cc.
LayerPlan FicocoVisionPlan(const VisionHookContext& layer, int64_t n_discard, const ReductionParams& params);
// FiCoCo-L in an LLM prefill layer: ficoco_l.cc.
LayerPlan FicocoLlmPlan(const TextHookContext& layer, int64_t n_discard, const ReductionParams& params);

// Schedules (ficoco_schedule.cc): V spreads over the encoder layers from its start,
// L removes equal steps from its start, VL splits the removal by --vl-split.
ReductionSchedule FicocoVSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
ReductionSchedule FicocoLSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
ReductionSchedule FicocoVLSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);

}  // namespace ficoco
