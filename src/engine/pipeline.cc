#include "engine/pipeline.h"

#include "base/error.h"
#include "base/timer.h"
#include "reduce/reducer.h"

namespace ficoco {

PipelineResult RunPipeline(GemmContext& gemm, const LlavaModel& model, const PipelineRequest& req) {
  const LlavaConfig& cfg = model.config();
  static const MethodInfo& kNone = FindMethod("none");
  const MethodInfo& method = req.method != nullptr ? *req.method : kNone;
  const bool with_image = req.image != nullptr;
  if (method.site != MethodSite::None && !with_image) Fail("--method ", method.name, " reduces image tokens: give --image");
  if (method.site != MethodSite::None && !req.budget.set())
    Fail("--method ", method.name, " needs a budget: --keep N (visual tokens) or --tflops X");
  if (method.site == MethodSite::None && req.budget.set()) Fail("--keep and --tflops need a reduction method (--method)");

  PipelineResult r;
  const int64_t text_tokens = static_cast<int64_t>(req.prompt_ids.size()) - (with_image ? 1 : 0);
  r.schedule = ScheduleForBudget(method, cfg, req.params, req.budget, text_tokens);
  r.flow = FlowOf(cfg, r.schedule, text_tokens, with_image);
  r.cost = CountPrefill(cfg, r.flow);
  if (with_image) r.trace.grid = cfg.vision.grid();  // also for methods acting only in the LLM
  Reducer reducer(method, req.params, r.schedule, &r.trace);
  if (req.on_schedule) req.on_schedule(r);

  Stopwatch clock;
  if (with_image) {
    VisionRunOptions vision;
    vision.hook = reducer.VisionHook();
    vision.output_hook = reducer.PreLlmHook();
    vision.proportional_attention = method.proportional_attention && req.params.proportional_attention;
    r.encoded = model.EncodeImage(gemm, *req.image, vision);
  }
  r.encode_s = clock.Seconds();
  GenerateRequest g;
  g.prompt_ids = req.prompt_ids;
  g.image_features = with_image ? &r.encoded.image_features : nullptr;
  g.image_meta = with_image ? &r.encoded.image_meta : nullptr;
  g.max_new_tokens = req.max_new_tokens;
  g.sampling = req.sampling;
  g.stop_at_eos = req.stop_at_eos;
  g.text_options.hook = reducer.TextHook();
  g.text_options.compact_positions = req.params.positions == PositionPolicy::Compact;
  g.on_token = [&](int id) {
    if (r.first_token_s == 0) r.first_token_s = clock.Seconds();
    if (req.on_token) req.on_token(id);
  };
  r.generated = Generate(gemm, model, g);
  r.total_s = clock.Seconds();
  return r;
}

}  // namespace ficoco
