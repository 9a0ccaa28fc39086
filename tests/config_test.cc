#include "model/config.h"

#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "test_support.h"

namespace ficoco {
namespace {
using json = nlohmann::json;

using test::ExpectError;

json FixtureJson() { return json::parse(test::ReadFile(test::LlavaTinyDir() + "/config.json")); }

// The config.json of llava-hf/llava-1.5-7b-hf: most text_config fields are left to defaults.
const char* kLlava7bConfig = R"({
  "architectures": ["LlavaForConditionalGeneration"],
  "ignore_index": -100,
  "image_token_index": 32000,
  "model_type": "llava",
  "pad_token_id": 32001,
  "projector_hidden_act": "gelu",
  "text_config": {
    "_name_or_path": "lmsys/vicuna-7b-v1.5",
    "architectures": ["LlamaForCausalLM"],
    "max_position_embeddings": 4096,
    "model_type": "llama",
    "rms_norm_eps": 1e-05,
    "torch_dtype": "float16",
    "vocab_size": 32064
  },
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "transformers_version": "4.36.0.dev0",
  "vision_config": {
    "hidden_size": 1024,
    "image_size": 336,
    "intermediate_size": 4096,
    "model_type": "clip_vision_model",
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "patch_size": 14,
    "projection_dim": 768,
    "vocab_size": 32000
  },
  "vision_feature_layer": -2,
  "vision_feature_select_strategy": "default",
  "vocab_size": 32064
})";

void ExpectSameConfig(const LlavaConfig& a, const LlavaConfig& b) {
  EXPECT_EQ(a.vision.hidden_size, b.vision.hidden_size);
  EXPECT_EQ(a.vision.intermediate_size, b.vision.intermediate_size);
  EXPECT_EQ(a.vision.num_hidden_layers, b.vision.num_hidden_layers);
  EXPECT_EQ(a.vision.num_attention_heads, b.vision.num_attention_heads);
  EXPECT_EQ(a.vision.num_channels, b.vision.num_channels);
  EXPECT_EQ(a.vision.image_size, b.vision.image_size);
  EXPECT_EQ(a.vision.patch_size, b.vision.patch_size);
  EXPECT_EQ(a.vision.layer_norm_eps, b.vision.layer_norm_eps);
  EXPECT_EQ(a.vision.hidden_act, b.vision.hidden_act);
  EXPECT_EQ(a.text.hidden_size, b.text.hidden_size);
  EXPECT_EQ(a.text.intermediate_size, b.text.intermediate_size);
  EXPECT_EQ(a.text.num_hidden_layers, b.text.num_hidden_layers);
  EXPECT_EQ(a.text.num_attention_heads, b.text.num_attention_heads);
  EXPECT_EQ(a.text.num_key_value_heads, b.text.num_key_value_heads);
  EXPECT_EQ(a.text.vocab_size, b.text.vocab_size);
  EXPECT_EQ(a.text.max_position_embeddings, b.text.max_position_embeddings);
  EXPECT_EQ(a.text.rms_norm_eps, b.text.rms_norm_eps);
  EXPECT_EQ(a.text.rope_theta, b.text.rope_theta);
  EXPECT_EQ(a.text.hidden_act, b.text.hidden_act);
  EXPECT_EQ(a.text.attention_bias, b.text.attention_bias);
  EXPECT_EQ(a.text.tie_word_embeddings, b.text.tie_word_embeddings);
  EXPECT_EQ(a.text.bos_token_id, b.text.bos_token_id);
  EXPECT_EQ(a.text.eos_token_id, b.text.eos_token_id);
  EXPECT_EQ(a.vision_feature_layer, b.vision_feature_layer);
  EXPECT_EQ(a.vision_feature_select_strategy, b.vision_feature_select_strategy);
  EXPECT_EQ(a.projector_hidden_act, b.projector_hidden_act);
  EXPECT_EQ(a.image_token_index, b.image_token_index);
  EXPECT_EQ(a.pad_token_id, b.pad_token_id);
}

