// Dot-product kernels for few-row products (decode): they stream the weight in its
// stored dtype and widen in registers. Written by hand because GEMM libraries
// (oneDNN here) widen or repack 16-bit weights and reach only about half of the
// memory bandwidth on one-row products.
#pragma once
#include <cstdint>

#include "tensor/dtype.h"

namespace ficoco {

// sum_i x[i] * w[i] for a weight row of `k` elements of type `wt`.
float DotF32Row(const float* x, const void* w_row, DType wt, int64_t k);

}  // namespace ficoco
