// A loaded LLaVA-1.5 model: config, mapped checkpoint, prepared weights, and the
// image path (preprocess → vision tower → projector). The weights come from a llava-hf
// directory or from a llama.cpp GGUF pair (text model + mmproj, see docs/gguf.md).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "kernels/gemm.h"
#include "model/config.h"
#include "model/llava_weights.h"
#include "tokenizer/tokenizer.h"
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
  // A llama.cpp GGUF pair: the text model (general.architecture llama, with its tokenizer)
  // and the mmproj (clip: vision tower + projector). Tensors, shapes and hyperparameters
  // are validated when the files are opened; errors name the file and the GGUF tensor.
  static std::unique_ptr<LlavaModel> LoadGguf(const std::string& model_path, const std::string& mmproj_path,
                                              const LoadOptions& options);
  // What the front ends call: a GGUF pair when `mmproj` is given or `model` ends in
  // ".gguf" (then both are needed), else a llava-hf directory.
  static std::unique_ptr<LlavaModel> Load(const std::string& model, const std::string& mmproj, const LoadOptions& options);

  const LlavaConfig& config() const { return config_; }
  const PreprocessorConfig& preprocessor() const { return preprocessor_; }
  const Checkpoint& checkpoint() const { return *checkpoint_; }
  const TextWeights& text() const { return text_; }
  bool has_text() const { return has_text_; }
  bool is_gguf() const { return checkpoint_->gguf() != nullptr; }
  // Remarks from loading for the user (e.g. a GGUF's vision layer choice), one per line.
  const std::vector<std::string>& load_notes() const { return notes_; }
  // The tokenizer for this model: `explicit_path` (a tokenizer.model) when given, else the
  // GGUF text model's embedded vocabulary, else DIR/tokenizer.model. Error says which is missing.
  Tokenizer LoadTokenizer(const std::string& explicit_path) const;
  ComputeType compute() const { return compute_; }
  KvType kv_cache() const { return kv_cache_; }  // LoadOptions::kv_cache, resolved

  EncodedImage EncodeImage(GemmContext& gemm, const ImageU8& image, const VisionRunOptions& options = {}) const;

 private:
  LlavaModel() = default;
  void PrepareWeights(const LoadOptions& options);
  std::string source_;  // directory or GGUF text model path
  std::vector<std::string> notes_;
  LlavaConfig config_;
  PreprocessorConfig preprocessor_;
  std::unique_ptr<Checkpoint> checkpoint_;
  VisionWeights vision_;
  ProjectorWeights projector_;
  TextWeights text_;
  bool has_text_ = false;
  ComputeType compute_ = ComputeType::BF16;
  KvType kv_cache_ = KvType::F16;
};

}  // namespace ficoco
