#include "kernels/norm.h"

#include <cmath>

namespace ficoco {

void LayerNorm(const Matrix& x, const std::vector<float>& gamma, const std::vector<float>& beta, float eps, Matrix& y) {
  const int64_t n = x.rows(), d = x.cols();
  y.Resize(n, d);
  // One row (decode) is a few microseconds of work: less than waking the other threads.
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x.row(r);
    float* yr = y.row(r);
    float mean = 0;
    for (int64_t i = 0; i < d; ++i) mean += xr[i];
    mean /= static_cast<float>(d);
    float var = 0;
    for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<float>(d);
    const float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mean) * inv * gamma[i] + beta[i];
  }
}

void RmsNorm(const Matrix& x, const std::vector<float>& gamma, float eps, Matrix& y) {
  const int64_t n = x.rows(), d = x.cols();
  y.Resize(n, d);
  // One row (decode) is a few microseconds of work: less than waking the other threads.
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x.row(r);
    float* yr = y.row(r);
    float ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    for (int64_t i = 0; i < d; ++i) yr[i] = gamma[i] * (xr[i] * inv);
  }
}

}  // namespace ficoco
