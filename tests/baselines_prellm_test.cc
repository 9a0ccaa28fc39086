// The baselines acting between the encoder and the projector (random, topk-cls, pool,
// visionzip, prumerge, prumerge+): hand-computed plans on a made-up 4×4 encoder output
// (q/k/hidden written by hand, expected values worked out in the comments), budgets and
// order invariants, determinism, refused budgets, and end-to-end runs through
// RunPipeline on the llava-tiny fixture.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>

#include "base/error.h"
#include "engine/llava_model.h"
#include "engine/pipeline.h"
#include "image/image.h"
#include "reduce/baselines_prellm.h"
#include "reduce/budget.h"
#include "reduce/filter.h"
#include "reduce/compress.h"
#include "test_support.h"
#include "tiny_model_test.h"

namespace ficoco {
namespace {

using test::NoiseImage;

using test::ExpectError;

// A made-up encoder output: [CLS, p0 … p(g²−1)] with hand-written queries, keys
// (`heads` heads of `head_dim`) and hidden states of width `width`.
struct HandOutput {
  HandOutput(int grid, int heads, int head_dim, int width)
      : g(grid),
        q(grid * grid + 1, heads * head_dim),
        k(grid * grid + 1, heads * head_dim),
        hidden(grid * grid + 1, width),
        meta(VisionTokenMeta(grid)),
        signals(q, k, AttentionShape{heads, heads, head_dim}, AttentionMask{}) {}
  // Key and hidden row of patch p (row p + 1).
  float* patch_key(int p) { return k.row(p + 1); }
  float* patch_hidden(int p) { return hidden.row(p + 1); }
  VisionHookContext ctx() { return VisionHookContext{2, 3, g, hidden, meta, signals}; }
  // Runs the plan and applies it, as Reducer::PreLlmHook does.
  LayerPlan Apply(VisionPlanFn fn, int64_t keep, const ReductionParams& p = {}) {
    VisionHookContext c = ctx();
    LayerPlan plan = fn(c, g * g - keep, p);
    Compress(hidden, meta, plan);
    return plan;
  }
  std::vector<int32_t> PatchesOut() const {  // patch index of each output row after CLS
    std::vector<int32_t> out;
    for (size_t i = 1; i < meta.size(); ++i) out.push_back(meta[i].orig_index - 1);
    return out;
  }

  int g;
  Matrix q, k, hidden;
  std::vector<TokenMeta> meta;
  AttentionSignals signals;
};

// Mean over heads of the per-head softmax of [CLS]'s row, computed here in double.
std::vector<double> ClsMeanProbs(const HandOutput& h, int heads, int head_dim) {
  const int64_t n = h.k.rows();
  std::vector<double> mean(static_cast<size_t>(n), 0.0);
  for (int hd = 0; hd < heads; ++hd) {
    std::vector<double> z(static_cast<size_t>(n));
    double zmax = -1e300, sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int t = 0; t < head_dim; ++t) dot += double(h.q.at(0, hd * head_dim + t)) * h.k.at(j, hd * head_dim + t);
      z[j] = dot / std::sqrt(double(head_dim));
      zmax = std::max(zmax, z[j]);
    }
    for (int64_t j = 0; j < n; ++j) sum += std::exp(z[j] - zmax);
    for (int64_t j = 0; j < n; ++j) mean[j] += std::exp(z[j] - zmax) / sum / heads;
  }
  return mean;
}

// Two heads of width 1, [CLS] query (1, 1): head 0's logits are the keys' first
// entries, head 1's the second. Patch 5 = (8, −8), patches 2 and 9 = (0, 3), patch 12 =
// (2, 2), the rest (and [CLS]) 0. Head-mean probabilities: p5 ≈ (0.9925 + 0)/2 = 0.496,
// p2 = p9 ≈ (0.0003 + 0.332)/2 = 0.166, p12 ≈ (0.0025 + 0.122)/2 = 0.062, others ≈ 0.008.
// Mean LOGITS would rank 12 (2) above 2, 9 (1.5) above 5 (0): the order tells them apart.
void ClsCase(HandOutput& h) {
  h.q.at(0, 0) = h.q.at(0, 1) = 1;
  h.patch_key(5)[0] = 8, h.patch_key(5)[1] = -8;
  h.patch_key(2)[1] = h.patch_key(9)[1] = 3;
  h.patch_key(12)[0] = h.patch_key(12)[1] = 2;
  for (int p = 0; p < 16; ++p)
    for (int c = 0; c < h.hidden.cols(); ++c) h.patch_hidden(p)[c] = static_cast<float>(p * 10 + c);
}

// ---------------------------------------------------------------------------------------
// topk-cls
// ---------------------------------------------------------------------------------------

