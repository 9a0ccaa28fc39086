// Theoretical prefill cost, counted the way the FiCoCo paper does (LLM-Viewer's
// prefill OP count, ficoco-spec §6): 2 FLOPs per multiply-add, attention q·kᵀ and
// score·v at 2·s²·h each plus softmax 5·H·s², element-wise terms (RMSNorm 7 per element,
// residual add 1, SwiGLU 2), no causal halving, no embeddings or LM head. A layer that
// reduces between attention and MLP is charged attention-side terms at the length its
// attention saw and MLP-side terms at the reduced length.
#pragma once
#include <cstdint>

#include "model/config.h"
#include "reduce/schedule.h"

namespace ficoco {

struct PrefillCost {
  double llm_prefill_flops = 0;  // decoder layers (the paper's "TFLOPs" × 1e12)
  double vision_flops = 0;       // CLIP layers that run + patch embedding (same conventions)
  double projector_flops = 0;    // two-layer MLP projector over the image tokens
  int64_t kv_cache_bytes = 0;    // Σ_layers 2·kv_dim·bytes·tokens_in_cache
};

// One decoder layer with `attention_tokens` entering attention and `mlp_tokens` after the hook.
double LlamaLayerFlops(const TextConfig& cfg, int64_t attention_tokens, int64_t mlp_tokens);
// One CLIP encoder layer (LayerNorm counted like RMSNorm, GELU like SwiGLU's act).
double ClipLayerFlops(const VisionConfig& cfg, int64_t attention_tokens, int64_t mlp_tokens);

// Cost of a whole prefill; `kv_bytes_per_element` = 2 for fp16 caches (the paper's), 4 for ours (fp32).
PrefillCost CountPrefill(const LlavaConfig& cfg, const TokenFlow& flow, int kv_bytes_per_element = 2);

}  // namespace ficoco
