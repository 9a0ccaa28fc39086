// FastV, PyramidDrop and DART (baselines.md §3, §5, §9): hand-computed plans on tiny
// q/k/hidden matrices, schedules on LLaVA-1.5-7B's shape and on the 4-layer fixture,
// end-to-end runs through Reducer + RunPipeline (budgets, image span from the
// placeholder, spatial order), the composed FastV against the independent original
// form (identical kept tokens, hidden states and logits), determinism, and cached
// decoding after the reduction against a cache-free recomputation.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "base/error.h"
#include "engine/generate.h"
#include "engine/llava_model.h"
#include "engine/pipeline.h"
#include "image/image.h"
#include "reduce/baselines_llm.h"
#include "reduce/budget.h"
#include "reduce/filter.h"
#include "reduce/original/fastv_original.h"
#include "reduce/reducer.h"
#include "test_support.h"
#include "tiny_model_test.h"

namespace ficoco {
namespace {

using test::NoiseImage;

using test::FixturePromptIds;
constexpr int64_t kTextTokens = test::kFixtureTextTokens;

// ---------------------------------------------------------------------------------
// Hand-computed cases: a hook context over matrices written by hand.

TokenMeta Tok(int32_t i, TokenRole role) { return TokenMeta{i, -1, -1, i, role}; }

struct HandLayer {  // not copyable: the context refers to its own members
  HandLayer() = default;
  HandLayer(const HandLayer&) = delete;
  HandLayer& operator=(const HandLayer&) = delete;
  Matrix q, k, hidden;
  std::vector<TokenMeta> meta;
  AttentionShape shape{2, 2, 1};  // two heads of width 1: logit_h = q_h · k_h
  AttentionMask mask{true, 0};
  KvCache cache{2, 2};
  std::unique_ptr<AttentionSignals> signals;
  std::unique_ptr<TextHookContext> ctx;

  void Build(int layer) {
    signals = std::make_unique<AttentionSignals>(q, k, shape, mask);
    ctx = std::make_unique<TextHookContext>(TextHookContext{layer, 0, hidden, meta, *signals, cache, hidden, meta});
  }
};

// Five tokens: BOS, three image tokens (rows 1..3), the last prompt token. Every query
// is (1, 0): head 0's logits are head-0 keys (0, 0, ln 3, ln 2, 0), so its softmax over
// the full row is (1, 1, 3, 2, 1)/8; head 1 sees zeros, i.e. uniform 1/visible.
void FiveTokens(HandLayer& h) {
  h.q = Matrix(5, 2);
  h.k = Matrix(5, 2);
  h.hidden = Matrix(5, 2);
  const float k0[5] = {0, 0, std::log(3.0f), std::log(2.0f), 0};
  for (int r = 0; r < 5; ++r) {
    h.q.at(r, 0) = 1;
    h.k.at(r, 0) = k0[r];
    h.k.at(r, 1) = 0.25f * r;  // ignored by head 1 (its query is 0)
    h.hidden.at(r, 0) = static_cast<float>(r);
    h.hidden.at(r, 1) = static_cast<float>(10 * r);
  }
  h.meta = {Tok(0, TokenRole::Text), Tok(1, TokenRole::Visual), Tok(2, TokenRole::Visual), Tok(3, TokenRole::Visual),
            Tok(4, TokenRole::Text)};
  h.Build(1);
}

TEST(BaselinesLlmHand, FastvLastTokenKeepsWhatTheLastTokenAttendsTo) {
  HandLayer h;
  FiveTokens(h);
  ReductionParams p;  // fastv_rank = last-token
  // φ = mean over heads of the last row: ((1,3,2)/8 + 1/5) / 2 = (13, 23, 18)/80.
  const float phi[3] = {13.0f / 80, 23.0f / 80, 18.0f / 80};
  LayerPlan plan = FastvPlan(*h.ctx, 1, p);
  ASSERT_EQ(plan.filter.scores.size(), 3u);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(plan.filter.scores[j], -phi[j], 1e-6f) << "image token " << j;
  EXPECT_EQ(plan.filter.candidates, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(plan.filter.discard, (std::vector<int32_t>{1}));
  EXPECT_EQ(plan.rule, CompressRule::Prune);
  plan = FastvPlan(*h.ctx, 2, p);
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{2}));
  EXPECT_EQ(plan.filter.discard, (std::vector<int32_t>{1, 3}));
}

TEST(BaselinesLlmHand, FastvMeanReceivedAveragesEveryRowAndRanksDifferently) {
  HandLayer h;
  FiveTokens(h);
  ReductionParams p;
  p.fastv_rank = "mean-received";
  // Causal rows: row r sees keys 0..r. Head 0: (1,1,3,2,1) restricted and renormalised;
  // head 1: 1/(r+1). Per row, head-mean probabilities on image tokens 1, 2, 3:
  //   row 1: 1/2;  row 2: 4/15, 7/15;  row 3: 11/56, 19/56, 15/56;  row 4: 13/80, 23/80, 18/80.
  // Averaged over all 5 rows (row 0 sees no image token):
  const float phi[3] = {(1.0f / 2 + 4.0f / 15 + 11.0f / 56 + 13.0f / 80) / 5, (7.0f / 15 + 19.0f / 56 + 23.0f / 80) / 5,
                        (15.0f / 56 + 18.0f / 80) / 5};
  LayerPlan plan = FastvPlan(*h.ctx, 2, p);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(plan.filter.scores[j], -phi[j], 1e-6f) << "image token " << j;
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{1}));  // last-token keeps 2 instead
  plan = FastvPlan(*h.ctx, 1, p);
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{1, 2}));
}