TEST(TopkCls, KeepsTheMostAttendedPatchesByMeanOfHeadProbabilitiesInRasterOrder) {
  const std::vector<std::pair<int64_t, std::vector<int32_t>>> cases = {
      {1, {5}}, {2, {2, 5}} /* 2 and 9 tie: the lower index stays */, {3, {2, 5, 9}}, {4, {2, 5, 9, 12}}};
  for (const auto& [keep, expected] : cases) {
    HandOutput h(4, 2, 1, 3);
    ClsCase(h);
    const std::vector<double> probs = ClsMeanProbs(h, 2, 1);
    EXPECT_NEAR(probs[6], 0.4963, 1e-3);  // patch 5
    EXPECT_NEAR(probs[3], 0.1660, 1e-3);  // patch 2
    const Matrix before = h.hidden;
    const LayerPlan plan = h.Apply(TopkClsPlan, keep);
    EXPECT_EQ(plan.rule, CompressRule::Prune);
    EXPECT_EQ(h.PatchesOut(), expected) << "keep " << keep;
    EXPECT_EQ(h.meta[0].role, TokenRole::Cls);
    ASSERT_EQ(h.hidden.rows(), keep + 1);
    for (int64_t i = 1; i <= keep; ++i)  // pruning leaves the survivors untouched
      for (int c = 0; c < 3; ++c) EXPECT_EQ(h.hidden.at(i, c), before.at(expected[i - 1] + 1, c));
    for (size_t i = 0; i < plan.filter.scores.size(); ++i) EXPECT_NEAR(-plan.filter.scores[i], probs[i + 1], 1e-6);
  }
}

TEST(TopkCls, RefusesToRemoveEveryPatch) {
  HandOutput h(4, 2, 1, 3);
  ClsCase(h);
  VisionHookContext c = h.ctx();
  ExpectError([&] { TopkClsPlan(c, 16, {}); }, {"topk-cls", "16 of the 16 patches"});
  ExpectError([&] { TopkClsPlan(c, -1, {}); }, {"topk-cls"});
}

// ---------------------------------------------------------------------------------------
// random
// ---------------------------------------------------------------------------------------

// The documented draw, written out again from the comment in random.cc.
std::vector<int32_t> DocumentedDraw(int64_t n, int64_t keep, uint64_t seed) {
  std::vector<int32_t> a(static_cast<size_t>(n));
  std::iota(a.begin(), a.end(), 0);
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < keep; ++i) {
    const uint64_t m = static_cast<uint64_t>(n - i);
    const uint64_t low = (~m + 1) % m;  // 2^64 mod m
    uint64_t r;
    do r = rng(); while (r < low);
    std::swap(a[i], a[i + static_cast<int64_t>(r % m)]);
  }
  return a;
}

TEST(Random, FollowsTheDocumentedDrawAndIsPinnedAcrossPlatforms) {
  for (uint64_t seed : {0ull, 1ull, 42ull, 0xdeadbeefull})
    for (int64_t keep : {0, 1, 5, 16}) EXPECT_EQ(RandomPermutationPrefix(16, keep, seed), DocumentedDraw(16, keep, seed));
  // mt19937_64's sequence is fixed by the standard, so this prefix is the same on
  // every platform and compiler (a change here changes every published random run).
  const std::vector<int32_t> pinned = RandomPermutationPrefix(576, 6, 0);
  EXPECT_EQ(std::vector<int32_t>(pinned.begin(), pinned.begin() + 6), (std::vector<int32_t>{510, 43, 89, 234, 4, 321}));
}

TEST(Random, SameSeedSameSetOtherSeedOtherSetRasterOrder) {
  auto kept = [](uint64_t seed, int64_t keep) {
    HandOutput h(4, 2, 1, 3);
    ClsCase(h);
    ReductionParams p;
    p.seed = seed;
    const LayerPlan plan = h.Apply(RandomPlan, keep, p);
    EXPECT_EQ(plan.rule, CompressRule::Prune);
    EXPECT_EQ(h.hidden.rows(), keep + 1);
    const std::vector<int32_t> out = h.PatchesOut();
    EXPECT_TRUE(std::is_sorted(out.begin(), out.end()));
    EXPECT_EQ(std::set<int32_t>(out.begin(), out.end()).size(), out.size());
    // The kept patches are the first `keep` of the shuffle, and their scores say so.
    std::vector<int32_t> prefix = RandomPermutationPrefix(16, keep, seed);
    prefix.resize(static_cast<size_t>(keep));
    std::sort(prefix.begin(), prefix.end());
    EXPECT_EQ(out, prefix);
    for (int32_t p : out) EXPECT_LT(plan.filter.scores[static_cast<size_t>(p)], static_cast<float>(keep));
    return out;
  };
  EXPECT_EQ(kept(7, 8), kept(7, 8));
  EXPECT_NE(kept(7, 8), kept(8, 8));
  EXPECT_NE(kept(0, 5), kept(1, 5));
}

