// Defaults for fields a config.json leaves out are those of transformers, because a
// llava-hf config.json only spells out non-default values:
//  * LlamaConfig (text_config): hidden_size 4096, intermediate_size 11008,
//    num_hidden_layers 32, num_attention_heads 32, num_key_value_heads =
//    num_attention_heads, hidden_act silu, max_position_embeddings 2048,
//    rms_norm_eps 1e-6, rope_theta 10000, attention_bias false, vocab_size 32000
//    (falls back to the top-level vocab_size that older llava configs carry),
//    tie_word_embeddings false (falls back to the top-level key), bos 1, eos 2.
//  * CLIPVisionConfig (vision_config): hidden_size 768, intermediate_size 3072,
//    num_hidden_layers 12, num_attention_heads 12, num_channels 3, image_size 224,
//    patch_size 32, hidden_act quick_gelu, layer_norm_eps 1e-5. (transformers builds
//    the sub-config from the dict, so these, not LLaVA's CLIP-L/336 values, apply;
//    llava-hf configs list the CLIP-L/336 values explicitly.)
//  * LlavaConfig: vision_feature_layer -2, vision_feature_select_strategy "default",
//    projector_hidden_act gelu, image_token_index 32000, pad_token_id none (-1).
//  * preprocessor_config.json: missing keys keep the PreprocessorConfig defaults
//    (CLIP-L/336 values).
#include "model/config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/json_file.h"

