#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/config.h"
#include "model/weight_table.h"
#include "test_support.h"

namespace ficoco {
namespace {
namespace fs = std::filesystem;

using test::ExpectError;

// The newer transformers (>= 4.52) spelling of a canonical name.
std::string NewSchemeName(const std::string& old) {
  auto starts = [&](const std::string& p) { return old.compare(0, p.size(), p) == 0; };
  if (old == "language_model.lm_head.weight") return "lm_head.weight";
  if (starts("language_model.model.")) return "model.language_model." + old.substr(21);
  if (starts("vision_tower.")) return "model.vision_tower." + old.substr(13);
  if (starts("multi_modal_projector.")) return "model.multi_modal_projector." + old.substr(22);
  return old;
}

void CopyConfigs(const std::string& dir) {
  for (const char* f : {"config.json", "preprocessor_config.json"})
    fs::copy_file(test::LlavaTinyDir() + "/" + f, dir + "/" + f);
}

// Every tensor of `ck` equals the fixture's, byte for byte.
void ExpectSameAsFixture(const Checkpoint& ck) {
  const Checkpoint fixture(test::LlavaTinyDir());
  ASSERT_EQ(ck.Names(), fixture.Names());
  for (const std::string& name : fixture.Names()) {
    const TensorView& a = fixture.Get(name);
    const TensorView& b = ck.Get(name);
    EXPECT_EQ(a.dtype, b.dtype) << name;
    ASSERT_EQ(a.shape, b.shape) << name;
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes()), 0) << name;
  }
}

TEST(Checkpoint, CanonicalName) {
  EXPECT_EQ(Checkpoint::CanonicalName("model.language_model.layers.3.mlp.up_proj.weight"),
            "language_model.model.layers.3.mlp.up_proj.weight");
  EXPECT_EQ(Checkpoint::CanonicalName("model.language_model.embed_tokens.weight"),
            "language_model.model.embed_tokens.weight");
  EXPECT_EQ(Checkpoint::CanonicalName("model.vision_tower.vision_model.pre_layrnorm.bias"),
            "vision_tower.vision_model.pre_layrnorm.bias");
  EXPECT_EQ(Checkpoint::CanonicalName("model.multi_modal_projector.linear_2.weight"),
            "multi_modal_projector.linear_2.weight");
  EXPECT_EQ(Checkpoint::CanonicalName("lm_head.weight"), "language_model.lm_head.weight");
  for (const char* old : {"language_model.model.norm.weight", "language_model.lm_head.weight",
                          "vision_tower.vision_model.post_layernorm.weight", "multi_modal_projector.linear_1.bias"})
    EXPECT_EQ(Checkpoint::CanonicalName(old), old);
}

TEST(Checkpoint, OpensFixture) {
  const Checkpoint ck(test::LlavaTinyDir());
  EXPECT_EQ(ck.dir(), test::LlavaTinyDir());
  EXPECT_EQ(ck.Names().size(), 114u);
  const LlavaConfig cfg = LoadLlavaConfig(test::LlavaTinyDir());
  const auto table = LlavaWeightTable(cfg);
  EXPECT_EQ(table.size(), 114u);
  for (const WeightSpec& w : table) {
    const TensorView* t = ck.Find(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->shape, w.shape) << w.name;
    EXPECT_EQ(t->dtype, DType::F16) << w.name;
  }
  EXPECT_EQ(ck.Find("nope"), nullptr);
  ExpectError([&] { ck.Get("nope.weight"); }, {"checkpoint " + test::LlavaTinyDir() + ": missing tensor 'nope.weight'"});

  // Releasing pages is harmless: the mapping reads back from the file.
  const TensorView& norm = ck.Get("language_model.model.norm.weight");
  const std::vector<float> before = norm.ToF32();
  ck.ReleasePages("language_model.model.norm.weight");
  ck.ReleasePages("language_model.lm_head.weight");
  EXPECT_EQ(norm.ToF32(), before);
  ExpectError([&] { ck.ReleasePages("nope"); }, {"missing tensor 'nope'"});
}

TEST(Checkpoint, NewSchemeNamesAreMapped) {
  const std::string dir = test::MakeTempDir("ck-newnames");
  CopyConfigs(dir);
  const SafetensorsFile src(test::LlavaTinyDir() + "/model.safetensors");
  std::vector<TensorView> views;
  for (const TensorView& t : src.tensors()) {
    TensorView v = t;
    v.name = NewSchemeName(t.name);
    views.push_back(v);
  }
  // An old-style CLIP buffer that must be ignored.
  std::vector<int64_t> ids(17);
  for (int i = 0; i < 17; ++i) ids[i] = i;
  views.push_back({"model.vision_tower.vision_model.embeddings.position_ids", DType::I64, {1, 17}, ids.data()});
  WriteSafetensors(dir + "/model.safetensors", views);

  const Checkpoint ck(dir);
  EXPECT_EQ(ck.Names().size(), 114u);
  EXPECT_EQ(ck.Find("vision_tower.vision_model.embeddings.position_ids"), nullptr);
  EXPECT_EQ(ck.Find("model.language_model.norm.weight"), nullptr);  // only canonical names are looked up
  ExpectSameAsFixture(ck);
  EXPECT_EQ(ck.Get("language_model.lm_head.weight").name, "lm_head.weight");  // the stored name
}

