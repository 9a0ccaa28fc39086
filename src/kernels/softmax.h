#pragma once
#include <cstdint>

namespace ficoco {

// In place: row[0..n) ← softmax(row[0..n)), fp32, max-subtracted.
void SoftmaxRow(float* row, int64_t n);
// In place: row[0..n) ← exp(row[0..n) - shift); returns their sum. Softmax without the
// division, for attention split over positions (each part keeps its own max).
float ExpShiftRow(float* row, int64_t n, float shift);

}  // namespace ficoco