TEST(BaselinesLlmHand, OriginalFastvGathersTheSameRowsByHand) {
  for (auto ranking : {original::FastvRanking::LastToken, original::FastvRanking::MeanReceived}) {
    HandLayer h;
    FiveTokens(h);
    original::FastvOriginal(*h.ctx, {2, 1, ranking});
    const int32_t kept = ranking == original::FastvRanking::LastToken ? 2 : 1;
    EXPECT_EQ(test::OrigIndices(h.meta), (std::vector<int32_t>{0, kept, 4}));
    ASSERT_EQ(h.hidden.rows(), 3);
    EXPECT_EQ(h.hidden.at(1, 0), static_cast<float>(kept));
    EXPECT_EQ(h.hidden.at(1, 1), static_cast<float>(10 * kept));
    EXPECT_EQ(h.hidden.at(2, 1), 40.0f);
  }
  HandLayer other;
  FiveTokens(other);
  other.Build(0);  // not layer K − 1 = 1: nothing happens
  original::FastvOriginal(*other.ctx, {2, 1, original::FastvRanking::LastToken});
  EXPECT_EQ(other.hidden.rows(), 5);
}

TEST(BaselinesLlmHand, TiesKeepTheLowerRow) {
  const FilterResult r = KeepMostImportant({4, 5, 6, 7}, {0.5f, 0.7f, 0.7f, 0.7f}, 2);
  EXPECT_EQ(r.keep, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(r.discard, (std::vector<int32_t>{4, 7}));
  EXPECT_EQ(r.scores, (std::vector<float>{-0.5f, -0.7f, -0.7f, -0.7f}));
}

TEST(BaselinesLlmHand, PdropRanksByTheLastInstructionToken) {
  HandLayer h;
  FiveTokens(h);
  ReductionParams p;
  p.fastv_rank = "mean-received";  // not PDrop's parameter: it always ranks by the last token
  const LayerPlan plan = PdropPlan(*h.ctx, 2, p);
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{2}));
  EXPECT_NEAR(plan.filter.scores[2], -18.0f / 80, 1e-6f);
  EXPECT_EQ(plan.rule, CompressRule::Prune);
}

