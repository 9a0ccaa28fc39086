// Token flows and the LLM-Viewer-style prefill count: the FiCoCo paper's TFLOPs and KV
// figures (ficoco-spec §6), per-layer charging of reducing layers, and schedule errors.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/make_random.h"
#include "reduce/flops.h"
#include "reduce/schedule.h"
#include "test_support.h"

namespace ficoco {
namespace {

// The paper prints TFLOPs to 3 significant digits (8.45 is shown as 8.5 in some tables).
double ThreeDigits(double x) {
  const double scale = std::pow(10.0, 2 - std::floor(std::log10(std::fabs(x))));
  return std::round(x * scale) / scale;
}

double LlmTflops(const std::string& preset, int64_t visual, int64_t text) {
  const LlavaConfig cfg = PresetConfig(preset);
  return CountPrefill(cfg, PreLlmFlow(cfg, visual, text)).llm_prefill_flops / 1e12;
}

TEST(Flops, PaperBaselinesReproduce) {
  const LlavaConfig cfg7 = PresetConfig("llava-1.5-7b");
  const PrefillCost full7 = CountPrefill(cfg7, FlowOf(cfg7, NoReduction(cfg7), 60));
  EXPECT_NEAR(full7.llm_prefill_flops / 1e12, 8.453, 5e-4);
  EXPECT_DOUBLE_EQ(ThreeDigits(full7.llm_prefill_flops / 1e12), 8.45);

  const LlavaConfig cfg13 = PresetConfig("llava-1.5-13b");
  const PrefillCost full13 = CountPrefill(cfg13, FlowOf(cfg13, NoReduction(cfg13), 512));
  EXPECT_NEAR(full13.llm_prefill_flops / 1e12, 28.592, 5e-4);
  EXPECT_DOUBLE_EQ(ThreeDigits(full13.llm_prefill_flops / 1e12), 28.6);
}

TEST(Flops, PaperReducedPointsReproduce) {
  EXPECT_DOUBLE_EQ(ThreeDigits(LlmTflops("llava-1.5-7b", 192, 60)), 3.30);
  EXPECT_DOUBLE_EQ(ThreeDigits(LlmTflops("llava-1.5-7b", 128, 60)), 2.45);
  EXPECT_DOUBLE_EQ(ThreeDigits(LlmTflops("llava-1.5-7b", 64, 60)), 1.61);
  EXPECT_NEAR(LlmTflops("llava-1.5-13b", 84, 512), 15.420, 5e-4);  // the 13B "15.4" point
  EXPECT_NEAR(LlmTflops("llava-1.5-7b", 2880, 60), 42.662, 5e-4);  // LLaVA-NeXT-7B's 5 crops
}

TEST(Flops, KvCacheBytesMatchPaper) {
  const LlavaConfig cfg7 = PresetConfig("llava-1.5-7b");
  const PrefillCost c7 = CountPrefill(cfg7, FlowOf(cfg7, NoReduction(cfg7), 60));
  EXPECT_EQ(c7.kv_cache_bytes, 636LL * 524288);  // 333.4 MB
  EXPECT_NEAR(c7.kv_cache_bytes / 1e6, 333.4, 0.05);
  EXPECT_EQ(CountPrefill(cfg7, FlowOf(cfg7, NoReduction(cfg7), 60), 4).kv_cache_bytes, 2 * c7.kv_cache_bytes);

  const LlavaConfig cfg13 = PresetConfig("llava-1.5-13b");
  const PrefillCost c13 = CountPrefill(cfg13, FlowOf(cfg13, NoReduction(cfg13), 512));
  EXPECT_EQ(c13.kv_cache_bytes, 1088LL * 819200);  // 891.3 MB
  EXPECT_NEAR(c13.kv_cache_bytes / 1e6, 891.3, 0.05);
}

TEST(Flops, LlamaLayerMatchesClosedFormWithoutReduction) {
  const TextConfig t = PresetConfig("llava-1.5-7b").text;
  const double h = t.hidden_size, inter = t.intermediate_size, heads = t.num_attention_heads, s = 636;
  const double closed = 2 * s * (4 * h * h + 3 * h * inter) + (4 * h + 5 * heads) * s * s + 18 * h * s;  // spec §6.1
  EXPECT_DOUBLE_EQ(LlamaLayerFlops(t, 636, 636), closed);
}

TEST(Flops, LlamaLayerCountsGroupedQueryAttentionByHand) {
  TextConfig t;
  t.hidden_size = 64, t.intermediate_size = 100, t.num_attention_heads = 8, t.num_key_value_heads = 2;  // kv_dim 16
  const double q_o = 2.0 * 10 * (64 * 64 + 64 * 64);     // 163840
  const double k_v = 2.0 * 10 * (64 * 16 + 64 * 16);     // 40960
  const double attention = (4.0 * 64 + 5 * 8) * 10 * 10;  // 29600
  const double attn_elementwise = 10.0 * 64 * (7 + 1);    // 5120
  const double mlp = 2.0 * 7 * 3 * 64 * 100;              // 268800
  const double mlp_elementwise = 7.0 * 64 * (7 + 1 + 2);  // 4480
  EXPECT_DOUBLE_EQ(LlamaLayerFlops(t, 10, 7), q_o + k_v + attention + attn_elementwise + mlp + mlp_elementwise);
  EXPECT_DOUBLE_EQ(LlamaLayerFlops(t, 10, 7), 512800.0);
}

TEST(Flops, ClipLayerCountsBiasesNormsAndGeluByHand) {
  VisionConfig v;
  v.hidden_size = 32, v.intermediate_size = 64, v.num_attention_heads = 2;
  const double attention_side = 2.0 * 5 * 4 * 32 * 32 + 5.0 * 4 * 32 + (4.0 * 32 + 5 * 2) * 25 + 5.0 * 32 * 8;
  const double mlp_side = 2.0 * 3 * 2 * 32 * 64 + 3.0 * (64 + 32) + 3.0 * 64 * 2 + 3.0 * 32 * 8;
  EXPECT_DOUBLE_EQ(ClipLayerFlops(v, 5, 3), attention_side + mlp_side);
}

// A reducing decoder layer pays attention at the length it saw and its MLP at the reduced one.
TEST(Flops, InLlmScheduleChargedPerLayerByHand) {
  const LlavaConfig cfg = PresetConfig("tiny");  // 16 patches, LLM h 64, I 172, 4 heads, 4 layers
  ReductionSchedule s;
  s.llm = {0, 2, 0, 3};
  const TokenFlow flow = FlowOf(cfg, s, 5);
  EXPECT_EQ(flow.image_tokens, 16);
  EXPECT_EQ(flow.llm_visual, (std::vector<int64_t>{16, 16, 14, 14}));
  EXPECT_DOUBLE_EQ(flow.mean_llm_visual(), 15.0);
  const int64_t attention[] = {21, 21, 19, 19}, mlp[] = {21, 19, 19, 16};
  double expected = 0;
  for (int l = 0; l < 4; ++l) {
    EXPECT_EQ(flow.llm[l].attention, attention[l]) << l;
    EXPECT_EQ(flow.llm[l].mlp, mlp[l]) << l;
    const double a = static_cast<double>(attention[l]), m = static_cast<double>(mlp[l]);
    // 2a(2h² + 2h·kv) + (4h + 5H)a² + 8ha  +  2m·3hI + 10hm, with h = kv = 64, I = 172, H = 4
    expected += 2 * a * (2 * 64 * 64 + 2 * 64 * 64) + (4 * 64 + 5 * 4) * a * a + 8 * 64 * a + 2 * m * 3 * 64 * 172 +
                10 * 64 * m;
  }
  const PrefillCost cost = CountPrefill(cfg, flow);
  EXPECT_DOUBLE_EQ(cost.llm_prefill_flops, expected);
  EXPECT_EQ(cost.kv_cache_bytes, 2 * 64 * 2 * (21 + 21 + 19 + 19));
}

TEST(Flops, VisionScheduleShrinksVisionCostAndImageTokens) {
  const LlavaConfig cfg = PresetConfig("tiny");  // 4 CLIP layers, 3 run (vision_feature_layer -2)
  const TokenFlow full = FlowOf(cfg, NoReduction(cfg), 5);
  ASSERT_EQ(full.vision.size(), 3u);
  EXPECT_EQ(full.image_tokens, 16);
  ReductionSchedule s;
  s.vision = {0, 4, 3};
  const TokenFlow reduced = FlowOf(cfg, s, 5);
  EXPECT_EQ(reduced.image_tokens, 9);
  EXPECT_EQ(reduced.vision[1].attention, 17);
  EXPECT_EQ(reduced.vision[1].mlp, 13);
  EXPECT_EQ(reduced.vision[2].attention, 13);
  EXPECT_EQ(reduced.vision[2].mlp, 10);
  const PrefillCost a = CountPrefill(cfg, full), b = CountPrefill(cfg, reduced);
  const double saved = ClipLayerFlops(cfg.vision, 17, 17) - ClipLayerFlops(cfg.vision, 17, 13) +
                       ClipLayerFlops(cfg.vision, 17, 17) - ClipLayerFlops(cfg.vision, 13, 10);
  EXPECT_DOUBLE_EQ(a.vision_flops - b.vision_flops, saved);
  EXPECT_LT(b.projector_flops, a.projector_flops);
  // Downstream of the projector a vision reduction is the same as a pre-LLM one.
  EXPECT_DOUBLE_EQ(b.llm_prefill_flops, CountPrefill(cfg, PreLlmFlow(cfg, 9, 5)).llm_prefill_flops);
}

TEST(Flops, SevenBVisionScheduleOfTheCodeHypothesis) {
  // spec §2.1: r = 35 in the 11 layers 12..22 whose output reaches the projector ⇒ 191 tokens, 3.285 T.
  const LlavaConfig cfg = PresetConfig("llava-1.5-7b");
  ReductionSchedule s = NoReduction(cfg);
  ASSERT_EQ(s.vision.size(), 23u);
  for (int l = 12; l <= 22; ++l) s.vision[l] = 35;
  const TokenFlow flow = FlowOf(cfg, s, 60);
  EXPECT_EQ(flow.image_tokens, 191);
  EXPECT_NEAR(CountPrefill(cfg, flow).llm_prefill_flops / 1e12, 3.285, 5e-4);
}

TEST(Flops, FullFeatureStrategyKeepsClsAndNoImageHasNoVisualTokens) {
  LlavaConfig cfg = PresetConfig("tiny");
  cfg.vision_feature_select_strategy = "full";
  EXPECT_EQ(FlowOf(cfg, {}, 5).image_tokens, 17);
  const TokenFlow text_only = FlowOf(PresetConfig("tiny"), {}, 5, /*with_image=*/false);
  EXPECT_EQ(text_only.image_tokens, 0);
  EXPECT_TRUE(text_only.vision.empty());
  EXPECT_EQ(text_only.llm[3].attention, 5);
  EXPECT_DOUBLE_EQ(text_only.mean_llm_visual(), 0.0);
  EXPECT_EQ(CountPrefill(PresetConfig("tiny"), text_only).vision_flops, 0.0);
}

TEST(Flops, FlowOfRejectsImpossibleSchedules) {
  const LlavaConfig cfg = PresetConfig("tiny");
  ReductionSchedule too_many;
  too_many.vision = {0, 10, 7};  // 16 → 6 → −1
  test::ExpectError([&] { FlowOf(cfg, too_many, 5); }, {"vision layer 2", "discards 7 of 6 patches"});
  ReductionSchedule all;
  all.llm = {0, 16, 0, 0};
  test::ExpectError([&] { FlowOf(cfg, all, 5); }, {"llm layer 1", "16 of 16 visual tokens", "at least one"});
  ReductionSchedule wrong_length;
  wrong_length.vision = {1, 1, 1, 1};  // the tiny tower runs 3 layers
  test::ExpectError([&] { FlowOf(cfg, wrong_length, 5); }, {"vision", "4 entries", "expected 3"});
  ReductionSchedule wrong_llm;
  wrong_llm.llm = {1};
  test::ExpectError([&] { FlowOf(cfg, wrong_llm, 5); }, {"llm", "1 entries", "expected 4"});
  ReductionSchedule negative;
  negative.llm = {0, -1, 0, 0};
  test::ExpectError([&] { FlowOf(cfg, negative, 5); }, {"llm layer 1", "negative"});
  ReductionSchedule some;
  some.llm = {0, 1, 0, 0};
  test::ExpectError([&] { FlowOf(cfg, some, 5, false); }, {"no image"});
  test::ExpectError([&] { PreLlmFlow(cfg, 0, 5); }, {"visual_tokens", "0"});
  test::ExpectError([&] { FlowOf(cfg, {}, -1); }, {"text_tokens", "-1"});
}

TEST(Schedule, TotalsEmptinessAndDescription) {
  const LlavaConfig cfg = PresetConfig("llava-1.5-7b");
  ReductionSchedule s = NoReduction(cfg);
  EXPECT_EQ(s.vision.size(), 23u);
  EXPECT_EQ(s.llm.size(), 32u);
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(ReductionSchedule{}.empty());
  EXPECT_EQ(DescribeSchedule(s), "none");
  s.vision[12] = 42, s.vision[13] = 41, s.llm[5] = 14;
  EXPECT_FALSE(s.empty());
  EXPECT_EQ(s.vision_total(), 83);
  EXPECT_EQ(s.llm_total(), 14);
  EXPECT_EQ(DescribeSchedule(s), "vision 12:42,13:41; llm 5:14");
  s.vision.assign(23, 0);
  EXPECT_EQ(DescribeSchedule(s), "llm 5:14");
}

}  // namespace
}  // namespace ficoco
