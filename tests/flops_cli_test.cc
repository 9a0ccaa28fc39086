// `ficoco flops` end to end: JSON fields, the paper's TFLOPs and KV figures through the
// CLI, schedules from a method budget, and clear errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace ficoco {
namespace {

test::CommandResult Flops(const std::string& args) { return test::RunCommand(test::CliPath() + " flops " + args); }

nlohmann::json FlopsJson(const std::string& args) {
  auto r = Flops(args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}

TEST(FlopsCli, JsonHasEveryFieldAndThePaperBaseline) {
  auto j = FlopsJson("--preset llava-1.5-7b");
  for (const char* k : {"llm_prefill_tflops", "vision_tflops", "projector_tflops", "kv_cache_bytes", "tokens_per_layer",
                        "image_tokens", "text_tokens", "mean_llm_visual_tokens", "schedule", "model"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_NEAR(j["llm_prefill_tflops"].get<double>(), 8.453, 5e-4);
  EXPECT_EQ(j["kv_cache_bytes"], 333447168);  // 636 tokens × 524288 B: the paper's 333 MB
  EXPECT_EQ(j["image_tokens"], 576);
  EXPECT_EQ(j["text_tokens"], 60);
  EXPECT_EQ(j["model"], "llava-1.5-7b");
  EXPECT_EQ(j["tokens_per_layer"]["vision"].size(), 23u);
  EXPECT_EQ(j["tokens_per_layer"]["vision"][0]["attention"], 577);
  EXPECT_EQ(j["tokens_per_layer"]["llm"].size(), 32u);
  EXPECT_EQ(j["tokens_per_layer"]["llm"][31]["mlp"], 636);
  EXPECT_EQ(j["schedule"]["vision"].size(), 23u);
  EXPECT_EQ(j["schedule"]["llm"].size(), 32u);
  EXPECT_GT(j["vision_tflops"].get<double>(), 0.0);
  EXPECT_GT(j["projector_tflops"].get<double>(), 0.0);
}

TEST(FlopsCli, PaperPointsThroughVisualTokens) {
  const std::pair<int, double> points[] = {{192, 3.30}, {128, 2.45}, {64, 1.61}};
  for (auto [visual, tflops] : points) {
    auto j = FlopsJson("--preset llava-1.5-7b --visual-tokens " + std::to_string(visual));
    EXPECT_NEAR(j["llm_prefill_tflops"].get<double>(), tflops, 0.005) << visual;
    EXPECT_EQ(j["image_tokens"], visual);
    EXPECT_EQ(j["schedule"]["pre_llm"], 576 - visual);
  }
  auto j13 = FlopsJson("--preset llava-1.5-13b --text-tokens 512");
  EXPECT_NEAR(j13["llm_prefill_tflops"].get<double>(), 28.592, 5e-4);
  EXPECT_EQ(j13["kv_cache_bytes"], 891289600);  // 1088 × 819200 B: the paper's 891 MB
}

TEST(FlopsCli, MethodBudgetGivesASchedule) {
  // The reference code's start layer: r = 35 in each of layers 12..22 (spec §2.1).
  auto v = FlopsJson("--preset llava-1.5-7b --method ficoco-v --keep 191 --ficoco-preset reference-code");
  EXPECT_EQ(v["image_tokens"], 191);
  EXPECT_NEAR(v["llm_prefill_tflops"].get<double>(), 3.285, 5e-4);
  for (int l = 0; l < 23; ++l) EXPECT_EQ(v["schedule"]["vision"][l], l >= 12 ? 35 : 0) << l;

  auto l = FlopsJson("--preset llava-1.5-7b --method ficoco-l --tflops 4.2");
  EXPECT_LE(l["llm_prefill_tflops"].get<double>(), 4.2);
  EXPECT_EQ(l["image_tokens"], 576);
  EXPECT_LT(l["mean_llm_visual_tokens"].get<double>(), 576.0);
}

TEST(FlopsCli, TableAndModelDirectory) {
  auto r = Flops("--model '" + test::LlavaTinyDir() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"LLM prefill", "vision tower", "projector", "KV cache", "schedule none"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << " in:\n" << r.output;
}

TEST(FlopsCli, BadInputExitsOneNamingTheCulprit) {
  auto preset = Flops("--preset llava-9b");
  EXPECT_EQ(preset.exit_code, 1);
  EXPECT_NE(preset.output.find("llava-9b"), std::string::npos) << preset.output;

  const std::string empty = test::MakeTempDir("flops");
  auto missing = Flops("--model '" + empty + "'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("config.json"), std::string::npos) << missing.output;

  auto both = Flops("--preset llava-1.5-7b --method ficoco-v --keep 64 --tflops 1.5");
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.output.find("--keep"), std::string::npos) << both.output;
  EXPECT_NE(both.output.find("--tflops"), std::string::npos) << both.output;

  auto no_method = Flops("--preset llava-1.5-7b --keep 64");
  EXPECT_EQ(no_method.exit_code, 1);
  EXPECT_NE(no_method.output.find("--method"), std::string::npos) << no_method.output;
}

}  // namespace
}  // namespace ficoco