TEST(Random, EveryPatchIsEquallyLikely) {
  // 4000 seeds, 4 of 16 kept: each patch is kept ~1000 times (binomial sd ≈ 27).
  std::vector<int> hits(16, 0), first(16, 0);
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    const std::vector<int32_t> a = RandomPermutationPrefix(16, 4, seed);
    for (int i = 0; i < 4; ++i) ++hits[static_cast<size_t>(a[static_cast<size_t>(i)])];
    ++first[static_cast<size_t>(a[0])];
  }
  for (int p = 0; p < 16; ++p) {
    EXPECT_NEAR(hits[p], 1000, 150) << "patch " << p;
    EXPECT_NEAR(first[p], 250, 80) << "patch " << p;
  }
}

// ---------------------------------------------------------------------------------------
// pool
// ---------------------------------------------------------------------------------------

TEST(Pool, GridsAreNearestToSquareWithBothSidesOnTheGrid) {
  auto shape = [](int64_t keep, int g) {
    const PoolShape s = PoolGridFor(keep, g);
    return std::make_pair(s.rows, s.cols);
  };
  EXPECT_EQ(shape(64, 24), std::make_pair(8, 8));
  EXPECT_EQ(shape(144, 24), std::make_pair(12, 12));
  EXPECT_EQ(shape(192, 24), std::make_pair(16, 12));
  EXPECT_EQ(shape(128, 24), std::make_pair(16, 8));
  EXPECT_EQ(shape(576, 24), std::make_pair(24, 24));
  EXPECT_EQ(shape(48, 24), std::make_pair(8, 6));
  EXPECT_EQ(shape(1, 24), std::make_pair(1, 1));
  EXPECT_EQ(shape(24, 24), std::make_pair(6, 4));
  EXPECT_EQ(shape(46, 24), std::make_pair(23, 2));  // 46 = 2·23: the only grid that fits
  EXPECT_EQ(shape(6, 4), std::make_pair(3, 2));
  EXPECT_EQ(shape(12, 4), std::make_pair(4, 3));
  // 64 of 24 = exact 3×3 windows.
  for (int i = 0; i <= 8; ++i) EXPECT_EQ(PoolBandStart(i, 24, 8), 3 * i);
  // 16 bands of 24: widths 1 and 2 alternate; the bands tile the axis.
  for (int i = 0; i < 16; ++i) EXPECT_EQ(PoolBandStart(i, 24, 16), (24 * i) / 16);
}

TEST(Pool, RefusesKeepsWithoutAGridAndNamesTheNearestReachable) {
  ExpectError([] { PoolGridFor(29, 24); }, {"--keep 29", "28 (7×4)", "30 (6×5)"});
  ExpectError([] { PoolGridFor(5, 4); }, {"--keep 5", "4 (2×2)", "6 (3×2)"});
  ExpectError([] { PoolGridFor(7, 4); }, {"6 (3×2)", "8 (4×2)"});
  ExpectError([] { PoolGridFor(17, 4); }, {"16 (4×4)"});
  ExpectError([] { PoolGridFor(0, 4); }, {"--keep 0", "1 (1×1)"});
  ExpectError([] { PoolGridFor(575, 24); }, {"--keep 575", "nearest reachable keeps", "576 (24×24)"});
}

// Expected window members (patch indices) for a 4×4 grid, worked out from the bands.
const std::vector<std::pair<int64_t, std::vector<std::vector<int>>>>& PoolCases() {
  static const std::vector<std::pair<int64_t, std::vector<std::vector<int>>>> cases = {
      // 2×2: row bands [0,2) [2,4), column bands [0,2) [2,4).
      {4, {{0, 1, 4, 5}, {2, 3, 6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}}},
      // 3×2: row bands [0,1) [1,2) [2,4) (⌊4i/3⌋ = 0, 1, 2, 4).
      {6, {{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}}},
      // 4×3: column bands [0,1) [1,2) [2,4).
      {12, {{0}, {1}, {2, 3}, {4}, {5}, {6, 7}, {8}, {9}, {10, 11}, {12}, {13}, {14, 15}}},
      // 3×1 and 1×1.
      {3, {{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11, 12, 13, 14, 15}}},
      {1, {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}},
  };
  return cases;
}

