#include "kernels/rope.h"

#include <cmath>

#include "base/error.h"

namespace ficoco {

void ApplyRope(Matrix& x, int num_heads, int head_dim, const std::vector<int32_t>& positions, float theta) {
  if (static_cast<int64_t>(positions.size()) != x.rows())
    Fail("ApplyRope: ", positions.size(), " position ids for ", x.rows(), " tokens");
  const int half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i)
    inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  // One row (decode) is less work than waking the other threads.
#pragma omp parallel for schedule(static) if (x.rows() > 1)
  for (int64_t t = 0; t < x.rows(); ++t) {
    float* row = x.row(t);
    const float pos = static_cast<float>(positions[static_cast<size_t>(t)]);
    for (int i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];
      const float c = std::cos(angle), s = std::sin(angle);
      for (int h = 0; h < num_heads; ++h) {
        float* v = row + h * head_dim;
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
  }
}

}  // namespace ficoco