TEST(Checkpoint, DuplicateCanonicalNames) {
  const std::string dir = test::MakeTempDir("ck-dup");
  std::vector<uint16_t> a(4, 0), b(4, 0);
  WriteSafetensors(dir + "/model.safetensors", {{"lm_head.weight", DType::F16, {2, 2}, a.data()},
                                                {"language_model.lm_head.weight", DType::F16, {2, 2}, b.data()}});
  ExpectError([&] { Checkpoint ck(dir); },
              {"checkpoint " + dir, "'language_model.lm_head.weight' appears twice", "'lm_head.weight'"});
}

// Writes the fixture into `dir` as two shards + index; `edit` may change the index first.
void WriteSharded(const std::string& dir, const std::function<void(nlohmann::json&)>& edit = {}) {
  CopyConfigs(dir);
  const SafetensorsFile src(test::LlavaTinyDir() + "/model.safetensors");
  std::vector<TensorView> shard[2];
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  const char* names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
  size_t total = 0;
  for (const TensorView& t : src.tensors()) {
    const int k = t.name.rfind("language_model.", 0) == 0 ? 1 : 0;  // vision+projector | language model
    shard[k].push_back(t);
    index["weight_map"][t.name] = names[k];
    total += t.nbytes();
  }
  index["metadata"]["total_size"] = total;
  for (int k = 0; k < 2; ++k) WriteSafetensors(dir + "/" + names[k], shard[k]);
  if (edit) edit(index);
  test::WriteFile(dir + "/model.safetensors.index.json", index.dump(2));
}

TEST(Checkpoint, ShardedLoads) {
  const std::string dir = test::MakeTempDir("ck-sharded");
  WriteSharded(dir);
  const Checkpoint ck(dir);
  ExpectSameAsFixture(ck);
}

TEST(Checkpoint, IndexTakesPrecedence) {
  const std::string dir = test::MakeTempDir("ck-prec");
  WriteSharded(dir);
  test::WriteFile(dir + "/model.safetensors", "garbage that would not parse");
  EXPECT_NO_THROW(Checkpoint ck(dir));
}

TEST(Checkpoint, IndexErrors) {
  {
    const std::string dir = test::MakeTempDir("ck-noshard");
    WriteSharded(dir, [](nlohmann::json& j) {
      j["weight_map"]["language_model.model.norm.weight"] = "model-00003-of-00002.safetensors";
    });
    ExpectError([&] { Checkpoint ck(dir); },
                {dir + "/model.safetensors.index.json", "shard 'model-00003-of-00002.safetensors'",
                 "'language_model.model.norm.weight'", "does not exist"});
  }
  {
    const std::string dir = test::MakeTempDir("ck-wrongshard");
    WriteSharded(dir, [](nlohmann::json& j) {
      j["weight_map"]["language_model.model.norm.weight"] = "model-00001-of-00002.safetensors";
    });
    ExpectError([&] { Checkpoint ck(dir); },
                {dir + "/model.safetensors.index.json", "tensor 'language_model.model.norm.weight'",
                 "shard 'model-00001-of-00002.safetensors'", "does not contain it"});
  }
  {
    const std::string dir = test::MakeTempDir("ck-ghost");
    WriteSharded(dir, [](nlohmann::json& j) { j["weight_map"]["ghost.weight"] = "model-00002-of-00002.safetensors"; });
    ExpectError([&] { Checkpoint ck(dir); },
                {"model.safetensors.index.json", "tensor 'ghost.weight'", "model-00002-of-00002.safetensors"});
  }
  {
    const std::string dir = test::MakeTempDir("ck-badindex");
    WriteSharded(dir);
    test::WriteFile(dir + "/model.safetensors.index.json", "{\"weight_map\": ");
    ExpectError([&] { Checkpoint ck(dir); }, {dir + "/model.safetensors.index.json", "not valid JSON"});
    test::WriteFile(dir + "/model.safetensors.index.json", "{\"metadata\": {}}");
    ExpectError([&] { Checkpoint ck(dir); }, {dir + "/model.safetensors.index.json", "missing weight_map"});
    test::WriteFile(dir + "/model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
    ExpectError([&] { Checkpoint ck(dir); }, {"model.safetensors.index.json", "'a'", "must be a string"});
    test::WriteFile(dir + "/model.safetensors.index.json", R"({"weight_map": {"a": "../x.safetensors"}})");
    ExpectError([&] { Checkpoint ck(dir); }, {"model.safetensors.index.json", "invalid shard file"});
  }
  {
    // A corrupt shard: the message names the index and the shard.
    const std::string dir = test::MakeTempDir("ck-corruptshard");
    WriteSharded(dir);
    const std::string shard = dir + "/model-00002-of-00002.safetensors";
    const std::string bytes = test::ReadFile(shard);
    test::WriteFile(shard, bytes.substr(0, bytes.size() - 100));
    ExpectError([&] { Checkpoint ck(dir); },
                {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "truncated"});
  }
}

TEST(Checkpoint, MissingDirAndWeights) {
  const std::string base = test::MakeTempDir("ck-missing");
  ExpectError([&] { Checkpoint ck(base + "/nowhere"); }, {base + "/nowhere", "does not exist"});
  test::WriteFile(base + "/file", "x");
  ExpectError([&] { Checkpoint ck(base + "/file"); }, {base + "/file", "not a directory"});
  CopyConfigs(base);
  ExpectError([&] { Checkpoint ck(base); },
              {"no weights in " + base + ": expected model.safetensors or model.safetensors.index.json"});
}

}  // namespace
}  // namespace ficoco
