// FastV in its original form (baselines.md §3), written straight from the algorithm as
// a text-layer hook, independently of the reduction library (no FilterResult, Routing,
// Compress, Reducer or stage helpers). It exists to prove that the composed method
// (reduce/fastv.cc run by Reducer) is FastV: the tests run both and compare the kept
// tokens, hidden states and logits.
//
// In layer K − 1's hook (after its attention; its MLP is per token, so pruning before
// it equals the original's pruning before layer K), during prefill only:
//   φ_j = (1/H) Σ_h softmax_causal(q_r · k / √d)_h[s + j]   for the image tokens j,
// with r the last prompt token (the code) or averaged over every prompt row r (the
// paper); keep the ATTENTION_RANK image tokens of largest φ (ties: lower index),
// in their original order, and gather the kept rows of the hidden states and token
// records. Positions are not touched: the decoder's policy applies as for any hook.
#pragma once
#include <cstdint>

#include "language/llama_decoder.h"

namespace ficoco::original {

enum class FastvRanking { LastToken, MeanReceived };

struct FastvConfig {
  int k = 2;                    // prune before layer K
  int64_t attention_rank = 0;   // image tokens kept (the code's ATTENTION_RANK)
  FastvRanking ranking = FastvRanking::LastToken;
};

// Prunes `layer` in place when it is layer K − 1 of a prefill; otherwise leaves it.
void FastvOriginal(TextHookContext& layer, const FastvConfig& config);
// The same as a TextRunOptions::hook.
TextLayerHook FastvOriginalHook(FastvConfig config);

}  // namespace ficoco::original
