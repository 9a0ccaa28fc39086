// Few-row products with ggml-quantized weights (decode on a GGUF model), computed the
// way llama.cpp does it: each activation row is quantized once to 8-bit blocks of 32
// (a float scale and int8 values), then every weight block meets its activation block
// in an integer dot product that is scaled by d_w * d_x and accumulated in fp32.
// Written by hand because no GEMM library here reads ggml block layouts, and widening
// the blocks to floats would turn a memory-bound product into a compute-bound one.
#pragma once
#include <cstdint>

#include "tensor/ggml_type.h"

namespace ficoco {

// True for the weight types QuantGemv reads: Q8_0 and Q4_0.
bool QuantGemvSupports(GgmlType type);

// y[m, n_out] = x[m, k] * W[n_out, k]^T, W given as n_out rows of k/32 ggml blocks of
// `type` (rows contiguous, no padding). Meant for m <= 4 (larger m is processed four rows
// at a time). Error for an unsupported type, k not a positive multiple of 32, or negative
// sizes. Uses AVX512-VNNI when compiled for it, else the scalar code below.
void QuantGemv(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
               float* y);

// The same product through the portable scalar code (for tests and comparison); results
// differ from QuantGemv only by the order of the fp32 additions.
void QuantGemvScalar(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x,
                     int64_t m, float* y);

// The activation quantization QuantGemv applies to each row of x: for each block of 32,
// d = max|x| / 127 and q = round(x * (1/d)) (to nearest, halves away from zero; q = 0
// when d = 0). Writes k int8 values to q and k/32 scales to d. Error unless k is a positive
// multiple of 32.
void QuantizeActivationRow(const float* x, int64_t k, int8_t* q, float* d);
// The same rule in plain scalar code (QuantizeActivationRow vectorizes it with AVX-512;
// both give identical bytes, which the tests check).
void QuantizeActivationRowScalar(const float* x, int64_t k, int8_t* q, float* d);

// "avx512-vnni" or "scalar": the path QuantGemv was compiled with.
const char* QuantGemvPath();

}  // namespace ficoco
