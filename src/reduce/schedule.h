// How many tokens each layer discards, and the token counts that follow from it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace ficoco {

// Tokens removed per layer, net (0 = the layer does not reduce; a method that adds a
// fused token removes one more). `vision` has one entry per
// vision layer that runs (their last output reaches the projector), `llm` one per
// decoder layer (prefill only; decoding never reduces).
struct ReductionSchedule {
  std::vector<int> vision;
  int pre_llm = 0;  // removed from the encoder output, before the projector
  std::vector<int> llm;

  bool empty() const;
  int64_t vision_total() const;
  int64_t llm_total() const;
};

// An empty schedule of the right lengths for this model.
ReductionSchedule NoReduction(const LlavaConfig& cfg);

// Tokens in one layer: those its attention (and KV cache) sees, and those its MLP
// sees after the layer's reduction hook.
struct LayerTokens {
  int64_t attention = 0;
  int64_t mlp = 0;
};

struct TokenFlow {
  std::vector<LayerTokens> vision;  // per vision layer run, CLS included
  int64_t image_tokens = 0;         // projector rows = visual tokens entering the LLM
  int64_t text_tokens = 0;          // every non-image prompt token (system prompt, question, ASSISTANT:)
  std::vector<LayerTokens> llm;     // whole prompt per decoder layer
  std::vector<int64_t> llm_visual;  // visual tokens in each decoder layer's attention

  double mean_llm_visual() const;
};

// Token counts of a prefill with `text_tokens` non-image tokens and one image (or no
// image when with_image is false) under `schedule`. Throws Error naming the layer if
// the schedule discards more tokens than exist (at least one visual token always stays).
TokenFlow FlowOf(const LlavaConfig& cfg, const ReductionSchedule& schedule, int64_t text_tokens, bool with_image = true);

// Token counts when `visual_tokens` image tokens reach the LLM after a reduction
// between the projector and the LLM: the vision tower and every decoder layer run
// unreduced. Any count >= 1 is accepted (more than the patches models multi-image input).
TokenFlow PreLlmFlow(const LlavaConfig& cfg, int64_t visual_tokens, int64_t text_tokens);

// "12:42,13:42,..." style one-line summaries of the non-zero entries, for logs.
std::string DescribeSchedule(const ReductionSchedule& schedule);

}  // namespace ficoco