TEST(Config, FixtureParses) {
  const LlavaConfig c = LoadLlavaConfig(test::LlavaTinyDir());
  EXPECT_EQ(c.vision.hidden_size, 64);
  EXPECT_EQ(c.vision.intermediate_size, 128);
  EXPECT_EQ(c.vision.num_hidden_layers, 4);
  EXPECT_EQ(c.vision.num_attention_heads, 4);
  EXPECT_EQ(c.vision.num_channels, 3);
  EXPECT_EQ(c.vision.image_size, 56);
  EXPECT_EQ(c.vision.patch_size, 14);
  EXPECT_FLOAT_EQ(c.vision.layer_norm_eps, 1e-5f);
  EXPECT_EQ(c.vision.hidden_act, Activation::QuickGelu);
  EXPECT_EQ(c.vision.grid(), 4);
  EXPECT_EQ(c.vision.num_patches(), 16);
  EXPECT_EQ(c.vision.num_positions(), 17);
  EXPECT_EQ(c.vision.head_dim(), 16);
  EXPECT_EQ(c.text.hidden_size, 64);
  EXPECT_EQ(c.text.intermediate_size, 172);
  EXPECT_EQ(c.text.num_hidden_layers, 4);
  EXPECT_EQ(c.text.num_attention_heads, 4);
  EXPECT_EQ(c.text.num_key_value_heads, 4);
  EXPECT_EQ(c.text.vocab_size, 32064);
  EXPECT_EQ(c.text.max_position_embeddings, 4096);
  EXPECT_FLOAT_EQ(c.text.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.text.rope_theta, 10000.0f);
  EXPECT_EQ(c.text.hidden_act, Activation::Silu);
  EXPECT_FALSE(c.text.attention_bias);
  EXPECT_FALSE(c.text.tie_word_embeddings);
  EXPECT_EQ(c.text.bos_token_id, 1);
  EXPECT_EQ(c.text.eos_token_id, 2);
  EXPECT_EQ(c.text.head_dim(), 16);
  EXPECT_EQ(c.vision_feature_layer, -2);
  EXPECT_EQ(c.vision_feature_select_strategy, "default");
  EXPECT_EQ(c.projector_hidden_act, Activation::GeluErf);
  EXPECT_EQ(c.image_token_index, 32000);
  EXPECT_EQ(c.pad_token_id, 32001);
  EXPECT_EQ(c.vision_last_layer(), 2);  // hidden_states[-2] = output of layer L-2
  EXPECT_EQ(c.source_json, test::ReadFile(test::LlavaTinyDir() + "/config.json"));
}

TEST(Config, FixturePreprocessorParses) {
  const LlavaConfig c = LoadLlavaConfig(test::LlavaTinyDir());
  const PreprocessorConfig p = LoadPreprocessorConfig(test::LlavaTinyDir(), c);
  EXPECT_EQ(p.shortest_edge, 56);
  EXPECT_EQ(p.crop_height, 56);
  EXPECT_EQ(p.crop_width, 56);
  EXPECT_TRUE(p.do_resize && p.do_center_crop && p.do_rescale && p.do_normalize);
  EXPECT_DOUBLE_EQ(p.rescale_factor, 1.0 / 255.0);
  EXPECT_FLOAT_EQ(p.image_mean[0], 0.48145466f);
  EXPECT_FLOAT_EQ(p.image_mean[2], 0.40821073f);
  EXPECT_FLOAT_EQ(p.image_std[1], 0.26130258f);
  EXPECT_EQ(p.resample, 3);
}

