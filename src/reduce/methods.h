// The registry of token-reduction methods: what `ficoco methods` lists and what
// `--method NAME` accepts. A method is its per-layer plan functions (filter +
// correlate; the engine compresses), where they act, and how a budget becomes its
// per-layer schedule.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"
#include "reduce/params.h"
#include "reduce/plan.h"
#include "reduce/schedule.h"

namespace ficoco {

// Where a method removes visual tokens.
enum class MethodSite { None, Vision, PreLlm, Llm, VisionAndLlm };
const char* MethodSiteName(MethodSite site);  // "none" | "vision" | "pre-llm" | "llm" | "vision+llm"

struct VisionHookContext;
struct TextHookContext;
// A method's filter + correlate for one layer: the plan that removes `n_remove`
// tokens (net) from the layer's current sequence (the engine then compresses).
using VisionPlanFn = LayerPlan (*)(const VisionHookContext& layer, int64_t n_remove, const ReductionParams& params);
using LlmPlanFn = LayerPlan (*)(const TextHookContext& layer, int64_t n_remove, const ReductionParams& params);
// The schedule that leaves `keep` visual tokens (reaching the LLM, or their mean
// over the LLM layers for in-LLM methods). Throws Error with the reachable range.
using ScheduleFn = ReductionSchedule (*)(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);

struct MethodInfo {
  std::string name;                 // as typed on the command line
  MethodSite site = MethodSite::None;
  std::string summary;              // one line
  std::vector<std::string> params;  // command-line options that tune it
  VisionPlanFn vision_plan = nullptr;   // inside encoder layers
  VisionPlanFn pre_llm_plan = nullptr;  // on the encoder output, before the projector
  LlmPlanFn llm_plan = nullptr;         // inside LLM prefill layers
  ScheduleFn schedule = nullptr;
  bool proportional_attention = false;  // the encoder adds log(size) to attention logits (ToMe)
  // The original method's position policy after an in-LLM reduction (--positions auto).
  PositionPolicy positions = PositionPolicy::KeepOriginal;
};

const std::vector<MethodInfo>& AllMethods();
// Throws Error listing the valid names.
const MethodInfo& FindMethod(const std::string& name);

}  // namespace ficoco
