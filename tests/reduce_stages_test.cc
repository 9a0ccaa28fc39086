// The three reduction stages (filter → correlate → compress, ficoco-spec §2.2–§2.4, §3.6)
// against the contracts in src/reduce/{plan,filter,correlate,compress}.h.
// Expected values are worked out by hand in the comments next to each case; the random
// tests only check invariants (counts, order, determinism, conservation), never a
// re-implementation of the stage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "base/error.h"
#include "model/token_meta.h"
#include "reduce/compress.h"
#include "reduce/correlate.h"
#include "reduce/filter.h"
#include "reduce/plan.h"
#include "tensor/tensor.h"
#include "test_support.h"

namespace ficoco {
namespace {

using test::ExpectError;

constexpr float kEps = 0.998f;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

TokenMeta Cell(int r, int c) {
  TokenMeta m;
  m.orig_index = 1 + r * 100 + c;
  m.grid_row = r;
  m.grid_col = c;
  m.pos_id = m.orig_index;
  m.role = TokenRole::Visual;
  return m;
}

// All cells of a g×g grid in raster order.
std::vector<TokenMeta> FullGrid(int g) {
  std::vector<TokenMeta> out;
  for (int r = 0; r < g; ++r)
    for (int c = 0; c < g; ++c) out.push_back(Cell(r, c));
  return out;
}

Matrix MakeMatrix(int64_t rows, int64_t cols, const std::vector<float>& values) {
  EXPECT_EQ(static_cast<int64_t>(values.size()), rows * cols);
  Matrix m(rows, cols);
  std::copy(values.begin(), values.end(), m.data());
  return m;
}

// Targets of source i as dst → alpha (the order of targets inside a source is not part
// of the contract).
std::map<int32_t, float> TargetsOf(const Routing& r, int64_t i) {
  std::map<int32_t, float> out;
  for (int32_t p = r.src_begin[static_cast<size_t>(i)]; p < r.src_begin[static_cast<size_t>(i + 1)]; ++p) {
    EXPECT_EQ(out.count(r.dst[static_cast<size_t>(p)]), 0u) << "target listed twice for source " << i;
    out[r.dst[static_cast<size_t>(p)]] = r.alpha[static_cast<size_t>(p)];
  }
  return out;
}

int64_t CountOf(const Routing& r, int64_t i) {
  return r.src_begin[static_cast<size_t>(i + 1)] - r.src_begin[static_cast<size_t>(i)];
}

// Structural checks every routing must pass.
void ExpectWellFormed(const Routing& r, int64_t sources) {
  ASSERT_EQ(r.num_sources(), sources);
  ASSERT_EQ(r.src_begin.size(), static_cast<size_t>(sources + 1));
  EXPECT_EQ(r.src_begin.front(), 0);
  EXPECT_EQ(r.src_begin.back(), static_cast<int32_t>(r.dst.size()));
  EXPECT_EQ(r.dst.size(), r.alpha.size());
  for (int64_t i = 0; i < sources; ++i) EXPECT_LE(r.src_begin[static_cast<size_t>(i)], r.src_begin[static_cast<size_t>(i + 1)]);
}

void ExpectRow(const Matrix& m, int64_t row, const std::vector<float>& expected, float tol = 1e-5f) {
  ASSERT_EQ(m.cols(), static_cast<int64_t>(expected.size()));
  for (int64_t c = 0; c < m.cols(); ++c)
    EXPECT_NEAR(m.at(row, c), expected[static_cast<size_t>(c)], tol) << "row " << row << " col " << c;
}

bool SameBits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

void ExpectSameMeta(const TokenMeta& a, const TokenMeta& b) {
  EXPECT_EQ(a.orig_index, b.orig_index);
  EXPECT_EQ(a.grid_row, b.grid_row);
  EXPECT_EQ(a.grid_col, b.grid_col);
  EXPECT_EQ(a.pos_id, b.pos_id);
  EXPECT_EQ(a.role, b.role);
}

// ---------------------------------------------------------------------------------------
// L2Normalize, WeightedSum
// ---------------------------------------------------------------------------------------

TEST(L2Normalize, ScalesToUnitNorm) {
  std::vector<float> v{3, 4};  // |v| = 5
  L2Normalize(v);
  EXPECT_NEAR(v[0], 0.6f, 1e-6f);
  EXPECT_NEAR(v[1], 0.8f, 1e-6f);

  std::vector<float> w{-2};  // → −1
  L2Normalize(w);
  EXPECT_NEAR(w[0], -1.0f, 1e-6f);

  std::vector<float> x{1, -2, 2, 0};  // |x| = 3
  L2Normalize(x);
  EXPECT_NEAR(x[0], 1.0f / 3, 1e-6f);
  EXPECT_NEAR(x[1], -2.0f / 3, 1e-6f);
  EXPECT_NEAR(x[2], 2.0f / 3, 1e-6f);
  EXPECT_EQ(x[3], 0.0f);
}

TEST(L2Normalize, AllZeroAndEmptyUnchanged) {
  std::vector<float> z{0, 0, 0};
  L2Normalize(z);
  for (float f : z) {
    EXPECT_EQ(f, 0.0f);
    EXPECT_FALSE(std::isnan(f));
  }
  std::vector<float> e;
  L2Normalize(e);
  EXPECT_TRUE(e.empty());
}

TEST(WeightedSum, ElementWise) {
  // 2·[1,2,3] + (−0.5)·[4,0,−2] = [2−2, 4+0, 6+1] = [0, 4, 7]
  std::vector<float> r = WeightedSum(2.0f, {1, 2, 3}, -0.5f, {4, 0, -2});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_FLOAT_EQ(r[0], 0.0f);
  EXPECT_FLOAT_EQ(r[1], 4.0f);
  EXPECT_FLOAT_EQ(r[2], 7.0f);
  // The V filter's combination: 0.35·v − 0.65·c with v = [1, 0], c = [0, 1] → [0.35, −0.65]
  std::vector<float> s = WeightedSum(0.35f, {1, 0}, -0.65f, {0, 1});
  EXPECT_FLOAT_EQ(s[0], 0.35f);
  EXPECT_FLOAT_EQ(s[1], -0.65f);
  EXPECT_TRUE(WeightedSum(1.0f, {}, 1.0f, {}).empty());
}

// ---------------------------------------------------------------------------------------
// ApplyLocalPenalty
// ---------------------------------------------------------------------------------------

// 4×4 grid, window 2 → windows W0 = rows 0-1 × cols 0-1, W1 = rows 0-1 × cols 2-3,
// W2 = rows 2-3 × cols 0-1, W3 = rows 2-3 × cols 2-3.
TEST(ApplyLocalPenalty, FullGridFourWindows) {
  // clang-format off
  std::vector<float> s{
       1,  5, -3, -1,
       2,  0, -2, -4,
      -6, -5,  0,  3,
      -7, -8,  3,  1};
  // clang-format on
  std::vector<float> expected = s;
  expected[1] = 10.0f;   // W0 {1,5,2,0}: max 5 > 0 → 5·2
  expected[3] = -0.5f;   // W1 {−3,−1,−2,−4}: max −1 ≤ 0 → −1/2
  expected[9] = -2.5f;   // W2 {−6,−5,−7,−8}: max −5 → −5/2
  expected[11] = 6.0f;   // W3 {0,3,3,1}: tie 3 at positions 11 and 14 → position 11 gets 3·2
  ApplyLocalPenalty(s, FullGrid(4), 4, 2, 2.0f);
  EXPECT_EQ(s, expected);
}

TEST(ApplyLocalPenalty, CoefficientAppliedAsGiven) {
  // One window (grid 2, window 2) {4, −1, 2, 3}: max 4 → 4·3 = 12.
  std::vector<float> s{4, -1, 2, 3};
  ApplyLocalPenalty(s, FullGrid(2), 2, 2, 3.0f);
  EXPECT_EQ(s, (std::vector<float>{12, -1, 2, 3}));
  // Non-positive max −0.25 in {−1, −0.25, −3, −2} → −0.25/4 = −0.0625.
  std::vector<float> t{-1, -0.25f, -3, -2};
  ApplyLocalPenalty(t, FullGrid(2), 2, 2, 4.0f);
  EXPECT_EQ(t, (std::vector<float>{-1, -0.0625f, -3, -2}));
  // A zero max is "non-positive": 0/2 = 0 and the other cells stay.
  std::vector<float> z{0, -1, -2, -3};
  ApplyLocalPenalty(z, FullGrid(2), 2, 2, 2.0f);
  EXPECT_EQ(z, (std::vector<float>{0, -1, -2, -3}));
}

TEST(ApplyLocalPenalty, CoefficientOneIsIdentity) {
  // clang-format off
  std::vector<float> s{
       1,  5, -3, -1,
       2,  0, -2, -4,
      -6, -5,  0,  3,
      -7, -8,  3,  1};
  // clang-format on
  const std::vector<float> before = s;
  ApplyLocalPenalty(s, FullGrid(4), 4, 2, 1.0f);
  EXPECT_EQ(s, before);
}

TEST(ApplyLocalPenalty, MissingCellsUseOnlyPresentOnes) {
  // 4×4 grid where earlier layers removed (0,1), all of W1, (2,1), (3,0), (2,2), (3,3).
  // The candidates (ascending rows, raster order of their cells):
  //   pos 0: (0,0)= 1   pos 1: (1,0)= 2   pos 2: (1,1)= 0          → W0 max 2 (the 5 at (0,1) is gone) → 4
  //   pos 3: (2,0)=−6   pos 4: (3,1)=−8                           → W2 max −6 (an empty cell is not a 0!) → −3
  //   pos 5: (2,3)=−1   pos 6: (3,2)=−0.5                          → W3 max −0.5 → −0.25
  //   W1 has no present cell → skipped.
  std::vector<TokenMeta> meta{Cell(0, 0), Cell(1, 0), Cell(1, 1), Cell(2, 0), Cell(3, 1), Cell(2, 3), Cell(3, 2)};
  std::vector<float> s{1, 2, 0, -6, -8, -1, -0.5f};
  ApplyLocalPenalty(s, meta, 4, 2, 2.0f);
  EXPECT_EQ(s, (std::vector<float>{1, 4, 0, -3, -8, -1, -0.25f}));
}

TEST(ApplyLocalPenalty, SingleSurvivorInWindowIsItsMax) {
  // 4×4 grid, one survivor per window: each is its window's max.
  std::vector<TokenMeta> meta{Cell(0, 1), Cell(1, 3), Cell(2, 0), Cell(3, 3)};
  std::vector<float> s{3, -3, 0.5f, -0.5f};
  ApplyLocalPenalty(s, meta, 4, 2, 2.0f);
  EXPECT_EQ(s, (std::vector<float>{6, -1.5f, 1, -0.25f}));
}

TEST(ApplyLocalPenalty, NoCandidatesIsNoOp) {
  std::vector<float> s;
  ApplyLocalPenalty(s, {}, 4, 2, 2.0f);
  EXPECT_TRUE(s.empty());
}

// 5×5 grid, window 2 → ⌈5/2⌉ = 3 windows per side: rows {0,1},{2,3},{4} × cols {0,1},{2,3},{4}.
// Score of (r,c) = 5r + c + 1 (all positive, distinct): every window's max is its
// bottom-right present cell, doubled.
TEST(ApplyLocalPenalty, OddGridHasPartialLastWindows) {
  std::vector<float> s(25);
  for (int i = 0; i < 25; ++i) s[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  std::vector<float> expected = s;
  // (1,1)=7, (1,3)=9, (1,4)=10, (3,1)=17, (3,3)=19, (3,4)=20, (4,1)=22, (4,3)=24, (4,4)=25
  for (int idx : {6, 8, 9, 16, 18, 19, 21, 23, 24}) expected[static_cast<size_t>(idx)] *= 2.0f;
  ApplyLocalPenalty(s, FullGrid(5), 5, 2, 2.0f);
  EXPECT_EQ(s, expected);
}

TEST(ApplyLocalPenalty, OddGridNegativeScores) {
  // Score of (r,c) = −(5r + c + 1): every window's max is its top-left cell, halved.
  // The last column/row windows are 1 wide: (0,4), (2,4), (4,0), (4,2), (4,4) are their own maxima.
  std::vector<float> s(25);
  for (int i = 0; i < 25; ++i) s[static_cast<size_t>(i)] = -static_cast<float>(i + 1);
  std::vector<float> expected = s;
  // top-left cells: (0,0)=−1, (0,2)=−3, (0,4)=−5, (2,0)=−11, (2,2)=−13, (2,4)=−15, (4,0)=−21, (4,2)=−23, (4,4)=−25
  for (int idx : {0, 2, 4, 10, 12, 14, 20, 22, 24}) expected[static_cast<size_t>(idx)] /= 2.0f;
  ApplyLocalPenalty(s, FullGrid(5), 5, 2, 2.0f);
  EXPECT_EQ(s, expected);
}

TEST(ApplyLocalPenalty, TieGoesToLowerCandidatePosition) {
  // One 2×2 window, all four scores equal.
  std::vector<float> pos{2, 2, 2, 2};
  ApplyLocalPenalty(pos, FullGrid(2), 2, 2, 2.0f);
  EXPECT_EQ(pos, (std::vector<float>{4, 2, 2, 2}));
  std::vector<float> neg{-2, -2, -2, -2};
  ApplyLocalPenalty(neg, FullGrid(2), 2, 2, 2.0f);
  EXPECT_EQ(neg, (std::vector<float>{-1, -2, -2, -2}));
  // Tie between positions 1 and 3 only.
  std::vector<float> part{1, 5, 0, 5};
  ApplyLocalPenalty(part, FullGrid(2), 2, 2, 2.0f);
  EXPECT_EQ(part, (std::vector<float>{1, 10, 0, 5}));
}

TEST(ApplyLocalPenalty, Window3OnSixBySix) {
  // 6×6, window 3 → 4 windows of 3×3. Score = 0 except one cell per window.
  std::vector<float> s(36, -1.0f);
  s[7] = 1.0f;    // (1,1) in window rows 0-2 × cols 0-2 → 2
  s[17] = 4.0f;   // (2,5) in rows 0-2 × cols 3-5 → 8
  s[18] = -0.5f;  // (3,0) in rows 3-5 × cols 0-2 → −0.25 (rest of that window is −1)
  // window rows 3-5 × cols 3-5 stays all −1 → tie → lowest position (3,3) = 21 → −0.5
  std::vector<float> expected = s;
  expected[7] = 2.0f;
  expected[17] = 8.0f;
  expected[18] = -0.25f;
  expected[21] = -0.5f;
  ApplyLocalPenalty(s, FullGrid(6), 6, 3, 2.0f);
  EXPECT_EQ(s, expected);
}

// ---------------------------------------------------------------------------------------
// DiscardHighest
// ---------------------------------------------------------------------------------------

TEST(DiscardHighest, HighestScoresTiesToLowerRow) {
  const std::vector<int32_t> cand{3, 4, 6, 8, 9};
  const std::vector<float> sc{0.5f, 2.0f, 0.5f, 2.0f, -1.0f};
  // n=1: the 2s at rows 4 and 8 tie → row 4.
  FilterResult r1 = DiscardHighest(cand, sc, 1);
  EXPECT_EQ(r1.discard, (std::vector<int32_t>{4}));
  EXPECT_EQ(r1.keep, (std::vector<int32_t>{3, 6, 8, 9}));
  // n=2: both 2s.
  FilterResult r2 = DiscardHighest(cand, sc, 2);
  EXPECT_EQ(r2.discard, (std::vector<int32_t>{4, 8}));
  EXPECT_EQ(r2.keep, (std::vector<int32_t>{3, 6, 9}));
  // n=3: then the 0.5s at rows 3 and 6 tie → row 3.
  FilterResult r3 = DiscardHighest(cand, sc, 3);
  EXPECT_EQ(r3.discard, (std::vector<int32_t>{3, 4, 8}));
  EXPECT_EQ(r3.keep, (std::vector<int32_t>{6, 9}));
  // n=4: all but the −1.
  FilterResult r4 = DiscardHighest(cand, sc, 4);
  EXPECT_EQ(r4.discard, (std::vector<int32_t>{3, 4, 6, 8}));
  EXPECT_EQ(r4.keep, (std::vector<int32_t>{9}));
  // The result carries the candidates and their scores unchanged.
  EXPECT_EQ(r3.candidates, cand);
  EXPECT_EQ(r3.scores, sc);
}

TEST(DiscardHighest, NonMonotoneOrderComesBackAscending) {
  // Scores rank the rows 12 > 2 > 7 > 5 > 10: n=3 → {12, 2, 7} returned ascending.
  FilterResult r = DiscardHighest({2, 5, 7, 10, 12}, {3.0f, 1.0f, 2.0f, -4.0f, 9.0f}, 3);
  EXPECT_EQ(r.discard, (std::vector<int32_t>{2, 7, 12}));
  EXPECT_EQ(r.keep, (std::vector<int32_t>{5, 10}));
}

TEST(DiscardHighest, EdgeCounts) {
  const std::vector<int32_t> cand{1, 2, 3};
  const std::vector<float> sc{0.1f, 0.3f, 0.2f};
  FilterResult none = DiscardHighest(cand, sc, 0);
  EXPECT_TRUE(none.discard.empty());
  EXPECT_EQ(none.keep, cand);
  FilterResult all = DiscardHighest(cand, sc, 3);
  EXPECT_EQ(all.discard, cand);
  EXPECT_TRUE(all.keep.empty());
  FilterResult all_but_one = DiscardHighest(cand, sc, 2);
  EXPECT_EQ(all_but_one.discard, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(all_but_one.keep, (std::vector<int32_t>{1}));
  FilterResult empty = DiscardHighest({}, {}, 0);
  EXPECT_TRUE(empty.discard.empty());
  EXPECT_TRUE(empty.keep.empty());
}

TEST(DiscardHighest, AllEqualScoresDiscardLowestRows) {
  FilterResult r = DiscardHighest({5, 6, 7, 8, 9}, std::vector<float>(5, 0.25f), 2);
  EXPECT_EQ(r.discard, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(r.keep, (std::vector<int32_t>{7, 8, 9}));
}

TEST(DiscardHighest, CountOutOfRangeThrows) {
  ExpectError([] { DiscardHighest({1, 2, 3}, {0.1f, 0.2f, 0.3f}, 4); }, {});
  ExpectError([] { DiscardHighest({1, 2, 3}, {0.1f, 0.2f, 0.3f}, -1); }, {});
  ExpectError([] { DiscardHighest({}, {}, 1); }, {});
}

// ---------------------------------------------------------------------------------------
// Quantile, QuantileCount
// ---------------------------------------------------------------------------------------

TEST(Quantile, LinearInterpolationLikeNumpy) {
  // numpy.quantile([1,2,3,4], 0.5): position 0.5·3 = 1.5 → 2 + 0.5·(3−2) = 2.5
  EXPECT_FLOAT_EQ(Quantile({1, 2, 3, 4}, 0.5f), 2.5f);
  // 0..9, q = 0.998: position 0.998·9 = 8.982 → 8 + 0.982·1 = 8.982
  std::vector<float> ten(10);
  std::iota(ten.begin(), ten.end(), 0.0f);
  EXPECT_NEAR(Quantile(ten, 0.998f), 8.982f, 1e-5f);
  // [0,5,10], q = 0.25: position 0.5 → 0 + 0.5·5 = 2.5
  EXPECT_FLOAT_EQ(Quantile({0, 5, 10}, 0.25f), 2.5f);
  // [10,20,40,80], q = 0.9: position 2.7 → 40 + 0.7·40 = 68
  EXPECT_NEAR(Quantile({10, 20, 40, 80}, 0.9f), 68.0f, 1e-4f);
  // End points: q = 0 → min, q = 1 → max; one value → that value.
  EXPECT_FLOAT_EQ(Quantile({3, -1, 7}, 0.0f), -1.0f);
  EXPECT_FLOAT_EQ(Quantile({3, -1, 7}, 1.0f), 7.0f);
  EXPECT_FLOAT_EQ(Quantile({42}, 0.998f), 42.0f);
  // Ties: [1,1,1,5], q = 0.5 → position 1.5 between 1 and 1 → 1
  EXPECT_FLOAT_EQ(Quantile({1, 5, 1, 1}, 0.5f), 1.0f);
}

TEST(Quantile, UnsortedInput) {
  EXPECT_FLOAT_EQ(Quantile({4, 1, 3, 2}, 0.5f), 2.5f);
  std::vector<float> shuffled{7, 2, 9, 0, 5, 1, 8, 3, 6, 4};
  EXPECT_NEAR(Quantile(shuffled, 0.998f), 8.982f, 1e-5f);
  // [−3, 10, 0.5] sorted [−3, 0.5, 10], q = 0.75 → position 1.5 → 0.5 + 0.5·9.5 = 5.25
  EXPECT_FLOAT_EQ(Quantile({-3, 10, 0.5f}, 0.75f), 5.25f);
}

TEST(Quantile, IntegerPositionIsExactOrderStatistic) {
  // n = 501, eps = 0.998: position 0.998·500 = 499 exactly (numpy in float64 and torch in
  // float32 both land on 499.0), so τ is the 500th smallest value itself. Make the largest
  // value huge so that any spurious fraction of a position (e.g. 0.998f widened to double:
  // 499.0000129) would visibly move τ (to ≈ 511.8).
  std::vector<float> v(501);
  std::iota(v.begin(), v.begin() + 500, 0.0f);  // 0..499
  v[500] = 1e6f;
  std::mt19937 g(7);
  std::shuffle(v.begin(), v.end(), g);
  EXPECT_EQ(Quantile(v, kEps), 499.0f);
}

TEST(QuantileCount, SpecTable) {
  // K(n) = n − ⌈0.998·(n−1)⌉ (spec §2.3, "Important property"):
  //   n = 2:    ⌈0.998⌉   = 1    → 1        n = 17:   ⌈15.968⌉  = 16   → 1
  //   n = 500:  ⌈498.002⌉ = 499  → 1        n = 501:  ⌈499⌉     = 499  → 2   (integer position)
  //   n = 577:  ⌈574.848⌉ = 575  → 2        n = 1000: ⌈997.002⌉ = 998  → 2
  //   n = 1001: ⌈998⌉     = 998  → 3        n = 1500: ⌈1496.002⌉= 1497 → 3
  //   n = 1501: ⌈1497⌉    = 1497 → 4        n = 2880: ⌈2873.242⌉= 2874 → 6
  EXPECT_EQ(QuantileCount(1, kEps), 1);  // ⌈0⌉ = 0 → 1
  EXPECT_EQ(QuantileCount(2, kEps), 1);
  EXPECT_EQ(QuantileCount(17, kEps), 1);
  EXPECT_EQ(QuantileCount(500, kEps), 1);
  EXPECT_EQ(QuantileCount(501, kEps), 2);
  EXPECT_EQ(QuantileCount(577, kEps), 2);
  EXPECT_EQ(QuantileCount(1000, kEps), 2);
  EXPECT_EQ(QuantileCount(1001, kEps), 3);
  EXPECT_EQ(QuantileCount(1500, kEps), 3);
  EXPECT_EQ(QuantileCount(1501, kEps), 4);
  EXPECT_EQ(QuantileCount(2880, kEps), 6);
  for (int64_t n = 2; n <= 500; ++n) EXPECT_EQ(QuantileCount(n, kEps), 1) << "n=" << n;
  for (int64_t n = 501; n <= 1000; ++n) EXPECT_EQ(QuantileCount(n, kEps), 2) << "n=" << n;
  for (int64_t n = 1001; n <= 1500; ++n) EXPECT_EQ(QuantileCount(n, kEps), 3) << "n=" << n;
}

TEST(QuantileCount, OtherEps) {
  EXPECT_EQ(QuantileCount(5, 0.5f), 3);  // 5 − ⌈2⌉
  EXPECT_EQ(QuantileCount(4, 0.5f), 2);  // 4 − ⌈1.5⌉
  EXPECT_EQ(QuantileCount(10, 0.0f), 10);
  EXPECT_EQ(QuantileCount(10, 1.0f), 1);      // 10 − 9
  EXPECT_EQ(QuantileCount(11, 0.75f), 3);     // 11 − ⌈7.5⌉
}

// ---------------------------------------------------------------------------------------
// SoftmaxRows
// ---------------------------------------------------------------------------------------

TEST(SoftmaxRows, Basic) {
  const float l2 = std::log(2.0f), l3 = std::log(3.0f);
  // row 0: exp → [1, 2, 3] / 6; row 1: equal → 1/3 each even at 1000 (no overflow);
  // row 2: [0, 0, −inf] → [½, ½, 0]
  Matrix m = MakeMatrix(3, 3, {0, l2, l3, 1000, 1000, 1000, 0, 0, -kInf});
  SoftmaxRows(m);
  ExpectRow(m, 0, {1.0f / 6, 2.0f / 6, 3.0f / 6}, 1e-6f);
  ExpectRow(m, 1, {1.0f / 3, 1.0f / 3, 1.0f / 3}, 1e-6f);
  ExpectRow(m, 2, {0.5f, 0.5f, 0.0f}, 1e-6f);
  // Shift invariance: [−1000, −1000 + ln 3] → [¼, ¾]
  Matrix s = MakeMatrix(1, 2, {-1000.0f, -1000.0f + l3});
  SoftmaxRows(s);
  ExpectRow(s, 0, {0.25f, 0.75f}, 1e-4f);
}

// ---------------------------------------------------------------------------------------
// QuantileTargets
// ---------------------------------------------------------------------------------------

TEST(QuantileTargets, PerTokenHandCase) {
  // keep = {3, 5, 6, 9}; eps = 0.5 → position 1.5 in each sorted row of 4.
  //   row 0 [1,4,2,3]: sorted [1,2,3,4], τ = 2.5 → cols 1 (4), 3 (3) → dst {5, 9}, α = 4/7, 3/7
  //   row 1 [0,0,6,0]: sorted [0,0,0,6], τ = 0 → every col ≥ 0 → α = C/6 = [0, 0, 1, 0]
  //   row 2 [0,0,0,0]: τ = 0, all cols, sum 0 → uniform ¼
  //   row 3 [2,2,1,8]: sorted [1,2,2,8], τ = 2 → cols 0,1,3 → α = 2/12, 2/12, 8/12
  const std::vector<int32_t> keep{3, 5, 6, 9};
  Matrix c = MakeMatrix(4, 4, {1, 4, 2, 3, 0, 0, 6, 0, 0, 0, 0, 0, 2, 2, 1, 8});
  Routing r = QuantileTargets(c, keep, 0.5f, TargetCount::PerToken);
  ExpectWellFormed(r, 4);
  auto t0 = TargetsOf(r, 0);
  ASSERT_EQ(t0.size(), 2u);
  EXPECT_NEAR(t0.at(5), 4.0f / 7, 1e-6f);
  EXPECT_NEAR(t0.at(9), 3.0f / 7, 1e-6f);
  auto t1 = TargetsOf(r, 1);
  ASSERT_EQ(t1.size(), 4u);
  EXPECT_NEAR(t1.at(3), 0.0f, 1e-7f);
  EXPECT_NEAR(t1.at(5), 0.0f, 1e-7f);
  EXPECT_NEAR(t1.at(6), 1.0f, 1e-6f);
  EXPECT_NEAR(t1.at(9), 0.0f, 1e-7f);
  auto t2 = TargetsOf(r, 2);
  ASSERT_EQ(t2.size(), 4u);
  for (int32_t d : keep) EXPECT_NEAR(t2.at(d), 0.25f, 1e-6f);
  auto t3 = TargetsOf(r, 3);
  ASSERT_EQ(t3.size(), 3u);
  EXPECT_NEAR(t3.at(3), 2.0f / 12, 1e-6f);
  EXPECT_NEAR(t3.at(5), 2.0f / 12, 1e-6f);
  EXPECT_NEAR(t3.at(9), 8.0f / 12, 1e-6f);
}

TEST(QuantileTargets, DefaultEpsPicksTheTopEntry) {
  // n = 4, eps = 0.998 → position 2.994; distinct rows → K = 4 − 3 = 1: the max only, α = 1.
  const std::vector<int32_t> keep{10, 11, 20, 30};
  Matrix c = MakeMatrix(2, 4, {0.1f, 0.7f, 0.15f, 0.05f, 0.3f, 0.2f, 0.1f, 0.4f});
  Routing r = QuantileTargets(c, keep, kEps, TargetCount::PerToken);
  ExpectWellFormed(r, 2);
  EXPECT_EQ(TargetsOf(r, 0), (std::map<int32_t, float>{{11, 1.0f}}));
  EXPECT_EQ(TargetsOf(r, 1), (std::map<int32_t, float>{{30, 1.0f}}));
}

TEST(QuantileTargets, LayerMaxGivesEveryRowTheSameCount) {
  // n = 5, eps = 0.998 → position 3.992 in each sorted row.
  //   row 0 [3,3,3,0,0]: sorted [0,0,3,3,3], τ = 3 → 3 entries ≥ τ
  //   row 1 [9,5,5,5,1]: sorted [1,5,5,5,9], τ = 5 + 0.992·4 = 8.968 → 1 entry
  //   row 2 [1,2,3,4,6]: τ = 4 + 0.992·2 = 5.984 → 1 entry
  // PerToken: counts 3, 1, 1. LayerMax: K = 3 for every row, top-3, ties → lower column:
  //   row 1: 9 (col 0), then the 5s at cols 1,2,3 → cols 1,2 → α = 9/19, 5/19, 5/19
  //   row 2: 6, 4, 3 (cols 4, 3, 2) → α = 6/13, 4/13, 3/13
  const std::vector<int32_t> keep{2, 4, 6, 8, 10};
  Matrix c = MakeMatrix(3, 5, {3, 3, 3, 0, 0, 9, 5, 5, 5, 1, 1, 2, 3, 4, 6});

  Routing per = QuantileTargets(c, keep, kEps, TargetCount::PerToken);
  ExpectWellFormed(per, 3);
  EXPECT_EQ(CountOf(per, 0), 3);
  EXPECT_EQ(CountOf(per, 1), 1);
  EXPECT_EQ(CountOf(per, 2), 1);
  auto p0 = TargetsOf(per, 0);
  ASSERT_EQ(p0.size(), 3u);
  for (int32_t d : {2, 4, 6}) EXPECT_NEAR(p0.at(d), 1.0f / 3, 1e-6f);
  EXPECT_EQ(TargetsOf(per, 1), (std::map<int32_t, float>{{2, 1.0f}}));
  EXPECT_EQ(TargetsOf(per, 2), (std::map<int32_t, float>{{10, 1.0f}}));

  Routing lm = QuantileTargets(c, keep, kEps, TargetCount::LayerMax);
  ExpectWellFormed(lm, 3);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(CountOf(lm, i), 3) << "row " << i;
  auto l0 = TargetsOf(lm, 0);
  ASSERT_EQ(l0.size(), 3u);
  for (int32_t d : {2, 4, 6}) EXPECT_NEAR(l0.at(d), 1.0f / 3, 1e-6f);
  auto l1 = TargetsOf(lm, 1);
  ASSERT_EQ(l1.size(), 3u);
  EXPECT_NEAR(l1.at(2), 9.0f / 19, 1e-6f);
  EXPECT_NEAR(l1.at(4), 5.0f / 19, 1e-6f);
  EXPECT_NEAR(l1.at(6), 5.0f / 19, 1e-6f);
  auto l2 = TargetsOf(lm, 2);
  ASSERT_EQ(l2.size(), 3u);
  EXPECT_NEAR(l2.at(10), 6.0f / 13, 1e-6f);
  EXPECT_NEAR(l2.at(8), 4.0f / 13, 1e-6f);
  EXPECT_NEAR(l2.at(6), 3.0f / 13, 1e-6f);
}

TEST(QuantileTargets, LayerMaxTopKTiesGoToLowerColumn) {
  // n = 4, eps = 0.998 → position 2.994.
  //   row 0 [3,3,3,0]: sorted [0,3,3,3], τ = 3 → 3 entries ≥ τ → K = 3 for the layer
  //   row 1 [9,5,5,5]: sorted [5,5,5,9], τ = 5 + 0.994·4 = 8.976 → 1 entry on its own;
  //     its top-3 = 9 (col 0) + two of the three tied 5s → the lower columns 1, 2
  //     → dst keep[0..2] = {1, 2, 3}, α = 9/19, 5/19, 5/19.
  const std::vector<int32_t> keep{1, 2, 3, 4};
  Matrix c = MakeMatrix(2, 4, {3, 3, 3, 0, 9, 5, 5, 5});
  Routing lm = QuantileTargets(c, keep, kEps, TargetCount::LayerMax);
  ExpectWellFormed(lm, 2);
  auto t1 = TargetsOf(lm, 1);
  ASSERT_EQ(t1.size(), 3u);
  EXPECT_EQ(t1.count(1), 1u);
  EXPECT_EQ(t1.count(2), 1u);
  EXPECT_EQ(t1.count(3), 1u);
  EXPECT_EQ(t1.count(4), 0u) << "tie at the top-K cut must go to the lower column";
  EXPECT_NEAR(t1.at(1), 9.0f / 19, 1e-6f);
  EXPECT_NEAR(t1.at(2), 5.0f / 19, 1e-6f);
  EXPECT_NEAR(t1.at(3), 5.0f / 19, 1e-6f);
}

TEST(QuantileTargets, AllZeroRowIsUniform) {
  const std::vector<int32_t> keep{7, 8, 12};
  Matrix c = MakeMatrix(1, 3, {0, 0, 0});
  for (TargetCount tc : {TargetCount::PerToken, TargetCount::LayerMax}) {
    Routing r = QuantileTargets(c, keep, kEps, tc);
    ExpectWellFormed(r, 1);
    auto t = TargetsOf(r, 0);
    ASSERT_EQ(t.size(), 3u);
    for (int32_t d : keep) EXPECT_NEAR(t.at(d), 1.0f / 3, 1e-6f);
  }
}

TEST(QuantileTargets, NoSourcesGivesEmptyRouting) {
  Matrix c(0, 3);
  Routing r = QuantileTargets(c, {1, 2, 3}, kEps, TargetCount::PerToken);
  ExpectWellFormed(r, 0);
  EXPECT_EQ(r.num_pairs(), 0);
}

TEST(QuantileTargets, SingleColumnAlwaysThatColumn) {
  Matrix c = MakeMatrix(3, 1, {0.2f, 0.0f, 5.0f});
  Routing r = QuantileTargets(c, {42}, kEps, TargetCount::PerToken);
  ExpectWellFormed(r, 3);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(TargetsOf(r, i), (std::map<int32_t, float>{{42, 1.0f}}));
}

// For rows of n distinct values, the number of targets is QuantileCount(n) for every row
// ("≥ τ" rule), and the targets are the row's top entries.
TEST(QuantileTargets, PerTokenCountDependsOnlyOnRowLength) {
  struct Case {
    int64_t n, k;
  };
  // hand values of n − ⌈0.998(n−1)⌉, see QuantileCount.SpecTable
  for (Case cs : {Case{2, 1}, Case{17, 1}, Case{500, 1}, Case{501, 2}, Case{577, 2}, Case{1000, 2}, Case{1001, 3}}) {
    const int64_t n = cs.n, rows = 6;
    EXPECT_EQ(QuantileCount(n, kEps), cs.k) << "n=" << n;
    std::mt19937 g(static_cast<uint32_t>(n));
    // Gaps ≥ 0.5 keep a fractional position (≥ 0.002 of a gap) visible in float at these magnitudes.
    std::uniform_real_distribution<float> gap(0.5f, 1.0f);
    Matrix c(rows, n);
    for (int64_t i = 0; i < rows; ++i) {
      std::vector<float> v(static_cast<size_t>(n));
      float acc = 0.0f;
      for (auto& x : v) x = (acc += gap(g));  // strictly increasing → distinct
      if (i == 0) v.back() = 1e6f;            // a huge maximum (exposes a fractional position)
      if (i == 1) v.back() = v[v.size() - 2] + 1e-3f * v.back();
      std::shuffle(v.begin(), v.end(), g);
      std::copy(v.begin(), v.end(), c.row(i));
    }
    std::vector<int32_t> keep(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) keep[static_cast<size_t>(j)] = static_cast<int32_t>(3 + 2 * j);
    Routing r = QuantileTargets(c, keep, kEps, TargetCount::PerToken);
    ExpectWellFormed(r, rows);
    for (int64_t i = 0; i < rows; ++i) {
      EXPECT_EQ(CountOf(r, i), cs.k) << "n=" << n << " row " << i;
      // The chosen columns are the k largest of the row.
      std::vector<float> sorted(c.row(i), c.row(i) + n);
      std::sort(sorted.begin(), sorted.end(), std::greater<>());
      const float kth = sorted[static_cast<size_t>(cs.k - 1)];
      for (auto [d, a] : TargetsOf(r, i)) {
        ASSERT_TRUE(d >= 3 && (d - 3) % 2 == 0 && (d - 3) / 2 < n) << "dst " << d << " not in keep";
        EXPECT_GE(c.at(i, (d - 3) / 2), kth);
      }
    }
    // LayerMax over distinct rows gives the same count.
    Routing lm = QuantileTargets(c, keep, kEps, TargetCount::LayerMax);
    for (int64_t i = 0; i < rows; ++i) EXPECT_EQ(CountOf(lm, i), cs.k) << "LayerMax n=" << n << " row " << i;
  }
}

// ---------------------------------------------------------------------------------------
// Compress
// ---------------------------------------------------------------------------------------

// Five rows: 0 = CLS (not a candidate), 1..4 visual candidates. S = {2, 4}, T = {1, 3}.
// Routing: 2 → {1: 0.75, 3: 0.25}; 4 → {3: 1}.
//   X0 = [10, 20], X1 = [1, 2], X2 = [4, 8], X3 = [3, −1], X4 = [2, 6]
// I_1 = {2} (α 0.75), I_3 = {2 (α 0.25), 4 (α 1)}.
struct HandCase {
  Matrix hidden = MakeMatrix(5, 2, {10, 20, 1, 2, 4, 8, 3, -1, 2, 6});
  std::vector<TokenMeta> meta;
  LayerPlan plan;
  HandCase() {
    for (int i = 0; i < 5; ++i) {
      TokenMeta m;
      m.orig_index = 10 * i + 1;
      m.grid_row = i == 0 ? -1 : i / 2;
      m.grid_col = i == 0 ? -1 : i % 2;
      m.pos_id = 100 + i;
      m.role = i == 0 ? TokenRole::Cls : TokenRole::Visual;
      meta.push_back(m);
    }
    plan.filter.candidates = {1, 2, 3, 4};
    plan.filter.scores = {0.1f, 0.9f, 0.2f, 0.8f};
    plan.filter.discard = {2, 4};
    plan.filter.keep = {1, 3};
    plan.routing.src_begin = {0, 2, 3};
    plan.routing.dst = {1, 3, 3};
    plan.routing.alpha = {0.75f, 0.25f, 1.0f};
  }
  void Run(CompressRule rule) {
    plan.rule = rule;
    Compress(hidden, meta, plan);
  }
};

void ExpectHandSurvivors(const HandCase& h) {
  ASSERT_EQ(h.hidden.rows(), 3);
  ASSERT_EQ(h.meta.size(), 3u);
  HandCase fresh;
  ExpectSameMeta(h.meta[0], fresh.meta[0]);
  ExpectSameMeta(h.meta[1], fresh.meta[1]);
  ExpectSameMeta(h.meta[2], fresh.meta[3]);
  // CLS row untouched, bit for bit.
  EXPECT_TRUE(SameBits(h.hidden.row(0), fresh.hidden.row(0), 2));
}

TEST(Compress, Prune) {
  HandCase h;
  h.Run(CompressRule::Prune);
  ExpectHandSurvivors(h);
  ExpectRow(h.hidden, 1, {1, 2}, 0);
  ExpectRow(h.hidden, 2, {3, -1}, 0);
}

TEST(Compress, SelfPreserving) {
  HandCase h;
  h.Run(CompressRule::SelfPreserving);
  ExpectHandSurvivors(h);
  // X1 ← (X1 + 0.75·X2) / 1.75 = ([1,2] + [3,6]) / 1.75 = [4,8] / 1.75
  ExpectRow(h.hidden, 1, {4.0f / 1.75f, 8.0f / 1.75f});
  // X3 ← (X3 + 0.25·X2 + 1·X4) / 2.25 = ([3,−1] + [1,2] + [2,6]) / 2.25 = [6,7] / 2.25
  ExpectRow(h.hidden, 2, {6.0f / 2.25f, 7.0f / 2.25f});
  // Mass: 1.75·X1' + 2.25·X3' = [10, 15] = X1 + X3 + X2 + X4 = [1+3+4+2, 2−1+8+6]
  EXPECT_NEAR(1.75f * h.hidden.at(1, 0) + 2.25f * h.hidden.at(2, 0), 10.0f, 1e-5f);
  EXPECT_NEAR(1.75f * h.hidden.at(1, 1) + 2.25f * h.hidden.at(2, 1), 15.0f, 1e-5f);
}

TEST(Compress, Additive) {
  HandCase h;
  h.Run(CompressRule::Additive);
  ExpectHandSurvivors(h);
  // X1 ← X1 + 0.75·X2 = [4, 8];  X3 ← X3 + 0.25·X2 + X4 = [6, 7]
  ExpectRow(h.hidden, 1, {4, 8});
  ExpectRow(h.hidden, 2, {6, 7});
}

TEST(Compress, Average) {
  HandCase h;
  h.Run(CompressRule::Average);
  ExpectHandSurvivors(h);
  // X1 ← (X1 + X2) / 2 = [5,10]/2 = [2.5, 5];  X3 ← (X3 + X2 + X4) / 3 = [9, 13] / 3
  ExpectRow(h.hidden, 1, {2.5f, 5.0f});
  ExpectRow(h.hidden, 2, {3.0f, 13.0f / 3});
}

TEST(Compress, KeptRowWithoutSourcesIsBitForBitUnchanged) {
  // Awkward values so that any (x·1 + 0)/1 style arithmetic on an untouched row would show.
  for (CompressRule rule :
       {CompressRule::Prune, CompressRule::SelfPreserving, CompressRule::Additive, CompressRule::Average}) {
    HandCase h;
    h.hidden = MakeMatrix(5, 2, {0.1f, -1e-30f, 1.0f / 3, 7e-39f /*subnormal*/, 4, 8, 3.3333333f, -0.0f, 2, 6});
    const Matrix before = h.hidden;
    // Only row 1 receives: 2 → {1: 1}, 4 → {1: 1}; row 3 receives nothing.
    h.plan.routing.src_begin = {0, 1, 2};
    h.plan.routing.dst = {1, 1};
    h.plan.routing.alpha = {1.0f, 1.0f};
    h.Run(rule);
    ASSERT_EQ(h.hidden.rows(), 3) << CompressRuleName(rule);
    EXPECT_TRUE(SameBits(h.hidden.row(0), before.row(0), 2)) << CompressRuleName(rule);
    EXPECT_TRUE(SameBits(h.hidden.row(2), before.row(3), 2)) << CompressRuleName(rule);
    EXPECT_TRUE(std::signbit(h.hidden.at(2, 1))) << "−0 must stay −0 (" << CompressRuleName(rule) << ")";
  }
}

TEST(Compress, PruneAllRoutingWithAnyRule) {
  // A routing without targets drops S and changes no survivor, whatever the rule.
  for (CompressRule rule :
       {CompressRule::Prune, CompressRule::SelfPreserving, CompressRule::Additive, CompressRule::Average}) {
    HandCase h;
    const Matrix before = h.hidden;
    h.plan.routing = Routing::PruneAll(2);
    h.Run(rule);
    ExpectHandSurvivors(h);
    EXPECT_TRUE(SameBits(h.hidden.row(1), before.row(1), 2)) << CompressRuleName(rule);
    EXPECT_TRUE(SameBits(h.hidden.row(2), before.row(3), 2)) << CompressRuleName(rule);
  }
}

TEST(Compress, EmptyPlanKeepsEverything) {
  HandCase h;
  const Matrix before = h.hidden;
  h.plan.filter.discard = {};
  h.plan.filter.keep = {1, 2, 3, 4};
  h.plan.routing = Routing::PruneAll(0);
  h.Run(CompressRule::SelfPreserving);
  ASSERT_EQ(h.hidden.rows(), 5);
  ASSERT_EQ(h.meta.size(), 5u);
  EXPECT_TRUE(SameBits(h.hidden.data(), before.data(), 10));
}

TEST(Compress, SurvivorsKeepOrderAndRecords) {
  // Discard the first and last candidates: survivors 0 (CLS), 2, 3 in that order.
  HandCase h;
  h.plan.filter.discard = {1, 4};
  h.plan.filter.keep = {2, 3};
  h.plan.routing.src_begin = {0, 1, 2};
  h.plan.routing.dst = {3, 2};  // 1 → 3, 4 → 2
  h.plan.routing.alpha = {1.0f, 1.0f};
  h.Run(CompressRule::SelfPreserving);
  ASSERT_EQ(h.hidden.rows(), 3);
  HandCase fresh;
  ExpectSameMeta(h.meta[0], fresh.meta[0]);
  ExpectSameMeta(h.meta[1], fresh.meta[2]);
  ExpectSameMeta(h.meta[2], fresh.meta[3]);
  // X2 ← (X2 + X4)/2 = [3, 7];  X3 ← (X3 + X1)/2 = [2, 0.5]
  ExpectRow(h.hidden, 1, {3, 7});
  ExpectRow(h.hidden, 2, {2, 0.5f});
}

TEST(Compress, SizeWeightedUsesAndUpdatesSizes) {
  HandCase h;
  h.meta[1].size = 2;
  h.meta[2].size = 3;
  h.meta[4].size = 2;
  h.Run(CompressRule::SizeWeighted);
  ASSERT_EQ(h.hidden.rows(), 3);
  // X1 ← (2·[1,2] + 0.75·3·[4,8]) / (2 + 2.25) = [11, 22] / 4.25
  ExpectRow(h.hidden, 1, {11 / 4.25f, 22 / 4.25f});
  // X3 ← (1·[3,−1] + 0.25·3·[4,8] + 1·2·[2,6]) / (1 + 0.75 + 2) = [10, 17] / 3.75
  ExpectRow(h.hidden, 2, {10 / 3.75f, 17 / 3.75f});
  EXPECT_FLOAT_EQ(h.meta[1].size, 4.25f);
  EXPECT_FLOAT_EQ(h.meta[2].size, 3.75f);
  EXPECT_FLOAT_EQ(h.meta[0].size, 1.0f);
}

TEST(Compress, FuseIntoNewAppendsTheWeightedSumLast) {
  HandCase h;
  h.plan.routing.src_begin = {0, 1, 2};
  h.plan.routing.dst = {kNewToken, kNewToken};
  h.plan.routing.alpha = {0.5f, 0.25f};
  h.Run(CompressRule::FuseIntoNew);
  ASSERT_EQ(h.hidden.rows(), 4);
  ExpectRow(h.hidden, 0, {10, 20});
  ExpectRow(h.hidden, 1, {1, 2});
  ExpectRow(h.hidden, 2, {3, -1});
  ExpectRow(h.hidden, 3, {2.5f, 5.5f});  // 0.5·[4,8] + 0.25·[2,6], not renormalised
  EXPECT_EQ(h.meta[3].orig_index, -1);
  EXPECT_EQ(h.meta[3].grid_row, -1);
  EXPECT_EQ(h.meta[3].role, TokenRole::Visual);
  EXPECT_FLOAT_EQ(h.meta[3].size, 2.0f);
  HandCase bad;  // a kept target is not allowed when fusing into a new token
  bad.plan.rule = CompressRule::FuseIntoNew;
  ExpectError([&] { Compress(bad.hidden, bad.meta, bad.plan); }, {"new token", "targets row"});
}

TEST(Compress, NewOrderIsAppliedAndMustBeAPermutation) {
  HandCase h;
  h.plan.order = {3, 0, 1};
  h.Run(CompressRule::Prune);
  ASSERT_EQ(h.hidden.rows(), 3);
  ExpectRow(h.hidden, 0, {3, -1});
  ExpectRow(h.hidden, 1, {10, 20});
  ExpectRow(h.hidden, 2, {1, 2});
  EXPECT_EQ(h.meta[0].orig_index, 31);
  HandCase bad;
  bad.plan.order = {3, 0};
  bad.plan.rule = CompressRule::Prune;
  ExpectError([&] { Compress(bad.hidden, bad.meta, bad.plan); }, {"not a permutation"});
}

TEST(Compress, ExplicitSourcesMayBeKeptTokensReadBeforeAnyUpdate) {
  HandCase h;
  h.plan.routing.sources = {1, 2};  // kept X1 → X3 (0.5), discarded X2 → X1 (1)
  h.plan.routing.src_begin = {0, 1, 2};
  h.plan.routing.dst = {3, 1};
  h.plan.routing.alpha = {0.5f, 1.0f};
  h.Run(CompressRule::Additive);
  ASSERT_EQ(h.hidden.rows(), 3);
  ExpectRow(h.hidden, 1, {5, 10});   // [1,2] + [4,8]
  ExpectRow(h.hidden, 2, {3.5f, 0});  // [3,−1] + 0.5·[1,2] (X1 before its own update)
  HandCase self;
  self.plan.routing.sources = {1, 2};
  self.plan.routing.src_begin = {0, 1, 2};
  self.plan.routing.dst = {1, 3};
  self.plan.routing.alpha = {1.0f, 1.0f};
  self.plan.rule = CompressRule::Additive;
  ExpectError([&] { Compress(self.hidden, self.meta, self.plan); }, {"routed into itself"});
}

TEST(Compress, InvalidPlansThrow) {
  auto expect_throw = [](const char* what, auto mutate) {
    SCOPED_TRACE(what);
    HandCase h;
    mutate(h);
    h.plan.rule = CompressRule::SelfPreserving;
    ExpectError([&] { Compress(h.hidden, h.meta, h.plan); }, {});
  };
  expect_throw("target is CLS (not in keep)", [](HandCase& h) { h.plan.routing.dst[0] = 0; });
  expect_throw("target is a discarded row", [](HandCase& h) { h.plan.routing.dst[2] = 2; });
  expect_throw("target row out of range", [](HandCase& h) { h.plan.routing.dst[1] = 7; });
  expect_throw("negative target row", [](HandCase& h) { h.plan.routing.dst[1] = -1; });
  expect_throw("discard row out of range", [](HandCase& h) {
    h.plan.filter.discard = {2, 5};
  });
  expect_throw("keep row out of range", [](HandCase& h) { h.plan.filter.keep = {1, 3, 9}; });
  expect_throw("NaN alpha", [](HandCase& h) { h.plan.routing.alpha[1] = kNaN; });
  expect_throw("infinite alpha", [](HandCase& h) { h.plan.routing.alpha[0] = kInf; });
  expect_throw("src_begin too short", [](HandCase& h) { h.plan.routing.src_begin = {0, 3}; });
  expect_throw("src_begin too long", [](HandCase& h) { h.plan.routing.src_begin = {0, 1, 2, 3}; });
}

TEST(Compress, MalformedRoutingArraysThrow) {
  auto expect_throw = [](const char* what, auto mutate) {
    SCOPED_TRACE(what);
    HandCase h;
    mutate(h);
    h.plan.rule = CompressRule::SelfPreserving;
    ExpectError([&] { Compress(h.hidden, h.meta, h.plan); }, {});
  };
  expect_throw("alpha shorter than dst", [](HandCase& h) { h.plan.routing.alpha.pop_back(); });
  expect_throw("src_begin does not end at dst.size()", [](HandCase& h) { h.plan.routing.src_begin = {0, 2, 5}; });
  expect_throw("src_begin decreasing", [](HandCase& h) { h.plan.routing.src_begin = {0, 3, 2}; });
}

// ---------------------------------------------------------------------------------------
// Random pipelines: DiscardHighest → QuantileTargets → Compress
// ---------------------------------------------------------------------------------------

struct RandomCase {
  Matrix hidden;
  std::vector<TokenMeta> meta;
  std::vector<int32_t> candidates;
  std::vector<float> scores;
  int64_t n_discard = 0;
  Matrix correlation;  // filled after the filter (depends on |S|, |T|)
  float eps = kEps;
  TargetCount count = TargetCount::PerToken;
  CompressRule rule = CompressRule::SelfPreserving;
};

RandomCase MakeRandomCase(uint32_t seed) {
  std::mt19937 g(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); };
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  RandomCase rc;
  const int m = uni(2, 60), text = uni(0, 3), d = uni(1, 7);
  const int n = 1 + m + text;
  rc.hidden = Matrix(n, d);
  for (int64_t i = 0; i < n * d; ++i) rc.hidden.data()[i] = normal(g);
  int32_t orig = 0;
  for (int i = 0; i < n; ++i) {
    TokenMeta t;
    t.orig_index = orig;
    orig += uni(1, 3);  // earlier layers removed some tokens
    t.pos_id = t.orig_index;
    t.role = i == 0 ? TokenRole::Cls : (i <= m ? TokenRole::Visual : TokenRole::Text);
    if (t.role == TokenRole::Visual) {
      t.grid_row = t.orig_index / 24;
      t.grid_col = t.orig_index % 24;
    }
    rc.meta.push_back(t);
  }
  const bool ties = uni(0, 2) == 0;
  for (int i = 1; i <= m; ++i) {
    rc.candidates.push_back(i);
    float s = normal(g);
    rc.scores.push_back(ties ? std::round(s * 2.0f) / 2.0f : s);
  }
  rc.n_discard = uni(0, m - 1);  // at least one keeper so every source has a target
  const float eps_choices[] = {kEps, kEps, 0.9f, 0.5f, 0.0f};
  rc.eps = eps_choices[uni(0, 4)];
  rc.count = uni(0, 1) ? TargetCount::PerToken : TargetCount::LayerMax;
  const CompressRule rules[] = {CompressRule::Prune, CompressRule::SelfPreserving, CompressRule::Additive,
                                CompressRule::Average};
  rc.rule = rules[uni(0, 3)];
  const int64_t ns = rc.n_discard, nt = m - rc.n_discard;
  rc.correlation = Matrix(ns, nt);
  const bool ctie = uni(0, 2) == 0;
  for (int64_t i = 0; i < ns * nt; ++i) {
    float v = unit(g);
    rc.correlation.data()[i] = ctie ? std::round(v * 4.0f) / 4.0f : v;
  }
  return rc;
}

struct PipelineOut {
  FilterResult filter;
  Routing routing;
  Matrix hidden;
  std::vector<TokenMeta> meta;
};

PipelineOut RunStages(const RandomCase& rc) {
  PipelineOut out;
  out.filter = DiscardHighest(rc.candidates, rc.scores, rc.n_discard);
  out.routing = QuantileTargets(rc.correlation, out.filter.keep, rc.eps, rc.count);
  out.hidden = rc.hidden;
  out.meta = rc.meta;
  LayerPlan plan{out.filter, out.routing, rc.rule, {}};
  Compress(out.hidden, out.meta, plan);
  return out;
}

TEST(RandomPipelines, Invariants) {
  for (uint32_t seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const RandomCase rc = MakeRandomCase(seed);
    const int64_t n = rc.hidden.rows(), d = rc.hidden.cols();
    const PipelineOut out = RunStages(rc);
    const FilterResult& f = out.filter;
    const Routing& r = out.routing;

    // Filter: sizes, ascending, partition of the candidates, S are the highest (ties → lower row).
    ASSERT_EQ(static_cast<int64_t>(f.discard.size()), rc.n_discard);
    ASSERT_EQ(f.discard.size() + f.keep.size(), rc.candidates.size());
    EXPECT_TRUE(std::is_sorted(f.discard.begin(), f.discard.end()));
    EXPECT_TRUE(std::is_sorted(f.keep.begin(), f.keep.end()));
    std::vector<int32_t> all = f.discard;
    all.insert(all.end(), f.keep.begin(), f.keep.end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, rc.candidates);
    auto score_of = [&](int32_t row) { return rc.scores[static_cast<size_t>(row - 1)]; };
    for (int32_t s : f.discard)
      for (int32_t t : f.keep) {
        EXPECT_GE(score_of(s), score_of(t));
        if (score_of(s) == score_of(t)) {
          EXPECT_LT(s, t) << "tie must discard the lower row";
        }
      }

    // Correlate: well formed, targets in keep, α ≥ 0 summing to 1, α ∝ C, every source routed.
    ExpectWellFormed(r, rc.n_discard);
    const std::set<int32_t> keep_set(f.keep.begin(), f.keep.end());
    std::map<int32_t, int64_t> column_of;
    for (size_t j = 0; j < f.keep.size(); ++j) column_of[f.keep[j]] = static_cast<int64_t>(j);
    std::vector<double> received(static_cast<size_t>(n), 0.0);
    std::vector<int> n_received(static_cast<size_t>(n), 0);
    int64_t layer_k = -1;
    for (int64_t i = 0; i < rc.n_discard; ++i) {
      const auto t = TargetsOf(r, i);
      ASSERT_GE(t.size(), 1u);
      if (rc.count == TargetCount::LayerMax) {
        if (layer_k < 0) layer_k = static_cast<int64_t>(t.size());
        EXPECT_EQ(static_cast<int64_t>(t.size()), layer_k) << "LayerMax: same K in every row";
      }
      double sum_a = 0, sum_c = 0;
      float min_chosen = std::numeric_limits<float>::infinity();
      for (auto [dst, a] : t) {
        ASSERT_TRUE(keep_set.count(dst)) << "dst " << dst << " not in keep";
        EXPECT_GE(a, 0.0f);
        sum_a += a;
        const float cv = rc.correlation.at(i, column_of[dst]);
        sum_c += cv;
        min_chosen = std::min(min_chosen, cv);
        received[static_cast<size_t>(dst)] += a;
        n_received[static_cast<size_t>(dst)] += 1;
      }
      EXPECT_NEAR(sum_a, 1.0, 1e-5);
      if (sum_c > 0) {
        for (auto [dst, a] : t) EXPECT_NEAR(a, rc.correlation.at(i, column_of[dst]) / sum_c, 1e-5);
      }
      // The chosen targets are a top set of the row.
      for (size_t j = 0; j < f.keep.size(); ++j)
        if (!t.count(f.keep[j])) {
          EXPECT_LE(rc.correlation.at(i, static_cast<int64_t>(j)), min_chosen);
        }
    }
    if (rc.count == TargetCount::LayerMax && rc.n_discard > 0) {
      // K = max over rows of the per-token counts.
      Routing per = QuantileTargets(rc.correlation, f.keep, rc.eps, TargetCount::PerToken);
      int64_t kmax = 0;
      for (int64_t i = 0; i < rc.n_discard; ++i) kmax = std::max(kmax, CountOf(per, i));
      EXPECT_EQ(layer_k, kmax);
    }

    // Compress: row count, order, records, untouched rows.
    ASSERT_EQ(out.hidden.rows(), n - rc.n_discard);
    ASSERT_EQ(out.hidden.cols(), d);
    ASSERT_EQ(static_cast<int64_t>(out.meta.size()), n - rc.n_discard);
    for (size_t k = 1; k < out.meta.size(); ++k) EXPECT_LT(out.meta[k - 1].orig_index, out.meta[k].orig_index);
    const std::set<int32_t> discard_set(f.discard.begin(), f.discard.end());
    std::vector<int32_t> survivors;
    for (int32_t i = 0; i < n; ++i)
      if (!discard_set.count(i)) survivors.push_back(i);
    ASSERT_EQ(survivors.size(), out.meta.size());
    std::vector<double> lhs(static_cast<size_t>(d), 0.0), rhs(static_cast<size_t>(d), 0.0);
    for (size_t k = 0; k < survivors.size(); ++k) {
      const int32_t row = survivors[k];
      ExpectSameMeta(out.meta[k], rc.meta[static_cast<size_t>(row)]);
      const bool touched = rc.rule != CompressRule::Prune && n_received[static_cast<size_t>(row)] > 0;
      if (!touched) {
        EXPECT_TRUE(SameBits(out.hidden.row(static_cast<int64_t>(k)), rc.hidden.row(row), d)) << "row " << row;
      }
      // Conservation over the kept visual rows.
      if (keep_set.count(row)) {
        const double w = rc.rule == CompressRule::SelfPreserving ? 1.0 + received[static_cast<size_t>(row)]
                         : rc.rule == CompressRule::Average      ? 1.0 + n_received[static_cast<size_t>(row)]
                                                                 : 1.0;
        for (int64_t c = 0; c < d; ++c) {
          lhs[static_cast<size_t>(c)] += w * out.hidden.at(static_cast<int64_t>(k), c);
          rhs[static_cast<size_t>(c)] += rc.hidden.at(row, c);
        }
      }
    }
    if (rc.rule != CompressRule::Average) {
      // Prune: Σ_T X'_j = Σ_T X_j.
      // Σ_T (1 + Σα) X'_j = Σ_T X_j + Σ_S X_i (each source's α sums to 1); Additive: weight 1.
      if (rc.rule != CompressRule::Prune)
        for (int32_t s : f.discard)
          for (int64_t c = 0; c < d; ++c) rhs[static_cast<size_t>(c)] += rc.hidden.at(s, c);
      for (int64_t c = 0; c < d; ++c)
        EXPECT_NEAR(lhs[static_cast<size_t>(c)], rhs[static_cast<size_t>(c)],
                    1e-4 * (1.0 + std::fabs(rhs[static_cast<size_t>(c)])) * std::sqrt(static_cast<double>(n)))
            << "conservation, channel " << c;
    }

    // Determinism: the same inputs give identical outputs.
    const PipelineOut again = RunStages(rc);
    EXPECT_EQ(again.filter.discard, f.discard);
    EXPECT_EQ(again.filter.keep, f.keep);
    EXPECT_EQ(again.routing.src_begin, r.src_begin);
    EXPECT_EQ(again.routing.dst, r.dst);
    ASSERT_EQ(again.routing.alpha.size(), r.alpha.size());
    EXPECT_TRUE(SameBits(again.routing.alpha.data(), r.alpha.data(), static_cast<int64_t>(r.alpha.size())));
    ASSERT_EQ(again.hidden.rows(), out.hidden.rows());
    EXPECT_TRUE(SameBits(again.hidden.data(), out.hidden.data(), out.hidden.rows() * d));
  }
}

TEST(RandomPipelines, SelfPreservingConservesWeightedMassOnLargeRows) {
  // Rows of 577 candidates (CLIP size), eps = 0.998 → two targets per source.
  std::mt19937 g(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const int64_t m = 577, n = m + 1, d = 4, ns = 42;
  Matrix hidden(n, d);
  for (int64_t i = 0; i < n * d; ++i) hidden.data()[i] = normal(g);
  std::vector<TokenMeta> meta(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) meta[static_cast<size_t>(i)].orig_index = static_cast<int32_t>(i);
  std::vector<int32_t> cand;
  std::vector<float> sc;
  for (int64_t i = 1; i <= m; ++i) {
    cand.push_back(static_cast<int32_t>(i));
    sc.push_back(normal(g));
  }
  LayerPlan plan;
  plan.filter = DiscardHighest(cand, sc, ns);
  Matrix c(ns, m - ns);  // rows of 535 → K = 535 − ⌈0.998·534⌉ = 535 − ⌈532.932⌉ = 2
  for (int64_t i = 0; i < c.rows() * c.cols(); ++i) c.data()[i] = unit(g);
  plan.routing = QuantileTargets(c, plan.filter.keep, kEps, TargetCount::PerToken);
  for (int64_t i = 0; i < ns; ++i) EXPECT_EQ(CountOf(plan.routing, i), 2);
  plan.rule = CompressRule::SelfPreserving;
  std::vector<double> received(static_cast<size_t>(n), 0.0);
  for (size_t p = 0; p < plan.routing.dst.size(); ++p) received[static_cast<size_t>(plan.routing.dst[p])] += plan.routing.alpha[p];
  const Matrix before = hidden;
  Compress(hidden, meta, plan);
  ASSERT_EQ(hidden.rows(), n - ns);
  std::vector<double> lhs(d, 0.0), rhs(d, 0.0);
  int64_t k = 0;
  std::set<int32_t> s(plan.filter.discard.begin(), plan.filter.discard.end());
  for (int32_t row = 0; row < n; ++row) {
    if (s.count(row)) {
      for (int64_t ch = 0; ch < d; ++ch) rhs[ch] += before.at(row, ch);
      continue;
    }
    EXPECT_EQ(meta[static_cast<size_t>(k)].orig_index, row);
    if (row != 0) {
      for (int64_t ch = 0; ch < d; ++ch) {
        lhs[ch] += (1.0 + received[static_cast<size_t>(row)]) * hidden.at(k, ch);
        rhs[ch] += before.at(row, ch);
      }
    }
    ++k;
  }
  for (int64_t ch = 0; ch < d; ++ch) EXPECT_NEAR(lhs[ch], rhs[ch], 1e-3) << "channel " << ch;
}

}  // namespace
}  // namespace ficoco
