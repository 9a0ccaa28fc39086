#include "engine/llava_model.h"

#include "base/timer.h"
#include "projector/mlp_projector.h"

namespace ficoco {

std::unique_ptr<LlavaModel> LlavaModel::Load(const std::string& dir, const LoadOptions& options) {
  std::unique_ptr<LlavaModel> m(new LlavaModel());
  m->config_ = LoadLlavaConfig(dir);
  m->preprocessor_ = LoadPreprocessorConfig(dir, m->config_);
  m->checkpoint_ = std::make_unique<Checkpoint>(dir);
  ValidateCheckpoint(*m->checkpoint_, m->config_);
  m->compute_ = options.compute;
  m->vision_ = LoadVisionWeights(*m->checkpoint_, m->config_, options.compute);
  m->projector_ = LoadProjectorWeights(*m->checkpoint_, options.compute);
  if (options.load_text) {
    m->text_ = LoadTextWeights(*m->checkpoint_, m->config_, options.compute);
    m->has_text_ = true;
  }
  return m;
}

EncodedImage LlavaModel::EncodeImage(GemmContext& gemm, const ImageU8& image, const VisionRunOptions& options) const {
  EncodedImage e;
  Stopwatch sw;
  e.image = PreprocessLlava15(image, preprocessor_);
  e.timings.preprocess_s = sw.Seconds();
  sw.Restart();
  ClipVisionTower tower(config_.vision, vision_);
  e.vision = tower.Run(gemm, e.image.pixels, options);
  e.timings.vision_s = sw.Seconds();
  sw.Restart();
  Matrix selected = SelectImageFeatures(e.vision, config_.vision_feature_select_strategy, &e.image_meta);
  e.image_features = RunProjector(gemm, projector_, config_.projector_hidden_act, selected);
  e.timings.projector_s = sw.Seconds();
  return e;
}

}  // namespace ficoco
