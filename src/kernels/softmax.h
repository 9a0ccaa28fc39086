#pragma once
#include <cstdint>

namespace ficoco {

// In place: row[0..n) ← softmax(row[0..n)), fp32, max-subtracted.
void SoftmaxRow(float* row, int64_t n);

}  // namespace ficoco
