#include "engine/llava_model.h"

#include <filesystem>

#include "base/error.h"
#include "base/timer.h"
#include "io/gguf_model.h"
#include "projector/mlp_projector.h"
#include "tokenizer/gguf_vocab.h"

namespace ficoco {

std::unique_ptr<LlavaModel> LlavaModel::Load(const std::string& dir, const LoadOptions& options) {
  std::unique_ptr<LlavaModel> m(new LlavaModel());
  m->source_ = dir;
  m->config_ = LoadLlavaConfig(dir);
  m->preprocessor_ = LoadPreprocessorConfig(dir, m->config_);
  m->checkpoint_ = std::make_unique<Checkpoint>(dir);
  ValidateCheckpoint(*m->checkpoint_, m->config_);
  m->PrepareWeights(options);
  return m;
}

std::unique_ptr<LlavaModel> LlavaModel::LoadGguf(const std::string& model_path, const std::string& mmproj_path,
                                                 const LoadOptions& options) {
  std::unique_ptr<LlavaModel> m(new LlavaModel());
  m->source_ = model_path;
  auto gguf = std::make_shared<const GgufModel>(model_path, mmproj_path);
  m->config_ = gguf->config();
  m->preprocessor_ = gguf->preprocessor();
  m->notes_ = gguf->notes();
  // GgufModel has checked every tensor's presence, type and shape against the config.
  m->checkpoint_ = std::make_unique<Checkpoint>(std::move(gguf));
  m->PrepareWeights(options);
  return m;
}

std::unique_ptr<LlavaModel> LlavaModel::Load(const std::string& model, const std::string& mmproj,
                                             const LoadOptions& options) {
  const bool gguf_model = std::filesystem::path(model).extension() == ".gguf";
  if (mmproj.empty() && !gguf_model) return Load(model, options);
  if (mmproj.empty())
    Fail(model, " is a GGUF text model: also give --mmproj FILE.gguf (the CLIP vision tower and projector)");
  std::error_code ec;
  if (std::filesystem::is_directory(model, ec))
    Fail("--mmproj goes with a GGUF text model, but --model ", model, " is a directory");
  return LoadGguf(model, mmproj, options);
}

void LlavaModel::PrepareWeights(const LoadOptions& options) {
  compute_ = options.compute;
  kv_cache_ = ResolveKvCache(options.kv_cache, options.compute);
  vision_ = LoadVisionWeights(*checkpoint_, config_, options.compute);
  projector_ = LoadProjectorWeights(*checkpoint_, options.compute);
  if (options.load_text) {
    text_ = LoadTextWeights(*checkpoint_, config_, options);
    has_text_ = true;
  }
}

Tokenizer LlavaModel::LoadTokenizer(const std::string& explicit_path) const {
  if (!explicit_path.empty()) return Tokenizer::FromFile(explicit_path);
  if (is_gguf()) return TokenizerFromGguf(checkpoint_->gguf()->text_file());
  const std::string p = (std::filesystem::path(source_) / "tokenizer.model").string();
  if (!std::filesystem::exists(p))
    Fail("no tokenizer: ", p, " does not exist; pass --tokenizer FILE (a SentencePiece tokenizer.model)");
  return Tokenizer::FromFile(p);
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
