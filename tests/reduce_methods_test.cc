// FiCoCo-V, FiCoCo-L and FiCoCo-VL inside the engine, on the llava-tiny fixture and on
// random images: budgets and schedules, invariants (CLS kept, order kept, counts per
// layer), an independent brute-force recomputation of FiCoCo-V's plan from the spec,
// determinism, and cached decoding after an in-LLM reduction against a cache-free
// recomputation of the same reduced sequence under both position policies.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "engine/generate.h"
#include "engine/make_random.h"
#include "engine/llava_model.h"
#include "image/image.h"
#include "reduce/budget.h"
#include "reduce/compress.h"
#include "reduce/correlate.h"
#include "reduce/ficoco.h"
#include "reduce/reducer.h"
#include "test_support.h"
#include "tiny_model_test.h"

namespace ficoco {
namespace {

using test::NoiseImage;

using test::FixturePromptIds;
constexpr int64_t kTextTokens = test::kFixtureTextTokens;

class ReduceMethods : public test::TinyModelTest {
 protected:

  struct Result {
    EncodedImage enc;
    GenerateResult gen;
    ReductionTrace trace;
    ReductionSchedule schedule;
  };
  Result RunMethod(const std::string& name, int64_t keep, ReductionParams p, const ImageU8& image, int new_tokens = 4) {
    Result r;
    const MethodInfo& m = FindMethod(name);
    r.schedule = ScheduleForBudget(m, cfg(), p, Budget{keep, -1}, kTextTokens);
    Reducer reducer(m, p, r.schedule, &r.trace);
    VisionRunOptions vo;
    vo.hook = reducer.VisionHook();
    r.enc = model_->EncodeImage(gemm_, image, vo);
    GenerateRequest req;
    req.prompt_ids = FixturePromptIds();
    req.image_features = &r.enc.image_features;
    req.image_meta = &r.enc.image_meta;
    req.max_new_tokens = new_tokens;
    req.stop_at_eos = false;
    req.keep_step_logits = true;
    req.text_options.hook = reducer.TextHook();
    req.text_options.compact_positions = p.positions == PositionPolicy::Compact;
    r.gen = Generate(gemm_, *model_, req);
    return r;
  }

