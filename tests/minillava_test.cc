// MiniLLaVA (assets/minillava, made by tools/minillava): the engine reproduces the
// PyTorch model's outputs, `ficoco run` answers the bundled demo question, and the
// Python side (dataset generator, training, export) works end to end.
#include <gtest/gtest.h>

#include <filesystem>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "engine/llava_model.h"
#include "image/image.h"
#include "io/safetensors.h"
#include "kernels/gemm.h"
#include "test_support.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ficoco {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* kPython = "/usr/bin/python3";

std::string AssetDir() { return test::SourceDir() + "/assets/minillava"; }
std::string ToolDir() { return test::SourceDir() + "/tools/minillava"; }

json ReadJson(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return json::parse(f);
}

// Tolerances for the engine in f32 against PyTorch f32 (same F16 weights): only the
// summation order differs, so errors stay around 1e-5 relative; logits here are O(10).
constexpr float kFeatureTol = 1e-3f;
constexpr float kLogitTol = 2e-3f;

// Every golden case of `dir` (golden.json + golden.safetensors, as export.py writes them):
// prompt ids, projector output, last-position logits and greedy ids.
void CheckGoldens(const std::string& dir) {
  const json spec = ReadJson(dir + "/golden.json");
  SafetensorsFile golden(dir + "/golden.safetensors");
  LoadOptions lo;
  lo.compute = ComputeType::F32;
  auto model = LlavaModel::Load(dir, lo);
  GemmContext gemm(ComputeType::F32);
  const Tokenizer tok = Tokenizer::FromFile(dir + "/tokenizer.model");
  const int image_id = model->config().image_token_index;
  ASSERT_FALSE(spec["cases"].empty());
  for (const json& c : spec["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    // The engine's LLaVA-1.5 prompt is token for token the one the model was trained on.
    const std::vector<int> ids = TokenizeWithImages(tok, ApplyLlava15Template(c["question"], true), image_id);
    const std::vector<float> gids = test::GoldenF32(golden, name + ".input_ids");
    ASSERT_EQ(ids.size(), gids.size());
    for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], static_cast<int>(gids[i])) << "token " << i;

    const EncodedImage enc = model->EncodeImage(gemm, DecodeImageFile(dir + "/" + c["image"].get<std::string>()));
    const std::vector<float> feats = test::GoldenF32(golden, name + ".image_features");
    ASSERT_EQ(enc.image_features.rows() * enc.image_features.cols(), static_cast<int64_t>(feats.size()));
    const float feat_diff = test::MaxAbsDiff(enc.image_features.data(), feats.data(), static_cast<int64_t>(feats.size()));
    EXPECT_LE(feat_diff, kFeatureTol);

    GenerateRequest req;
    req.prompt_ids = ids;
    req.image_features = &enc.image_features;
    req.max_new_tokens = 8;
    const GenerateResult r = Generate(gemm, *model, req);
    const std::vector<float> logits = test::GoldenF32(golden, name + ".logits_last");
    ASSERT_EQ(r.logits_last.size(), logits.size());
    const float logit_diff = test::MaxAbsDiff(r.logits_last.data(), logits.data(), static_cast<int64_t>(logits.size()));
    EXPECT_LE(logit_diff, kLogitTol);
    std::printf("[%s] max |engine - pytorch|: projector output %.3g, logits %.3g\n", name.c_str(), feat_diff, logit_diff);
    const std::vector<float> greedy = test::GoldenF32(golden, name + ".greedy_ids");
    ASSERT_EQ(r.new_ids.size(), greedy.size());
    for (size_t i = 0; i < greedy.size(); ++i) EXPECT_EQ(r.new_ids[i], static_cast<int>(greedy[i])) << "step " << i;
  }
}

TEST(MiniLlava, EngineMatchesPyTorchGoldens) { CheckGoldens(AssetDir()); }

