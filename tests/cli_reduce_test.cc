// Token reduction through the `ficoco` tool: run --method with budgets, the printed
// schedule, --json accounting, --dump plans, --viz, `methods`, `bench`, and clear
// errors for impossible budgets and bad options.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "image/image.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace ficoco {
namespace {

std::string Q(const std::string& s) { return "'" + s + "'"; }
std::string Tiny() { return test::LlavaTinyDir(); }
std::string Photo() { return Tiny() + "/images/grace_hopper.png"; }
std::string RunBase() {
  return "run --model " + Q(Tiny()) + " --image " + Q(Photo()) + " --tokenizer " +
         Q(test::LlamaTokenizerDir() + "/tokenizer.model") + " --prompt 'What is in the picture?' --max-tokens 3";
}

test::CommandResult Cli(const std::string& args) { return test::RunCommand(test::CliPath() + " " + args); }

// stdout only (stderr to a file, returned in *err).
test::CommandResult CliStdout(const std::string& args, std::string* err) {
  const std::string err_path = test::MakeTempDir("clierr") + "/stderr.txt";
  test::CommandResult r = test::RunCommand("(" + test::CliPath() + " " + args + " 2>" + Q(err_path) + ")");
  *err = test::ReadFile(err_path);
  return r;
}

TEST(CliReduce, MethodsListsEveryMethodWithItsSite) {
  auto r = Cli("methods --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  std::map<std::string, std::string> sites;
  for (auto& m : j) sites[m["name"]] = m["site"];
  EXPECT_EQ(sites["none"], "none");
  EXPECT_EQ(sites["ficoco-v"], "vision");
  EXPECT_EQ(sites["ficoco-l"], "llm");
  EXPECT_EQ(sites["ficoco-vl"], "vision+llm");
  auto text = Cli("methods");
  EXPECT_NE(text.output.find("--epsilon"), std::string::npos);
}

// Every registered method runs through `run` with a budget, meets it, and draws --viz.
TEST(CliReduce, EveryMethodRunsEndToEnd) {
  auto list = nlohmann::json::parse(Cli("methods --json").output);
  ASSERT_GE(list.size(), 15u);
  const std::string dir = test::MakeTempDir("every");
  for (auto& m : list) {
    const std::string name = m["name"], site = m["site"];
    if (site == "none") continue;
    // In-LLM methods keep a mean over the 4 layers; one-shot pruning after layer 1 can
    // reach (2·16 + 2·4)/4 = 10 at the least.
    const int keep = site == "llm" || site == "vision+llm" ? 10 : 4;
    std::string err;
    auto r = CliStdout(RunBase() + " --method '" + name + "' --keep " + std::to_string(keep) + " --json --viz " +
                           Q(dir + "/" + name + ".png"),
                       &err);
    ASSERT_EQ(r.exit_code, 0) << name << "\n" << r.output << err;
    auto j = nlohmann::json::parse(r.output);
    if (site == "llm" || site == "vision+llm")
      EXPECT_NEAR(j["reduction"]["mean_llm_visual_tokens"].get<double>(), keep, 0.75) << name;
    else
      EXPECT_EQ(j["reduction"]["image_tokens"], keep) << name;
    EXPECT_EQ(j["stats"]["image_tokens"], j["reduction"]["image_tokens"]) << name;
    // --positions auto: each method's original policy (PyramidDrop and SparseVLM renumber).
    EXPECT_EQ(j["reduction"]["positions"], name == "pdrop" || name == "sparsevlm" ? "compact" : "original") << name;
    EXPECT_GT(DecodeImageFile(dir + "/" + name + ".png").width, 0) << name;
  }
}

TEST(CliReduce, RunWithFicocoVReportsScheduleAccountingAndPlans) {
  const std::string dir = test::MakeTempDir("clired");
  std::string err;
  auto r = CliStdout(RunBase() + " --method ficoco-v --keep 4 --json --dump " + Q(dir + "/d.safetensors") + " --viz " +
                         Q(dir + "/v.png"),
                     &err);
  ASSERT_EQ(r.exit_code, 0) << r.output << err;
  EXPECT_NE(err.find("[ficoco-v (paper preset): vision 2:12; 4 visual tokens reach the LLM"), std::string::npos) << err;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["reduction"]["image_tokens"], 4);
  EXPECT_EQ(j["reduction"]["schedule"]["vision"], nlohmann::json({0, 0, 12}));
  EXPECT_EQ(j["stats"]["image_tokens"], 4);
  for (const char* k : {"llm_prefill_tflops", "vision_tflops", "projector_tflops", "kv_cache_bytes", "tokens_per_layer"})
    EXPECT_TRUE(j["flops"].contains(k)) << k;
  EXPECT_EQ(j["flops"]["tokens_per_layer"]["vision"][2]["mlp"], 5);  // CLS + 4 patches
  const double share = j["stats"]["reduction_overhead_share"];
  EXPECT_GE(share, 0.0);
  EXPECT_LT(share, 1.0);

  SafetensorsFile dump(dir + "/d.safetensors");
  const std::vector<float> kept = test::GoldenF32(dump, "reduce.vision.2.kept");
  const std::vector<float> discarded = test::GoldenF32(dump, "reduce.vision.2.discarded");
  EXPECT_EQ(kept.size(), 4u);
  EXPECT_EQ(discarded.size(), 12u);
  EXPECT_EQ(test::GoldenF32(dump, "reduce.vision.2.scores").size(), 16u);
  for (float k : kept) EXPECT_GE(k, 1.0f);  // CLS (0) is never a candidate
  const auto src = test::GoldenF32(dump, "reduce.vision.2.src");
  EXPECT_EQ(src.size(), test::GoldenF32(dump, "reduce.vision.2.dst").size());
  EXPECT_EQ(src.size(), test::GoldenF32(dump, "reduce.vision.2.alpha").size());

  ImageU8 viz = DecodeImageFile(dir + "/v.png");
  EXPECT_GT(viz.width, 100);
}

TEST(CliReduce, RunWithFicocoLDumpsLlmPlansInPromptPositions) {
  const std::string dir = test::MakeTempDir("clired");
  std::string err;
  auto r = CliStdout(RunBase() + " --method ficoco-l --keep 8 --llm-start 0 --positions compact --json --dump " +
                         Q(dir + "/d.safetensors"),
                     &err);
  ASSERT_EQ(r.exit_code, 0) << r.output << err;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["reduction"]["positions"], "compact");
  EXPECT_NEAR(j["reduction"]["mean_llm_visual_tokens"].get<double>(), 8.0, 0.5);
  SafetensorsFile dump(dir + "/d.safetensors");
  // The llava-1.5 template puts the image after the system prompt: positions 35..50.
  for (float d : test::GoldenF32(dump, "reduce.llm.0.discarded")) {
    EXPECT_GE(d, 35.0f);
    EXPECT_LE(d, 50.0f);
  }
}

