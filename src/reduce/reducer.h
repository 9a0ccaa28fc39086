// One request's token reduction: a method, its parameters and schedule, turned into
// the engine's layer hooks. Each hook runs the method's filter and correlate stages
// on the layer's attention, applies compress, and records the plan in the trace.
#pragma once
#include <memory>

#include "language/llama_decoder.h"
#include "reduce/methods.h"
#include "reduce/params.h"
#include "reduce/schedule.h"
#include "reduce/trace.h"
#include "vision/clip_vision.h"

namespace ficoco {

class Reducer {
 public:
  // `trace` (optional) receives every applied plan; it must outlive the hooks.
  Reducer(const MethodInfo& method, const ReductionParams& params, ReductionSchedule schedule, ReductionTrace* trace);

  const MethodInfo& method() const { return method_; }
  const ReductionSchedule& schedule() const { return schedule_; }
  // Empty functions when the method does not act there.
  VisionLayerHook VisionHook() const;     // inside encoder layers
  VisionLayerHook PreLlmHook() const;     // on the encoder output (VisionRunOptions::output_hook)
  TextLayerHook TextHook() const;

 private:
  MethodInfo method_;
  ReductionParams params_;
  ReductionSchedule schedule_;
  ReductionTrace* trace_;
};

}  // namespace ficoco
