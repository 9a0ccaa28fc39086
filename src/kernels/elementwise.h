#pragma once
#include "tensor/tensor.h"

namespace ficoco {

// x += y (the residual connections); shapes must match.
void AddInPlace(Matrix& x, const Matrix& y);

}  // namespace ficoco
