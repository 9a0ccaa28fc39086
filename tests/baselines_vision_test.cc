// ToMe and EViT in the CLIP encoder (baselines.md §1, §2): hand-computed layers, the
// composed plans (filter → correlate → compress, reduce/tome.cc and evit.cc) against
// direct implementations of the original algorithms (reduce/original/) over the whole
// encoder of llava-tiny, budgets and schedules, and determinism.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "engine/llava_model.h"
#include "engine/pipeline.h"
#include "image/image.h"
#include "reduce/baselines_vision.h"
#include "reduce/budget.h"
#include "reduce/compress.h"
#include "reduce/original/evit_original.h"
#include "reduce/original/tome_original.h"
#include "reduce/reducer.h"
#include "test_support.h"
#include "tiny_model_test.h"

namespace ficoco {
namespace {

using test::NoiseImage;

// Hidden states of the composed and original runs may differ by float rounding only:
// the merges sum in another order, ToMe's original divides every B row by its size
// and EViT's probabilities use another exp. Over the three encoder layers of
// llava-tiny (hidden values up to about 7) the largest difference seen is 2.6e-6.
constexpr float kTolerance = 2e-5f;

std::vector<int> FixturePromptIds() {  // "USER: <image>\nWhat is in the picture? ASSISTANT:" (image at 5)
  return {1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 297, 278, 7623, 29973, 319, 1799, 9047, 13566, 29901};
}
constexpr int64_t kTextTokens = 18;

// A layer built by hand: queries, keys, hidden states and token records ([CLS] first,
// then patches p = 1.. with orig_index p), and the attention signals over them.
struct HandLayer {
  HandLayer(int tokens, int heads, int head_dim, int width) : q(tokens, heads * head_dim), k(tokens, heads * head_dim),
                                                              hidden(tokens, width), shape{heads, heads, head_dim} {
    for (int i = 0; i < tokens; ++i) {
      TokenMeta m;
      m.orig_index = i;
      m.role = i == 0 ? TokenRole::Cls : TokenRole::Visual;
      m.grid_row = i == 0 ? -1 : (i - 1) / 4;
      m.grid_col = i == 0 ? -1 : (i - 1) % 4;
      meta.push_back(m);
      for (int c = 0; c < width; ++c) hidden.at(i, c) = static_cast<float>((i + 1) * (c + 2) % 7) - 0.5f * c;
    }
  }
  HandLayer(const HandLayer&) = delete;
  // Adds log(size) to the key logits, as the encoder does with proportional attention.
  void BiasBySize() {
    bias.clear();
    for (const TokenMeta& m : meta) bias.push_back(std::log(m.size));
    mask.key_bias = &bias;
  }
  // Runs `reduce` on copies of the hidden states and records; the signals stay the same.
  template <class Fn>
  std::pair<Matrix, std::vector<TokenMeta>> Apply(Fn reduce) const {
    Matrix h = hidden;
    std::vector<TokenMeta> m = meta;
    const AttentionSignals signals(q, k, shape, mask);
    VisionHookContext ctx{0, 1, 4, h, m, signals};
    reduce(ctx);
    return {std::move(h), std::move(m)};
  }

  Matrix q, k, hidden;
  std::vector<TokenMeta> meta;
  AttentionShape shape;
  AttentionMask mask;
  std::vector<float> bias;
};

std::vector<int32_t> OrigIndices(const std::vector<TokenMeta>& meta) {
  std::vector<int32_t> out;
  for (const TokenMeta& m : meta) out.push_back(m.orig_index);
  return out;
}

void ExpectSameRecords(const std::vector<TokenMeta>& a, const std::vector<TokenMeta>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].orig_index, b[i].orig_index) << "row " << i;
    EXPECT_EQ(a[i].role, b[i].role) << "row " << i;
    EXPECT_EQ(a[i].grid_row, b[i].grid_row) << "row " << i;
    EXPECT_EQ(a[i].grid_col, b[i].grid_col) << "row " << i;
    // A fused token's position id is bookkeeping of the engine (the row before it), not
    // part of EViT: compare it for original tokens only.
    if (a[i].orig_index >= 0) {
      EXPECT_EQ(a[i].pos_id, b[i].pos_id) << "row " << i;
    }
    EXPECT_EQ(a[i].size, b[i].size) << "row " << i;
  }
}

