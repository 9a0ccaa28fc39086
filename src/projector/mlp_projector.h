// LLaVA-1.5's multimodal projector: Linear → GELU (exact erf) → Linear.
#pragma once
#include "kernels/gemm.h"
#include "model/config.h"
#include "model/llava_weights.h"

namespace ficoco {

Matrix RunProjector(GemmContext& gemm, const ProjectorWeights& w, Activation act, const Matrix& image_features);

}  // namespace ficoco