  GemmContext gemm_{ComputeType::F32};
};

void ExpectStrictlyIncreasing(const std::vector<TokenMeta>& meta, const std::string& what) {
  for (size_t i = 1; i < meta.size(); ++i)
    EXPECT_LT(meta[i - 1].orig_index, meta[i].orig_index) << what << " out of order at " << i;
}

// Per-layer counts follow the schedule, and every record is self-consistent.
void ExpectTraceFollowsSchedule(const ReductionTrace& trace, const ReductionSchedule& s) {
  size_t plan = 0;
  auto check = [&](ReductionSite site, const std::vector<int>& counts) {
    for (size_t l = 0; l < counts.size(); ++l) {
      if (counts[l] == 0) continue;
      ASSERT_LT(plan, trace.plans.size());
      const RecordedPlan& p = trace.plans[plan++];
      EXPECT_EQ(p.site, site);
      EXPECT_EQ(p.layer, static_cast<int>(l));
      EXPECT_EQ(static_cast<int64_t>(p.discarded.size()), counts[l]) << "layer " << l;
      EXPECT_EQ(p.tokens_before - p.tokens_after, counts[l]) << "layer " << l;
      EXPECT_EQ(p.scores.size(), p.kept.size() + p.discarded.size());
      EXPECT_EQ(p.src.size(), p.dst.size());
      EXPECT_EQ(p.src.size(), p.alpha.size());
      for (const TokenMeta& t : p.discarded) EXPECT_NE(t.role, TokenRole::Cls);
    }
  };
  check(ReductionSite::Vision, s.vision);
  check(ReductionSite::Llm, s.llm);
  EXPECT_EQ(plan, trace.plans.size());
}

TEST_F(ReduceMethods, FicocoVMeetsEveryBudgetKeepsClsAndRasterOrder) {
  for (const char* preset : {"paper", "reference-code"})
    for (int64_t keep : {15, 12, 8, 4, 1}) {
      ReductionParams p;
      p.preset = ParseFicocoPreset(preset);
      Result r = RunMethod("ficoco-v", keep, p, Photo(), 1);
      SCOPED_TRACE(std::string(preset) + " keep " + std::to_string(keep));
      EXPECT_EQ(r.enc.image_features.rows(), keep);
      ASSERT_FALSE(r.enc.vision.meta.empty());
      EXPECT_EQ(r.enc.vision.meta[0].role, TokenRole::Cls);
      ExpectStrictlyIncreasing(r.enc.vision.meta, "vision tokens");
      ExpectTraceFollowsSchedule(r.trace, r.schedule);
      EXPECT_EQ(r.gen.image_tokens, keep);
      // Only the last layer run (its output feeds the projector) and those before it reduce.
      EXPECT_EQ(r.schedule.vision.size(), 3u);
      EXPECT_EQ(r.schedule.vision_total(), 16 - keep);
    }
}

// The spec's §2.5 computed the slow way, from the full head-mean logit matrix and
// a softmax over ALL keys, against the library's plan (which uses the mean-key trick,
// only the needed blocks and a softmax over the kept columns).
TEST_F(ReduceMethods, FicocoVPlanEqualsBruteForceSpec) {
  for (const char* preset : {"paper", "reference-code"}) {
    ReductionParams p;
    p.preset = ParseFicocoPreset(preset);
    bool checked = false;
    VisionRunOptions vo;
    vo.hook = [&](VisionHookContext& ctx) {
      if (ctx.layer != 2) return;
      const LayerPlan plan = FicocoVisionPlan(ctx, 7, p);
      const int64_t n = static_cast<int64_t>(ctx.meta.size());
      std::vector<int32_t> all(static_cast<size_t>(n));
      std::iota(all.begin(), all.end(), 0);
      const Matrix z = ctx.attention.MeanLogits(all, all);  // [n, n]
      std::vector<float> v(16), c(16);
      for (int i = 1; i < n; ++i) {
        double row = 0;
        for (int j = 1; j < n; ++j) row += z.at(i, j);
        v[i - 1] = static_cast<float>(row / 16);
        c[i - 1] = z.at(0, i);
      }
      auto norm = [](std::vector<float>& x) {
        double s = 0;
        for (float e : x) s += e * e;
        for (float& e : x) e = static_cast<float>(e / std::sqrt(s));
      };
      norm(v);
      norm(c);
      const bool paper = p.preset == FicocoPreset::Paper;
      std::vector<float> s(16);
      for (int i = 0; i < 16; ++i) s[i] = (paper ? 0.35f : 0.65f) * v[i] - (paper ? 0.65f : 0.35f) * c[i];
      for (int wr = 0; wr < 2; ++wr)  // 4x4 grid, 2x2 windows
        for (int wc = 0; wc < 2; ++wc) {
          int best = -1;
          for (int i = 0; i < 16; ++i)
            if ((i / 4) / 2 == wr && (i % 4) / 2 == wc && (best < 0 || s[i] > s[best])) best = i;
          s[best] = s[best] > 0 ? s[best] * 2 : s[best] / 2;
        }
      for (int i = 0; i < 16; ++i) EXPECT_NEAR(plan.filter.scores[i], s[i], 1e-5f) << "patch " << i;
      std::vector<int> order(16);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return s[a] > s[b]; });
      std::vector<int32_t> discard(order.begin(), order.begin() + 7);
      for (int32_t& d : discard) d += 1;  // patch → row
      std::sort(discard.begin(), discard.end());
      EXPECT_EQ(plan.filter.discard, discard);
      // Correlate from the full softmax row restricted to kept patches.
      std::map<std::pair<int32_t, int32_t>, float> expected;
      size_t layer_k = 0;
      std::vector<std::vector<std::pair<float, int32_t>>> rows;
      for (int32_t i : plan.filter.discard) {
        double zmax = -1e30, sum = 0;
        for (int j = 0; j < n; ++j) zmax = std::max<double>(zmax, z.at(i, j));
        for (int j = 0; j < n; ++j) sum += std::exp(z.at(i, j) - zmax);
        std::vector<std::pair<float, int32_t>> row;
        for (int32_t j : plan.filter.keep) row.push_back({static_cast<float>(std::exp(z.at(i, j) - zmax) / sum), j});
        std::vector<float> vals;
        for (auto& e : row) vals.push_back(e.first);
        const float tau = Quantile(vals, p.epsilon);
        layer_k = std::max<size_t>(layer_k, std::count_if(vals.begin(), vals.end(), [&](float x) { return x >= tau; }));
        std::stable_sort(row.begin(), row.end(), [](auto& a, auto& b) { return a.first > b.first; });
        rows.push_back(row);
      }
      for (size_t s_i = 0; s_i < rows.size(); ++s_i) {
        const auto& row = rows[s_i];
        std::vector<float> vals;
        for (auto& e : row) vals.push_back(e.first);
        const float tau = Quantile(vals, p.epsilon);
        const size_t k = paper ? std::count_if(vals.begin(), vals.end(), [&](float x) { return x >= tau; }) : layer_k;
        double total = 0;
        for (size_t t = 0; t < k; ++t) total += row[t].first;
        for (size_t t = 0; t < k; ++t)
          expected[{plan.filter.discard[s_i], row[t].second}] = static_cast<float>(row[t].first / total);
      }
      std::map<std::pair<int32_t, int32_t>, float> got;
      for (int64_t s_i = 0; s_i < plan.routing.num_sources(); ++s_i)
        for (int32_t q = plan.routing.src_begin[s_i]; q < plan.routing.src_begin[s_i + 1]; ++q)
          got[{plan.filter.discard[s_i], plan.routing.dst[q]}] = plan.routing.alpha[q];
      ASSERT_EQ(got.size(), expected.size());
      for (auto& [key, a] : expected) {
        ASSERT_TRUE(got.count(key)) << key.first << "->" << key.second;
        EXPECT_NEAR(got[key], a, 1e-5f);
      }
      EXPECT_EQ(plan.rule, CompressRule::SelfPreserving);
      checked = true;
    };
    model_->EncodeImage(gemm_, Photo(), vo);
    EXPECT_TRUE(checked);
  }
}

