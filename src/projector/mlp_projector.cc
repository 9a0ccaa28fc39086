#include "projector/mlp_projector.h"

#include "kernels/activation.h"

namespace ficoco {

Matrix RunProjector(GemmContext& gemm, const ProjectorWeights& w, Activation act, const Matrix& image_features) {
  Matrix hidden, out;
  gemm.Linear(image_features, w.linear_1, hidden);
  ApplyActivation(act, hidden);
  gemm.Linear(hidden, w.linear_2, out);
  return out;
}

}  // namespace ficoco
