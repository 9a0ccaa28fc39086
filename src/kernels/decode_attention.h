// One query row of one head against cached keys and values read where they are (rows of
// the KV cache, this head's d floats at `kv_offset`): the inner loop of decode attention.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ficoco {

// out[0..d) = softmax(scale * q·k_j + bias_j, j < visible) · v_j. `scores` is scratch of at
// least `visible` floats and holds the probabilities afterwards. key_bias may be null.
void DecodeAttentionRow(const float* q, const Matrix& k, const Matrix& v, int64_t kv_offset, int64_t visible,
                        int d, float scale, const std::vector<float>* key_bias, float* scores, float* out);

}  // namespace ficoco
