// Conventions beyond LLM-Viewer's (which counts only the LLaMA decoder), chosen so the
// vision side reads the same way: biases are counted as one add per output element,
// LayerNorm costs 7 per element like RMSNorm, and CLIP's GELU (and the projector's) is
// charged 2 per element of the tensor it actually runs on (the I-wide intermediate).
// The LLaMA SwiGLU term stays LLM-Viewer's 2·h per token so the paper's TFLOPs come out.
#include "reduce/flops.h"

#include "base/error.h"

namespace ficoco {
namespace {

constexpr double kNormPerElement = 7;  // mean, variance/rms, normalise, scale (LLM-Viewer)
constexpr double kActPerElement = 2;

// q·kᵀ and score·v (2·s²·h each) plus softmax (5 per score per head); no causal halving.
double AttentionCoreFlops(double hidden, double heads, double s) { return (4 * hidden + 5 * heads) * s * s; }

}  // namespace

double LlamaLayerFlops(const TextConfig& cfg, int64_t attention_tokens, int64_t mlp_tokens) {
  const double h = cfg.hidden_size, inter = cfg.intermediate_size, heads = cfg.num_attention_heads;
  const double kv_dim = static_cast<double>(cfg.num_key_value_heads) * cfg.head_dim();  // GQA: narrower k, v
  const double sa = static_cast<double>(attention_tokens), sm = static_cast<double>(mlp_tokens);
  const double attention_side = 2 * sa * (2 * h * h + 2 * h * kv_dim)  // q, o and k, v projections
                                + AttentionCoreFlops(h, heads, sa)
                                + sa * h * (kNormPerElement + 1);      // input RMSNorm + residual add
  const double mlp_side = 2 * sm * 3 * h * inter                       // gate, up, down
                          + sm * h * (kNormPerElement + 1 + kActPerElement);  // RMSNorm, add, SwiGLU
  return attention_side + mlp_side;
}

double ClipLayerFlops(const VisionConfig& cfg, int64_t attention_tokens, int64_t mlp_tokens) {
  const double h = cfg.hidden_size, inter = cfg.intermediate_size, heads = cfg.num_attention_heads;
  const double sa = static_cast<double>(attention_tokens), sm = static_cast<double>(mlp_tokens);
  const double attention_side = 2 * sa * 4 * h * h + sa * 4 * h     // q, k, v, o + biases
                                + AttentionCoreFlops(h, heads, sa)
                                + sa * h * (kNormPerElement + 1);      // LayerNorm 1 + residual add
  const double mlp_side = 2 * sm * 2 * h * inter + sm * (inter + h)    // fc1, fc2 + biases
                          + sm * inter * kActPerElement                // GELU on the intermediate
                          + sm * h * (kNormPerElement + 1);            // LayerNorm 2 + residual add
  return attention_side + mlp_side;
}

PrefillCost CountPrefill(const LlavaConfig& cfg, const TokenFlow& flow, int kv_bytes_per_element) {
  if (kv_bytes_per_element <= 0) Fail("CountPrefill: kv_bytes_per_element must be positive, got ", kv_bytes_per_element);
  if (flow.llm.size() != static_cast<size_t>(cfg.text.num_hidden_layers))
    Fail("CountPrefill: token flow has ", flow.llm.size(), " decoder layers, the model ", cfg.text.num_hidden_layers);
  PrefillCost cost;
  const TextConfig& t = cfg.text;
  const int64_t kv_bytes_per_token = 2LL * t.num_key_value_heads * t.head_dim() * kv_bytes_per_element;  // k and v
  for (const LayerTokens& layer : flow.llm) {
    cost.llm_prefill_flops += LlamaLayerFlops(t, layer.attention, layer.mlp);
    cost.kv_cache_bytes += kv_bytes_per_token * layer.attention;  // the cache holds what attention saw
  }

  if (!flow.vision.empty()) {
    const VisionConfig& v = cfg.vision;
    const double h = v.hidden_size, patches = v.num_patches(), tokens = v.num_positions();
    const double patch_in = static_cast<double>(v.num_channels) * v.patch_size * v.patch_size;
    cost.vision_flops = 2 * patches * patch_in * h   // patch-embedding convolution (no bias in CLIP)
                        + tokens * h                 // position embeddings
                        + tokens * h * kNormPerElement;  // pre-LayerNorm
    for (const LayerTokens& layer : flow.vision) cost.vision_flops += ClipLayerFlops(v, layer.attention, layer.mlp);
  }

  const double n = static_cast<double>(flow.image_tokens);
  const double dv = cfg.vision.hidden_size, dt = t.hidden_size;
  cost.projector_flops = 2 * n * (dv * dt + dt * dt) + n * 2 * dt  // two linears + their biases
                         + n * dt * kActPerElement;                 // GELU between them
  return cost;
}

}  // namespace ficoco