TEST_F(ReduceMethods, FicocoLReducesOnlyTheImageSpanAndShortensLaterCaches) {
  for (const char* preset : {"paper", "reference-code"}) {
    ReductionParams p;
    p.preset = ParseFicocoPreset(preset);
    p.llm_start = 0;
    Result r = RunMethod("ficoco-l", 6, p, Photo(), 3);
    SCOPED_TRACE(preset);
    ExpectTraceFollowsSchedule(r.trace, r.schedule);
    ASSERT_FALSE(r.trace.plans.empty());
    for (const RecordedPlan& plan : r.trace.plans) {
      EXPECT_EQ(plan.site, ReductionSite::Llm);
      EXPECT_EQ(plan.rule, p.preset == FicocoPreset::Paper ? CompressRule::SelfPreserving : CompressRule::Additive);
      // The image occupies prompt positions 5..20: nothing else is ever discarded or a target.
      for (const TokenMeta& t : plan.discarded) {
        EXPECT_GE(t.orig_index, 5);
        EXPECT_LE(t.orig_index, 20);
        EXPECT_EQ(t.role, TokenRole::Visual);
      }
      for (const TokenMeta& t : plan.dst) EXPECT_EQ(t.role, TokenRole::Visual);
    }
    // KV cache: each layer holds the tokens its attention saw plus the decoded ones.
    const TokenFlow flow = FlowOf(cfg(), r.schedule, kTextTokens);
    int64_t rows = 0;
    for (const LayerTokens& t : flow.llm) rows += t.attention + 2;  // 3 new tokens: 2 decode steps appended
    EXPECT_EQ(r.gen.kv_cache_bytes, rows * 2 * cfg().text.num_key_value_heads * cfg().text.head_dim() * 4);
    EXPECT_NEAR(flow.mean_llm_visual(), 6.0, 0.5);
  }
}