// Nine tokens: BOS, six image tokens (rows 1..6), two text tokens after the image.
// Key L1 norms: image row 3 is largest (5), text row 8 (3) beats row 7 (2). Hidden
// states are 2-D: pivot row 3 = (1, 0), pivot row 8 = (0, 1).
void NineTokens(HandLayer& h) {
  h.q = Matrix(9, 2);
  h.k = Matrix(9, 2);
  h.hidden = Matrix(9, 2);
  const float k[9][2] = {{9, 9}, {1, 0}, {0, -1}, {2, -3}, {0.5f, 0.5f}, {-1, 0}, {0, 1}, {1, 1}, {-1, 2}};
  const float x[9][2] = {{1, 1}, {1, 0.1f}, {-1, 0}, {1, 0}, {0, 1}, {0.7f, 0.7f}, {0.2f, -1}, {1, 1}, {0, 1}};
  for (int r = 0; r < 9; ++r)
    for (int c = 0; c < 2; ++c) {
      h.k.at(r, c) = k[r][c];
      h.hidden.at(r, c) = x[r][c];
    }
  h.meta.push_back(Tok(0, TokenRole::Text));
  for (int r = 1; r <= 6; ++r) h.meta.push_back(Tok(r, TokenRole::Visual));
  h.meta.push_back(Tok(7, TokenRole::Text));
  h.meta.push_back(Tok(8, TokenRole::Text));
  h.Build(1);
}

TEST(BaselinesLlmHand, DartKeepsPivotsAndTheLeastDuplicatedTokensExactly) {
  HandLayer h;
  NineTokens(h);
  ReductionParams p;
  p.dart_pivots = 2;  // one image pivot (row 3), one text pivot (row 8)
  // keep 4: 3 slots, G = ⌈3/2⌉ = 2. Pivot 3 = (1,0): cosines rows 1,2,4,5,6 = .995, −1,
  // 0, .707, .196 → rows 2, 4. Pivot 8 = (0,1) takes the last slot among rows 1, 5, 6
  // (cosines .0995, .707, −.981) → row 6. The official code would keep 1 + 2·2 = 5.
  LayerPlan plan = DartPlan(*h.ctx, 2, p);
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{2, 3, 4, 6}));
  EXPECT_EQ(plan.filter.discard, (std::vector<int32_t>{1, 5}));
  // Scores are the selection steps (pivot 0, then 1, 2, 3); discarded tokens rank 4.
  EXPECT_EQ(plan.filter.scores, (std::vector<float>{4, 1, 0, 2, 4, 3}));
  EXPECT_EQ(plan.rule, CompressRule::Prune);
  // keep 3: G = 1. Pivot 3 takes row 2; pivot 8 then takes row 6 among rows 1, 4, 5, 6.
  plan = DartPlan(*h.ctx, 3, p);
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{2, 3, 6}));
  // keep 1: only the image pivot.
  plan = DartPlan(*h.ctx, 5, p);
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{3}));
  // Four pivots: image rows 3 (L1 5) and 1 (L1 1, tied with rows 2, 4, 5, 6: the lower
  // row wins), text rows 7 and 8. keep 4 → 2 slots, G = ⌈2/4⌉ = 1, visited 1, 3, 7, 8:
  // pivot 1 = (1, .1) takes the least similar of rows 2, 4, 5, 6 (−.995, .0995, .774,
  // .0976) → row 2; pivot 3 = (1, 0) of rows 4, 5, 6 (0, .707, .196) → row 4; the budget
  // is then full and the text pivots add nothing.
  p.dart_pivots = 4;
  plan = DartPlan(*h.ctx, 2, p);
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{1, 2, 3, 4}));
}

// ---------------------------------------------------------------------------------
// Schedules.