TEST(MiniLlava, PyTorchAnswersTheDemoQuestion) {
  // The demo case (the first golden case) is one the model gets right; the other cases
  // are there for the numerics only (docs/minillava.md gives the model's accuracy).
  const json spec = ReadJson(AssetDir() + "/golden.json");
  const json demo = ReadJson(AssetDir() + "/demo.json");
  ASSERT_EQ(spec["cases"][0]["name"], "demo");
  EXPECT_EQ(spec["cases"][0]["pytorch_answer"], demo["answer"]);
  EXPECT_EQ(spec["cases"][0]["expected_answer"], demo["answer"]);
}

TEST(MiniLlava, CliAnswersDemoQuestion) {
  const json demo = ReadJson(AssetDir() + "/demo.json");
  const std::string question = demo["question"];
  // The question has a newline: pass it through a file-free $'...' shell literal.
  std::string quoted = "$'";
  for (char ch : question) {
    if (ch == '\n') quoted += "\\n";
    else if (ch == '\'' || ch == '\\') quoted += std::string("\\") + ch;
    else quoted += ch;
  }
  quoted += "'";
  const test::CommandResult r = test::RunCommand("bash -c \"" + test::CliPath() + " run --model " + AssetDir() +
                                                 " --image " + AssetDir() + "/demo.png --compute f32 --json --prompt " +
                                                 quoted + "\"");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const size_t brace = r.output.find('{');
  ASSERT_NE(brace, std::string::npos) << r.output;
  const json out = json::parse(r.output.substr(brace));
  EXPECT_EQ(out["answer"], demo["answer"]) << r.output;
}

std::map<std::string, std::string> ReadTree(const std::string& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = test::ReadFile(e.path().string());
  return files;
}

test::CommandResult Python(const std::string& args) {
  return test::RunCommand(std::string(kPython) + " " + args + " 2>&1");
}

