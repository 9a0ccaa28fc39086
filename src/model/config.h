// Model hyperparameters from a llava-hf config.json and preprocessor_config.json.
// Fields a real checkpoint leaves out take transformers' defaults (listed in
// config.cc); every value is validated after parsing, with the key named on error.
#pragma once
#include <array>
#include <string>
#include <vector>

namespace ficoco {

enum class Activation { QuickGelu, GeluErf, GeluTanh, Silu };
Activation ParseActivation(const std::string& name, const std::string& field);
const char* ActivationName(Activation a);

struct VisionConfig {
  int hidden_size = 1024;
  int intermediate_size = 4096;
  int num_hidden_layers = 24;
  int num_attention_heads = 16;
  int num_channels = 3;
  int image_size = 336;
  int patch_size = 14;
  float layer_norm_eps = 1e-5f;
  Activation hidden_act = Activation::QuickGelu;

  int grid() const { return image_size / patch_size; }            // patches per side
  int num_patches() const { return grid() * grid(); }
  int num_positions() const { return num_patches() + 1; }         // + CLS
  int head_dim() const { return hidden_size / num_attention_heads; }
};

struct TextConfig {
  int hidden_size = 4096;
  int intermediate_size = 11008;
  int num_hidden_layers = 32;
  int num_attention_heads = 32;
  int num_key_value_heads = 32;
  int vocab_size = 32000;
  int max_position_embeddings = 4096;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  Activation hidden_act = Activation::Silu;
  bool attention_bias = false;
  bool tie_word_embeddings = false;
  int bos_token_id = 1;
  int eos_token_id = 2;

  int head_dim() const { return hidden_size / num_attention_heads; }
};

struct LlavaConfig {
  VisionConfig vision;
  TextConfig text;
  int vision_feature_layer = -2;
  std::string vision_feature_select_strategy = "default";  // "default" drops CLS, "full" keeps it
  Activation projector_hidden_act = Activation::GeluErf;
  int image_token_index = 32000;
  int pad_token_id = -1;

  // Index (0-based) of the last CLIP layer whose output is used; layers after it are skipped.
  int vision_last_layer() const;
  // Raw JSON of the file, for writing it back (make-random) and for --json output.
  std::string source_json;
};

struct PreprocessorConfig {
  int shortest_edge = 336;
  int crop_height = 336, crop_width = 336;
  bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true;
  double rescale_factor = 1.0 / 255.0;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
  int resample = 3;  // Pillow BICUBIC; the only one supported
};

// Parse from JSON text; `origin` names the file in error messages.
LlavaConfig ParseLlavaConfig(const std::string& json_text, const std::string& origin);
PreprocessorConfig ParsePreprocessorConfig(const std::string& json_text, const std::string& origin);
// Read from a model directory (preprocessor_config.json is optional: CLIP-336 defaults
// matched to the vision image size are used when it is absent).
LlavaConfig LoadLlavaConfig(const std::string& model_dir);
PreprocessorConfig LoadPreprocessorConfig(const std::string& model_dir, const LlavaConfig& cfg);

// Serialise (for make-random): every field spelled out, llava-hf key names.
std::string LlavaConfigToJson(const LlavaConfig& cfg);
std::string PreprocessorConfigToJson(const PreprocessorConfig& cfg);

}  // namespace ficoco
