#include "reduce/reducer.h"

#include "base/error.h"
#include "base/timer.h"
#include "reduce/compress.h"

namespace ficoco {

Reducer::Reducer(const MethodInfo& method, const ReductionParams& params, ReductionSchedule schedule, ReductionTrace* trace)
    : method_(method), params_(params), schedule_(std::move(schedule)), trace_(trace) {
  params_.Validate();
  if (schedule_.vision_total() > 0 && method_.vision_plan == nullptr)
    Fail("method ", method_.name, " does not act in the vision encoder but its schedule discards there");
  if (schedule_.pre_llm > 0 && method_.pre_llm_plan == nullptr)
    Fail("method ", method_.name, " does not act between encoder and LLM but its schedule removes tokens there");
  if (schedule_.llm_total() > 0 && method_.llm_plan == nullptr)
    Fail("method ", method_.name, " does not act in the LLM but its schedule discards there");
}

namespace {

// Compress by `plan`, then record it (with the time since `started`) when tracing.
void ApplyAndRecord(const LayerPlan& plan, ReductionSite site, int layer, Matrix& hidden, std::vector<TokenMeta>& meta,
                    ReductionTrace* trace, const Stopwatch& started) {
  std::vector<TokenMeta> before;
  if (trace != nullptr) before = meta;
  Compress(hidden, meta, plan);
  if (trace == nullptr) return;
  trace->Record(site, layer, plan, before, hidden.rows());
  (site == ReductionSite::Llm ? trace->llm_seconds : trace->vision_seconds) += started.Seconds();
}

}  // namespace

VisionLayerHook Reducer::VisionHook() const {
  if (schedule_.vision_total() == 0) return {};
  return [this](VisionHookContext& layer) {
    const size_t li = static_cast<size_t>(layer.layer);
    const int n = li < schedule_.vision.size() ? schedule_.vision[li] : 0;
    if (n == 0) return;
    Stopwatch sw;
    if (trace_ != nullptr) trace_->grid = layer.grid;
    ApplyAndRecord(method_.vision_plan(layer, n, params_), ReductionSite::Vision, layer.layer, layer.hidden, layer.meta,
                   trace_, sw);
  };
}

VisionLayerHook Reducer::PreLlmHook() const {
  if (schedule_.pre_llm == 0) return {};
  return [this](VisionHookContext& layer) {
    Stopwatch sw;
    if (trace_ != nullptr) trace_->grid = layer.grid;
    ApplyAndRecord(method_.pre_llm_plan(layer, schedule_.pre_llm, params_), ReductionSite::PreLlm, layer.layer,
                   layer.hidden, layer.meta, trace_, sw);
  };
}

TextLayerHook Reducer::TextHook() const {
  if (schedule_.llm_total() == 0) return {};
  return [this](TextHookContext& layer) {
    const size_t li = static_cast<size_t>(layer.layer);
    const int n = li < schedule_.llm.size() ? schedule_.llm[li] : 0;
    // Prefill only: decode steps (tokens after a filled cache) are never reduced.
    if (n == 0 || layer.cache_offset != 0) return;
    Stopwatch sw;
    // This layer's cache keeps every token its attention saw (later prompt tokens saw
    // them too, and so must decode steps); later layers get the shorter sequence.
    ApplyAndRecord(method_.llm_plan(layer, n, params_), ReductionSite::Llm, layer.layer, layer.hidden, layer.meta,
                   trace_, sw);
  };
}

}  // namespace ficoco
