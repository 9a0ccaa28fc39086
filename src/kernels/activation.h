#pragma once
#include "model/config.h"
#include "tensor/tensor.h"

namespace ficoco {

// In place: quick_gelu x·σ(1.702x) (CLIP), exact erf GELU (projector), tanh GELU, SiLU.
void ApplyActivation(Activation act, Matrix& x);
// In place gate = act(gate) * up (LLaMA's SwiGLU MLP).
void GatedActivation(Activation act, Matrix& gate, const Matrix& up);
float ActivationScalar(Activation act, float x);

}  // namespace ficoco
