#include "engine/make_random.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/checkpoint.h"
#include "model/weight_table.h"
#include "test_support.h"

namespace ficoco {
namespace {
namespace fs = std::filesystem;

using test::ExpectError;

std::string Make(const std::string& tag, DType dtype, uint64_t seed, int64_t max_shard = 5'000'000'000,
                 const std::string& dir_in = "") {
  MakeRandomOptions o;
  o.preset = "tiny";
  o.dtype = dtype;
  o.seed = seed;
  o.out_dir = dir_in.empty() ? test::MakeTempDir(tag) + "/model" : dir_in;  // also checks directory creation
  o.max_shard_bytes = max_shard;
  std::ostringstream log;
  MakeRandomCheckpoint(o, log);
  EXPECT_NE(log.str().find("make-random"), std::string::npos);
  return o.out_dir;
}

int64_t TotalParams(const LlavaConfig& cfg) {
  int64_t n = 0;
  for (const WeightSpec& w : LlavaWeightTable(cfg)) {
    int64_t k = 1;
    for (int64_t d : w.shape) k *= d;
    n += k;
  }
  return n;
}

TEST(MakeRandom, Presets) {
  const LlavaConfig fixture = LoadLlavaConfig(test::LlavaTinyDir());
  const LlavaConfig tiny = PresetConfig("tiny");
  // The tiny preset has exactly the fixture's shapes.
  EXPECT_EQ(LlavaWeightTable(tiny).size(), LlavaWeightTable(fixture).size());
  const auto a = LlavaWeightTable(tiny), b = LlavaWeightTable(fixture);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].shape, b[i].shape) << a[i].name;
  }
  EXPECT_EQ(tiny.text.max_position_embeddings, fixture.text.max_position_embeddings);
  EXPECT_EQ(tiny.text.rms_norm_eps, fixture.text.rms_norm_eps);
  EXPECT_EQ(tiny.pad_token_id, fixture.pad_token_id);
  EXPECT_EQ(tiny.vision_last_layer(), fixture.vision_last_layer());

  const LlavaConfig b7 = PresetConfig("llava-1.5-7b");
  EXPECT_EQ(b7.vision.hidden_size, 1024);
  EXPECT_EQ(b7.vision.num_patches(), 576);
  EXPECT_EQ(b7.text.hidden_size, 4096);
  EXPECT_EQ(b7.text.vocab_size, 32064);
  EXPECT_FLOAT_EQ(b7.text.rms_norm_eps, 1e-5f);
  EXPECT_NEAR(static_cast<double>(TotalParams(b7)), 7.063e9, 0.01e9);
  const LlavaConfig b13 = PresetConfig("llava-1.5-13b");
  EXPECT_EQ(b13.text.hidden_size, 5120);
  EXPECT_EQ(b13.text.intermediate_size, 13824);
  EXPECT_EQ(b13.text.num_hidden_layers, 40);
  EXPECT_EQ(b13.text.num_attention_heads, 40);
  EXPECT_NEAR(static_cast<double>(TotalParams(b13)), 13.35e9, 0.02e9);

  ExpectError([] { PresetConfig("llava-2"); }, {"unknown preset 'llava-2'", "tiny", "llava-1.5-7b", "llava-1.5-13b"});
}

