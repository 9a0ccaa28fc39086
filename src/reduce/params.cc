#include "reduce/params.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace ficoco {

FicocoPreset ParseFicocoPreset(const std::string& name) {
  if (name == "paper") return FicocoPreset::Paper;
  if (name == "reference-code") return FicocoPreset::ReferenceCode;
  Fail("unknown FiCoCo preset '", name, "' (valid: paper, reference-code)");
}

const char* FicocoPresetName(FicocoPreset preset) {
  return preset == FicocoPreset::Paper ? "paper" : "reference-code";
}

PositionPolicy ParsePositionPolicy(const std::string& name) {
  if (name == "original") return PositionPolicy::KeepOriginal;
  if (name == "compact") return PositionPolicy::Compact;
  Fail("unknown position policy '", name, "' (valid: original, compact)");
}

const char* PositionPolicyName(PositionPolicy policy) {
  return policy == PositionPolicy::KeepOriginal ? "original" : "compact";
}

void ReductionParams::Validate() const {
  auto unit = [](const char* name, float v) {
    if (!(v >= 0 && v <= 1)) Fail("--", name, " must be in [0, 1], got ", v);
  };
  unit("lambda", lambda);
  unit("beta", beta);
  unit("gamma", gamma);
  unit("vl-split", vl_split);
  if (!(epsilon > 0 && epsilon < 1)) Fail("--epsilon must be in (0, 1), got ", epsilon);
  if (!(penalty >= 1 && std::isfinite(penalty))) Fail("--penalty must be >= 1 (1 = no local penalty), got ", penalty);
  if (window < 1) Fail("--window must be at least 1, got ", window);
  if (vision_start < -1) Fail("--vision-start must be a layer index >= 0, got ", vision_start);
  if (llm_start < -1) Fail("--llm-start must be a layer index >= 0, got ", llm_start);
  if (fastv_k < 1) Fail("--fastv-k must be at least 1, got ", fastv_k);
  if (fastv_rank != "last-token" && fastv_rank != "mean-received")
    Fail("--fastv-rank must be last-token or mean-received, got '", fastv_rank, "'");
  for (size_t i = 0; i < pdrop_layers.size(); ++i)
    if (pdrop_layers[i] < 1 || (i > 0 && pdrop_layers[i] <= pdrop_layers[i - 1]))
      Fail("--pdrop-layers must be ascending layer indices >= 1, got ", pdrop_layers[i]);
  unit("visionzip-contextual", visionzip_contextual);
  if (dart_pivots < 1) Fail("--dart-pivots must be at least 1, got ", dart_pivots);
}

namespace {

// The preset's start layer, defined for a reference depth, scaled to this model's depth.
int ScaledStart(int explicit_start, int paper_index, int code_index, int reference_depth, FicocoPreset preset, int depth) {
  if (explicit_start >= 0) return explicit_start;
  const int index = preset == FicocoPreset::Paper ? paper_index : code_index;
  return std::clamp(static_cast<int>(std::lround(static_cast<double>(index) * depth / reference_depth)), 0,
                    std::max(0, depth - 1));
}

}  // namespace

int ReductionParams::VisionStart(int encoder_layers) const {
  // Paper: "the 12th layer" (index 11); code: layers with index > 11.
  return ScaledStart(vision_start, 11, 12, 24, preset, encoder_layers);
}

int ReductionParams::LlmStart(int decoder_layers) const {
  // Paper: "the 4th layer" (index 3); code: layers with index > 4.
  return ScaledStart(llm_start, 3, 5, 32, preset, decoder_layers);
}

}  // namespace ficoco
