// Budgets a user states (--keep N visual tokens, or --tflops X of prefill) turned into
// a per-layer schedule for a method.
#pragma once
#include <cstdint>
#include <string>

#include "model/config.h"
#include "reduce/params.h"
#include "reduce/schedule.h"

namespace ficoco {

// Where a method removes visual tokens.
enum class MethodSite { None, Vision, Llm, VisionAndLlm };

struct Budget {
  int64_t keep = -1;     // visual tokens reaching the LLM (vision methods) or their mean over LLM layers
  double tflops = -1;    // target LLM prefill TFLOPs (LLM-Viewer count)
  bool set() const { return keep >= 0 || tflops >= 0; }
};

// The schedule for `site` that meets `budget` for a prompt with `text_tokens`
// non-image tokens. Vision: the removed tokens are spread evenly over the layers from
// the start layer to the last one whose output reaches the projector (remainder in the
// last layers). LLM: the same count from the start layer on, as large as needed for the
// mean over layers (down to one visual token). --tflops picks the largest keep whose
// cost fits. Throws Error with the reachable range when the budget cannot be met.
ReductionSchedule ScheduleForBudget(MethodSite site, const LlavaConfig& cfg, const FicocoParams& params,
                                    const Budget& budget, int64_t text_tokens);

}  // namespace ficoco