TEST(MakeRandom, TinyWritesCompleteCheckpoint) {
  const std::string dir = Make("mr-tiny", DType::F16, 1);
  for (const char* f : {"config.json", "preprocessor_config.json", "generation_config.json", "model.safetensors"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors.index.json"));

  const LlavaConfig cfg = LoadLlavaConfig(dir);
  const PreprocessorConfig pre = LoadPreprocessorConfig(dir, cfg);
  EXPECT_EQ(pre.shortest_edge, 56);
  EXPECT_EQ(pre.crop_height, 56);
  const auto gen = nlohmann::json::parse(test::ReadFile(dir + "/generation_config.json"));
  EXPECT_EQ(gen["bos_token_id"], 1);
  EXPECT_EQ(gen["eos_token_id"], 2);
  EXPECT_EQ(gen["pad_token_id"], 32001);
  EXPECT_EQ(nlohmann::json::parse(test::ReadFile(dir + "/config.json"))["torch_dtype"], "float16");

  const Checkpoint ck(dir);
  const auto table = LlavaWeightTable(cfg);
  EXPECT_EQ(ck.Names().size(), table.size());
  for (const WeightSpec& w : table) {
    const TensorView* t = ck.Find(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->shape, w.shape) << w.name;
    EXPECT_EQ(t->dtype, DType::F16) << w.name;
  }

  // Sane distributions: norm scales near 1, everything else small and centred.
  for (const WeightSpec& w : table) {
    const std::vector<float> v = ck.Get(w.name).ToF32();
    double sum = 0, sq = 0;
    for (float x : v) {
      ASSERT_TRUE(std::isfinite(x));
      sum += x;
    }
    const double mean = sum / static_cast<double>(v.size());
    for (float x : v) sq += (x - mean) * (x - mean);
    const double sd = std::sqrt(sq / static_cast<double>(v.size()));
    const bool norm = w.shape.size() == 1 && w.name.find("norm") != std::string::npos &&
                      w.name.substr(w.name.size() - 7) == ".weight";
    const double tol = 6 * 0.02 / std::sqrt(static_cast<double>(v.size()));  // 6 sigma of a sample mean
    EXPECT_NEAR(mean, norm ? 1.0 : 0.0, tol) << w.name;
    if (v.size() >= 4096) { EXPECT_NEAR(sd, 0.02, 0.002) << w.name; }
  }
}

TEST(MakeRandom, Deterministic) {
  const std::string a = Make("mr-det-a", DType::F16, 7);
  const std::string b = Make("mr-det-b", DType::F16, 7);
  const std::string c = Make("mr-det-c", DType::F16, 8);
  EXPECT_EQ(test::ReadFile(a + "/model.safetensors"), test::ReadFile(b + "/model.safetensors"));
  EXPECT_EQ(test::ReadFile(a + "/config.json"), test::ReadFile(b + "/config.json"));
  const Checkpoint ca(a), cc(c);
  for (const std::string& name : ca.Names()) {
    const TensorView& x = ca.Get(name);
    const TensorView& y = cc.Get(name);
    EXPECT_NE(std::memcmp(x.data, y.data, x.nbytes()), 0) << name;
  }
  // Different tensors of one model differ too (the name is part of the key).
  EXPECT_NE(ca.Get("multi_modal_projector.linear_2.weight").ToF32()[0],
            ca.Get("language_model.model.layers.0.self_attn.q_proj.weight").ToF32()[0]);
}

TEST(MakeRandom, DtypesHoldTheSameValues) {
  const std::string f32 = Make("mr-f32", DType::F32, 3);
  const std::string f16 = Make("mr-f16", DType::F16, 3);
  const std::string bf16 = Make("mr-bf16", DType::BF16, 3);
  const Checkpoint c32(f32), c16(f16), cb16(bf16);
  EXPECT_EQ(nlohmann::json::parse(test::ReadFile(bf16 + "/config.json"))["torch_dtype"], "bfloat16");
  for (const std::string& name : c32.Names()) {
    const TensorView& a = c32.Get(name);
    const TensorView& h = c16.Get(name);
    const TensorView& b = cb16.Get(name);
    ASSERT_EQ(a.dtype, DType::F32);
    ASSERT_EQ(h.dtype, DType::F16);
    ASSERT_EQ(b.dtype, DType::BF16);
    const auto* pa = static_cast<const float*>(a.data);
    const auto* ph = static_cast<const uint16_t*>(h.data);
    const auto* pb = static_cast<const uint16_t*>(b.data);
    for (int64_t i = 0; i < a.numel(); ++i) {
      ASSERT_EQ(F32ToF16(pa[i]), ph[i]) << name << " " << i;
      ASSERT_EQ(F32ToBF16(pa[i]), pb[i]) << name << " " << i;
    }
  }
}

TEST(MakeRandom, ShardedMatchesUnsharded) {
  const std::string single = Make("mr-single", DType::F16, 5);
  const std::string sharded = Make("mr-sharded", DType::F16, 5, 3'000'000);
  EXPECT_FALSE(fs::exists(sharded + "/model.safetensors"));
  const auto index = nlohmann::json::parse(test::ReadFile(sharded + "/model.safetensors.index.json"));
  std::set<std::string> shard_files;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it)
    shard_files.insert(it.value().get<std::string>());
  ASSERT_GE(shard_files.size(), 3u);
  const std::string n = std::to_string(shard_files.size());
  EXPECT_TRUE(shard_files.count("model-00001-of-0000" + n + ".safetensors"));
  for (const std::string& f : shard_files) {
    EXPECT_TRUE(fs::exists(sharded + "/" + f)) << f;
    // No shard beyond the limit unless it holds a single larger tensor.
    const SafetensorsFile sf(sharded + "/" + f);
    size_t bytes = 0;
    for (const TensorView& t : sf.tensors()) bytes += t.nbytes();
    if (sf.tensors().size() > 1) { EXPECT_LE(bytes, 3'000'000u) << f; }
  }

  const Checkpoint a(single), b(sharded);
  ASSERT_EQ(a.Names(), b.Names());
  uint64_t total = 0;
  for (const std::string& name : a.Names()) {
    const TensorView& x = a.Get(name);
    const TensorView& y = b.Get(name);
    ASSERT_EQ(x.shape, y.shape);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes()), 0) << name;
    total += x.nbytes();
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), a.Names().size());

  // Rewriting unsharded into the same folder replaces the shards and the index.
  Make("", DType::F16, 5, 5'000'000'000, sharded);
  EXPECT_FALSE(fs::exists(sharded + "/model.safetensors.index.json"));
  for (const std::string& f : shard_files) EXPECT_FALSE(fs::exists(sharded + "/" + f)) << f;
  EXPECT_EQ(test::ReadFile(sharded + "/model.safetensors"), test::ReadFile(single + "/model.safetensors"));
}