TEST(MiniLlava, DatasetIsDeterministicAndSplitsShareNoImage) {
  const std::string a = test::MakeTempDir("minillava-ds-a"), b = test::MakeTempDir("minillava-ds-b");
  for (const std::string& out : {a, b}) {
    auto r = Python(ToolDir() + "/make_dataset.py --seed 7 --out " + out + " --train 40 --val 10 --test 30");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const auto fa = ReadTree(a), fb = ReadTree(b);
  ASSERT_EQ(fa.size(), fb.size());
  for (const auto& [name, bytes] : fa) {
    ASSERT_TRUE(fb.count(name)) << name;
    EXPECT_TRUE(bytes == fb.at(name)) << name << " differs between two runs with the same seed";
  }
  // No image (by content) appears in two splits.
  std::map<std::string, std::string> owner;
  int images = 0;
  for (const auto& [name, bytes] : fa) {
    if (name.rfind("images/", 0) != 0) continue;
    ++images;
    const std::string split = name.substr(7, name.find('/', 7) - 7);
    auto [it, inserted] = owner.emplace(bytes, split);
    EXPECT_TRUE(inserted) << name << " duplicates an image of split " << it->second;
  }
  EXPECT_EQ(images, 80);
  // The test split's evaluation files parse and agree with each other.
  const std::string t = a + "/test/";
  int gqa = 0;
  const json answers = ReadJson(t + "gqa_answers.json");
  std::istringstream lines(test::ReadFile(t + "gqa_questions.jsonl"));
  for (std::string line; std::getline(lines, line); ++gqa) {
    const json q = json::parse(line);
    ASSERT_TRUE(answers.contains(q["question_id"].get<std::string>()));
    // The question type rides in GQA's types.structural, so the scorer reports it per type.
    EXPECT_EQ(answers[q["question_id"].get<std::string>()]["types"]["structural"], q["category"]);
    EXPECT_NE(q["text"].get<std::string>().find("\nAnswer the question using a single word or phrase."),
              std::string::npos);
    EXPECT_TRUE(fs::exists(a + "/images/test/" + q["image"].get<std::string>()));
  }
  EXPECT_EQ(gqa, 30);
  const json sqa = ReadJson(t + "llava_test_CQM-I.json"), problems = ReadJson(t + "problems.json");
  ASSERT_EQ(sqa.size(), 30u);
  for (const json& q : sqa) {
    const json& p = problems.at(q["id"].get<std::string>());
    const std::string letter(1, static_cast<char>('A' + p["answer"].get<int>()));
    EXPECT_EQ(q["conversations"][1]["value"], letter);
  }
  int pope = 0;
  for (const char* split : {"random", "popular", "adversarial"}) {
    std::istringstream pl(test::ReadFile(t + "pope_labels_" + split + ".jsonl"));
    for (std::string line; std::getline(pl, line); ++pope) {
      const std::string label = json::parse(line)["label"];
      EXPECT_TRUE(label == "yes" || label == "no");
    }
  }
  EXPECT_EQ(pope, 30);
}

TEST(MiniLlava, ToolsNameTheBadArgument) {
  const std::string d = test::MakeTempDir("minillava-bad-args");
  test::WriteFile(d + "/fake.pt", "not a checkpoint");
  const struct {
    std::string args, message;
  } cases[] = {
      {"/diagnose.py --ckpt " + d + "/missing.pt --data " + d, "--ckpt " + d + "/missing.pt: no such checkpoint"},
      {"/diagnose.py --ckpt " + d + "/fake.pt --data " + d, "--data " + d + ": no val.json there"},
      {"/diagnose.py --ckpt " + d + "/fake.pt --data " + d + " --only count,bogus", "--only: unknown report 'bogus'"},
      {"/train.py --data " + d + " --tokenizer " + d + "/tok.model --out " + d + "/run --look-weight 0.5 --compare-weight 0.5",
       "--compare-weight needs --pair-look"},
  };
  for (const auto& c : cases) {
    const auto r = Python(ToolDir() + c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
}

TEST(MiniLlava, TrainingSmokeRunExportsAModelTheEngineReproduces) {
  // A few steps of a tiny model through the whole Python pipeline, then the goldens
  // of that export against the engine: the exporter's layout and names are what the
  // engine reads, independently of how well the bundled model was trained.
  const std::string d = test::MakeTempDir("minillava-train");
  auto r = Python(ToolDir() + "/make_dataset.py --seed 3 --out " + d + "/data --train 24 --val 4 --test 8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Python(ToolDir() + "/train_tokenizer.py --data " + d + "/data --out " + d + "/tok --vocab-size 380");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  test::WriteFile(d + "/cfg.json", R"({"vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 2, "image_size": 168, "patch_size": 14, "layer_norm_eps": 1e-5},
    "text": {"hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 2,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 1024}})");
  r = Python(ToolDir() + "/train.py --data " + d + "/data --tokenizer " + d + "/tok.model --out " + d +
             "/ckpt --config " + d + "/cfg.json --vision-steps 3 --vision-batch 4 --steps 3 --batch 2 --threads 1"
             " --look-weight 0.5 --look-layer 1 --option-layer 1 --letter-layer 0 --pair-look --subject-look"
             " --count-sink --where-weight 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stage 2 done: 3 steps"), std::string::npos) << r.output;
  r = Python(ToolDir() + "/diagnose.py --ckpt " + d + "/ckpt/last.pt --data " + d + "/data --images 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* report : {"count: true -> answered", "position: right / asked", "multiple choice: right / asked",
                             "plain colour/shape: right / asked", "probe: grid row / column from projected tokens"}) {
    EXPECT_NE(r.output.find(report), std::string::npos) << report << "\n" << r.output;
  }
  r = Python(ToolDir() + "/export.py --ckpt " + d + "/ckpt/last.pt --data " + d + "/data --out " + d + "/model");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  CheckGoldens(d + "/model");
}

}  // namespace
}  // namespace ficoco