// Replays recorded plans (by original token index) on a longer sequence whose extra
// tokens come after the prompt and are never touched.
TextLayerHook ReplayHook(const ReductionTrace& trace) {
  return [&trace](TextHookContext& ctx) {
    for (const RecordedPlan& rec : trace.plans) {
      if (rec.site != ReductionSite::Llm || rec.layer != ctx.layer) continue;
      std::map<int32_t, int32_t> row_of;
      for (size_t i = 0; i < ctx.meta.size(); ++i) row_of[ctx.meta[i].orig_index] = static_cast<int32_t>(i);
      LayerPlan plan;
      plan.rule = rec.rule;
      for (const TokenMeta& t : rec.kept) plan.filter.keep.push_back(row_of.at(t.orig_index));
      for (const TokenMeta& t : rec.discarded) plan.filter.discard.push_back(row_of.at(t.orig_index));
      for (const TokenMeta& t : rec.discarded) {
        for (size_t q = 0; q < rec.src.size(); ++q)
          if (rec.src[q].orig_index == t.orig_index) {
            plan.routing.dst.push_back(row_of.at(rec.dst[q].orig_index));
            plan.routing.alpha.push_back(rec.alpha[q]);
          }
        plan.routing.src_begin.push_back(static_cast<int32_t>(plan.routing.dst.size()));
      }
      Compress(ctx.hidden, ctx.meta, plan);
    }
  };
}

TEST_F(ReduceMethods, DecodingAfterInLlmReductionEqualsRecomputingTheReducedSequence) {
  for (const char* method : {"ficoco-l", "ficoco-vl"})
    for (PositionPolicy pos : {PositionPolicy::KeepOriginal, PositionPolicy::Compact}) {
      SCOPED_TRACE(std::string(method) + " positions " + PositionPolicyName(pos));
      ReductionParams p;
      p.llm_start = 0;
      p.positions = pos;
      Result r = RunMethod(method, 6, p, Photo(), 5);
      ASSERT_EQ(r.gen.new_ids.size(), 5u);
      LlamaDecoder dec(cfg().text, model_->text());
      std::vector<int> ids = FixturePromptIds();
      for (size_t step = 0; step < r.gen.new_ids.size(); ++step) {
        Matrix x;
        std::vector<TokenMeta> meta;
        BuildPromptEmbeddings(dec, ids, cfg().image_token_index, &r.enc.image_features, &r.enc.image_meta, &x, &meta);
        KvCache cache = dec.NewCache();
        TextRunOptions opts;
        opts.hook = ReplayHook(r.trace);
        opts.compact_positions = pos == PositionPolicy::Compact;
        TextForwardResult f = dec.Forward(gemm_, x, meta, cache, opts);
        Matrix last(1, f.normed.cols());
        std::copy_n(f.normed.row(f.normed.rows() - 1), f.normed.cols(), last.row(0));
        Matrix lg = dec.Logits(gemm_, last);
        EXPECT_LE(test::MaxAbsDiff(lg.data(), r.gen.step_logits[step].data(), lg.cols()), 1e-4f) << "step " << step;
        ids.push_back(r.gen.new_ids[step]);
      }
    }
}