void ExpectNearRows(const Matrix& got, const std::vector<std::vector<double>>& want, double tol) {
  ASSERT_EQ(got.rows(), static_cast<int64_t>(want.size()));
  for (int64_t r = 0; r < got.rows(); ++r)
    for (int64_t c = 0; c < got.cols(); ++c) EXPECT_NEAR(got.at(r, c), want[r][c], tol) << "row " << r << " col " << c;
}

std::vector<double> Row(const Matrix& m, int64_t r) { return std::vector<double>(m.row(r), m.row(r) + m.cols()); }

// ---------------------------------------------------------------- ToMe, by hand

// Seven tokens; head-mean keys m_i (each head is m_i ± w, so only the mean is
// meaningful): m0 = [CLS] (1, 0), m1 (1, 0), m2 (1, 0.1), m3 (0, 1), m4 (0.2, 1),
// m5 (−1, 0), m6 (1, −1). A = {0, 2, 4, 6}, B = {1, 3, 5}. Best matches: 2 → 1
// (cos 0.995), 4 → 3 (0.981), 6 → 1 (0.707); [CLS] is never a source.
struct TomeLayer : HandLayer {
  TomeLayer() : HandLayer(7, 2, 2, 3) {
    const float m[7][2] = {{1, 0}, {1, 0}, {1, 0.1f}, {0, 1}, {0.2f, 1}, {-1, 0}, {1, -1}};
    const float w[2] = {5, -3};
    for (int i = 0; i < 7; ++i)
      for (int c = 0; c < 2; ++c) {
        k.at(i, c) = m[i][c] + w[c];
        k.at(i, 2 + c) = m[i][c] - w[c];
      }
    const float sizes[7] = {1, 1, 2, 3, 1, 1, 1};
    for (int i = 0; i < 7; ++i) meta[i].size = sizes[i];
  }
};

