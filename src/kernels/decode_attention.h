// Decode attention: a few query rows against the whole KV cache, read where it is.
//
// The cache holds one row per position with every head's d floats side by side. Read head
// by head, each position costs a jump of a whole row (16 KiB for a 7B) for d floats; here
// each thread takes a contiguous range of heads and walks the positions in order, reading
// one contiguous piece of every row. (Measured on the 7B at a 724-token context: no change
// beyond the host's noise against the head-by-head loop; the TLB was what cost, see
// GLIBC_TUNABLES in tools/ficoco/threads.cc.)
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kv_rows.h"

namespace ficoco {

// For query row `q_row` (all heads, [H*d]) and heads [h0, h1): scores[hi * stride + j] =
// softmax_j(scale * q_hi·k_j + bias_j) over j < visible, then out_row[hi*d ..] = Σ_j p · v_j.
// Key/value head of query head hi: hi / group. key_bias may be null. k and v are fp32 or
// half rows (widened in registers).
void DecodeAttentionHeads(const float* q_row, const KvRows& k, const KvRows& v, int h0, int h1, int group, int d,
                          int64_t visible, float scale, const std::vector<float>* key_bias, float* scores,
                          int64_t stride, float* out_row);

}  // namespace ficoco