TEST_F(ReduceMethods, PositionPoliciesDifferOnlyAfterTheReduction) {
  ReductionParams orig, compact;
  orig.llm_start = compact.llm_start = 1;
  compact.positions = PositionPolicy::Compact;
  Result a = RunMethod("ficoco-l", 8, orig, Photo(), 2);
  Result b = RunMethod("ficoco-l", 8, compact, Photo(), 2);
  // Same plan in the first reducing layer (it sees identical inputs), different logits after.
  ASSERT_FALSE(a.trace.plans.empty());
  ASSERT_FALSE(b.trace.plans.empty());
  std::vector<int32_t> da, db;
  for (auto& t : a.trace.plans[0].discarded) da.push_back(t.orig_index);
  for (auto& t : b.trace.plans[0].discarded) db.push_back(t.orig_index);
  EXPECT_EQ(da, db);
  EXPECT_GT(test::MaxAbsDiff(a.gen.logits_last.data(), b.gen.logits_last.data(),
                             static_cast<int64_t>(a.gen.logits_last.size())), 1e-6f);
}

TEST_F(ReduceMethods, FicocoVlSplitsTheBudgetBetweenEncoderAndLlm) {
  ReductionParams p;
  p.llm_start = 0;
  p.vl_split = 0.5f;
  Result r = RunMethod("ficoco-vl", 4, p, Photo(), 2);
  ExpectTraceFollowsSchedule(r.trace, r.schedule);
  EXPECT_EQ(r.enc.image_features.rows(), 10);  // 16 − 0.5·(16 − 4)
  EXPECT_EQ(r.schedule.vision_total(), 6);
  EXPECT_GT(r.schedule.llm_total(), 0);
  EXPECT_NEAR(FlowOf(cfg(), r.schedule, kTextTokens).mean_llm_visual(), 4.0, 0.5);
  ExpectStrictlyIncreasing(r.enc.image_meta, "image tokens");
}

TEST_F(ReduceMethods, DeterministicAcrossRunsAndThreadCounts) {
  ReductionParams p;
  p.llm_start = 0;
  const ImageU8 img = NoiseImage(7, 40, 30);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Result one = RunMethod("ficoco-vl", 5, p, img, 3);
  omp_set_num_threads(2);
  Result two = RunMethod("ficoco-vl", 5, p, img, 3);
  Result again = RunMethod("ficoco-vl", 5, p, img, 3);
  omp_set_num_threads(saved);
  ASSERT_EQ(one.trace.plans.size(), two.trace.plans.size());
  for (size_t i = 0; i < one.trace.plans.size(); ++i) {
    auto ids = [](const std::vector<TokenMeta>& v) {
      std::vector<int32_t> o;
      for (auto& t : v) o.push_back(t.orig_index);
      return o;
    };
    EXPECT_EQ(ids(one.trace.plans[i].discarded), ids(two.trace.plans[i].discarded)) << "plan " << i;
    EXPECT_EQ(ids(one.trace.plans[i].dst), ids(two.trace.plans[i].dst)) << "plan " << i;
    EXPECT_EQ(ids(two.trace.plans[i].dst), ids(again.trace.plans[i].dst)) << "plan " << i;
    EXPECT_EQ(two.trace.plans[i].alpha, again.trace.plans[i].alpha) << "plan " << i;
  }
  EXPECT_EQ(one.gen.new_ids, two.gen.new_ids);
  EXPECT_EQ(two.gen.logits_last, again.gen.logits_last);  // same threads: bit-identical
}

TEST_F(ReduceMethods, RandomImagesKeepInvariants) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    ReductionParams p;
    p.llm_start = 0;
    p.preset = seed % 2 ? FicocoPreset::Paper : FicocoPreset::ReferenceCode;
    Result r = RunMethod("ficoco-vl", 2 + seed, p, NoiseImage(seed, 20 + 9 * seed, 50), 1);
    SCOPED_TRACE(seed);
    ExpectTraceFollowsSchedule(r.trace, r.schedule);
    EXPECT_EQ(r.enc.vision.meta[0].role, TokenRole::Cls);
    ExpectStrictlyIncreasing(r.enc.image_meta, "image tokens");
    for (const RecordedPlan& plan : r.trace.plans) {
      for (size_t s = 0; s < plan.alpha.size(); ++s) EXPECT_TRUE(std::isfinite(plan.alpha[s]));
      for (const TokenMeta& d : plan.dst)  // targets are always kept tokens of the same layer
        EXPECT_TRUE(std::any_of(plan.kept.begin(), plan.kept.end(), [&](auto& k) { return k.orig_index == d.orig_index; }));
    }
  }
}