TEST(Config, Llava7bDefaults) {
  const LlavaConfig c = ParseLlavaConfig(kLlava7bConfig, "config.json");
  EXPECT_EQ(c.vision.hidden_size, 1024);
  EXPECT_EQ(c.vision.intermediate_size, 4096);
  EXPECT_EQ(c.vision.num_hidden_layers, 24);
  EXPECT_EQ(c.vision.num_attention_heads, 16);
  EXPECT_EQ(c.vision.image_size, 336);
  EXPECT_EQ(c.vision.patch_size, 14);
  EXPECT_EQ(c.vision.num_channels, 3);
  EXPECT_FLOAT_EQ(c.vision.layer_norm_eps, 1e-5f);
  EXPECT_EQ(c.vision.hidden_act, Activation::QuickGelu);
  EXPECT_EQ(c.vision.num_patches(), 576);
  EXPECT_EQ(c.text.hidden_size, 4096);
  EXPECT_EQ(c.text.intermediate_size, 11008);
  EXPECT_EQ(c.text.num_hidden_layers, 32);
  EXPECT_EQ(c.text.num_attention_heads, 32);
  EXPECT_EQ(c.text.num_key_value_heads, 32);
  EXPECT_EQ(c.text.vocab_size, 32064);
  EXPECT_EQ(c.text.max_position_embeddings, 4096);
  EXPECT_FLOAT_EQ(c.text.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.text.rope_theta, 10000.0f);
  EXPECT_EQ(c.text.hidden_act, Activation::Silu);
  EXPECT_FALSE(c.text.attention_bias);
  EXPECT_FALSE(c.text.tie_word_embeddings);
  EXPECT_EQ(c.text.bos_token_id, 1);
  EXPECT_EQ(c.text.eos_token_id, 2);
  EXPECT_EQ(c.projector_hidden_act, Activation::GeluErf);
  EXPECT_EQ(c.image_token_index, 32000);
  EXPECT_EQ(c.pad_token_id, 32001);
  EXPECT_EQ(c.vision_last_layer(), 22);
}

TEST(Config, EmptySubConfigsTakeTransformersDefaults) {
  const LlavaConfig c =
      ParseLlavaConfig(R"({"model_type": "llava", "text_config": {}, "vision_config": {}})", "config.json");
  // LlamaConfig defaults.
  EXPECT_EQ(c.text.hidden_size, 4096);
  EXPECT_EQ(c.text.num_key_value_heads, 32);
  EXPECT_EQ(c.text.vocab_size, 32000);
  EXPECT_EQ(c.text.max_position_embeddings, 2048);
  EXPECT_FLOAT_EQ(c.text.rms_norm_eps, 1e-6f);
  // CLIPVisionConfig defaults.
  EXPECT_EQ(c.vision.hidden_size, 768);
  EXPECT_EQ(c.vision.intermediate_size, 3072);
  EXPECT_EQ(c.vision.num_hidden_layers, 12);
  EXPECT_EQ(c.vision.num_attention_heads, 12);
  EXPECT_EQ(c.vision.image_size, 224);
  EXPECT_EQ(c.vision.patch_size, 32);
  // LlavaConfig defaults.
  EXPECT_EQ(c.vision_feature_layer, -2);
  EXPECT_EQ(c.vision_feature_select_strategy, "default");
  EXPECT_EQ(c.projector_hidden_act, Activation::GeluErf);
  EXPECT_EQ(c.image_token_index, 32000);
  EXPECT_EQ(c.pad_token_id, -1);

  // num_key_value_heads follows num_attention_heads; top-level keys fill in gaps.
  const LlavaConfig d = ParseLlavaConfig(
      R"({"model_type": "llava", "vocab_size": 32064, "tie_word_embeddings": true,
          "text_config": {"num_attention_heads": 8, "hidden_size": 512}, "vision_config": {}})",
      "config.json");
  EXPECT_EQ(d.text.num_key_value_heads, 8);
  EXPECT_EQ(d.text.vocab_size, 32064);
  EXPECT_TRUE(d.text.tie_word_embeddings);
}

TEST(Config, VisionLastLayer) {
  LlavaConfig c;
  c.vision.num_hidden_layers = 24;
  auto last = [&](int f) {
    c.vision_feature_layer = f;
    return c.vision_last_layer();
  };
  EXPECT_EQ(last(-2), 22);
  EXPECT_EQ(last(-1), 23);
  EXPECT_EQ(last(-24), 0);
  EXPECT_EQ(last(-25), -1);  // hidden_states[0]: embeddings only
  EXPECT_EQ(last(0), -1);
  EXPECT_EQ(last(1), 0);
  EXPECT_EQ(last(23), 22);
  EXPECT_EQ(last(24), 23);
}