TEST(TomeByHand, MergesTheMostSimilarATokensIntoTheirBestBBySize) {
  TomeLayer L;
  const Matrix& x = L.hidden;
  auto blend = [&](std::vector<std::pair<int, double>> parts) {  // Σ σ x / Σ σ
    std::vector<double> out(static_cast<size_t>(x.cols()), 0.0);
    double total = 0;
    for (auto [i, s] : parts) {
      for (int64_t c = 0; c < x.cols(); ++c) out[c] += s * x.at(i, c);
      total += s;
    }
    for (double& v : out) v /= total;
    return out;
  };
  struct Case {
    int r;
    std::vector<int32_t> sources, targets, order;
    std::vector<std::vector<double>> hidden;
    std::vector<float> sizes;
  };
  const std::vector<Case> cases = {
      {1, {2}, {1}, {0, 4, 6, 1, 3, 5}, {Row(x, 0), Row(x, 4), Row(x, 6), blend({{1, 1}, {2, 2}}), Row(x, 3), Row(x, 5)},
       {1, 1, 1, 3, 3, 1}},
      {2, {2, 4}, {1, 3}, {0, 6, 1, 3, 5}, {Row(x, 0), Row(x, 6), blend({{1, 1}, {2, 2}}), blend({{3, 3}, {4, 1}}), Row(x, 5)},
       {1, 1, 3, 4, 1}},
      {3, {2, 4, 6}, {1, 3, 1}, {0, 1, 3, 5},
       {Row(x, 0), blend({{1, 1}, {2, 2}, {6, 1}}), blend({{3, 3}, {4, 1}}), Row(x, 5)}, {1, 4, 4, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("r = " + std::to_string(c.r));
    LayerPlan plan;
    auto [h, meta] = L.Apply([&](VisionHookContext& ctx) {
      plan = TomeVisionPlan(ctx, c.r, ReductionParams{});
      Compress(ctx.hidden, ctx.meta, plan);
    });
    EXPECT_EQ(plan.rule, CompressRule::SizeWeighted);
    EXPECT_EQ(plan.filter.discard, c.sources);
    EXPECT_EQ(plan.routing.dst, c.targets);
    EXPECT_EQ(plan.routing.alpha, std::vector<float>(c.sources.size(), 1.0f));
    // Scores: best cosine for A tokens, −∞ for B (never sources); [CLS] is no candidate.
    ASSERT_EQ(plan.filter.candidates, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_NEAR(plan.filter.scores[1], 1 / std::sqrt(1.01), 1e-6);
    EXPECT_NEAR(plan.filter.scores[3], 1 / std::sqrt(1.04), 1e-6);
    EXPECT_NEAR(plan.filter.scores[5], 1 / std::sqrt(2.0), 1e-6);
    for (int b : {0, 2, 4}) EXPECT_EQ(plan.filter.scores[b], -std::numeric_limits<float>::infinity());
    EXPECT_EQ(OrigIndices(meta), c.order);
    ExpectNearRows(h, c.hidden, 1e-5);
    for (size_t i = 0; i < meta.size(); ++i) EXPECT_EQ(meta[i].size, c.sizes[i]) << "row " << i;
    // The direct implementation of the original gives the same tokens.
    auto [oh, ometa] = L.Apply([&](VisionHookContext& ctx) { original::TomeMerge(ctx, c.r); });
    ExpectSameRecords(ometa, meta);
    EXPECT_LE(test::MaxAbsDiff(oh.data(), h.data(), h.rows() * h.cols()), 1e-6f);
  }
}

TEST(TomeByHand, RefusesToMergeMoreThanHalfOfTheTokensInALayer) {
  TomeLayer L;
  test::ExpectError([&] { L.Apply([](VisionHookContext& ctx) { TomeVisionPlan(ctx, 4, ReductionParams{}); }); },
                    {"ToMe", "7 tokens", "at most", "= 3", "asks 4"});
  // The original clamps silently, as ToMe does.
  auto [h, meta] = L.Apply([](VisionHookContext& ctx) { original::TomeMerge(ctx, 4); });
  EXPECT_EQ(meta.size(), 4u);
}

// ---------------------------------------------------------------- EViT, by hand

// Five tokens, two heads of width 1 and a [CLS] query of 1 in both, so the keys are
// the logits: head 0 (0, 2, 1, 0, −1), head 1 (0, 1, 0, 2, −1). Attention of [CLS]
// (mean of the two softmax rows) ranks the patches 1, 3, 2, 4.
struct EvitLayer : HandLayer {
  explicit EvitLayer(std::vector<float> head0 = {0, 2, 1, 0, -1}, std::vector<float> head1 = {0, 1, 0, 2, -1})
      : HandLayer(5, 2, 1, 3) {
    for (int i = 0; i < 5; ++i) {
      q.at(i, 0) = q.at(i, 1) = i == 0 ? 1.0f : 0.3f;
      k.at(i, 0) = head0[i];
      k.at(i, 1) = head1[i];
    }
  }
  // [CLS]'s head-mean attention on each token, in double, with log(size) added when biased.
  std::vector<double> ClsAttention() const {
    std::vector<double> a(5, 0.0);
    for (int h = 0; h < 2; ++h) {
      double sum = 0;
      std::vector<double> e(5);
      for (int j = 0; j < 5; ++j) sum += e[j] = std::exp(k.at(j, h) + (mask.key_bias ? std::log(meta[j].size) : 0.0));
      for (int j = 0; j < 5; ++j) a[j] += e[j] / sum / 2;
    }
    return a;
  }
};

TEST(EvitByHand, KeepsTheMostAttendedInScoreOrderAndFusesTheRest) {
  for (bool biased : {false, true}) {
    EvitLayer L;
    if (biased) {  // token 2 stands for 4 patches: log 4 on its logits moves it to the top
      L.meta[2].size = 4;
      L.BiasBySize();
    }
    const std::vector<double> a = L.ClsAttention();
    const std::vector<int32_t> ranking = biased ? std::vector<int32_t>{2, 1, 3, 4} : std::vector<int32_t>{1, 3, 2, 4};
    for (size_t i = 0; i + 1 < ranking.size(); ++i) ASSERT_GT(a[ranking[i]], a[ranking[i + 1]]);
    for (bool fuse : {true, false})
      for (int64_t n_remove : {1, 2, 3}) {
        const int64_t kept = 4 - n_remove - (fuse ? 1 : 0);
        if (kept < 0) continue;
        SCOPED_TRACE(std::string(biased ? "biased " : "") + (fuse ? "fuse" : "prune") + " n " + std::to_string(n_remove));
        ReductionParams p;
        p.evit_fuse = fuse;
        LayerPlan plan;
        auto [h, meta] = L.Apply([&](VisionHookContext& ctx) {
          plan = EvitVisionPlan(ctx, n_remove, p);
          Compress(ctx.hidden, ctx.meta, plan);
        });
        EXPECT_EQ(plan.rule, fuse ? CompressRule::FuseIntoNew : CompressRule::Prune);
        ASSERT_EQ(plan.filter.candidates, (std::vector<int32_t>{1, 2, 3, 4}));
        for (int j = 1; j <= 4; ++j) EXPECT_NEAR(plan.filter.scores[j - 1], -a[j], 1e-6) << "token " << j;
        // [CLS], then the kept tokens in descending attention, then the fused token.
        std::vector<int32_t> order{0};
        std::vector<std::vector<double>> want{Row(L.hidden, 0)};
        for (int64_t r = 0; r < kept; ++r) {
          order.push_back(ranking[r]);
          want.push_back(Row(L.hidden, ranking[r]));
        }
        std::vector<double> fused(3, 0.0);
        float fused_size = 0;
        for (size_t r = static_cast<size_t>(kept); r < ranking.size(); ++r) {
          for (int c = 0; c < 3; ++c) fused[c] += a[ranking[r]] * L.hidden.at(ranking[r], c);
          fused_size += L.meta[ranking[r]].size;
        }
        if (fuse) {
          order.push_back(-1);
          want.push_back(fused);
        }
        EXPECT_EQ(OrigIndices(meta), order);
        ExpectNearRows(h, want, 1e-5);
        if (fuse) {
          EXPECT_EQ(meta.back().role, TokenRole::Visual);
          EXPECT_EQ(meta.back().grid_row, -1);
          EXPECT_EQ(meta.back().size, fused_size);
          for (float alpha : plan.routing.alpha) EXPECT_GT(alpha, 0.0f);  // attention weights, not renormalised
        }
        auto [oh, ometa] = L.Apply([&](VisionHookContext& ctx) {
          original::EvitReorganize(ctx, kept, fuse, biased);
        });
        ExpectSameRecords(ometa, meta);
        EXPECT_LE(test::MaxAbsDiff(oh.data(), h.data(), h.rows() * h.cols()), 1e-6f);
      }
  }
}

TEST(EvitByHand, TiesKeepTheLowerRowFirst) {
  EvitLayer L({0, 2, 1, 1, -1}, {0, 1, 0, 0, -1});  // tokens 2 and 3 have the same keys
  ReductionParams p;
  p.evit_fuse = false;
  auto [h, meta] = L.Apply([&](VisionHookContext& ctx) { Compress(ctx.hidden, ctx.meta, EvitVisionPlan(ctx, 2, p)); });
  EXPECT_EQ(OrigIndices(meta), (std::vector<int32_t>{0, 1, 2}));
  auto [h3, meta3] = L.Apply([&](VisionHookContext& ctx) { Compress(ctx.hidden, ctx.meta, EvitVisionPlan(ctx, 1, p)); });
  EXPECT_EQ(OrigIndices(meta3), (std::vector<int32_t>{0, 1, 2, 3}));
  auto [oh, ometa] = L.Apply([&](VisionHookContext& ctx) { original::EvitReorganize(ctx, 2, false, false); });
  EXPECT_EQ(OrigIndices(ometa), (std::vector<int32_t>{0, 1, 2}));
}

TEST(EvitByHand, RefusesToRemoveMoreThanThereIs) {
  EvitLayer L;
  ReductionParams p;
  test::ExpectError([&] { L.Apply([&](VisionHookContext& ctx) { EvitVisionPlan(ctx, 4, p); }); },
                    {"EViT", "cannot remove 4 of its 4", "fusion"});
  p.evit_fuse = false;
  auto [h, meta] = L.Apply([&](VisionHookContext& ctx) { Compress(ctx.hidden, ctx.meta, EvitVisionPlan(ctx, 4, p)); });
  EXPECT_EQ(OrigIndices(meta), (std::vector<int32_t>{0}));
}

// ---------------------------------------------------------------- schedules

LlavaConfig Llava15() { return LlavaConfig{}; }  // CLIP-L/14-336 (24 layers, 576 patches), Vicuna-7B

TEST(BaselinesVisionSchedule, TomeSpreadsOverEveryLayerThatReachesTheProjector) {
  const LlavaConfig cfg = Llava15();
  for (int64_t keep : {192, 128, 64}) {
    const ReductionSchedule s = TomeSchedule(cfg, ReductionParams{}, keep);
    ASSERT_EQ(s.vision.size(), 23u);
    EXPECT_EQ(s.vision_total(), 576 - keep);
    int64_t t = 577;
    for (int r : s.vision) {
      EXPECT_GE(r, 16);
      EXPECT_LE(r, (t - 1) / 2);
      t -= r;
    }
  }
  ReductionParams p;
  p.vision_start = 5;
  const ReductionSchedule s = TomeSchedule(cfg, p, 192);
  for (int l = 0; l < 5; ++l) EXPECT_EQ(s.vision[l], 0);
  EXPECT_EQ(s.vision_total(), 384);
}

TEST(BaselinesVisionSchedule, TomeRefusesBudgetsBeyondHalfPerLayerWithTheLeastReachable) {
  LlavaConfig tiny = Llava15();
  tiny.vision.num_hidden_layers = 4;
  tiny.vision.image_size = 56;  // 4x4 patches as llava-tiny
  // keep 1: 5 merges per layer, but layer 2 has 7 tokens (at most 3 merges). keep 4 fits.
  test::ExpectError([&] { TomeSchedule(tiny, ReductionParams{}, 1); },
                    {"--keep 1", "layer 2 has 7 tokens", "at most", "= 3", "asks 5", "least reachable --keep is 4"});
  EXPECT_EQ(TomeSchedule(tiny, ReductionParams{}, 4).vision, (std::vector<int>{4, 4, 4}));
  // An unreachable --tflops stops at the least reachable keep and says what it costs.
  test::ExpectError([&] { ScheduleForBudget(TomeMethod(), tiny, ReductionParams{}, Budget{-1, 1e-12}, kTextTokens); },
                    {"--tflops", "out of reach", "cheapest"});
}

TEST(BaselinesVisionSchedule, EvitStartsWhereFicocoVStartsUnlessTold) {
  const LlavaConfig cfg = Llava15();
  ReductionParams p;
  EXPECT_EQ(EvitDefaultStart(cfg, p), 11);
  p.preset = FicocoPreset::ReferenceCode;  // the FiCoCo preset does not move EViT
  EXPECT_EQ(EvitDefaultStart(cfg, p), 11);
  const ReductionSchedule s = EvitSchedule(cfg, p, 64);
  for (int l = 0; l < 23; ++l) EXPECT_EQ(s.vision[l] > 0, l >= 11) << "layer " << l;
  EXPECT_EQ(s.vision_total(), 512);
  p.vision_start = 3;
  EXPECT_EQ(EvitDefaultStart(cfg, p), 3);
  EXPECT_EQ(EvitSchedule(cfg, p, 64).vision[3], 25);
}

TEST(BaselinesVisionMethods, FactoriesDescribeTheMethods) {
  const MethodInfo tome = TomeMethod(), evit = EvitMethod();
  EXPECT_EQ(tome.name, "tome");
  EXPECT_EQ(evit.name, "evit");
  for (const MethodInfo* m : {&tome, &evit}) {
    EXPECT_EQ(m->site, MethodSite::Vision);
    EXPECT_NE(m->vision_plan, nullptr);
    EXPECT_NE(m->schedule, nullptr);
    EXPECT_EQ(m->pre_llm_plan, nullptr);
    EXPECT_EQ(m->llm_plan, nullptr);
    EXPECT_NE(m->summary.find("raster order is lost"), std::string::npos);
  }
  EXPECT_TRUE(tome.proportional_attention);
  EXPECT_FALSE(evit.proportional_attention);
  EXPECT_NE(std::find(tome.params.begin(), tome.params.end(), "--proportional-attention"), tome.params.end());
  EXPECT_NE(std::find(evit.params.begin(), evit.params.end(), "--evit-fuse"), evit.params.end());
}

// ---------------------------------------------------------------- the encoder of llava-tiny

class BaselinesVision : public test::TinyModelTest {
 protected:
  std::vector<std::pair<std::string, ImageU8>> Images() const {
    return {{"photo", Photo()}, {"noise 1", NoiseImage(1, 40, 30)}, {"noise 2", NoiseImage(2, 17, 61)},
            {"noise 3", NoiseImage(3, 336, 336)}};
  }

  EncodedImage Composed(const MethodInfo& m, const ReductionParams& p, const ReductionSchedule& s, const ImageU8& img,
                        bool proportional, ReductionTrace* trace = nullptr) {
    Reducer reducer(m, p, s, trace);
    VisionRunOptions vo;
    vo.hook = reducer.VisionHook();
    vo.proportional_attention = proportional;
    return model_->EncodeImage(gemm_, img, vo);
  }
  EncodedImage Original(VisionLayerHook hook, const ImageU8& img, bool proportional) {
    VisionRunOptions vo;
    vo.hook = std::move(hook);
    vo.proportional_attention = proportional;
    return model_->EncodeImage(gemm_, img, vo);
  }
  PipelineResult Pipeline(const MethodInfo& m, const ReductionParams& p, int64_t keep, const ImageU8& img) {
    PipelineRequest req;
    req.prompt_ids = FixturePromptIds();
    req.image = &img;
    req.method = &m;
    req.params = p;
    req.budget = Budget{keep, -1};
    req.max_new_tokens = 2;
    req.stop_at_eos = false;
    return RunPipeline(gemm_, *model_, req);
  }

  void ExpectEvitMeetsEveryBudget(bool fuse);

  GemmContext gemm_{ComputeType::F32};
};

void ExpectSameEncoding(const EncodedImage& composed, const EncodedImage& original) {
  ExpectSameRecords(composed.vision.meta, original.vision.meta);
  ExpectSameRecords(composed.image_meta, original.image_meta);
  const Matrix& a = composed.vision.hidden;
  const Matrix& b = original.vision.hidden;
  ASSERT_EQ(a.rows(), b.rows());
  EXPECT_LE(test::MaxAbsDiff(a.data(), b.data(), a.rows() * a.cols()), kTolerance);
  ASSERT_EQ(composed.image_features.rows(), original.image_features.rows());
  EXPECT_LE(test::MaxAbsDiff(composed.image_features.data(), original.image_features.data(),
                             composed.image_features.rows() * composed.image_features.cols()),
            kTolerance);
}

TEST_F(BaselinesVision, TomeComposedEqualsOriginalOverTheEncoder) {
  const MethodInfo tome = TomeMethod();
  for (const auto& [name, img] : Images())
    for (int64_t keep : {12, 8, 4}) {
      SCOPED_TRACE(name + " keep " + std::to_string(keep));
      const ReductionParams p;
      const ReductionSchedule s = TomeSchedule(cfg(), p, keep);
      const EncodedImage a = Composed(tome, p, s, img, true);
      const EncodedImage b = Original(original::TomeHook(s.vision), img, true);
      EXPECT_EQ(a.image_features.rows(), keep);
      ExpectSameEncoding(a, b);
    }
  // Proportional attention off on both sides: the same agreement, different states.
  const ReductionSchedule s = TomeSchedule(cfg(), ReductionParams{}, 4);
  const EncodedImage a = Composed(tome, ReductionParams{}, s, Photo(), false);
  ExpectSameEncoding(a, Original(original::TomeHook(s.vision), Photo(), false));
  const EncodedImage on = Composed(tome, ReductionParams{}, s, Photo(), true);
  EXPECT_GT(test::MaxAbsDiff(a.vision.hidden.data(), on.vision.hidden.data(), a.vision.hidden.rows() * a.vision.hidden.cols()),
            1e-4f);
}

TEST_F(BaselinesVision, EvitComposedEqualsOriginalOverTheEncoder) {
  const MethodInfo evit = EvitMethod();
  for (const auto& [name, img] : Images())
    for (int start : {-1, 0})  // default start (layer 2 of llava-tiny's 4) and every layer
      for (bool fuse : {true, false})
        for (bool proportional : {false, true})
          for (int64_t keep : {12, 8, 4, 1}) {
            SCOPED_TRACE(name + " start " + std::to_string(start) + (fuse ? " fuse" : " prune") +
                         (proportional ? " proportional" : "") + " keep " + std::to_string(keep));
            ReductionParams p;
            p.vision_start = start;
            p.evit_fuse = fuse;
            const ReductionSchedule s = EvitSchedule(cfg(), p, keep);
            const EncodedImage a = Composed(evit, p, s, img, proportional);
            const EncodedImage b = Original(original::EvitHook(s.vision, fuse, proportional), img, proportional);
            EXPECT_EQ(a.image_features.rows(), keep);
            ExpectSameEncoding(a, b);
          }
}

// The budget reaches the LLM: image rows, schedule per layer, [CLS] first, sizes.
TEST_F(BaselinesVision, TomePipelineMeetsEveryBudget) {
  const MethodInfo tome = TomeMethod();
  for (bool proportional : {true, false})
    for (int64_t keep : {15, 12, 8, 4}) {
      SCOPED_TRACE("keep " + std::to_string(keep) + (proportional ? "" : " without proportional attention"));
      ReductionParams p;
      p.proportional_attention = proportional;
      const PipelineResult r = Pipeline(tome, p, keep, Photo());
      EXPECT_EQ(r.encoded.image_features.rows(), keep);
      EXPECT_EQ(r.generated.image_tokens, keep);
      EXPECT_EQ(r.schedule.vision_total(), 16 - keep);
      ASSERT_FALSE(r.encoded.vision.meta.empty());
      EXPECT_EQ(r.encoded.vision.meta[0].role, TokenRole::Cls);
      // Merging conserves the patches: the sizes of the survivors add up to 16.
      float total = 0;
      for (const TokenMeta& m : r.encoded.image_meta) total += m.size;
      EXPECT_EQ(total, 16.0f);
      size_t plan = 0;
      for (size_t l = 0; l < r.schedule.vision.size(); ++l) {
        if (r.schedule.vision[l] == 0) continue;
        ASSERT_LT(plan, r.trace.plans.size());
        const RecordedPlan& rec = r.trace.plans[plan++];
        EXPECT_EQ(rec.layer, static_cast<int>(l));
        EXPECT_EQ(rec.rule, CompressRule::SizeWeighted);
        EXPECT_EQ(static_cast<int>(rec.discarded.size()), r.schedule.vision[l]);
        EXPECT_EQ(rec.tokens_before - rec.tokens_after, r.schedule.vision[l]);
        EXPECT_EQ(rec.src.size(), rec.discarded.size());  // one target each
        for (const TokenMeta& t : rec.discarded) EXPECT_NE(t.role, TokenRole::Cls);
      }
      EXPECT_EQ(plan, r.trace.plans.size());
    }
}

// EViT through the whole pipeline, with every layer of llava-tiny reducing.
void BaselinesVision::ExpectEvitMeetsEveryBudget(bool fuse) {
  const MethodInfo evit = EvitMethod();
  for (int64_t keep : {15, 12, 8, 4, 1}) {
    SCOPED_TRACE(std::string(fuse ? "fuse" : "prune") + " keep " + std::to_string(keep));
    ReductionParams p;
    p.vision_start = 0;
    p.evit_fuse = fuse;
    const PipelineResult r = Pipeline(evit, p, keep, NoiseImage(5, 30, 30));
    EXPECT_EQ(r.encoded.image_features.rows(), keep);
    EXPECT_EQ(r.generated.image_tokens, keep);
    EXPECT_EQ(r.encoded.vision.meta[0].role, TokenRole::Cls);
    float total = 0;
    int fused = 0;
    for (const TokenMeta& m : r.encoded.image_meta) {
      total += m.size;
      fused += m.orig_index < 0;
    }
    // With fusion nothing is lost: each reducing layer appends one fused token (last),
    // and earlier fused tokens are scored like patches, so they may survive too.
    // Without fusion only `keep` patches remain.
    int stages = 0;
    for (int d : r.schedule.vision) stages += d > 0;
    EXPECT_EQ(total, fuse ? 16.0f : static_cast<float>(keep));
    if (fuse) {
      EXPECT_GE(fused, 1);
      EXPECT_LE(fused, stages);
    } else {
      EXPECT_EQ(fused, 0);
    }
    if (fuse) {
      EXPECT_LT(r.encoded.image_meta.back().orig_index, 0);
    }
    for (const RecordedPlan& rec : r.trace.plans) {
      EXPECT_EQ(rec.rule, fuse ? CompressRule::FuseIntoNew : CompressRule::Prune);
      EXPECT_EQ(rec.tokens_before - rec.tokens_after, r.schedule.vision[rec.layer]);
      EXPECT_EQ(static_cast<int>(rec.discarded.size()), r.schedule.vision[rec.layer] + (fuse ? 1 : 0));
    }
  }
}

// Needs ReductionTrace::Record to accept kNewToken targets (the fused token).
TEST_F(BaselinesVision, EvitPipelineWithFusionMeetsEveryBudget) { ExpectEvitMeetsEveryBudget(true); }
TEST_F(BaselinesVision, EvitPipelineWithoutFusionMeetsEveryBudget) { ExpectEvitMeetsEveryBudget(false); }

TEST_F(BaselinesVision, DeterministicAcrossRunsAndThreadCounts) {
  const ImageU8 img = NoiseImage(11, 50, 40);
  for (const MethodInfo& m : {TomeMethod(), EvitMethod()}) {
    SCOPED_TRACE(m.name);
    ReductionParams p;
    p.vision_start = 0;
    const ReductionSchedule s = m.schedule(cfg(), p, 5);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const EncodedImage one = Composed(m, p, s, img, m.proportional_attention);
    omp_set_num_threads(2);
    const EncodedImage two = Composed(m, p, s, img, m.proportional_attention);
    const EncodedImage again = Composed(m, p, s, img, m.proportional_attention);
    omp_set_num_threads(saved);
    ExpectSameRecords(one.vision.meta, two.vision.meta);
    ExpectSameRecords(two.vision.meta, again.vision.meta);
    EXPECT_LE(test::MaxAbsDiff(one.image_features.data(), two.image_features.data(),
                               one.image_features.rows() * one.image_features.cols()),
              kTolerance);
    ASSERT_EQ(two.image_features.rows(), again.image_features.rows());
    EXPECT_EQ(test::MaxAbsDiff(two.image_features.data(), again.image_features.data(),
                               two.image_features.rows() * two.image_features.cols()),
              0.0f);  // same threads: bit-identical
  }
}

}  // namespace
}  // namespace ficoco