namespace ficoco {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string Brief(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Typed access to one JSON object, naming "origin: prefix.key" on error.
class Fields {
 public:
  Fields(const json& obj, std::string origin, std::string prefix)
      : obj_(obj), origin_(std::move(origin)), prefix_(std::move(prefix)) {}

  std::string Where(const std::string& key) const { return origin_ + ": " + prefix_ + key; }
  const json* Get(const std::string& key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  bool Has(const std::string& key) const { return Get(key) != nullptr; }
  bool HasNonNull(const std::string& key) const {
    const json* v = Get(key);
    return v != nullptr && !v->is_null();
  }

  int Int(const std::string& key, int def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    return AsInt(*v, Where(key));
  }
  float Float(const std::string& key, float def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    if (!v->is_number()) Fail(Where(key), " must be a number, got ", Brief(*v));
    return static_cast<float>(v->get<double>());
  }
  double Double(const std::string& key, double def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    if (!v->is_number()) Fail(Where(key), " must be a number, got ", Brief(*v));
    return v->get<double>();
  }
  bool Bool(const std::string& key, bool def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    if (!v->is_boolean()) Fail(Where(key), " must be true or false, got ", Brief(*v));
    return v->get<bool>();
  }
  std::string String(const std::string& key, const std::string& def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    if (!v->is_string()) Fail(Where(key), " must be a string, got ", Brief(*v));
    return v->get<std::string>();
  }
  Activation Act(const std::string& key, Activation def) const {
    const json* v = Get(key);
    if (v == nullptr) return def;
    if (!v->is_string()) Fail(Where(key), " must be a string, got ", Brief(*v));
    return ParseActivation(v->get<std::string>(), Where(key));
  }

  static int AsInt(const json& v, const std::string& where) {
    double d;
    if (v.is_number_integer()) {
      int64_t i = v.get<int64_t>();
      if (i < std::numeric_limits<int>::min() || i > std::numeric_limits<int>::max())
        Fail(where, " (", i, ") is out of range");
      return static_cast<int>(i);
    }
    if (v.is_number_unsigned()) Fail(where, " (", Brief(v), ") is out of range");
    if (v.is_number_float() && (d = v.get<double>(), std::isfinite(d)) && d == std::floor(d) &&
        std::fabs(d) <= std::numeric_limits<int>::max())
      return static_cast<int>(d);
    Fail(where, " must be an integer, got ", Brief(v));
  }

 private:
  const json& obj_;
  std::string origin_;
  std::string prefix_;
};

void RequirePositive(int value, const std::string& where) {
  if (value <= 0) Fail(where, " (", value, ") must be positive");
}

// The shortest decimal that reads back as the same float, as a JSON double (1e-5f → 1e-05).
double FloatForJson(float f) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f);
  *res.ptr = '\0';
  return std::strtod(buf, nullptr);
}

void ParseVision(const Fields& f, VisionConfig& v) {
  const std::string mt = f.String("model_type", "clip_vision_model");
  if (mt != "clip_vision_model")
    Fail(f.Where("model_type"), " '", mt, "' is not supported (expected \"clip_vision_model\")");
  v.hidden_size = f.Int("hidden_size", 768);
  v.intermediate_size = f.Int("intermediate_size", 3072);
  v.num_hidden_layers = f.Int("num_hidden_layers", 12);
  v.num_attention_heads = f.Int("num_attention_heads", 12);
  v.num_channels = f.Int("num_channels", 3);
  v.image_size = f.Int("image_size", 224);
  v.patch_size = f.Int("patch_size", 32);
  v.layer_norm_eps = f.Float("layer_norm_eps", 1e-5f);
  v.hidden_act = f.Act("hidden_act", Activation::QuickGelu);

  const std::pair<const char*, int> sizes[] = {
      {"hidden_size", v.hidden_size},         {"intermediate_size", v.intermediate_size},
      {"num_hidden_layers", v.num_hidden_layers}, {"num_attention_heads", v.num_attention_heads},
      {"num_channels", v.num_channels},       {"image_size", v.image_size},
      {"patch_size", v.patch_size}};
  for (const auto& [key, value] : sizes) RequirePositive(value, f.Where(key));
  if (!(v.layer_norm_eps > 0)) Fail(f.Where("layer_norm_eps"), " (", v.layer_norm_eps, ") must be positive");
  if (v.hidden_size % v.num_attention_heads != 0)
    Fail(f.Where("num_attention_heads"), " (", v.num_attention_heads, ") must divide hidden_size (", v.hidden_size,
         ")");
  if (v.image_size % v.patch_size != 0)
    Fail(f.Where("patch_size"), " (", v.patch_size, ") must divide image_size (", v.image_size, ")");
}

void ParseText(const Fields& f, const Fields& top, TextConfig& t) {
  const std::string mt = f.String("model_type", "llama");
  if (mt != "llama") Fail(f.Where("model_type"), " '", mt, "' is not supported (expected \"llama\")");
  t.hidden_size = f.Int("hidden_size", 4096);
  t.intermediate_size = f.Int("intermediate_size", 11008);
  t.num_hidden_layers = f.Int("num_hidden_layers", 32);
  t.num_attention_heads = f.Int("num_attention_heads", 32);
  const json* kv = f.Get("num_key_value_heads");
  t.num_key_value_heads = (kv == nullptr || kv->is_null()) ? t.num_attention_heads
                                                          : Fields::AsInt(*kv, f.Where("num_key_value_heads"));
  t.vocab_size = f.Has("vocab_size") ? f.Int("vocab_size", 32000) : top.Int("vocab_size", 32000);
  t.max_position_embeddings = f.Int("max_position_embeddings", 2048);
  t.rms_norm_eps = f.Float("rms_norm_eps", 1e-6f);
  t.rope_theta = f.Float("rope_theta", 10000.0f);
  t.hidden_act = f.Act("hidden_act", Activation::Silu);
  t.attention_bias = f.Bool("attention_bias", false);
  t.tie_word_embeddings =
      f.Has("tie_word_embeddings") ? f.Bool("tie_word_embeddings", false) : top.Bool("tie_word_embeddings", false);
  t.bos_token_id = f.HasNonNull("bos_token_id") ? f.Int("bos_token_id", 1) : 1;
  if (const json* eos = f.Get("eos_token_id"); eos != nullptr && !eos->is_null()) {
    // Some configs list several end tokens; the first is the primary one.
    if (eos->is_array()) {
      if (eos->empty()) Fail(f.Where("eos_token_id"), " must not be an empty list");
      t.eos_token_id = Fields::AsInt((*eos)[0], f.Where("eos_token_id[0]"));
    } else {
      t.eos_token_id = Fields::AsInt(*eos, f.Where("eos_token_id"));
    }
  }

  if (f.HasNonNull("rope_scaling")) Fail(f.Where("rope_scaling"), ": rope_scaling is not supported");
  if (f.Bool("mlp_bias", false)) Fail(f.Where("mlp_bias"), ": MLP biases are not supported");

  RequirePositive(t.hidden_size, f.Where("hidden_size"));
  RequirePositive(t.intermediate_size, f.Where("intermediate_size"));
  RequirePositive(t.num_hidden_layers, f.Where("num_hidden_layers"));
  RequirePositive(t.num_attention_heads, f.Where("num_attention_heads"));
  RequirePositive(t.num_key_value_heads, f.Where("num_key_value_heads"));
  RequirePositive(t.vocab_size, f.Has("vocab_size") ? f.Where("vocab_size") : top.Where("vocab_size"));
  RequirePositive(t.max_position_embeddings, f.Where("max_position_embeddings"));
  if (!(t.rms_norm_eps > 0)) Fail(f.Where("rms_norm_eps"), " (", t.rms_norm_eps, ") must be positive");
  if (!(t.rope_theta > 0)) Fail(f.Where("rope_theta"), " (", t.rope_theta, ") must be positive");
  if (t.hidden_size % t.num_attention_heads != 0)
    Fail(f.Where("num_attention_heads"), " (", t.num_attention_heads, ") must divide hidden_size (", t.hidden_size,
         ")");
  if (t.num_attention_heads % t.num_key_value_heads != 0)
    Fail(f.Where("num_key_value_heads"), " (", t.num_key_value_heads, ") must divide num_attention_heads (",
         t.num_attention_heads, ")");
  if (t.head_dim() % 2 != 0)
    Fail(f.Where("hidden_size"), " / num_attention_heads (", t.head_dim(), ") must be even for rotary embeddings");
  if (const json* hd = f.Get("head_dim"); hd != nullptr && !hd->is_null()) {
    int v = Fields::AsInt(*hd, f.Where("head_dim"));
    if (v != t.head_dim())
      Fail(f.Where("head_dim"), " (", v, ") must equal hidden_size / num_attention_heads (", t.head_dim(), ")");
  }
  if (t.bos_token_id < 0 || t.bos_token_id >= t.vocab_size)
    Fail(f.Where("bos_token_id"), " (", t.bos_token_id, ") must be in [0, vocab_size ", t.vocab_size, ")");
  if (t.eos_token_id < 0 || t.eos_token_id >= t.vocab_size)
    Fail(f.Where("eos_token_id"), " (", t.eos_token_id, ") must be in [0, vocab_size ", t.vocab_size, ")");
}

std::array<float, 3> Triple(const Fields& f, const std::string& key, const std::array<float, 3>& def) {
  const json* v = f.Get(key);
  if (v == nullptr) return def;
  if (!v->is_array() || v->size() != 3) Fail(f.Where(key), " must be a list of 3 numbers, got ", Brief(*v));
  std::array<float, 3> out{};
  for (size_t i = 0; i < 3; ++i) {
    if (!(*v)[i].is_number()) Fail(f.Where(key), " must be a list of 3 numbers, got ", Brief(*v));
    out[i] = static_cast<float>((*v)[i].get<double>());
  }
  return out;
}

}  // namespace

