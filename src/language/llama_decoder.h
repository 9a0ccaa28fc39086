// LLaMA decoder (LLaVA-1.5's language model): embeddings, pre-RMSNorm blocks with
// rotary grouped-query attention and a SwiGLU MLP, final norm, lm_head. Tokens carry
// explicit position ids (never assumed contiguous), and each layer has a hook between
// its attention residual and its MLP where in-LLM token reduction acts.
#pragma once
#include <functional>
#include <vector>

#include "kernels/gemm.h"
#include "language/kv_cache.h"
#include "model/attention_signals.h"
#include "model/config.h"
#include "model/llava_weights.h"
#include "model/token_meta.h"

namespace ficoco {

// Seen by a hook after layer `layer`'s attention residual, before its MLP. To drop
// or merge tokens the hook shrinks `hidden` and `meta` (same rows); later layers then
// see the shorter sequence and keep shorter caches. This layer's cache keeps every
// token its attention saw, as the later prompt tokens did (so cached decoding equals
// recomputing the reduced prompt); a method that must also forget them here can call
// `cache.KeepRows(layer, ...)`.
struct TextHookContext {
  int layer = 0;
  int64_t cache_offset = 0;  // cache rows that precede this call's tokens
  Matrix& hidden;
  std::vector<TokenMeta>& meta;
  const AttentionSignals& attention;
  KvCache& cache;
  // This call's input embeddings and token records, before any layer ran (SparseVLM
  // picks its text raters from them).
  const Matrix& input_embeds;
  const std::vector<TokenMeta>& input_meta;
};
using TextLayerHook = std::function<void(TextHookContext&)>;

struct TextRunOptions {
  TextLayerHook hook;
  // false: RoPE uses each token's meta.pos_id (original positions survive reduction).
  // true: a layer numbers its tokens by their row in its cache (0..n−1), so survivors
  // of a reduction are renumbered compactly and decode steps follow each layer's length.
  bool compact_positions = false;
  bool keep_hidden_states = false;  // input embeddings, each layer's output, final norm output
};

struct TextForwardResult {
  Matrix normed;  // final RMSNorm output, one row per token that survived
  std::vector<TokenMeta> meta;
  std::vector<Matrix> hidden_states;
};

class LlamaDecoder {
 public:
  LlamaDecoder(const TextConfig& cfg, const TextWeights& weights) : cfg_(cfg), w_(weights) {}

  // Embedding rows for token ids (ids checked against the vocabulary).
  Matrix Embed(const std::vector<int>& ids) const;
  // Runs `x` (one row per token, positions in meta[i].pos_id) through every layer,
  // appending to the cache. Returns the final-normed hidden states.
  TextForwardResult Forward(GemmContext& gemm, Matrix x, std::vector<TokenMeta> meta, KvCache& cache,
                            const TextRunOptions& options = {}) const;
  // lm_head on the given rows.
  Matrix Logits(GemmContext& gemm, const Matrix& normed_rows) const;

  KvCache NewCache(KvType type = KvType::F32) const {
    return KvCache(cfg_.num_hidden_layers, static_cast<int64_t>(cfg_.num_key_value_heads) * cfg_.head_dim(), type);
  }

 private:
  const TextConfig& cfg_;
  const TextWeights& w_;
};

}  // namespace ficoco