TEST(CliReduce, TflopsBudgetPicksAScheduleThatFits) {
  std::string err;
  auto r = CliStdout(RunBase() + " --method ficoco-v --tflops 0.000025 --json", &err);
  ASSERT_EQ(r.exit_code, 0) << r.output << err;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_LE(j["flops"]["llm_prefill_tflops"].get<double>(), 0.000025);
  EXPECT_EQ(j["reduction"]["image_tokens"].get<int>(), 6);  // 6 tokens: 2.48e-5, 7: 2.53e-5
}

TEST(CliReduce, BenchComparesMethodsOnOneLoadedModel) {
  const std::string out = test::MakeTempDir("bench") + "/b.json";
  auto r = Cli("bench --model " + Q(Tiny()) + " --image " + Q(Photo()) + " --tokenizer " +
               Q(test::LlamaTokenizerDir() + "/tokenizer.model") +
               " --methods none,ficoco-v,ficoco-l --keeps 8,2 --max-tokens 2 --llm-start 0 --json " + Q(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(test::ReadFile(out));
  ASSERT_EQ(j["configs"].size(), 5u);
  EXPECT_EQ(j["configs"][1]["image_tokens"], 8);
  EXPECT_TRUE(j["configs"][1].contains("flops_ratio"));
  EXPECT_TRUE(j["configs"][4].contains("skipped"));  // ficoco-l cannot average 2 of 16 after a full layer 0
}

TEST(CliReduce, ImpossibleBudgetsAndBadOptionsFailClearly) {
  struct Case {
    std::string args;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {RunBase() + " --method ficoco-v --keep 0", {"--keep 0", "16 patches"}},
      {RunBase() + " --method ficoco-v --keep 17", {"--keep 17"}},
      {RunBase() + " --method ficoco-v", {"needs a budget"}},
      {RunBase() + " --keep 4", {"need a reduction method"}},
      {RunBase() + " --method ficoco-v --keep 4 --tflops 1", {"either --keep or --tflops"}},
      {RunBase() + " --method bogus --keep 4", {"unknown method 'bogus'", "ficoco-v"}},
      {RunBase() + " --method ficoco-v --keep 4 --lambda 2", {"--lambda", "[0, 1]"}},
      {RunBase() + " --method ficoco-l --keep 2 --llm-start 2", {"out of reach", "at least"}},
      {RunBase() + " --method ficoco-v --keep 4 --vision-start 3", {"projector"}},
      {RunBase() + " --method ficoco-v --tflops 0.0000000001", {"--tflops", "cheapest"}},
      {"run --model " + Q(Tiny()) + " --tokenizer " + Q(test::LlamaTokenizerDir() + "/tokenizer.model") +
           " --prompt hi --method ficoco-v --keep 4",
       {"give --image"}},
  };
  for (const Case& c : cases) {
    auto r = Cli(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args << "\n" << r.output;
    for (const std::string& e : c.expect) EXPECT_NE(r.output.find(e), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace ficoco
