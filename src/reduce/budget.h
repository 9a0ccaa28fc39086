// Budgets a user states (--keep N visual tokens, or --tflops X of prefill) turned into
// a per-layer schedule, and the schedule shapes methods are built from.
#pragma once
#include <cstdint>

#include "model/config.h"
#include "reduce/methods.h"
#include "reduce/params.h"
#include "reduce/schedule.h"

namespace ficoco {

struct Budget {
  int64_t keep = -1;     // visual tokens reaching the LLM (vision methods) or their mean over LLM layers
  double tflops = -1;    // target LLM prefill TFLOPs (LLM-Viewer count)
  bool set() const { return keep >= 0 || tflops >= 0; }
};

// The method's schedule meeting `budget` for a prompt with `text_tokens` non-image
// tokens; --tflops picks the largest keep whose LLM prefill fits. Throws Error with
// the reachable range when the budget cannot be met.
ReductionSchedule ScheduleForBudget(const MethodInfo& method, const LlavaConfig& cfg, const ReductionParams& params,
                                    const Budget& budget, int64_t text_tokens);

// Shapes (each returns discards per layer and throws for unreachable budgets):
// patches − keep removed in the vision layers [start, last run], evenly, the
// remainder in the last layers.
std::vector<int> VisionSpread(const LlavaConfig& cfg, int start, int64_t keep, const char* method);
// From v0 visual tokens, every LLM layer from `start` to the second last removes the
// same count so that the mean over layers is `keep` (FiCoCo-L).
std::vector<int> LlmEqualSteps(const LlavaConfig& cfg, int start, int64_t v0, int64_t keep);
// All removed at once in layer `layer` (before layer + 1): the mean over layers is
// `keep` (FastV, DART with layer = K − 1).
std::vector<int> LlmOnce(const LlavaConfig& cfg, int layer, int64_t v0, int64_t keep);
// Removals in `layers` (ascending), each keeping the same ratio λ of what remains, λ
// chosen so that the mean over layers is `keep` (PyramidDrop).
std::vector<int> LlmGeometricStages(const LlavaConfig& cfg, const std::vector<int>& layers, int64_t v0, int64_t keep);
// Mean visual tokens over LLM layers for a removal list starting from v0.
double MeanLlmVisual(const std::vector<int>& llm, int64_t v0);

}  // namespace ficoco