TEST(Pool, EachWindowBecomesItsMeanAtItsFirstPatchInWindowRasterOrder) {
  for (const auto& [keep, windows] : PoolCases()) {
    HandOutput h(4, 2, 1, 2);
    for (int p = 0; p < 16; ++p) h.patch_hidden(p)[0] = static_cast<float>(p), h.patch_hidden(p)[1] = static_cast<float>(p * p);
    h.hidden.at(0, 0) = h.hidden.at(0, 1) = -7;
    const LayerPlan plan = h.Apply(PoolPlan, keep);
    SCOPED_TRACE("keep " + std::to_string(keep));
    EXPECT_EQ(plan.rule, CompressRule::Average);
    ASSERT_EQ(h.hidden.rows(), keep + 1);
    EXPECT_EQ(h.hidden.at(0, 0), -7);  // CLS untouched
    for (size_t w = 0; w < windows.size(); ++w) {
      double m0 = 0, m1 = 0;
      for (int p : windows[w]) m0 += p, m1 += p * p;
      m0 /= windows[w].size(), m1 /= windows[w].size();
      EXPECT_EQ(h.meta[w + 1].orig_index - 1, windows[w].front()) << "window " << w;
      EXPECT_NEAR(h.hidden.at(static_cast<int64_t>(w) + 1, 0), m0, 1e-5) << "window " << w;
      EXPECT_NEAR(h.hidden.at(static_cast<int64_t>(w) + 1, 1), m1, 1e-4) << "window " << w;
    }
  }
}

TEST(Pool, PlanRefusesUnpoolableKeepsAndMissingPatches) {
  HandOutput h(4, 2, 1, 2);
  VisionHookContext c = h.ctx();
  ExpectError([&] { PoolPlan(c, 16 - 5, {}); }, {"--keep 5", "4 (2×2)", "6 (3×2)"});
  std::vector<TokenMeta> partial = h.meta;
  partial.erase(partial.begin() + 3);  // patch 2 gone
  Matrix hidden(16, 2);
  VisionHookContext c2{2, 3, 4, hidden, partial, h.signals};
  ExpectError([&] { PoolPlan(c2, 15 - 4, {}); }, {"pool", "lacks patches"});
}

// ---------------------------------------------------------------------------------------
// visionzip
// ---------------------------------------------------------------------------------------

// Two heads of width 2, [CLS] query (1, 0 | 0, 0): head 0's logit is the key's entry 0
// over √2, head 1 is uniform. Patches 3, 6, 10 have key entry 0 = 4 (dominant), the
// others 0 (all tied). The head-mean key of a patch is ((k0 + k2)/2, (k1 + k3)/2); the
// others get k2 = 2·dx, k1 = 2·dy so that their head-mean key points along (dx, dy).
void VisionZipCase(HandOutput& h, const std::vector<std::pair<float, float>>& dirs) {
  h.q.at(0, 0) = 1;
  for (int p : {3, 6, 10}) h.patch_key(p)[0] = 4;
  for (int p = 0; p < 16; ++p) {
    h.patch_key(p)[2] = 2 * dirs[p].first;
    h.patch_key(p)[1] = 2 * dirs[p].second;
    for (int c = 0; c < 3; ++c) h.patch_hidden(p)[c] = static_cast<float>(c == 0 ? p : c == 1 ? 10 + p : p * p);
  }
  for (int c = 0; c < 3; ++c) h.hidden.at(0, c) = 100;
}

TEST(VisionZip, DominantThenTargetPlusMeanOfMembers) {
  // keep 6, contextual share 0.5: C = 3 contextual, D = 3 dominant (3, 6, 10).
  // R = 0 1 2 4 5 7 8 9 11 12 13 14 15 (13), δ = ⌊13/3⌋ = 4: targets R[0] = 0, R[4] = 5,
  // R[8] = 11 along (1,0), (0,1), (−1,0). Members by cosine: 0 ← 1 2 9, 5 ← 4 7 15,
  // 11 ← 8 12 13 14.
  std::vector<std::pair<float, float>> dirs(16, {0.f, 0.f});
  dirs[0] = {1, 0}, dirs[5] = {0, 1}, dirs[11] = {-1, 0};
  dirs[1] = {1, 0.1f}, dirs[2] = {1, -0.2f}, dirs[9] = {0.9f, 0.1f};
  dirs[4] = {0.1f, 1}, dirs[7] = {-0.2f, 1}, dirs[15] = {0.3f, 1};
  dirs[8] = {-1, 0.3f}, dirs[12] = {-1, -0.1f}, dirs[13] = {-1, 0.2f}, dirs[14] = {-1, -0.5f};
  dirs[3] = dirs[6] = dirs[10] = {0.5f, 0.5f};
  HandOutput h(4, 2, 2, 3);
  VisionZipCase(h, dirs);
  const Matrix x = h.hidden;
  ReductionParams p;
  p.visionzip_contextual = 0.5f;
  const LayerPlan plan = h.Apply(VisionZipPlan, 6, p);
  EXPECT_EQ(plan.rule, CompressRule::Additive);
  EXPECT_EQ(h.PatchesOut(), (std::vector<int32_t>{3, 6, 10, 0, 5, 11}));
  ASSERT_EQ(h.hidden.rows(), 7);
  auto expect_row = [&](int64_t row, int target, const std::vector<int>& members) {
    for (int c = 0; c < 3; ++c) {
      double mean = 0;
      for (int m : members) mean += x.at(m + 1, c);
      if (!members.empty()) mean /= members.size();
      EXPECT_NEAR(h.hidden.at(row, c), x.at(target + 1, c) + mean, 1e-4) << "row " << row << " col " << c;
    }
  };
  for (int c = 0; c < 3; ++c) EXPECT_EQ(h.hidden.at(0, c), 100);  // CLS first, untouched
  expect_row(1, 3, {}), expect_row(2, 6, {}), expect_row(3, 10, {});
  expect_row(4, 0, {1, 2, 9}), expect_row(5, 5, {4, 7, 15}), expect_row(6, 11, {8, 12, 13, 14});
  // α = 1/|members|: x_t + Σ α x_m is "target + mean", not the mean of target and members.
  for (int64_t s = 0; s < plan.routing.num_sources(); ++s)
    for (int32_t q = plan.routing.src_begin[s]; q < plan.routing.src_begin[s + 1]; ++q)
      EXPECT_FLOAT_EQ(plan.routing.alpha[q], plan.routing.dst[q] == 12 ? 0.25f : 1.0f / 3);
}