Activation ParseActivation(const std::string& name, const std::string& field) {
  if (name == "quick_gelu") return Activation::QuickGelu;
  if (name == "gelu") return Activation::GeluErf;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new") return Activation::GeluTanh;
  if (name == "silu" || name == "swish") return Activation::Silu;
  Fail(field, ": unknown activation '", name, "' (supported: quick_gelu, gelu, gelu_pytorch_tanh, gelu_new, silu)");
}

const char* ActivationName(Activation a) {
  switch (a) {
    case Activation::QuickGelu: return "quick_gelu";
    case Activation::GeluErf: return "gelu";
    case Activation::GeluTanh: return "gelu_pytorch_tanh";
    case Activation::Silu: return "silu";
  }
  return "?";
}

int LlavaConfig::vision_last_layer() const {
  // hidden_states has L+1 entries (index 0 = embeddings); entry k is the output of layer k-1.
  const int L = vision.num_hidden_layers;
  const int k = vision_feature_layer < 0 ? L + 1 + vision_feature_layer : vision_feature_layer;
  return k - 1;
}

LlavaConfig ParseLlavaConfig(const std::string& json_text, const std::string& origin) {
  const json j = ParseJsonObject(json_text, origin);
  const Fields top(j, origin, "");
  LlavaConfig cfg;
  cfg.source_json = json_text;

  const json* mt = top.Get("model_type");
  if (mt == nullptr) Fail(origin, ": model_type is missing (expected \"llava\")");
  if (!mt->is_string() || mt->get<std::string>() != "llava")
    Fail(origin, ": model_type ", Brief(*mt), " is not supported (expected \"llava\")");
  const json* tc = top.Get("text_config");
  if (tc == nullptr) Fail(origin, ": text_config is missing");
  if (!tc->is_object()) Fail(origin, ": text_config must be an object, got ", Brief(*tc));
  const json* vc = top.Get("vision_config");
  if (vc == nullptr) Fail(origin, ": vision_config is missing");
  if (!vc->is_object()) Fail(origin, ": vision_config must be an object, got ", Brief(*vc));

  ParseVision(Fields(*vc, origin, "vision_config."), cfg.vision);
  ParseText(Fields(*tc, origin, "text_config."), top, cfg.text);

  if (const json* fl = top.Get("vision_feature_layer"); fl != nullptr) {
    if (fl->is_array()) Fail(top.Where("vision_feature_layer"), ": a list of layers is not supported");
    cfg.vision_feature_layer = Fields::AsInt(*fl, top.Where("vision_feature_layer"));
  }
  cfg.vision_feature_select_strategy = top.String("vision_feature_select_strategy", "default");
  cfg.projector_hidden_act = top.Act("projector_hidden_act", Activation::GeluErf);
  cfg.image_token_index = top.Int("image_token_index", 32000);
  cfg.pad_token_id = top.HasNonNull("pad_token_id") ? top.Int("pad_token_id", -1) : -1;
  if (top.Bool("multimodal_projector_bias", true) == false)
    Fail(top.Where("multimodal_projector_bias"), ": a projector without biases is not supported");

  const int L = cfg.vision.num_hidden_layers;
  // Python indexing of hidden_states (L+1 entries): [-(L+1), L].
  if (cfg.vision_feature_layer < -(L + 1) || cfg.vision_feature_layer > L)
    Fail(top.Where("vision_feature_layer"), " (", cfg.vision_feature_layer, ") is out of range [", -(L + 1), ", ", L,
         "] for vision_config.num_hidden_layers ", L);
  if (cfg.vision_feature_select_strategy != "default" && cfg.vision_feature_select_strategy != "full")
    Fail(top.Where("vision_feature_select_strategy"), " '", cfg.vision_feature_select_strategy,
         "' is not supported (expected \"default\" or \"full\")");
  if (cfg.image_token_index < 0) Fail(top.Where("image_token_index"), " (", cfg.image_token_index, ") must be >= 0");
  return cfg;
}

