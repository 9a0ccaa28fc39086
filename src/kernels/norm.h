#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace ficoco {

// y = (x - mean) / sqrt(var + eps) * gamma + beta, per row (biased variance, as PyTorch).
void LayerNorm(const Matrix& x, const std::vector<float>& gamma, const std::vector<float>& beta, float eps, Matrix& y);
// y = x / sqrt(mean(x²) + eps) * gamma, per row (LLaMA RMSNorm; computed in fp32).
void RmsNorm(const Matrix& x, const std::vector<float>& gamma, float eps, Matrix& y);

}  // namespace ficoco