TEST(VisionZip, TargetWithoutMembersStaysAsItIs) {
  std::vector<std::pair<float, float>> dirs(16, {1.f, 0.05f});  // everyone joins target 0 …
  dirs[5] = {0, 1}, dirs[11] = {-1, 0};                          // … but the targets 5 and 11
  HandOutput h(4, 2, 2, 3);
  VisionZipCase(h, dirs);
  const Matrix x = h.hidden;
  ReductionParams p;
  p.visionzip_contextual = 0.5f;
  h.Apply(VisionZipPlan, 6, p);
  EXPECT_EQ(h.PatchesOut(), (std::vector<int32_t>{3, 6, 10, 0, 5, 11}));
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(h.hidden.at(5, c), x.at(6, c));    // target 5, bit for bit
    EXPECT_EQ(h.hidden.at(6, c), x.at(12, c));   // target 11
    double mean = 0;
    for (int m : {1, 2, 4, 7, 8, 9, 12, 13, 14, 15}) mean += x.at(m + 1, c);
    EXPECT_NEAR(h.hidden.at(4, c), x.at(1, c) + mean / 10, 1e-4);
  }
}

TEST(VisionZip, BudgetSplitAndNoContextualTokens) {
  std::vector<std::pair<float, float>> dirs(16, {1.f, 0.f});
  for (int64_t keep : {1, 3, 4, 8, 12, 15}) {
    for (float share : {0.0f, 0.16f, 0.5f, 1.0f}) {
      HandOutput h(4, 2, 2, 3);
      VisionZipCase(h, dirs);
      ReductionParams p;
      p.visionzip_contextual = share;
      h.Apply(VisionZipPlan, keep, p);
      SCOPED_TRACE("keep " + std::to_string(keep) + " share " + std::to_string(share));
      ASSERT_EQ(h.hidden.rows(), keep + 1);
      const int64_t c = std::llround(share * keep), d = keep - c;
      const std::vector<int32_t> out = h.PatchesOut();
      // Dominant part ascending, contextual part ascending.
      EXPECT_TRUE(std::is_sorted(out.begin(), out.begin() + d));
      EXPECT_TRUE(std::is_sorted(out.begin() + d, out.end()));
      if (share == 0.0f && keep == 4) {
        EXPECT_EQ(out, (std::vector<int32_t>{0, 3, 6, 10}));  // ties: lower index
      }
      if (share == 0.0f && keep == 3) {
        EXPECT_EQ(out, (std::vector<int32_t>{3, 6, 10}));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// prumerge / prumerge+
// ---------------------------------------------------------------------------------------

// Scores: 60 at patch 4, 50 at patch 7, 1..14 on the others in raster order.
std::vector<float> PruMergeScores() {
  std::vector<float> s(16);
  float v = 1;
  for (int p = 0; p < 16; ++p) s[p] = p == 4 ? 60.f : p == 7 ? 50.f : v++;
  return s;
}

TEST(PruMerge, IqrOutliersAndSelection) {
  // Sorted: 1..14, 50, 60. Q1 at 0.25·15 = 3.75 → 4.75, Q3 at 11.25 → 12.25,
  // IQR 7.5, bound 12.25 + 11.25 = 23.5: two outliers.
  EXPECT_EQ(PruMergeOutlierCount(PruMergeScores()), 2);
  EXPECT_EQ(PruMergeOutlierCount(std::vector<float>(16, 0.5f)), 0);
  // prumerge: top by score, in score order.
  EXPECT_EQ(PruMergeSelect(PruMergeScores(), 3, false), (std::vector<int32_t>{4, 7, 15}));
  // prumerge+: k' = 2 (4, 7), then samples 0, 2, 4, 6, 8, … (s = ⌊16/6⌋ = 2) not taken.
  EXPECT_EQ(PruMergeSelect(PruMergeScores(), 6, true), (std::vector<int32_t>{4, 7, 0, 2, 6, 8}));
  EXPECT_EQ(PruMergeSelect(PruMergeScores(), 2, true), (std::vector<int32_t>{4, 7}));
  EXPECT_EQ(PruMergeSelect(PruMergeScores(), 1, true), (std::vector<int32_t>{4}));
  // s = 5 for keep 3: samples 0, 5, 10, 15 → 0 only needed.
  EXPECT_EQ(PruMergeSelect(PruMergeScores(), 3, true), (std::vector<int32_t>{4, 7, 0}));
  // One outlier (Q1 = Q3 = 0.5): k' = 1 (patch 9), then s = 4: 0, 4, 8.
  std::vector<float> flat(16, 0.5f);
  flat[9] = 0.6f;
  EXPECT_EQ(PruMergeSelect(flat, 4, true), (std::vector<int32_t>{9, 0, 4, 8}));
  // No outlier: k' = max(1, 0) = 1 (ties: patch 0), then 4, 8, 12 (0 is taken).
  EXPECT_EQ(PruMergeSelect(std::vector<float>(16, 0.5f), 4, true), (std::vector<int32_t>{0, 4, 8, 12}));
  const std::vector<int32_t> all = PruMergeSelect(PruMergeScores(), 16, true);
  EXPECT_EQ(std::set<int32_t>(all.begin(), all.end()).size(), 16u);
  ExpectError([] { PruMergeSelect(PruMergeScores(), 0, true); }, {"prumerge"});
}

TEST(PruMerge, NearestNeighboursByKeyCosineAmongAllOtherPatches) {
  // 2-D keys: 0 (1,0), 1 (1,0.1), 2 (0,1), 3 (−1,0), 4 (1,−0.1), 5 (0.7,0.7); norms differ.
  Matrix keys(6, 2);
  const float v[6][2] = {{3, 0}, {1, 0.1f}, {0, 2}, {-1, 0}, {1, -0.1f}, {0.7f, 0.7f}};
  for (int i = 0; i < 6; ++i) keys.at(i, 0) = v[i][0], keys.at(i, 1) = v[i][1];
  const auto nn = NearestByKeyCosine(keys, {0, 2, 3}, 2);
  EXPECT_EQ(nn[0], (std::vector<int32_t>{1, 4}));  // cos 0.995 tie: lower index first
  EXPECT_EQ(nn[1], (std::vector<int32_t>{5, 1}));  // 0.707, then 0.0995
  EXPECT_EQ(nn[2], (std::vector<int32_t>{2, 5}));  // 0, then −0.707 (1 and 4: −0.995; 0: −1)
  EXPECT_EQ(NearestByKeyCosine(keys, {0}, 32)[0].size(), 5u);  // never more than the others
}

TEST(PruMerge, PlanAddsClsWeightedNeighboursToKeptInScoreOrder) {
  // On 4×4 every other patch is among the 32 nearest: each kept i becomes
  // x_i + Σ_{j ≠ i} a_j x_j over kept and discarded neighbours alike, every x_j taken
  // before any update: |K|·15 = 45 routed pairs.
  for (bool plus : {false, true}) {
    HandOutput h(4, 2, 1, 3);
    ClsCase(h);
    const std::vector<double> a = ClsMeanProbs(h, 2, 1);
    const Matrix x = h.hidden;
    const LayerPlan plan = h.Apply(plus ? PruMergePlusPlan : PruMergePlan, 3);
    SCOPED_TRACE(plus ? "prumerge+" : "prumerge");
    EXPECT_EQ(plan.rule, CompressRule::Additive);
    // prumerge: score order 5, 2, 9 (ties lower first). prumerge+: sorted scores 0.008
    // ×12, 0.062, 0.166 ×2, 0.496 → Q1 = 0.008, Q3 = 0.008 + 0.25·0.054 ≈ 0.022, bound
    // ≈ 0.042: 4 outliers ≥ keep, so the top 3 as well.
    EXPECT_EQ(h.PatchesOut(), (std::vector<int32_t>{5, 2, 9}));
    EXPECT_EQ(plan.routing.num_pairs(), 3 * 15);
    ASSERT_EQ(h.hidden.rows(), 4);
    const std::set<int> kept = {5, 2, 9};
    for (int64_t row = 1; row <= 3; ++row) {
      const int i = h.meta[row].orig_index - 1;
      for (int c = 0; c < 3; ++c) {
        double want = x.at(i + 1, c);
        for (int j = 0; j < 16; ++j)
          if (j != i) want += a[j + 1] * x.at(j + 1, c);
        EXPECT_NEAR(h.hidden.at(row, c), want, 1e-4) << "patch " << i << " col " << c;
      }
    }
  }
}

TEST(PruMerge, ThirtyTwoNearestOnALargerGridRouteEveryMember) {
  // 8×8 grid (64 patches), pseudo-random keys: a patch j (kept or discarded) goes to
  // exactly the kept patches that have j among their 32 key-cosine nearest (recomputed
  // here from the full cosine matrix), with weight a_j.
  HandOutput h(8, 2, 2, 2);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);  // values only need to be distinct
  for (int64_t r = 0; r < h.k.rows(); ++r)
    for (int c = 0; c < 4; ++c) h.k.at(r, c) = u(rng), h.q.at(r, c) = u(rng);
  VisionHookContext ctx = h.ctx();
  const LayerPlan plan = PruMergePlan(ctx, 64 - 10, {});
  std::vector<double> cls = ClsMeanProbs(h, 2, 2);
  std::vector<int32_t> kept = plan.order;
  kept.erase(kept.begin());  // CLS
  ASSERT_EQ(kept.size(), 10u);
  for (size_t i = 1; i < kept.size(); ++i) EXPECT_GE(cls[kept[i - 1]], cls[kept[i]]);  // score order
  auto cosine = [&](int a, int b) {
    double d = 0, na = 0, nb = 0;
    for (int c = 0; c < 4; ++c) d += h.k.at(a, c) * h.k.at(b, c), na += h.k.at(a, c) * h.k.at(a, c), nb += h.k.at(b, c) * h.k.at(b, c);
    return d / std::sqrt(na * nb);
  };
  std::map<std::pair<int, int>, float> want, got;
  for (int32_t i : kept) {
    std::vector<int> others;
    for (int j = 1; j <= 64; ++j)
      if (j != i) others.push_back(j);
    std::stable_sort(others.begin(), others.end(), [&](int a, int b) { return cosine(i, a) > cosine(i, b); });
    for (int t = 0; t < 32; ++t) want[{others[t], i}] = static_cast<float>(cls[others[t]]);
  }
  for (int64_t s = 0; s < plan.routing.num_sources(); ++s)
    for (int32_t q = plan.routing.src_begin[s]; q < plan.routing.src_begin[s + 1]; ++q)
      got[{plan.routing.sources[s], plan.routing.dst[q]}] = plan.routing.alpha[q];
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, w] : want) {
    ASSERT_TRUE(got.count(key)) << key.first << " -> " << key.second;
    EXPECT_NEAR(got[key], w, 1e-6);
  }
}

// ---------------------------------------------------------------------------------------
// Schedules and end to end on the llava-tiny fixture
// ---------------------------------------------------------------------------------------

std::vector<int> FixturePromptIds() {  // "USER: <image>\nWhat is in the picture? ASSISTANT:" (image at 5)
  return {1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 297, 278, 7623, 29973, 319, 1799, 9047, 13566, 29901};
}

std::vector<MethodInfo> Methods() {
  return {RandomMethod(), TopkClsMethod(), PoolMethod(), VisionZipMethod(), PruMergeMethod(), PruMergePlusMethod()};
}

class PreLlmBaselines : public test::TinyModelTest {
 protected:

  PipelineResult Run(const MethodInfo& m, int64_t keep, const ReductionParams& p = {}) {
    PipelineRequest req;
    req.prompt_ids = FixturePromptIds();
    const ImageU8 image = Photo();
    req.image = &image;
    req.method = &m;
    req.params = p;
    req.budget.keep = keep;
    req.max_new_tokens = 2;
    req.stop_at_eos = false;
    return RunPipeline(gemm_, *model_, req);
  }

  GemmContext gemm_{ComputeType::F32};
};

TEST_F(PreLlmBaselines, SchedulesRemoveBeforeTheProjectorOnly) {
  for (const MethodInfo& m : Methods()) {
    SCOPED_TRACE(m.name);
    EXPECT_EQ(m.site, MethodSite::PreLlm);
    EXPECT_NE(m.pre_llm_plan, nullptr);
    EXPECT_EQ(m.vision_plan, nullptr);
    EXPECT_EQ(m.llm_plan, nullptr);
    const ReductionSchedule s = ScheduleForBudget(m, cfg(), {}, Budget{4, -1}, 18);
    EXPECT_EQ(s.pre_llm, 12);
    EXPECT_EQ(s.vision_total(), 0);
    EXPECT_EQ(s.llm_total(), 0);
    EXPECT_EQ(FlowOf(cfg(), s, 18).image_tokens, 4);
    ExpectError([&] { ScheduleForBudget(m, cfg(), {}, Budget{0, -1}, 18); }, {"--keep 0"});
    ExpectError([&] { ScheduleForBudget(m, cfg(), {}, Budget{17, -1}, 18); }, {"--keep 17"});
  }
  ExpectError([&] { ScheduleForBudget(PoolMethod(), cfg(), {}, Budget{5, -1}, 18); }, {"--keep 5", "4 (2×2)", "6 (3×2)"});
}

TEST_F(PreLlmBaselines, EndToEndBudgetsOrderAndTrace) {
  for (const MethodInfo& m : Methods())
    for (int64_t keep : {1, 4, 6, 12, 15}) {
      if (m.name == "pool" && keep == 15) continue;  // 15 = 5×3 has no grid on 4×4
      SCOPED_TRACE(m.name + " keep " + std::to_string(keep));
      const PipelineResult r = Run(m, keep);
      EXPECT_EQ(r.encoded.image_features.rows(), keep);
      EXPECT_EQ(static_cast<int64_t>(r.encoded.image_meta.size()), keep);
      EXPECT_EQ(r.generated.image_tokens, keep);
      EXPECT_EQ(r.generated.new_ids.size(), 2u);
      for (const TokenMeta& t : r.encoded.image_meta) EXPECT_EQ(t.role, TokenRole::Visual);
      ASSERT_EQ(r.trace.plans.size(), 1u);
      const RecordedPlan& plan = r.trace.plans[0];
      EXPECT_EQ(plan.site, ReductionSite::PreLlm);
      EXPECT_EQ(plan.layer, cfg().vision_last_layer());  // the last layer run (22 for LLaVA-1.5)
      EXPECT_EQ(static_cast<int64_t>(plan.discarded.size()), 16 - keep);
      EXPECT_EQ(plan.tokens_before, 17);
      EXPECT_EQ(plan.tokens_after, keep + 1);
      for (const TokenMeta& t : plan.discarded) EXPECT_EQ(t.role, TokenRole::Visual);
      std::vector<int32_t> ids;
      for (const TokenMeta& t : r.encoded.image_meta) ids.push_back(t.orig_index);
      EXPECT_EQ(std::set<int32_t>(ids.begin(), ids.end()).size(), ids.size());
      if (m.name == "random" || m.name == "topk-cls" || m.name == "pool") {
        EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
      }
    }
}

TEST_F(PreLlmBaselines, OutputHookSeesTheFinalEncoderOutput) {
  // Unreduced encoder output (after the last layer's MLP) vs what the baselines keep:
  // topk/random rows are copied bit for bit, pool rows are window means.
  VisionRunOptions none;
  const EncodedImage full = model_->EncodeImage(gemm_, Photo(), none);
  const Matrix& x = full.vision.hidden;
  for (const char* name : {"random", "topk-cls"}) {
    const MethodInfo m = std::string(name) == "random" ? RandomMethod() : TopkClsMethod();
    const PipelineResult r = Run(m, 5);
    const Matrix& y = r.encoded.vision.hidden;
    ASSERT_EQ(y.rows(), 6);
    for (int64_t row = 0; row < y.rows(); ++row) {
      const int32_t orig = r.encoded.vision.meta[static_cast<size_t>(row)].orig_index;
      EXPECT_EQ(test::MaxAbsDiff(y.row(row), x.row(orig), x.cols()), 0.0f) << name << " row " << row;
    }
  }
  const PipelineResult r = Run(PoolMethod(), 4);
  const Matrix& y = r.encoded.vision.hidden;
  ASSERT_EQ(y.rows(), 5);
  const auto& windows = PoolCases()[0].second;
  for (size_t w = 0; w < windows.size(); ++w)
    for (int64_t c = 0; c < x.cols(); c += 7) {
      double mean = 0;
      for (int p : windows[w]) mean += x.at(p + 1, c);
      EXPECT_NEAR(y.at(static_cast<int64_t>(w) + 1, c), mean / 4, 1e-4) << "window " << w;
    }
}

TEST_F(PreLlmBaselines, DeterministicAndSeeded) {
  auto ids = [](const PipelineResult& r) {
    std::vector<int32_t> o;
    for (const TokenMeta& t : r.encoded.image_meta) o.push_back(t.orig_index);
    return o;
  };
  for (const MethodInfo& m : Methods()) {
    const PipelineResult a = Run(m, 6), b = Run(m, 6);
    EXPECT_EQ(ids(a), ids(b)) << m.name;
    EXPECT_EQ(a.generated.logits_last, b.generated.logits_last) << m.name;
  }
  ReductionParams s1, s2;
  s1.seed = 11, s2.seed = 12;
  EXPECT_EQ(ids(Run(RandomMethod(), 6, s1)), ids(Run(RandomMethod(), 6, s1)));
  EXPECT_NE(ids(Run(RandomMethod(), 6, s1)), ids(Run(RandomMethod(), 6, s2)));
}

}  // namespace
}  // namespace ficoco
