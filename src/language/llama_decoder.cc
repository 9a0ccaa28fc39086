#include "language/llama_decoder.h"

#include "base/error.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/kv_rows.h"
#include "kernels/norm.h"
#include "kernels/rope.h"

namespace ficoco {

Matrix LlamaDecoder::Embed(const std::vector<int>& ids) const {
  const EmbeddingTable& e = w_.embed_tokens;
  const int64_t vocab = e.rows(), d = e.cols();
  Matrix x(static_cast<int64_t>(ids.size()), d);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) Fail("token id ", ids[i], " is outside the model's vocabulary (size ", vocab, ")");
    e.Row(ids[i], x.row(static_cast<int64_t>(i)));
  }
  return x;
}

TextForwardResult LlamaDecoder::Forward(GemmContext& gemm, Matrix x, std::vector<TokenMeta> meta, KvCache& cache,
                                        const TextRunOptions& options) const {
  if (static_cast<int64_t>(meta.size()) != x.rows()) Fail("LlamaDecoder: ", meta.size(), " token records for ", x.rows(), " rows");
  const AttentionShape shape{cfg_.num_attention_heads, cfg_.num_key_value_heads, cfg_.head_dim()};
  TextForwardResult r;
  if (options.keep_hidden_states) r.hidden_states.push_back(x);
  // Hooks may look at the inputs as they were before the first layer.
  Matrix input_embeds;
  std::vector<TokenMeta> input_meta;
  if (options.hook) {
    input_embeds = x;
    input_meta = meta;
  }
  Matrix h, q, k, v, attn, proj, gate, up;
  for (int li = 0; li < cfg_.num_hidden_layers; ++li) {
    const TextLayerWeights& l = w_.layers[static_cast<size_t>(li)];
    std::vector<int32_t> positions(meta.size());
    for (size_t i = 0; i < meta.size(); ++i)
      positions[i] = options.compact_positions ? static_cast<int32_t>(cache.length(li) + static_cast<int64_t>(i))
                                               : meta[i].pos_id;
    // x = x + o_proj(attention(rope(q), rope(k), v)) over cache + new tokens
    RmsNorm(x, l.input_norm, cfg_.rms_norm_eps, h);
    gemm.Linear(h, l.q_proj, q);
    gemm.Linear(h, l.k_proj, k);
    gemm.Linear(h, l.v_proj, v);
    ApplyRope(q, cfg_.num_attention_heads, cfg_.head_dim(), positions, cfg_.rope_theta);
    ApplyRope(k, cfg_.num_key_value_heads, cfg_.head_dim(), positions, cfg_.rope_theta);
    const int64_t offset = cache.length(li);
    cache.Append(li, k, v);
    const AttentionMask mask{true, offset};
    // A first call (the prompt) attends to its own fp32 rows, which are then all the cache
    // holds: a half-float cache changes decode steps only, never the prefill.
    const bool own_rows = offset == 0;
    MultiHeadAttention(gemm, q, own_rows ? KvRows::Of(k) : cache.keys(li), own_rows ? KvRows::Of(v) : cache.values(li),
                       shape, mask, attn);
    gemm.Linear(attn, l.o_proj, proj);
    AddInPlace(x, proj);
    if (options.hook) {
      Matrix widened_keys;
      if (!own_rows) widened_keys = cache.WidenedKeys(li);
      AttentionSignals signals(q, own_rows ? k : widened_keys, shape, mask, &gemm);
      TextHookContext ctx{li, offset, x, meta, signals, cache, input_embeds, input_meta};
      options.hook(ctx);
      if (static_cast<int64_t>(meta.size()) != x.rows())
        Fail("text layer ", li, ": reduction hook left ", x.rows(), " hidden rows but ", meta.size(), " token records");
    }
    // x = x + down(silu(gate(n)) * up(n)), n = post_attention_layernorm(x)
    RmsNorm(x, l.post_attention_norm, cfg_.rms_norm_eps, h);
    gemm.Linear(h, l.gate_proj, gate);
    gemm.Linear(h, l.up_proj, up);
    GatedActivation(cfg_.hidden_act, gate, up);
    gemm.Linear(gate, l.down_proj, proj);
    AddInPlace(x, proj);
    if (options.keep_hidden_states) r.hidden_states.push_back(x);
  }
  RmsNorm(x, w_.norm, cfg_.rms_norm_eps, r.normed);
  if (options.keep_hidden_states) r.hidden_states.push_back(r.normed);
  r.meta = std::move(meta);
  return r;
}

Matrix LlamaDecoder::Logits(GemmContext& gemm, const Matrix& normed_rows) const {
  Matrix logits;
  gemm.Linear(normed_rows, w_.lm_head, logits);
  return logits;
}

}  // namespace ficoco
