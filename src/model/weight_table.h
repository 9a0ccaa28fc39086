// The one list of tensors a LLaVA-1.5 checkpoint must hold for a given config:
// canonical (llava-hf) name, expected shape, and which part of the model uses it.
// Loading validates against it; make-random writes exactly it.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace ficoco {

enum class WeightPart { Vision, Projector, Text };

struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
  WeightPart part;
};

// In checkpoint order: vision tower, projector, language model.
std::vector<WeightSpec> LlavaWeightTable(const LlavaConfig& cfg);

// Name helpers (canonical llava-hf names).
std::string VisionLayerPrefix(int layer);  // "vision_tower.vision_model.encoder.layers.{i}."
std::string TextLayerPrefix(int layer);    // "language_model.model.layers.{i}."

}  // namespace ficoco
