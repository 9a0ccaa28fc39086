#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ficoco {

// LLaMA rotary embedding (rotate-half form) in place on x [T, heads*head_dim], with an
// explicit position id per row: token reduction keeps original ids, so positions
// need not be contiguous. Angles follow transformers: inv_freq in fp32, pos * inv_freq.
void ApplyRope(Matrix& x, int num_heads, int head_dim, const std::vector<int32_t>& positions, float theta);

}  // namespace ficoco