TEST_F(ReduceMethods, ImpossibleBudgetsAreRefusedWithTheReachableRange) {
  ReductionParams p;
  test::ExpectError([&] { ScheduleForBudget(FindMethod("ficoco-v"), cfg(), p, Budget{0, -1}, kTextTokens); },
                    {"--keep 0", "16 patches"});
  test::ExpectError([&] { ScheduleForBudget(FindMethod("ficoco-v"), cfg(), p, Budget{17, -1}, kTextTokens); },
                    {"--keep 17"});
  p.llm_start = 2;  // layers 0..2 of 4 keep all 16: the mean cannot go below (3·16 + 1)/4
  test::ExpectError([&] { ScheduleForBudget(FindMethod("ficoco-l"), cfg(), p, Budget{5, -1}, kTextTokens); },
                    {"out of reach", "at least 12.25", "--llm-start"});
  test::ExpectError([&] { ScheduleForBudget(FindMethod("ficoco-v"), cfg(), p, Budget{4, 1e-12}, kTextTokens); },
                    {"either --keep or --tflops"});
  test::ExpectError([&] { ScheduleForBudget(FindMethod("ficoco-v"), cfg(), p, Budget{-1, 1e-12}, kTextTokens); },
                    {"--tflops", "out of reach", "cheapest"});
  p.vision_start = 3;
  test::ExpectError([&] { ScheduleForBudget(FindMethod("ficoco-v"), cfg(), p, Budget{4, -1}, kTextTokens); },
                    {"vision layer (3)", "projector"});
}

// The schedule shapes of the baselines, on LLaVA-1.5-7B's depth.
TEST(ScheduleShapes, OneShotAndGeometricStagesHitTheMean) {
  const LlavaConfig cfg = PresetConfig("llava-1.5-7b");
  // FastV K = 2: layers 0, 1 see 576, the other 30 see n: (2·576 + 30·n)/32 = 64 → n = 30.
  const std::vector<int> once = LlmOnce(cfg, 1, 576, 64);
  EXPECT_EQ(once[1], 546);
  EXPECT_EQ(std::accumulate(once.begin(), once.end(), 0), 546);
  EXPECT_NEAR(MeanLlmVisual(once, 576), 64.125, 1e-9);
  // PyramidDrop's default: halve before layers 8, 16, 24 → 576, 288, 144, 72, mean 270.
  const std::vector<int> stages = LlmGeometricStages(cfg, {7, 15, 23}, 576, 270);
  EXPECT_EQ(stages[7], 288);
  EXPECT_EQ(stages[15], 144);
  EXPECT_EQ(stages[23], 72);
  EXPECT_NEAR(MeanLlmVisual(stages, 576), 270.0, 1e-9);
  test::ExpectError([&] { LlmOnce(cfg, 1, 576, 20); }, {"out of reach", "at least"});
  test::ExpectError([&] { LlmGeometricStages(cfg, {15, 7}, 576, 100); }, {"ascending"});
  // FiCoCo-V on 7B: 512 patches over layers 11..22 = 8×43 + 4×42, the larger ones last.
  const std::vector<int> spread = VisionSpread(cfg, 11, 64, "ficoco-v");
  EXPECT_EQ(spread[10], 0);
  EXPECT_EQ(spread[11], 42);
  EXPECT_EQ(spread[22], 43);
  EXPECT_EQ(std::accumulate(spread.begin(), spread.end(), 0), 512);
}

}  // namespace
}  // namespace ficoco
