// Decode attention: a few query rows against the whole KV cache, read where it is.
//
// The cache holds one row per position with every head's d floats side by side. The
// routine below walks a span of positions in order, all heads of a row at once, so it reads
// one contiguous stream: attention.cc gives each thread its own span of positions and
// combines the parts. (Splitting the heads instead gave each thread a piece of every row, a
// stream with gaps that the hardware prefetcher followed badly: see attention.cc.)
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kv_rows.h"

namespace ficoco {

// One part of a decode step's attention, for query row `q_row` (h heads, [h*d]) and cache
// positions [j0, j1), every head hi: with s_j = scale * q_hi·k_j + bias_j and m its
// maximum over the span, head_max[hi] = m, scores[hi * stride + j] = exp(s_j - m) (j in the
// span), head_sum[hi] = Σ_j exp(s_j - m) and out_row[hi*d ..] = Σ_j exp(s_j - m) v_j, not
// yet divided: parts over disjoint spans combine into the softmax (see attention.cc). An
// empty span gives m = -inf and zeros. Key/value head of query head hi: hi / group.
// key_bias may be null. k and v are fp32 or half rows (widened in registers).
void DecodeAttentionSpan(const float* q_row, const KvRows& k, const KvRows& v, int h, int group, int d, int64_t j0,
                         int64_t j1, float scale, const std::vector<float>* key_bias, float* scores, int64_t stride,
                         float* out_row, float* head_max, float* head_sum);

}  // namespace ficoco