TEST(BaselinesLlmSchedule, LlavaShapes) {
  const LlavaConfig cfg;  // LLaVA-1.5-7B: 576 patches, 32 layers
  ReductionParams p;
  // FastV K = 2, R = 50 %: 288 tokens in layers 2..31, mean (2·576 + 30·288)/32 = 306.
  ReductionSchedule s = FastvSchedule(cfg, p, 306);
  EXPECT_EQ(s.llm[1], 288);
  EXPECT_EQ(s.llm_total(), 288);
  EXPECT_TRUE(s.vision.empty() || s.vision_total() == 0);
  // PyramidDrop's defaults [8, 16, 24] with ratios 0.5, 0.25, 0.125 average 270 tokens.
  s = PdropSchedule(cfg, p, 270);
  EXPECT_EQ(s.llm[7], 288);
  EXPECT_EQ(s.llm[15], 144);
  EXPECT_EQ(s.llm[23], 72);
  EXPECT_EQ(s.llm_total(), 504);
  EXPECT_NEAR(MeanLlmVisual(s.llm, 576), 270.0, 1e-9);
  // DART before layer 2 as FastV.
  s = DartSchedule(cfg, p, 64 + (576 - 64) * 2 / 32);
  EXPECT_EQ(s.llm[1], 576 - 64);
  // 64 tokens on average are out of PDrop's reach with its default stages (issue #10).
  test::ExpectError([&] { PdropSchedule(cfg, p, 64); }, {"out of reach"});
}

