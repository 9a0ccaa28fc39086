#include "kernels/activation.h"

#include <cmath>

namespace ficoco {

float ActivationScalar(Activation act, float x) {
  switch (act) {
    case Activation::QuickGelu: return x / (1.0f + std::exp(-1.702f * x));
    case Activation::GeluErf: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Activation::GeluTanh:
      return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case Activation::Silu: return x / (1.0f + std::exp(-x));
  }
  return x;
}

void ApplyActivation(Activation act, Matrix& x) {
  const int64_t n = x.rows() * x.cols();
  float* p = x.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = ActivationScalar(act, p[i]);
}

void GatedActivation(Activation act, Matrix& gate, const Matrix& up) {
  const int64_t n = gate.rows() * gate.cols();
  float* g = gate.data();
  const float* u = up.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) g[i] = ActivationScalar(act, g[i]) * u[i];
}

}  // namespace ficoco