PreprocessorConfig ParsePreprocessorConfig(const std::string& json_text, const std::string& origin) {
  const json j = ParseJsonObject(json_text, origin);
  const Fields f(j, origin, "");
  PreprocessorConfig p;

  if (const json* size = f.Get("size"); size != nullptr) {
    if (size->is_object()) {
      const Fields s(*size, origin, "size.");
      if (!s.Has("shortest_edge")) Fail(f.Where("size"), ": only {\"shortest_edge\": N} is supported, got ", Brief(*size));
      p.shortest_edge = s.Int("shortest_edge", p.shortest_edge);
    } else {
      p.shortest_edge = Fields::AsInt(*size, f.Where("size"));
    }
  }
  if (const json* crop = f.Get("crop_size"); crop != nullptr) {
    if (crop->is_object()) {
      const Fields c(*crop, origin, "crop_size.");
      if (!c.Has("height") || !c.Has("width"))
        Fail(f.Where("crop_size"), " must have height and width, got ", Brief(*crop));
      p.crop_height = c.Int("height", p.crop_height);
      p.crop_width = c.Int("width", p.crop_width);
    } else {
      p.crop_height = p.crop_width = Fields::AsInt(*crop, f.Where("crop_size"));
    }
  }
  p.do_resize = f.Bool("do_resize", p.do_resize);
  p.do_center_crop = f.Bool("do_center_crop", p.do_center_crop);
  p.do_rescale = f.Bool("do_rescale", p.do_rescale);
  p.do_normalize = f.Bool("do_normalize", p.do_normalize);
  p.rescale_factor = f.Double("rescale_factor", p.rescale_factor);
  p.image_mean = Triple(f, "image_mean", p.image_mean);
  p.image_std = Triple(f, "image_std", p.image_std);
  p.resample = f.Int("resample", p.resample);

  RequirePositive(p.shortest_edge, f.Has("size") && f.Get("size")->is_object() ? origin + ": size.shortest_edge"
                                                                                 : f.Where("size"));
  RequirePositive(p.crop_height, origin + ": crop_size.height");
  RequirePositive(p.crop_width, origin + ": crop_size.width");
  if (!(p.rescale_factor > 0) || !std::isfinite(p.rescale_factor))
    Fail(f.Where("rescale_factor"), " (", p.rescale_factor, ") must be positive");
  for (float s : p.image_std)
    if (!(s > 0) || !std::isfinite(s)) Fail(f.Where("image_std"), " values must be positive");
  for (float m : p.image_mean)
    if (!std::isfinite(m)) Fail(f.Where("image_mean"), " values must be finite");
  if (p.resample != 3) Fail(f.Where("resample"), " (", p.resample, ") is not supported: only 3 (bicubic)");
  return p;
}