TEST(BaselinesLlmSchedule, PdropStagesScaleToTheDepth) {
  EXPECT_EQ(PdropStageLayers({8, 16, 24}, 32), (std::vector<int>{8, 16, 24}));
  EXPECT_EQ(PdropStageLayers({8, 16, 24}, 4), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(PdropStageLayers({8, 16, 24}, 40), (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(PdropStageLayers({8, 16, 24}, 2), (std::vector<int>{1}));
  EXPECT_EQ(PdropStageLayers({1, 3}, 4), (std::vector<int>{1, 3}));  // explicit lists as given
  test::ExpectError([] { PdropStageLayers({2, 4}, 4); }, {"--pdrop-layers", "before layer 4", "1..3"});
}

// ---------------------------------------------------------------------------------
// End to end on the llava-tiny fixture (4 LLM layers, 16 image tokens at 5..20).

struct Config {
  const char* label;
  MethodInfo (*method)();
  ReductionParams params;
};

std::vector<Config> Configs() {
  std::vector<Config> c;
  ReductionParams p;
  c.push_back({"fastv last-token K=2", FastvMethod, p});
  p.fastv_rank = "mean-received";
  c.push_back({"fastv mean-received K=2", FastvMethod, p});
  p = ReductionParams{};
  p.fastv_k = 1;
  c.push_back({"fastv last-token K=1", FastvMethod, p});
  p = ReductionParams{};
  c.push_back({"pdrop default stages", PdropMethod, p});
  p.positions = PositionPolicy::Compact;
  c.push_back({"pdrop compact", PdropMethod, p});
  p = ReductionParams{};
  c.push_back({"dart K=2", DartMethod, p});
  p.fastv_k = 1;
  p.dart_pivots = 4;
  c.push_back({"dart K=1 4 pivots", DartMethod, p});
  return c;
}

class BaselinesLlm : public test::TinyModelTest {
 protected:

  PipelineResult Pipeline(const MethodInfo& m, const ReductionParams& p, int64_t keep, const ImageU8& image,
                          std::vector<int> ids = FixturePromptIds(), int new_tokens = 3) {
    PipelineRequest req;
    req.prompt_ids = std::move(ids);
    req.image = &image;
    req.method = &m;
    req.params = p;
    req.budget = Budget{keep, -1};
    req.max_new_tokens = new_tokens;
    req.stop_at_eos = false;
    return RunPipeline(gemm_, *model_, req);
  }

  // Prefill + decode of `enc` with the given LLM hook, keeping hidden states and logits.
  GenerateResult Run(const EncodedImage& enc, TextLayerHook hook, PositionPolicy pos, int new_tokens = 3) {
    GenerateRequest req;
    req.prompt_ids = FixturePromptIds();
    req.image_features = &enc.image_features;
    req.image_meta = &enc.image_meta;
    req.max_new_tokens = new_tokens;
    req.stop_at_eos = false;
    req.keep_step_logits = true;
    req.keep_hidden_states = true;
    req.text_options.hook = std::move(hook);
    req.text_options.compact_positions = pos == PositionPolicy::Compact;
    return Generate(gemm_, *model_, req);
  }

  GemmContext gemm_{ComputeType::F32};
};

// Counts per layer follow the schedule; only image tokens of the span [first, first + 15]
// are ever dropped; survivors stay in spatial order; the caches hold what each layer saw.
void ExpectPlansWithinImage(const PipelineResult& r, int32_t first) {
  size_t plan = 0;
  std::set<int32_t> gone;
  for (size_t l = 0; l < r.schedule.llm.size(); ++l) {
    if (r.schedule.llm[l] == 0) continue;
    ASSERT_LT(plan, r.trace.plans.size());
    const RecordedPlan& p = r.trace.plans[plan++];
    EXPECT_EQ(p.site, ReductionSite::Llm);
    EXPECT_EQ(p.layer, static_cast<int>(l));
    EXPECT_EQ(p.rule, CompressRule::Prune);
    EXPECT_EQ(static_cast<int64_t>(p.discarded.size()), r.schedule.llm[l]);
    EXPECT_EQ(p.tokens_before - p.tokens_after, r.schedule.llm[l]);
    EXPECT_EQ(p.src.size(), 0u);
    // Candidates are exactly the image tokens still present, kept ones in raster order.
    EXPECT_EQ(p.kept.size() + p.discarded.size() + gone.size(), 16u);
    for (const TokenMeta& t : p.discarded) {
      EXPECT_EQ(t.role, TokenRole::Visual);
      EXPECT_GE(t.orig_index, first);
      EXPECT_LE(t.orig_index, first + 15);
      EXPECT_FALSE(gone.count(t.orig_index));
      gone.insert(t.orig_index);
    }
    for (size_t i = 0; i < p.kept.size(); ++i) {
      EXPECT_EQ(p.kept[i].role, TokenRole::Visual);
      if (i > 0) {
        EXPECT_LT(p.kept[i - 1].orig_index, p.kept[i].orig_index);
      }
      EXPECT_EQ(p.kept[i].grid_row * 4 + p.kept[i].grid_col, p.kept[i].orig_index - first);
    }
  }
  EXPECT_EQ(plan, r.trace.plans.size());
}

TEST_F(BaselinesLlm, BudgetsAndImageSpanFromThePlaceholder) {
  const ImageU8 photo = NoiseImage(3, 30, 20);  // small: the encoder's resize stays cheap
  for (const Config& c : Configs()) {
    const MethodInfo m = c.method();
    EXPECT_EQ(m.site, MethodSite::Llm);
    for (int64_t keep : {5, 8, 10, 12, 16}) {
      SCOPED_TRACE(std::string(c.label) + " keep " + std::to_string(keep));
      PipelineResult r;
      try {
        r = Pipeline(m, c.params, keep, photo);
      } catch (const Error& e) {
        // Only FastV/DART pruning after layer 1 cannot go below (2·16 + 2·1)/4 = 8.5.
        EXPECT_TRUE(c.method != PdropMethod && c.params.fastv_k == 2 && keep < 8) << e.what();
        EXPECT_NE(std::string(e.what()).find("out of reach"), std::string::npos) << e.what();
        continue;
      }
      EXPECT_EQ(r.generated.image_tokens, 16);
      EXPECT_EQ(r.generated.new_ids.size(), 3u);
      ExpectPlansWithinImage(r, 5);
      // The mean of the image tokens over the 4 layers is the budget (within rounding).
      const double mean = r.flow.mean_llm_visual();
      EXPECT_LE(std::abs(mean - static_cast<double>(keep)), 0.75) << mean;
      // Each layer's cache holds the tokens its attention saw, plus two decode steps.
      int64_t rows = 0;
      for (const LayerTokens& t : r.flow.llm) rows += t.attention + 2;
      EXPECT_EQ(r.generated.kv_cache_bytes, rows * 2 * cfg().text.num_key_value_heads * cfg().text.head_dim() * 4);
      if (keep == 16) {
        EXPECT_TRUE(r.trace.plans.empty());
      }
    }
  }
  // FastV and DART prune once, after layer K − 1 (layers 2, 3 see 4: mean (2·16 + 2·4)/4
  // = 10); PyramidDrop after layers 0, 1, 2.
  ReductionParams p;
  EXPECT_EQ(Pipeline(FastvMethod(), p, 10, photo).schedule.llm, (std::vector<int>{0, 12, 0, 0}));
  EXPECT_EQ(Pipeline(DartMethod(), p, 10, photo).schedule.llm, (std::vector<int>{0, 12, 0, 0}));
  const PipelineResult pd = Pipeline(PdropMethod(), p, 8, photo);
  EXPECT_GT(pd.schedule.llm[0], 0);
  EXPECT_GT(pd.schedule.llm[1], 0);
  EXPECT_GT(pd.schedule.llm[2], 0);
  EXPECT_EQ(pd.schedule.llm[3], 0);
}

TEST_F(BaselinesLlm, ImageAnywhereInThePrompt) {
  // Three more text tokens before the placeholder: the image now spans 8..23.
  std::vector<int> ids = FixturePromptIds();
  ids.insert(ids.begin() + 1, {3148, 1001, 29901});
  const ImageU8 photo = Photo();
  for (const Config& c : Configs()) {
    SCOPED_TRACE(c.label);
    const PipelineResult r = Pipeline(c.method(), c.params, 10, photo, ids);
    ASSERT_FALSE(r.trace.plans.empty());
    ExpectPlansWithinImage(r, 8);
  }
}

// The composed FastV (FastvPlan run by Reducer) against the original form written from
// the algorithm: same kept tokens, and hidden states of every layer and the logits of
// every step equal to tolerance 0 (both only gather rows, so the runs are bit-identical).
TEST_F(BaselinesLlm, ComposedFastvEqualsTheOriginal) {
  const std::vector<ImageU8> images = {Photo(), NoiseImage(1, 40, 30), NoiseImage(2, 23, 61)};
  int compared = 0;
  for (size_t im = 0; im < images.size(); ++im) {
    const EncodedImage enc = model_->EncodeImage(gemm_, images[im]);
    for (const char* rank : {"last-token", "mean-received"})
      for (int k : {1, 2, 3})
        for (int64_t keep : {5, 9, 11, 13})
          for (PositionPolicy pos : {PositionPolicy::KeepOriginal, PositionPolicy::Compact}) {
            ReductionParams p;
            p.fastv_rank = rank;
            p.fastv_k = k;
            p.positions = pos;
            ReductionSchedule s;
            try {
              s = FastvSchedule(cfg(), p, keep);
            } catch (const Error&) {
              continue;  // out of reach for this K
            }
            // K = 1 keeps 1 and 9 image tokens (keep 5, 11), K = 2 keeps 2 and 10 (9, 13),
            // K = 3 keeps 4 (13); compact positions on a sample.
            if ((k == 1 && keep != 5 && keep != 11) || (k == 2 && keep != 9 && keep != 13)) continue;
            if (pos == PositionPolicy::Compact && keep != 9) continue;
            SCOPED_TRACE("image " + std::to_string(im) + " " + rank + " K=" + std::to_string(k) + " keep " +
                         std::to_string(keep) + " " + PositionPolicyName(pos));
            ReductionTrace trace;
            Reducer reducer(FastvMethod(), p, s, &trace);
            const GenerateResult composed = Run(enc, reducer.TextHook(), pos);

            original::FastvConfig oc;
            oc.k = k;
            oc.attention_rank = 16 - s.llm[static_cast<size_t>(k - 1)];
            oc.ranking = std::string(rank) == "last-token" ? original::FastvRanking::LastToken
                                                           : original::FastvRanking::MeanReceived;
            std::vector<int32_t> original_kept;
            const GenerateResult orig = Run(
                enc,
                [&](TextHookContext& ctx) {
                  original::FastvOriginal(ctx, oc);
                  if (ctx.layer == k - 1)
                    for (const TokenMeta& t : ctx.meta)
                      if (t.role == TokenRole::Visual) original_kept.push_back(t.orig_index);
                },
                pos);

            ASSERT_EQ(trace.plans.size(), 1u);
            EXPECT_EQ(trace.plans[0].layer, k - 1);
            EXPECT_EQ(test::OrigIndices(trace.plans[0].kept), original_kept);
            EXPECT_EQ(static_cast<int64_t>(original_kept.size()), oc.attention_rank);
            ASSERT_EQ(composed.hidden_states.size(), orig.hidden_states.size());
            for (size_t l = 0; l < composed.hidden_states.size(); ++l) {
              const Matrix& a = composed.hidden_states[l];
              const Matrix& b = orig.hidden_states[l];
              ASSERT_EQ(a.rows(), b.rows()) << "hidden states " << l;
              EXPECT_EQ(test::MaxAbsDiff(a.data(), b.data(), a.rows() * a.cols()), 0.0f) << "hidden states " << l;
            }
            ASSERT_EQ(composed.step_logits.size(), orig.step_logits.size());
            for (size_t t = 0; t < composed.step_logits.size(); ++t)
              EXPECT_EQ(test::MaxAbsDiff(composed.step_logits[t].data(), orig.step_logits[t].data(),
                                         static_cast<int64_t>(orig.step_logits[t].size())),
                        0.0f)
                  << "step " << t;
            EXPECT_EQ(composed.new_ids, orig.new_ids);
            ++compared;
          }
  }
  EXPECT_EQ(compared, 3 * 2 * 6);
}

TEST_F(BaselinesLlm, DeterministicAcrossRunsAndThreadCounts) {
  const ImageU8 img = NoiseImage(7, 40, 30);
  const int saved = omp_get_max_threads();
  for (const Config& c : Configs()) {
    SCOPED_TRACE(c.label);
    const MethodInfo m = c.method();
    omp_set_num_threads(1);
    const PipelineResult one = Pipeline(m, c.params, 10, img);
    omp_set_num_threads(2);
    const PipelineResult two = Pipeline(m, c.params, 10, img);
    const PipelineResult again = Pipeline(m, c.params, 10, img);
    ASSERT_EQ(one.trace.plans.size(), two.trace.plans.size());
    for (size_t i = 0; i < one.trace.plans.size(); ++i) {
      EXPECT_EQ(test::OrigIndices(one.trace.plans[i].kept), test::OrigIndices(two.trace.plans[i].kept)) << "plan " << i;
      EXPECT_EQ(test::OrigIndices(two.trace.plans[i].kept), test::OrigIndices(again.trace.plans[i].kept)) << "plan " << i;
      EXPECT_EQ(two.trace.plans[i].scores, again.trace.plans[i].scores) << "plan " << i;
    }
    EXPECT_EQ(one.generated.new_ids, two.generated.new_ids);
    EXPECT_EQ(two.generated.logits_last, again.generated.logits_last);  // same threads: bit-identical
  }
  omp_set_num_threads(saved);
}

// Replays the recorded drops (by original token index) on a prompt extended by the
// decoded tokens, which come after the image and are never dropped.
TextLayerHook ReplayDrops(const ReductionTrace& trace) {
  return [&trace](TextHookContext& ctx) {
    for (const RecordedPlan& rec : trace.plans) {
      if (rec.site != ReductionSite::Llm || rec.layer != ctx.layer) continue;
      std::set<int32_t> gone;
      for (const TokenMeta& t : rec.discarded) gone.insert(t.orig_index);
      std::vector<int32_t> rows;
      for (size_t i = 0; i < ctx.meta.size(); ++i)
        if (!gone.count(ctx.meta[i].orig_index)) rows.push_back(static_cast<int32_t>(i));
      ctx.hidden.KeepRows(rows);
      std::vector<TokenMeta> meta;
      for (int32_t r : rows) meta.push_back(ctx.meta[static_cast<size_t>(r)]);
      ctx.meta = std::move(meta);
    }
  };
}

TEST_F(BaselinesLlm, DecodingAfterTheReductionEqualsRecomputingTheReducedSequence) {
  const ImageU8 photo = Photo();
  const EncodedImage enc = model_->EncodeImage(gemm_, photo);
  for (const Config& c : Configs())
    for (PositionPolicy pos : {PositionPolicy::KeepOriginal, PositionPolicy::Compact}) {
      SCOPED_TRACE(std::string(c.label) + " positions " + PositionPolicyName(pos));
      ReductionParams p = c.params;
      p.positions = pos;
      const MethodInfo m = c.method();
      ReductionTrace trace;
      Reducer reducer(m, p, ScheduleForBudget(m, cfg(), p, Budget{9, -1}, kTextTokens), &trace);
      const GenerateResult gen = Run(enc, reducer.TextHook(), pos, 5);
      ASSERT_FALSE(trace.plans.empty());
      ASSERT_EQ(gen.new_ids.size(), 5u);
      LlamaDecoder dec(cfg().text, model_->text());
      std::vector<int> ids = FixturePromptIds();
      for (size_t step = 0; step < gen.new_ids.size(); ++step) {
        Matrix x;
        std::vector<TokenMeta> meta;
        BuildPromptEmbeddings(dec, ids, cfg().image_token_index, &enc.image_features, &enc.image_meta, &x, &meta);
        KvCache cache = dec.NewCache();
        TextRunOptions opts;
        opts.hook = ReplayDrops(trace);
        opts.compact_positions = pos == PositionPolicy::Compact;
        const TextForwardResult f = dec.Forward(gemm_, x, meta, cache, opts);
        Matrix last(1, f.normed.cols());
        std::copy_n(f.normed.row(f.normed.rows() - 1), f.normed.cols(), last.row(0));
        const Matrix lg = dec.Logits(gemm_, last);
        EXPECT_LE(test::MaxAbsDiff(lg.data(), gen.step_logits[step].data(), lg.cols()), 1e-4f) << "step " << step;
        ids.push_back(gen.new_ids[step]);
      }
    }
}

TEST_F(BaselinesLlm, PositionPoliciesDifferOnlyAfterTheReduction) {
  const ImageU8 photo = Photo();
  ReductionParams orig, compact;
  compact.positions = PositionPolicy::Compact;
  const PipelineResult a = Pipeline(FastvMethod(), orig, 10, photo);
  const PipelineResult b = Pipeline(FastvMethod(), compact, 10, photo);
  ASSERT_EQ(a.trace.plans.size(), 1u);
  ASSERT_EQ(b.trace.plans.size(), 1u);
  EXPECT_EQ(test::OrigIndices(a.trace.plans[0].kept), test::OrigIndices(b.trace.plans[0].kept));
  EXPECT_GT(test::MaxAbsDiff(a.generated.logits_last.data(), b.generated.logits_last.data(),
                             static_cast<int64_t>(a.generated.logits_last.size())),
            1e-6f);
}

TEST_F(BaselinesLlm, MethodInfoDescribesEachMethod) {
  for (const MethodInfo& m : {FastvMethod(), PdropMethod(), DartMethod()}) {
    SCOPED_TRACE(m.name);
    EXPECT_EQ(m.site, MethodSite::Llm);
    EXPECT_NE(m.llm_plan, nullptr);
    EXPECT_NE(m.schedule, nullptr);
    EXPECT_EQ(m.vision_plan, nullptr);
    EXPECT_EQ(m.pre_llm_plan, nullptr);
    EXPECT_FALSE(m.proportional_attention);
    EXPECT_FALSE(m.summary.empty());
    EXPECT_NE(std::find(m.params.begin(), m.params.end(), "--positions"), m.params.end());
  }
  EXPECT_EQ(FastvMethod().name, "fastv");
  EXPECT_EQ(PdropMethod().name, "pdrop");
  EXPECT_EQ(DartMethod().name, "dart");
  // PyramidDrop's original renumbers positions; FastV and DART keep them.
  EXPECT_EQ(PdropMethod().positions, PositionPolicy::Compact);
  EXPECT_EQ(FastvMethod().positions, PositionPolicy::KeepOriginal);
  EXPECT_EQ(DartMethod().positions, PositionPolicy::KeepOriginal);
}

}  // namespace
}  // namespace ficoco
