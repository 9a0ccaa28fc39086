// SparseVLM v1.5 (baselines.md §4): hand-computed raters from input embeddings, rater
// scores on a hand-made attention, DPC-KNN on 2-D points, the |D| − c(|D|) = n_remove
// solver, v1.5's schedules on LLaVA-1.5-7B's shape and geometric ones elsewhere, and end
// to end on the llava-tiny fixture: counts per layer, recycled tokens (cluster means)
// between the kept image tokens and the text, determinism, and cached decoding after the
// reduction against a cache-free replay of the same plans.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "base/error.h"
#include "engine/generate.h"
#include "engine/llava_model.h"
#include "engine/pipeline.h"
#include "image/image.h"
#include "reduce/baselines_sparsevlm.h"
#include "reduce/budget.h"
#include "reduce/filter.h"
#include "reduce/compress.h"
#include "reduce/reducer.h"
#include "test_support.h"
#include "tiny_model_test.h"

namespace ficoco {
namespace {

using test::NoiseImage;

using test::FixturePromptIds;
constexpr int64_t kTextTokens = test::kFixtureTextTokens;

TokenMeta Tok(int32_t i, TokenRole role) { return TokenMeta{i, -1, -1, i, role}; }

// ---------------------------------------------------------------------------------
// Raters. Prompt: BOS, image tokens 1..3, text tokens 4..6, 2-D embeddings.
//   e_4 = (1, 0), e_5 = (0, 1), e_6 = (0, 0);  e_1 = (ln 3, 0), e_2 = (0, ln 2), e_3 = (0, 0).
// Softmax over the text of each image row: (3, 1, 1)/5, (1, 2, 1)/4, (1, 1, 1)/3; their
// mean: 4: (3/5 + 1/4 + 1/3)/3 = .394, 5: (1/5 + 1/2 + 1/3)/3 = .344, 6: .261; mean 1/3.
void RaterInput(Matrix& e, std::vector<TokenMeta>& meta) {
  e = Matrix(7, 2);
  const float x[7][2] = {{5, -5}, {std::log(3.0f), 0}, {0, std::log(2.0f)}, {0, 0}, {1, 0}, {0, 1}, {0, 0}};
  for (int r = 0; r < 7; ++r)
    for (int c = 0; c < 2; ++c) e.at(r, c) = x[r][c];
  meta = {Tok(0, TokenRole::Text), Tok(1, TokenRole::Visual), Tok(2, TokenRole::Visual), Tok(3, TokenRole::Visual),
          Tok(4, TokenRole::Text), Tok(5, TokenRole::Text), Tok(6, TokenRole::Text)};
}

TEST(SparseVlmHand, RatersExceedTheMeanRelevance) {
  Matrix e;
  std::vector<TokenMeta> meta;
  RaterInput(e, meta);
  EXPECT_EQ(SparseVlmRaters(e, meta), (std::vector<int32_t>{4, 5}));
  // e_1 = (0, 0), e_2 = (0, 2 ln 3): rows (1, 1, 1)/3, (1, 9, 1)/11, (1, 1, 1)/3, so token 5
  // alone exceeds the mean: 4: (2/3 + 1/11)/3 = .253, 5: (2/3 + 9/11)/3 = .495, 6: .253.
  e.at(1, 0) = 0;
  e.at(2, 1) = 2 * std::log(3.0f);
  EXPECT_EQ(SparseVlmRaters(e, meta), (std::vector<int32_t>{5}));
  // The token before the image never rates; a single text token always does.
  meta.resize(5);
  EXPECT_EQ(SparseVlmRaters(e, meta), (std::vector<int32_t>{4}));
  meta.resize(4);
  test::ExpectError([&] { SparseVlmRaters(e, meta); }, {"no text follows the image"});
}

// A sparse layer after an earlier one: current rows BOS, image 1, image 3 (image 2 was
// deleted), a recycled token (orig −1), text 4, 5, 6; input as in RaterInput (raters 4, 5
// = current rows 4, 5). Two heads of width 1, every query (1, 0): head 0's logits are
// the head-0 keys (0, ln 4, ln 2, κ, 0, 0, 0), head 1 is uniform over the visible keys.
struct HandLayer {
  HandLayer(const HandLayer&) = delete;
  explicit HandLayer(float kappa) {
    RaterInput(input, input_meta);
    q = Matrix(7, 2);
    k = Matrix(7, 2);
    hidden = Matrix(7, 3);
    const float k0[7] = {0, std::log(4.0f), std::log(2.0f), kappa, 0, 0, 0};
    for (int r = 0; r < 7; ++r) {
      q.at(r, 0) = 1;
      k.at(r, 0) = k0[r];
      k.at(r, 1) = 0.5f * r;  // ignored: head 1's query is 0
      for (int c = 0; c < 3; ++c) hidden.at(r, c) = static_cast<float>(10 * r + c);
    }
    meta = {Tok(0, TokenRole::Text), Tok(1, TokenRole::Visual), Tok(3, TokenRole::Visual),
            TokenMeta{-1, -1, -1, 3, TokenRole::Visual, 2.0f}, Tok(4, TokenRole::Text), Tok(5, TokenRole::Text),
            Tok(6, TokenRole::Text)};
    signals = std::make_unique<AttentionSignals>(q, k, AttentionShape{2, 2, 1}, AttentionMask{true, 0});
    ctx = std::make_unique<TextHookContext>(TextHookContext{1, 0, hidden, meta, *signals, cache, input, input_meta});
  }
  Matrix q, k, hidden, input;
  std::vector<TokenMeta> meta, input_meta;
  KvCache cache{2, 2};
  std::unique_ptr<AttentionSignals> signals;
  std::unique_ptr<TextHookContext> ctx;
};

TEST(SparseVlmHand, RaterScoresKeepTheTopAndRecycleTheBestDeleted) {
  HandLayer h(std::log(3.0f));
  // Rater row 4 sees keys 0..4: head 0 (1, 4, 2, 3, 1)/11, head 1 1/5; row 5 sees 0..5:
  // (1, 4, 2, 3, 1, 1)/12 and 1/6. score_j = mean over the two raters of the head means.
  auto score = [](float a) { return ((a / 11 + 1.0f / 5) / 2 + (a / 12 + 1.0f / 6) / 2) / 2; };
  LayerPlan plan = SparseVlmPlan(*h.ctx, 1, ReductionParams{});
  EXPECT_EQ(plan.filter.candidates, (std::vector<int32_t>{1, 2, 3}));
  ASSERT_EQ(plan.filter.scores.size(), 3u);
  EXPECT_NEAR(plan.filter.scores[0], -score(4), 1e-6f);
  EXPECT_NEAR(plan.filter.scores[1], -score(2), 1e-6f);
  EXPECT_NEAR(plan.filter.scores[2], -score(3), 1e-6f);
  // Net 1 = |D| − c: |D| = 2 (c = 1). Keep row 1; of the deleted rows 2, 3, n_sel = 1:
  // row 3 (the recycled token, rated higher) becomes the one new token, row 2 is dropped.
  EXPECT_EQ(plan.filter.keep, (std::vector<int32_t>{1}));
  EXPECT_EQ(plan.filter.discard, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(plan.rule, CompressRule::FuseIntoNew);
  EXPECT_EQ(plan.routing.src_begin, (std::vector<int32_t>{0, 0, 1}));
  EXPECT_EQ(plan.routing.dst, (std::vector<int32_t>{NewToken(0)}));
  EXPECT_EQ(plan.routing.alpha, (std::vector<float>{1.0f}));
  Compress(h.hidden, h.meta, plan);
  ASSERT_EQ(h.hidden.rows(), 6);
  EXPECT_EQ(test::OrigIndices(h.meta), (std::vector<int32_t>{0, 1, -1, 4, 5, 6}));
  EXPECT_EQ(h.meta[2].pos_id, 1);  // the position of the row before it
  EXPECT_EQ(h.meta[2].size, 2.0f);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(h.hidden.at(2, c), static_cast<float>(30 + c));

  // Rows 2 and 3 tie (κ = ln 2): the lower row is recycled.
  HandLayer tie(std::log(2.0f));
  plan = SparseVlmPlan(*tie.ctx, 1, ReductionParams{});
  EXPECT_EQ(plan.filter.discard, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(plan.routing.src_begin, (std::vector<int32_t>{0, 1, 1}));
  // Net 2 from 3 image tokens is out of reach (deleting 2 nets 1, deleting 3 leaves none).
  test::ExpectError([&] { SparseVlmPlan(*tie.ctx, 2, ReductionParams{}); },
                    {"cannot remove 2 net of its 3 image tokens", "at most 1"});
}

// ---------------------------------------------------------------------------------
// DPC-KNN on five 2-D points, 2 clusters (C = 2: distances are Euclidean/√2).

Matrix Points(const std::vector<std::pair<float, float>>& p) {
  Matrix m(static_cast<int64_t>(p.size()), 2);
  for (size_t i = 0; i < p.size(); ++i) {
    m.at(static_cast<int64_t>(i), 0) = p[i].first;
    m.at(static_cast<int64_t>(i), 1) = p[i].second;
  }
  return m;
}

TEST(SparseVlmHand, DpcKnnByHand) {
  const double s = std::sqrt(2.0);
  // p0 (0,0), p1 (1,0), p2 (4,0), p3 (6,0), p4 (6,3). Nearest other point (the point
  // itself, at 0, is the other of the 2 nearest): p0↔p1 1, p2↔p3 2, p4→p3 3, so
  // ρ = exp(−(0 + d²/2)/2) = e^−.25, e^−.25, e^−1, e^−1, e^−2.25.
  DpcKnnResult r = DpcKnn(Points({{0, 0}, {1, 0}, {4, 0}, {6, 0}, {6, 3}}), 2);
  const double rho[5] = {std::exp(-0.25), std::exp(-0.25), std::exp(-1.0), std::exp(-1.0), std::exp(-2.25)};
  // Parent distance (equal densities: the lower row is denser): p0 none → the largest
  // distance √45; p1 → p0 1; p2 → p1 3; p3 → p2 2; p4 → p3 3 (all /√2).
  const double delta[5] = {std::sqrt(45.0) / s, 1 / s, 3 / s, 2 / s, 3 / s};
  for (int i = 0; i < 5; ++i) {
    EXPECT_NEAR(r.density[i], rho[i], 1e-7) << i;
    EXPECT_NEAR(r.parent_distance[i], delta[i], 1e-6) << i;
  }
  // ρ·δ = 3.69, .551, .780, .520, .224: centres p0, p2; p1 → p0; p3, p4 → p2.
  EXPECT_EQ(r.centres, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(r.cluster, (std::vector<int32_t>{0, 0, 1, 1, 1}));

  // The same points in reverse order: the density ties now resolve the other way.
  // q0 (6,3), q1 (6,0), q2 (4,0), q3 (1,0), q4 (0,0): q3 is densest (δ √45), q4 → q3 1,
  // q1 → q3 5 (q2 is not denser than q1), q2 → q1 2, q0 → q1 3. ρ·δ: q3 3.69, q1 1.30,
  // q2 .520, q4 .551, q0 .224: centres q3, q1 (the right cluster's centre moves to (6,0)).
  r = DpcKnn(Points({{6, 3}, {6, 0}, {4, 0}, {1, 0}, {0, 0}}), 2);
  const double delta_rev[5] = {3 / s, 5 / s, 2 / s, std::sqrt(45.0) / s, 1 / s};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(r.parent_distance[i], delta_rev[i], 1e-6) << i;
  EXPECT_EQ(r.centres, (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(r.cluster, (std::vector<int32_t>{1, 1, 1, 0, 0}));

  // One cluster: every density is e^0 = 1 (the nearest point is the point itself); the
  // first row is densest and the centre of all.
  r = DpcKnn(Points({{1, 1}, {3, 0}, {0, 2}}), 1);
  EXPECT_EQ(r.density, (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(r.centres, (std::vector<int32_t>{0}));
  EXPECT_EQ(r.cluster, (std::vector<int32_t>{0, 0, 0}));
  test::ExpectError([] { DpcKnn(Points({{0, 0}}), 2); }, {"cannot form 2 clusters from 1"});
}

// ---------------------------------------------------------------------------------
// Recycling sizes and the net-removal solver.

TEST(SparseVlmHand, RecyclingSizesAndTheNetRemovalSolver) {
  // n_sel = ⌊0.3·|D|⌋ + 1, c = ⌊n_sel/10⌋ + 1.
  EXPECT_EQ(SparseVlmSelected(0), 0);
  EXPECT_EQ(SparseVlmSelected(1), 1);
  EXPECT_EQ(SparseVlmSelected(3), 1);
  EXPECT_EQ(SparseVlmSelected(4), 2);
  EXPECT_EQ(SparseVlmSelected(10), 4);  // 10·0.3 is 3.0000000000000004 in doubles: still 3
  EXPECT_EQ(SparseVlmSelected(276), 83);
  EXPECT_EQ(SparseVlmClusters(0), 0);
  EXPECT_EQ(SparseVlmClusters(29), 1);  // n_sel 9
  EXPECT_EQ(SparseVlmClusters(30), 2);  // n_sel 10
  EXPECT_EQ(SparseVlmClusters(276), 9);
  EXPECT_EQ(SparseVlmClusters(510), 16);
  // Net 28 is reached by |D| = 29 (c 1) and 30 (c 2): the smaller is chosen.
  EXPECT_EQ(SparseVlmDeletions(28, 100), 29);
  EXPECT_EQ(SparseVlmDeletions(29, 100), 31);
  EXPECT_EQ(SparseVlmDeletions(0, 5), 0);
  EXPECT_EQ(SparseVlmDeletions(1, 16), 2);
  EXPECT_EQ(SparseVlmDeletions(14, 16), 15);  // all but one deleted, one cluster back
  EXPECT_EQ(SparseVlmDeletions(15, 16), -1);
  EXPECT_EQ(SparseVlmDeletions(267, 576), 276);  // v1.5 at 192: top-300 after layer 2
  // Every net removal up to the net of visual − 1 deletions has a smallest exact |D|.
  for (int64_t v = 1; v <= 600; ++v) {
    const int64_t most = v >= 2 ? (v - 1) - SparseVlmClusters(v - 1) : 0;
    for (int64_t n = 0; n <= most; ++n) {
      const int64_t d = SparseVlmDeletions(n, v);
      ASSERT_GE(d, 0) << v << " " << n;
      ASSERT_LE(d, v - 1);
      ASSERT_EQ(d - SparseVlmClusters(d), n) << v << " " << n;
      if (d > 0) {
        ASSERT_LT((d - 1) - SparseVlmClusters(d - 1), n) << v << " " << n;
      }
    }
    ASSERT_EQ(SparseVlmDeletions(most + 1, v), -1) << v;
  }
}

// ---------------------------------------------------------------------------------
// Schedules.

TEST(SparseVlmSchedule, SparseLayersScaleToTheDepth) {
  EXPECT_EQ(SparseVlmLayers(32), (std::vector<int>{2, 6, 15}));
  EXPECT_EQ(SparseVlmLayers(4), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(SparseVlmLayers(16), (std::vector<int>{1, 3, 8}));
  EXPECT_EQ(SparseVlmLayers(40), (std::vector<int>{3, 8, 19}));
  EXPECT_EQ(SparseVlmLayers(2), (std::vector<int>{0}));
}

TEST(SparseVlmSchedule, V15CountsOnLlavaAndGeometricStagesOtherwise) {
  const LlavaConfig cfg;  // LLaVA-1.5-7B: 576 patches, 32 layers
  ReductionParams p;
  struct Case {
    int64_t keep, r2, r6, r15;
    double mean;
  };
  // 192: top-300 of 576 deletes 276 (c 9: 309 left), top-200 of 309 deletes 109 (c 4: 204),
  // top-110 of 204 deletes 94 (c 3: 113); layers 0–2 see 576, 3–6 309, 7–15 204, 16–31 113.
  // 128: 576 → 312 → 117 → 39; 64: 576 → 82 → 32 → 18.
  for (const Case& c :
       {Case{192, 267, 105, 91, 206.5}, Case{128, 264, 195, 78, 145.40625}, Case{64, 494, 50, 14, 82.25}}) {
    SCOPED_TRACE(c.keep);
    const ReductionSchedule s = SparseVlmSchedule(cfg, p, c.keep);
    EXPECT_EQ(s.llm[2], c.r2);
    EXPECT_EQ(s.llm[6], c.r6);
    EXPECT_EQ(s.llm[15], c.r15);
    EXPECT_EQ(s.llm_total(), c.r2 + c.r6 + c.r15);
    EXPECT_DOUBLE_EQ(MeanLlmVisual(s.llm, 576), c.mean);
  }
  // The plans invert those entries to v1.5's top-k sizes exactly.
  EXPECT_EQ(576 - SparseVlmDeletions(267, 576), 300);
  EXPECT_EQ(309 - SparseVlmDeletions(105, 309), 200);
  EXPECT_EQ(204 - SparseVlmDeletions(91, 204), 110);
  EXPECT_EQ(576 - SparseVlmDeletions(494, 576), 66);
  EXPECT_EQ(82 - SparseVlmDeletions(50, 82), 30);
  EXPECT_EQ(32 - SparseVlmDeletions(14, 32), 17);
  // Other budgets: geometric stages at 2, 6, 15 whose mean is the budget, every entry reachable.
  for (int64_t keep : {300, 191, 100, 60}) {
    SCOPED_TRACE(keep);
    const ReductionSchedule s = SparseVlmSchedule(cfg, p, keep);
    EXPECT_LE(std::abs(MeanLlmVisual(s.llm, 576) - static_cast<double>(keep)), 1.0) << MeanLlmVisual(s.llm, 576);
    int64_t v = 576;
    for (size_t l = 0; l < s.llm.size(); ++l) {
      if (l != 2 && l != 6 && l != 15) {
        EXPECT_EQ(s.llm[l], 0) << l;
      }
      EXPECT_GE(SparseVlmDeletions(s.llm[l], v), 0) << l;
      v -= s.llm[l];
    }
  }
  EXPECT_EQ(SparseVlmSchedule(cfg, p, 576).llm_total(), 0);
  // At least 1 + c tokens stay per sparse layer: the mean cannot go below 1854/32 ≈ 57.9.
  test::ExpectError([&] { SparseVlmSchedule(cfg, p, 40); }, {"out of reach", "57.9"});
  test::ExpectError([&] { SparseVlmSchedule(cfg, p, 0); }, {"impossible", "keep 1..576"});
}

// ---------------------------------------------------------------------------------
// End to end on the llava-tiny fixture (4 LLM layers: sparse layers 0, 1, 2; 16 image
// tokens at prompt rows 5..20).

class SparseVlm : public test::TinyModelTest {
 protected:
  PipelineResult Pipeline(const ReductionParams& p, int64_t keep, const ImageU8& image,
                          std::vector<int> ids = FixturePromptIds(), int new_tokens = 3) {
    PipelineRequest req;
    req.prompt_ids = std::move(ids);
    req.image = &image;
    req.method = &method_;
    req.params = p;
    req.budget = Budget{keep, -1};
    req.max_new_tokens = new_tokens;
    req.stop_at_eos = false;
    return RunPipeline(gemm_, *model_, req);
  }

  GenerateResult Run(const EncodedImage& enc, TextLayerHook hook, PositionPolicy pos, int new_tokens) {
    GenerateRequest req;
    req.prompt_ids = FixturePromptIds();
    req.image_features = &enc.image_features;
    req.image_meta = &enc.image_meta;
    req.max_new_tokens = new_tokens;
    req.stop_at_eos = false;
    req.keep_step_logits = true;
    req.text_options.hook = std::move(hook);
    req.text_options.compact_positions = pos == PositionPolicy::Compact;
    return Generate(gemm_, *model_, req);
  }

  const MethodInfo method_ = SparseVlmMethod();
  GemmContext gemm_{ComputeType::F32};
};

// Per plan: the net removal is the schedule's entry, |D| its smallest solution, n_sel
// deleted tokens routed to c new tokens whose weights sum to 1 each; only image tokens
// (of the span at `first`, or recycled ones) are candidates.
void ExpectPlansFollowSchedule(const PipelineResult& r, int32_t first) {
  size_t plan = 0;
  int64_t visual = 16;
  for (size_t l = 0; l < r.schedule.llm.size(); ++l) {
    if (r.schedule.llm[l] == 0) continue;
    ASSERT_LT(plan, r.trace.plans.size());
    const RecordedPlan& p = r.trace.plans[plan++];
    const int64_t net = r.schedule.llm[l], d = SparseVlmDeletions(net, visual);
    EXPECT_EQ(p.site, ReductionSite::Llm);
    EXPECT_EQ(p.layer, static_cast<int>(l));
    EXPECT_EQ(p.rule, CompressRule::FuseIntoNew);
    EXPECT_EQ(p.tokens_before - p.tokens_after, net) << "layer " << l;
    EXPECT_EQ(static_cast<int64_t>(p.kept.size() + p.discarded.size()), visual);
    EXPECT_EQ(static_cast<int64_t>(p.discarded.size()), d);
    EXPECT_EQ(static_cast<int64_t>(p.src.size()), SparseVlmSelected(d));
    double alpha = 0;
    for (float a : p.alpha) alpha += a;
    EXPECT_NEAR(alpha, static_cast<double>(SparseVlmClusters(d)), 1e-5);
    for (const TokenMeta& t : p.dst) EXPECT_EQ(t.orig_index, -1);
    for (const std::vector<TokenMeta>* set : {&p.kept, &p.discarded})
      for (const TokenMeta& t : *set) {
        EXPECT_EQ(t.role, TokenRole::Visual);
        EXPECT_TRUE(t.orig_index == -1 || (t.orig_index >= first && t.orig_index <= first + 15)) << t.orig_index;
      }
    visual -= net;
  }
  EXPECT_EQ(plan, r.trace.plans.size());
}

TEST_F(SparseVlm, BudgetsFollowTheScheduleWithTheImageAnywhere) {
  const ImageU8 photo = NoiseImage(3, 30, 20);
  EXPECT_EQ(method_.site, MethodSite::Llm);
  for (PositionPolicy pos : {PositionPolicy::KeepOriginal, PositionPolicy::Compact})
    for (int64_t keep : {5, 6, 8, 10, 12, 15, 16}) {
      SCOPED_TRACE(std::string(PositionPolicyName(pos)) + " keep " + std::to_string(keep));
      ReductionParams p;
      p.positions = pos;
      const PipelineResult r = Pipeline(p, keep, photo);
      EXPECT_EQ(r.generated.image_tokens, 16);
      EXPECT_EQ(r.generated.new_ids.size(), 3u);
      ExpectPlansFollowSchedule(r, 5);
      for (size_t l = 0; l < r.schedule.llm.size(); ++l)
        if (l > 2) {
          EXPECT_EQ(r.schedule.llm[l], 0);
        }
      // Mean over the 4 layers (keep 5 cannot go below (16 + 3·2)/4 = 5.5).
      EXPECT_LE(std::abs(r.flow.mean_llm_visual() - static_cast<double>(keep)), 0.75) << r.flow.mean_llm_visual();
      int64_t rows = 0;  // each layer's cache: what its attention saw, plus two decode steps
      for (const LayerTokens& t : r.flow.llm) rows += t.attention + 2;
      EXPECT_EQ(r.generated.kv_cache_bytes, rows * 2 * cfg().text.num_key_value_heads * cfg().text.head_dim() * 4);
      if (keep == 16) {
        EXPECT_TRUE(r.trace.plans.empty());
      }
    }
  test::ExpectError([&] { Pipeline(ReductionParams{}, 4, photo); }, {"out of reach"});
  // Three more tokens before the placeholder: the image spans rows 8..23.
  std::vector<int> ids = FixturePromptIds();
  ids.insert(ids.begin() + 1, {3148, 1001, 29901});
  const PipelineResult r = Pipeline(ReductionParams{}, 8, Photo(), ids);
  ASSERT_FALSE(r.trace.plans.empty());
  ExpectPlansFollowSchedule(r, 8);
}

// Runs the plans itself (as the Reducer does) and checks the sequence after each: prefix,
// kept image tokens in order, then the c new tokens (cluster means of their sources),
// then the text; the logits equal the Reducer's bit for bit.
TEST_F(SparseVlm, RecycledTokensAreClusterMeansBetweenTheImageAndTheText) {
  const EncodedImage enc = model_->EncodeImage(gemm_, Photo());
  for (int64_t keep : {6, 8, 11}) {
    SCOPED_TRACE(keep);
    ReductionParams p;
    const ReductionSchedule s = ScheduleForBudget(method_, cfg(), p, Budget{keep, -1}, kTextTokens);
    int checked = 0;
    const GenerateResult mine = Run(
        enc,
        [&](TextHookContext& ctx) {
          const int n = s.llm[static_cast<size_t>(ctx.layer)];
          if (n == 0 || ctx.cache_offset != 0) return;
          const Matrix before = ctx.hidden;
          const std::vector<TokenMeta> meta_before = ctx.meta;
          const LayerPlan plan = SparseVlmPlan(ctx, n, p);
          Compress(ctx.hidden, ctx.meta, plan);
          const int64_t c = SparseVlmClusters(static_cast<int64_t>(plan.filter.discard.size()));
          ASSERT_EQ(static_cast<int64_t>(ctx.meta.size()), static_cast<int64_t>(meta_before.size()) - n);
          // Rows 0..4: the prompt before the image; then the kept image tokens in order.
          for (int i = 0; i < 5; ++i) EXPECT_EQ(ctx.meta[static_cast<size_t>(i)].orig_index, i);
          size_t row = 5;
          for (int32_t kept : plan.filter.keep)
            EXPECT_EQ(ctx.meta[row++].orig_index, meta_before[static_cast<size_t>(kept)].orig_index);
          // The new tokens: new token g = Σ α·(its sources' rows before), α = 1/|cluster|.
          for (int64_t g = 0; g < c; ++g, ++row) {
            const TokenMeta& t = ctx.meta[row];
            EXPECT_EQ(t.orig_index, -1);
            EXPECT_EQ(t.role, TokenRole::Visual);
            EXPECT_EQ(t.pos_id, ctx.meta[static_cast<size_t>(5 + plan.filter.keep.size() - 1)].pos_id);
            std::vector<double> mean(static_cast<size_t>(before.cols()), 0.0);
            int members = 0;
            float size = 0;
            for (size_t src = 0; src < plan.filter.discard.size(); ++src)
              for (int32_t q = plan.routing.src_begin[src]; q < plan.routing.src_begin[src + 1]; ++q)
                if (plan.routing.dst[static_cast<size_t>(q)] == NewToken(static_cast<int32_t>(g))) {
                  ++members;
                  size += meta_before[static_cast<size_t>(plan.filter.discard[src])].size;
                  for (int64_t col = 0; col < before.cols(); ++col)
                    mean[static_cast<size_t>(col)] += before.at(plan.filter.discard[src], col);
                }
            ASSERT_GT(members, 0);
            float alpha_sum = 0;
            for (float a : plan.routing.alpha) alpha_sum += a;
            EXPECT_NEAR(alpha_sum, static_cast<float>(c), 1e-5f);
            for (int64_t col = 0; col < before.cols(); ++col)
              EXPECT_NEAR(ctx.hidden.at(static_cast<int64_t>(row), col), mean[static_cast<size_t>(col)] / members,
                          1e-5);
            EXPECT_EQ(t.size, size);  // the sizes absorbed (recycled sources count theirs)
          }
          // Then the text (prompt rows 21..), untouched.
          for (int32_t o = 21; row < ctx.meta.size(); ++row, ++o) EXPECT_EQ(ctx.meta[row].orig_index, o);
          ++checked;
        },
        PositionPolicy::KeepOriginal, 3);
    EXPECT_GE(checked, 1);
    ReductionTrace trace;
    Reducer reducer(method_, p, s, &trace);
    const GenerateResult composed = Run(enc, reducer.TextHook(), PositionPolicy::KeepOriginal, 3);
    EXPECT_EQ(static_cast<int>(trace.plans.size()), checked);
    EXPECT_EQ(mine.step_logits, composed.step_logits);
  }
}

TEST_F(SparseVlm, DeterministicAcrossRunsAndThreadCounts) {
  const ImageU8 img = NoiseImage(7, 40, 30);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const PipelineResult one = Pipeline(ReductionParams{}, 8, img);
  omp_set_num_threads(2);
  const PipelineResult two = Pipeline(ReductionParams{}, 8, img);
  const PipelineResult again = Pipeline(ReductionParams{}, 8, img);
  omp_set_num_threads(saved);
  ASSERT_EQ(one.trace.plans.size(), two.trace.plans.size());
  ASSERT_EQ(two.trace.plans.size(), again.trace.plans.size());
  ASSERT_FALSE(one.trace.plans.empty());
  for (size_t i = 0; i < one.trace.plans.size(); ++i) {
    EXPECT_EQ(test::OrigIndices(one.trace.plans[i].discarded), test::OrigIndices(two.trace.plans[i].discarded)) << "plan " << i;
    EXPECT_EQ(test::OrigIndices(two.trace.plans[i].discarded), test::OrigIndices(again.trace.plans[i].discarded)) << "plan " << i;
    EXPECT_EQ(test::OrigIndices(two.trace.plans[i].src), test::OrigIndices(again.trace.plans[i].src)) << "plan " << i;
    EXPECT_EQ(two.trace.plans[i].alpha, again.trace.plans[i].alpha) << "plan " << i;
    EXPECT_EQ(two.trace.plans[i].scores, again.trace.plans[i].scores) << "plan " << i;
  }
  EXPECT_EQ(one.generated.new_ids, two.generated.new_ids);
  EXPECT_EQ(two.generated.logits_last, again.generated.logits_last);  // same threads: bit-identical
}

// Recycled tokens have no original index, so the replay applies the recorded plans by
// row: the decoded tokens are appended after the prompt, so every planned row (image
// tokens, before the text) is the same row in the longer sequence.
TEST_F(SparseVlm, DecodingAfterTheReductionEqualsRecomputingTheReducedSequence) {
  const EncodedImage enc = model_->EncodeImage(gemm_, Photo());
  for (PositionPolicy pos : {PositionPolicy::KeepOriginal, PositionPolicy::Compact}) {
    SCOPED_TRACE(PositionPolicyName(pos));
    ReductionParams p;
    p.positions = pos;
    const ReductionSchedule s = ScheduleForBudget(method_, cfg(), p, Budget{8, -1}, kTextTokens);
    std::vector<std::pair<int, LayerPlan>> plans;
    const GenerateResult gen = Run(
        enc,
        [&](TextHookContext& ctx) {
          const int n = s.llm[static_cast<size_t>(ctx.layer)];
          if (n == 0 || ctx.cache_offset != 0) return;
          plans.emplace_back(ctx.layer, SparseVlmPlan(ctx, n, p));
          Compress(ctx.hidden, ctx.meta, plans.back().second);
        },
        pos, 5);
    ASSERT_EQ(plans.size(), 3u);
    ASSERT_EQ(gen.new_ids.size(), 5u);
    LlamaDecoder dec(cfg().text, model_->text());
    std::vector<int> ids = FixturePromptIds();
    for (size_t step = 0; step < gen.new_ids.size(); ++step) {
      Matrix x;
      std::vector<TokenMeta> meta;
      BuildPromptEmbeddings(dec, ids, cfg().image_token_index, &enc.image_features, &enc.image_meta, &x, &meta);
      KvCache cache = dec.NewCache();
      TextRunOptions opts;
      opts.hook = [&](TextHookContext& ctx) {
        for (const auto& [layer, plan] : plans)
          if (layer == ctx.layer) Compress(ctx.hidden, ctx.meta, plan);
      };
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

TEST_F(SparseVlm, MethodInfoDescribesTheMethod) {
  EXPECT_EQ(method_.name, "sparsevlm");
  EXPECT_EQ(method_.site, MethodSite::Llm);
  EXPECT_NE(method_.llm_plan, nullptr);
  EXPECT_NE(method_.schedule, nullptr);
  EXPECT_EQ(method_.vision_plan, nullptr);
  EXPECT_EQ(method_.pre_llm_plan, nullptr);
  EXPECT_FALSE(method_.proportional_attention);
  EXPECT_NE(method_.summary.find("v1.5"), std::string::npos);
  EXPECT_EQ(method_.positions, PositionPolicy::Compact);  // v1.5 renumbers
  EXPECT_NE(std::find(method_.params.begin(), method_.params.end(), "--positions"), method_.params.end());
}

}  // namespace
}  // namespace ficoco
