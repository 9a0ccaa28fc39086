// A loaded LLaVA-1.5 model: config, mapped checkpoint, prepared weights, and the
// image path (preprocess → vision tower → projector).
#pragma once
#include <memory>
#include <string>

#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "kernels/gemm.h"
#include "model/config.h"
#include "model/llava_weights.h"
#include "vision/clip_vision.h"

namespace ficoco {

struct EncodeTimings {
  double preprocess_s = 0, vision_s = 0, projector_s = 0;
};

struct EncodedImage {
  PreprocessedImage image;
  VisionOutput vision;               // last layer run (CLS included) + token records
  Matrix image_features;             // projector output [N, D_text], one row per image token
  std::vector<TokenMeta> image_meta; // token record per image_features row
  EncodeTimings timings;
};

class LlavaModel {
 public:
  // Reads config.json (+ preprocessor_config.json), maps the weights, validates every
  // tensor and prepares the used ones. Throws Error naming the file/tensor/field.
  static std::unique_ptr<LlavaModel> Load(const std::string& dir, const LoadOptions& options);

  const LlavaConfig& config() const { return config_; }
  const PreprocessorConfig& preprocessor() const { return preprocessor_; }
  const Checkpoint& checkpoint() const { return *checkpoint_; }
  const TextWeights& text() const { return text_; }
  bool has_text() const { return has_text_; }
  ComputeType compute() const { return compute_; }

  EncodedImage EncodeImage(GemmContext& gemm, const ImageU8& image, const VisionRunOptions& options = {}) const;

 private:
  LlavaModel() = default;
  LlavaConfig config_;
  PreprocessorConfig preprocessor_;
  std::unique_ptr<Checkpoint> checkpoint_;
  VisionWeights vision_;
  ProjectorWeights projector_;
  TextWeights text_;
  bool has_text_ = false;
  ComputeType compute_ = ComputeType::BF16;
};

}  // namespace ficoco