TEST(Config, Activations) {
  EXPECT_EQ(ParseActivation("quick_gelu", "f"), Activation::QuickGelu);
  EXPECT_EQ(ParseActivation("gelu", "f"), Activation::GeluErf);
  EXPECT_EQ(ParseActivation("gelu_pytorch_tanh", "f"), Activation::GeluTanh);
  EXPECT_EQ(ParseActivation("gelu_new", "f"), Activation::GeluTanh);
  EXPECT_EQ(ParseActivation("silu", "f"), Activation::Silu);
  for (Activation a : {Activation::QuickGelu, Activation::GeluErf, Activation::GeluTanh, Activation::Silu})
    EXPECT_EQ(ParseActivation(ActivationName(a), "f"), a);
  ExpectError([] { ParseActivation("relu", "config.json: text_config.hidden_act"); },
              {"config.json: text_config.hidden_act", "unknown activation 'relu'"});
}

// Applies `edit` to the fixture config and expects parsing to fail with `parts` in the message.
void ExpectInvalid(const std::function<void(json&)>& edit, const std::vector<std::string>& parts) {
  json j = FixtureJson();
  edit(j);
  const std::string text = j.dump();
  std::vector<std::string> all = parts;
  all.push_back("config.json: ");
  ExpectError([&] { ParseLlavaConfig(text, "config.json"); }, all);
}

