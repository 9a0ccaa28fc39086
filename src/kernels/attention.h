// Scaled dot-product attention over all heads, fp32, batched through oneDNN.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/kv_rows.h"
#include "tensor/tensor.h"

namespace ficoco {

struct AttentionShape {
  int num_heads = 1;
  int num_kv_heads = 1;  // grouped-query attention when < num_heads
  int head_dim = 1;
};

struct AttentionMask {
  bool causal = false;
  // With `causal`, query row i sees keys 0 .. query_offset + i (keys are in
  // sequence order; the cache may hold fewer keys than positions after reduction).
  int64_t query_offset = 0;
  // Optional additive bias per key, the same for every head and query (ToMe's
  // proportional attention adds log(size) of each key); size = number of keys.
  const std::vector<float>* key_bias = nullptr;
};

// out [Tq, H*d] = softmax(q kᵀ / √d + mask) v per head; q [Tq, H*d], k, v [Tk, Hkv*d].
// If `probs` is given it receives the per-head probabilities [H, Tq, Tk] (for dumps).
void MultiHeadAttention(GemmContext& gemm, const Matrix& q, const Matrix& k, const Matrix& v,
                        const AttentionShape& shape, const AttentionMask& mask, Matrix& out,
                        std::vector<float>* probs = nullptr);
// The same with keys and values as the KV cache holds them (fp32 or half rows).
void MultiHeadAttention(GemmContext& gemm, const Matrix& q, const KvRows& k, const KvRows& v,
                        const AttentionShape& shape, const AttentionMask& mask, Matrix& out,
                        std::vector<float>* probs = nullptr);

}  // namespace ficoco