LlavaConfig LoadLlavaConfig(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  return ParseLlavaConfig(ReadTextFile(path), path);
}

PreprocessorConfig LoadPreprocessorConfig(const std::string& model_dir, const LlavaConfig& cfg) {
  const std::string path = (std::filesystem::path(model_dir) / "preprocessor_config.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    PreprocessorConfig p;
    p.shortest_edge = p.crop_height = p.crop_width = cfg.vision.image_size;
    return p;
  }
  PreprocessorConfig p = ParsePreprocessorConfig(ReadTextFile(path), path);
  if (p.crop_height != cfg.vision.image_size || p.crop_width != cfg.vision.image_size)
    Fail(path, ": crop_size ", p.crop_width, "x", p.crop_height, " does not match vision_config.image_size ",
         cfg.vision.image_size);
  if (!p.do_resize || !p.do_center_crop)
    Fail(path, ": do_resize and do_center_crop must be true (the vision tower needs ", cfg.vision.image_size, "x",
         cfg.vision.image_size, " input)");
  return p;
}

std::string LlavaConfigToJson(const LlavaConfig& cfg) {
  const VisionConfig& v = cfg.vision;
  const TextConfig& t = cfg.text;
  ojson text = {
      {"model_type", "llama"},
      {"architectures", {"LlamaForCausalLM"}},
      {"vocab_size", t.vocab_size},
      {"hidden_size", t.hidden_size},
      {"intermediate_size", t.intermediate_size},
      {"num_hidden_layers", t.num_hidden_layers},
      {"num_attention_heads", t.num_attention_heads},
      {"num_key_value_heads", t.num_key_value_heads},
      {"hidden_act", ActivationName(t.hidden_act)},
      {"max_position_embeddings", t.max_position_embeddings},
      {"rms_norm_eps", FloatForJson(t.rms_norm_eps)},
      {"rope_theta", FloatForJson(t.rope_theta)},
      {"rope_scaling", nullptr},
      {"attention_bias", t.attention_bias},
      {"tie_word_embeddings", t.tie_word_embeddings},
      {"bos_token_id", t.bos_token_id},
      {"eos_token_id", t.eos_token_id},
  };
  ojson vision = {
      {"model_type", "clip_vision_model"},
      {"hidden_size", v.hidden_size},
      {"intermediate_size", v.intermediate_size},
      {"num_hidden_layers", v.num_hidden_layers},
      {"num_attention_heads", v.num_attention_heads},
      {"num_channels", v.num_channels},
      {"image_size", v.image_size},
      {"patch_size", v.patch_size},
      {"hidden_act", ActivationName(v.hidden_act)},
      {"layer_norm_eps", FloatForJson(v.layer_norm_eps)},
  };
  ojson j = {
      {"architectures", {"LlavaForConditionalGeneration"}},
      {"model_type", "llava"},
      {"ignore_index", -100},
      {"image_token_index", cfg.image_token_index},
      {"pad_token_id", cfg.pad_token_id >= 0 ? ojson(cfg.pad_token_id) : ojson(nullptr)},
      {"projector_hidden_act", ActivationName(cfg.projector_hidden_act)},
      {"vision_feature_layer", cfg.vision_feature_layer},
      {"vision_feature_select_strategy", cfg.vision_feature_select_strategy},
      {"tie_word_embeddings", t.tie_word_embeddings},
      {"vocab_size", t.vocab_size},
      {"text_config", text},
      {"vision_config", vision},
  };
  return j.dump(2) + "\n";
}

std::string PreprocessorConfigToJson(const PreprocessorConfig& cfg) {
  auto triple = [](const std::array<float, 3>& a) {
    return ojson::array({FloatForJson(a[0]), FloatForJson(a[1]), FloatForJson(a[2])});
  };
  ojson j = {
      {"crop_size", {{"height", cfg.crop_height}, {"width", cfg.crop_width}}},
      {"do_center_crop", cfg.do_center_crop},
      {"do_convert_rgb", true},
      {"do_normalize", cfg.do_normalize},
      {"do_rescale", cfg.do_rescale},
      {"do_resize", cfg.do_resize},
      {"image_mean", triple(cfg.image_mean)},
      {"image_processor_type", "CLIPImageProcessor"},
      {"image_std", triple(cfg.image_std)},
      {"processor_class", "LlavaProcessor"},
      {"resample", cfg.resample},
      {"rescale_factor", cfg.rescale_factor},
      {"size", {{"shortest_edge", cfg.shortest_edge}}},
  };
  return j.dump(2) + "\n";
}

}  // namespace ficoco