TEST(Config, InvalidCases) {
  ExpectInvalid([](json& j) { j["text_config"]["num_attention_heads"] = 5; },
                {"config.json: text_config.num_attention_heads (5) must divide hidden_size (64)"});
  ExpectInvalid([](json& j) { j["text_config"]["num_key_value_heads"] = 3; },
                {"text_config.num_key_value_heads (3) must divide num_attention_heads (4)"});
  ExpectInvalid([](json& j) { j["vision_config"]["num_attention_heads"] = 3; },
                {"vision_config.num_attention_heads (3) must divide hidden_size (64)"});
  ExpectInvalid([](json& j) { j["vision_config"]["image_size"] = 50; },
                {"vision_config.patch_size (14) must divide image_size (50)"});
  ExpectInvalid([](json& j) { j["text_config"]["hidden_size"] = 0; }, {"text_config.hidden_size (0) must be positive"});
  ExpectInvalid([](json& j) { j["vision_config"]["num_hidden_layers"] = -1; },
                {"vision_config.num_hidden_layers (-1) must be positive"});
  ExpectInvalid([](json& j) { j["text_config"]["intermediate_size"] = "172"; },
                {"text_config.intermediate_size must be an integer"});
  ExpectInvalid([](json& j) { j["text_config"]["vocab_size"] = 1.5; }, {"text_config.vocab_size must be an integer"});
  ExpectInvalid([](json& j) { j["text_config"]["rms_norm_eps"] = "small"; }, {"text_config.rms_norm_eps must be a number"});
  ExpectInvalid([](json& j) { j["text_config"]["rms_norm_eps"] = 0; }, {"text_config.rms_norm_eps", "must be positive"});
  ExpectInvalid([](json& j) { j["text_config"]["attention_bias"] = 1; },
                {"text_config.attention_bias must be true or false"});
  ExpectInvalid([](json& j) { j["vision_feature_layer"] = 5; }, {"vision_feature_layer (5) is out of range [-5, 4]"});
  ExpectInvalid([](json& j) { j["vision_feature_layer"] = -6; }, {"vision_feature_layer (-6) is out of range"});
  ExpectInvalid([](json& j) { j["vision_feature_layer"] = json::array({-2, -5}); },
                {"vision_feature_layer", "list of layers is not supported"});
  ExpectInvalid([](json& j) { j["vision_feature_select_strategy"] = "cls"; },
                {"vision_feature_select_strategy 'cls' is not supported"});
  ExpectInvalid([](json& j) { j["text_config"]["hidden_act"] = "relu"; },
                {"text_config.hidden_act", "unknown activation 'relu'"});
  ExpectInvalid([](json& j) { j["vision_config"]["hidden_act"] = "tanh"; },
                {"vision_config.hidden_act", "unknown activation 'tanh'"});
  ExpectInvalid([](json& j) { j["projector_hidden_act"] = "mish"; }, {"projector_hidden_act", "unknown activation 'mish'"});
  ExpectInvalid([](json& j) { j["text_config"]["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; },
                {"text_config.rope_scaling", "rope_scaling is not supported"});
  ExpectInvalid([](json& j) { j["model_type"] = "llama"; }, {"model_type", "\"llama\"", "expected \"llava\""});
  ExpectInvalid([](json& j) { j.erase("model_type"); }, {"model_type is missing"});
  ExpectInvalid([](json& j) { j.erase("text_config"); }, {"text_config is missing"});
  ExpectInvalid([](json& j) { j["vision_config"] = 3; }, {"vision_config must be an object"});
  ExpectInvalid([](json& j) { j.erase("vision_config"); }, {"vision_config is missing"});
  ExpectInvalid([](json& j) { j["text_config"]["model_type"] = "mistral"; },
                {"text_config.model_type 'mistral' is not supported"});
  ExpectInvalid([](json& j) { j["vision_config"]["model_type"] = "siglip_vision_model"; },
                {"vision_config.model_type 'siglip_vision_model' is not supported"});
  ExpectInvalid([](json& j) { j["text_config"]["head_dim"] = 32; }, {"text_config.head_dim (32) must equal"});
  ExpectInvalid([](json& j) { j["text_config"]["eos_token_id"] = 40000; }, {"text_config.eos_token_id (40000)"});

  ExpectError([] { ParseLlavaConfig("{\"model_type\": ", "config.json"); }, {"config.json", "not valid JSON"});
  ExpectError([] { ParseLlavaConfig("[]", "config.json"); }, {"config.json", "must be a JSON object"});
  // Unknown keys are ignored; a null rope_scaling is fine.
  json j = FixtureJson();
  j["some_future_key"] = {{"a", 1}};
  j["text_config"]["rope_scaling"] = nullptr;
  EXPECT_NO_THROW(ParseLlavaConfig(j.dump(), "config.json"));
}

TEST(Config, MissingFilesAreNamed) {
  const std::string dir = test::MakeTempDir("config-missing");
  ExpectError([&] { LoadLlavaConfig(dir); }, {dir + "/config.json"});
  // preprocessor_config.json is optional: defaults matched to the vision image size.
  test::WriteFile(dir + "/config.json", test::ReadFile(test::LlavaTinyDir() + "/config.json"));
  const LlavaConfig c = LoadLlavaConfig(dir);
  const PreprocessorConfig p = LoadPreprocessorConfig(dir, c);
  EXPECT_EQ(p.shortest_edge, 56);
  EXPECT_EQ(p.crop_height, 56);
  EXPECT_EQ(p.crop_width, 56);
  EXPECT_EQ(p.resample, 3);
  EXPECT_FLOAT_EQ(p.image_std[0], 0.26862954f);
}

TEST(Config, PreprocessorInvalid) {
  const std::string dir = test::MakeTempDir("config-pre");
  test::WriteFile(dir + "/config.json", test::ReadFile(test::LlavaTinyDir() + "/config.json"));
  const LlavaConfig c = LoadLlavaConfig(dir);
  json base = json::parse(test::ReadFile(test::LlavaTinyDir() + "/preprocessor_config.json"));
  auto expect = [&](const std::function<void(json&)>& edit, const std::vector<std::string>& parts) {
    json j = base;
    edit(j);
    test::WriteFile(dir + "/preprocessor_config.json", j.dump());
    std::vector<std::string> all = parts;
    all.push_back(dir + "/preprocessor_config.json");
    ExpectError([&] { LoadPreprocessorConfig(dir, c); }, all);
  };
  expect([](json& j) { j["resample"] = 2; }, {"resample (2) is not supported"});
  expect([](json& j) { j["crop_size"] = {{"height", 224}, {"width", 224}}; },
         {"crop_size 224x224 does not match vision_config.image_size 56"});
  expect([](json& j) { j["image_mean"] = {0.5, 0.5}; }, {"image_mean must be a list of 3 numbers"});
  expect([](json& j) { j["image_std"] = {0.5, 0.0, 0.5}; }, {"image_std values must be positive"});
  expect([](json& j) { j["size"] = {{"shortest_edge", -3}}; }, {"size.shortest_edge (-3) must be positive"});
  expect([](json& j) { j["do_resize"] = "yes"; }, {"do_resize must be true or false"});
  expect([](json& j) { j["size"] = {{"height", 56}, {"width", 56}}; }, {"size", "shortest_edge"});
}

TEST(Config, JsonRoundTrip) {
  const LlavaConfig fixture = LoadLlavaConfig(test::LlavaTinyDir());
  const std::string text = LlavaConfigToJson(fixture);
  const LlavaConfig back = ParseLlavaConfig(text, "roundtrip");
  ExpectSameConfig(fixture, back);
  EXPECT_EQ(back.source_json, text);

  // llava-hf key names and sub-config types.
  const json j = json::parse(text);
  EXPECT_EQ(j["model_type"], "llava");
  EXPECT_EQ(j["architectures"][0], "LlavaForConditionalGeneration");
  EXPECT_EQ(j["text_config"]["model_type"], "llama");
  EXPECT_EQ(j["vision_config"]["model_type"], "clip_vision_model");
  EXPECT_EQ(j["text_config"]["rms_norm_eps"].get<double>(), 1e-05);  // written as the short decimal
  EXPECT_EQ(j["vision_config"]["hidden_act"], "quick_gelu");
  EXPECT_EQ(j["projector_hidden_act"], "gelu");
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "vocab_size", "max_position_embeddings", "rope_theta",
                          "hidden_act", "attention_bias", "tie_word_embeddings", "bos_token_id", "eos_token_id"})
    EXPECT_TRUE(j["text_config"].contains(key)) << key;
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_channels", "image_size", "patch_size", "layer_norm_eps"})
    EXPECT_TRUE(j["vision_config"].contains(key)) << key;

  // Non-default values survive too.
  LlavaConfig odd = ParseLlavaConfig(kLlava7bConfig, "config.json");
  odd.text.num_key_value_heads = 8;
  odd.text.attention_bias = true;
  odd.text.tie_word_embeddings = true;
  odd.text.rope_theta = 500000.0f;
  odd.text.rms_norm_eps = 3.3e-7f;
  odd.text.hidden_act = Activation::GeluTanh;
  odd.text.eos_token_id = 7;
  odd.vision.layer_norm_eps = 1e-6f;
  odd.vision.hidden_act = Activation::GeluErf;
  odd.vision_feature_layer = 3;
  odd.vision_feature_select_strategy = "full";
  odd.projector_hidden_act = Activation::Silu;
  odd.pad_token_id = -1;
  odd.image_token_index = 31999;
  ExpectSameConfig(odd, ParseLlavaConfig(LlavaConfigToJson(odd), "roundtrip"));
}

