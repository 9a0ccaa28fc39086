// Correlate-stage building blocks (ficoco-spec §2.3, §3.3).
#pragma once
#include <cstdint>
#include <vector>

#include "reduce/plan.h"
#include "tensor/tensor.h"

namespace ficoco {

// q-quantile of values with linear interpolation between order statistics (the
// numpy / torch default): position q·(n−1) in the sorted values.
float Quantile(std::vector<float> values, float q);

// How many of n distinct values are >= their eps-quantile: n − ⌈eps·(n−1)⌉. The
// "token-adaptive" count depends only on the row length (spec §2.3).
int64_t QuantileCount(int64_t n, float eps);

// Softmax of each row, in place (fp32).
void SoftmaxRows(Matrix& m);

enum class TargetCount {
  PerToken,  // J_i = {j : C_ij >= τ_i}, τ_i the eps-quantile of row i (the paper)
  LayerMax,  // K = max_i |{j : C_ij >= τ_i}| for every row, top-K (the official code)
};

// Routing from a non-negative correlation block C [|S|, |T|] (rows: discarded tokens
// in FilterResult::discard order; columns: `keep`). Targets of a row are chosen by the
// eps-quantile rule; ties in a top-K go to the lower column. α_ij = C_ij / Σ_J C_ij'
// (uniform over J_i if that sum is 0).
Routing QuantileTargets(const Matrix& correlation, const std::vector<int32_t>& keep, float eps, TargetCount count);

}  // namespace ficoco