TEST(MakeRandom, OptionsAreChecked) {
  const std::string dir = test::MakeTempDir("mr-opts");
  MakeRandomOptions o;
  o.preset = "tiny";
  o.dtype = DType::F16;
  o.out_dir = dir + "/m";
  std::ostringstream log;

  o.vocab_size_override = 32100;
  MakeRandomCheckpoint(o, log);
  const Checkpoint ck(o.out_dir);
  EXPECT_EQ(ck.Get("language_model.model.embed_tokens.weight").shape, (std::vector<int64_t>{32100, 64}));
  EXPECT_EQ(ck.Get("language_model.lm_head.weight").shape, (std::vector<int64_t>{32100, 64}));
  EXPECT_EQ(LoadLlavaConfig(o.out_dir).text.vocab_size, 32100);

  o.vocab_size_override = 1000;
  ExpectError([&] { MakeRandomCheckpoint(o, log); }, {"vocab size 1000", "image token 32000"});
  o.vocab_size_override = 0;
  o.dtype = DType::I32;
  ExpectError([&] { MakeRandomCheckpoint(o, log); }, {"dtype", "I32"});
  o.dtype = DType::BF16;
  o.preset = "huge";
  ExpectError([&] { MakeRandomCheckpoint(o, log); }, {"unknown preset 'huge'"});
  o.preset = "tiny";
  o.max_shard_bytes = 0;
  ExpectError([&] { MakeRandomCheckpoint(o, log); }, {"max_shard_bytes"});
}

}  // namespace
}  // namespace ficoco