TEST(Config, PreprocessorJsonRoundTrip) {
  PreprocessorConfig p;
  p.shortest_edge = 448;
  p.crop_height = p.crop_width = 400;
  p.do_normalize = false;
  p.rescale_factor = 1.0 / 127.5;
  p.image_mean = {0.5f, 0.25f, 0.125f};
  p.image_std = {0.1f, 0.2f, 0.3f};
  const std::string text = PreprocessorConfigToJson(p);
  const PreprocessorConfig q = ParsePreprocessorConfig(text, "pre");
  EXPECT_EQ(q.shortest_edge, 448);
  EXPECT_EQ(q.crop_height, 400);
  EXPECT_EQ(q.crop_width, 400);
  EXPECT_FALSE(q.do_normalize);
  EXPECT_TRUE(q.do_resize && q.do_center_crop && q.do_rescale);
  EXPECT_EQ(q.rescale_factor, p.rescale_factor);
  EXPECT_EQ(q.image_mean, p.image_mean);
  EXPECT_EQ(q.image_std, p.image_std);
  EXPECT_EQ(q.resample, 3);
  const json j = json::parse(text);
  EXPECT_EQ(j["size"]["shortest_edge"], 448);
  EXPECT_EQ(j["crop_size"]["height"], 400);
  EXPECT_EQ(j["image_processor_type"], "CLIPImageProcessor");

  // The fixture's file parses to the same values as its re-serialisation.
  const PreprocessorConfig f =
      ParsePreprocessorConfig(test::ReadFile(test::LlavaTinyDir() + "/preprocessor_config.json"), "fixture");
  const PreprocessorConfig g = ParsePreprocessorConfig(PreprocessorConfigToJson(f), "again");
  EXPECT_EQ(g.shortest_edge, f.shortest_edge);
  EXPECT_EQ(g.image_mean, f.image_mean);
  EXPECT_EQ(g.image_std, f.image_std);
  EXPECT_EQ(g.rescale_factor, f.rescale_factor);
}

}  // namespace
}  // namespace ficoco
