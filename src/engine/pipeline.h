// One multimodal request with token reduction, end to end: schedule from the budget,
// image encode with the method's vision hook, prefill with its LLM hook, decode.
// Shared by `ficoco run` and `ficoco bench` so both measure the same work.
#pragma once
#include <functional>
#include <vector>

#include "engine/generate.h"
#include "engine/llava_model.h"
#include "image/image.h"
#include "reduce/budget.h"
#include "reduce/flops.h"
#include "reduce/methods.h"
#include "reduce/trace.h"

namespace ficoco {

struct PipelineResult;

struct PipelineRequest {
  std::vector<int> prompt_ids;       // with at most one image token
  const ImageU8* image = nullptr;    // decoded image, or null for a text-only prompt
  const MethodInfo* method = nullptr;  // null = no reduction
  ReductionParams params;
  Budget budget;
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_eos = true;
  std::function<void(int id)> on_token;
  // Called once the schedule is known, before any work (to print it).
  std::function<void(const PipelineResult&)> on_schedule;
};

struct PipelineResult {
  ReductionSchedule schedule;
  TokenFlow flow;          // planned token counts per layer
  PrefillCost cost;        // LLM-Viewer accounting of this request (fp16 KV)
  EncodedImage encoded;
  GenerateResult generated;
  ReductionTrace trace;    // every applied plan (original indices)
  double encode_s = 0;     // decode + preprocess + vision + projector
  double first_token_s = 0;  // from the start of the image encode to the first new token
  double total_s = 0;      // encode + prefill + decode
};

// Validates the request against the method (image needed, budget needed) and runs it.
// Throws Error with the reachable range for impossible budgets.
PipelineResult RunPipeline(GemmContext& gemm, const LlavaModel& model, const PipelineRequest& request);

}  // namespace ficoco
