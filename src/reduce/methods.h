// The registry of token-reduction methods: what `ficoco methods` lists and what
// `--method NAME` accepts.
#pragma once
#include <string>
#include <vector>

#include "reduce/budget.h"
#include "reduce/params.h"
#include "reduce/plan.h"

namespace ficoco {

struct VisionHookContext;
struct TextHookContext;
// A method's filter + correlate for one layer: the plan that discards `n_discard`
// tokens of the layer's current sequence (the engine then compresses).
using VisionPlanFn = LayerPlan (*)(const VisionHookContext& layer, int64_t n_discard, const FicocoParams& params);
using LlmPlanFn = LayerPlan (*)(const TextHookContext& layer, int64_t n_discard, const FicocoParams& params);

struct MethodInfo {
  std::string name;                 // as typed on the command line
  MethodSite site = MethodSite::None;
  std::string summary;              // one line
  std::vector<std::string> params;  // command-line options that tune it
  VisionPlanFn vision_plan = nullptr;  // set when it acts in the vision encoder
  LlmPlanFn llm_plan = nullptr;        // set when it acts in the LLM prefill
};

const std::vector<MethodInfo>& AllMethods();
// Throws Error listing the valid names.
const MethodInfo& FindMethod(const std::string& name);
const char* MethodSiteName(MethodSite site);  // "none" | "vision" | "llm" | "vision+llm"

}  // namespace ficoco
