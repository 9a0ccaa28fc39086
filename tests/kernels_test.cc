// Kernels against plain scalar references, over odd sizes and every weight dtype.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <omp.h>

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/softmax.h"
#include "model/attention_signals.h"
#include "tensor/dtype.h"
#include "test_support.h"

namespace ficoco {
namespace {

Matrix RandomMatrix(int64_t r, int64_t c, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> n(0, 1);
  Matrix m(r, c);
  for (int64_t i = 0; i < r * c; ++i) m.data()[i] = n(g);
  return m;
}

struct StoredWeight {
  std::vector<uint8_t> bytes;
  TensorView view;
};

StoredWeight Store(const Matrix& w, DType t) {
  StoredWeight s;
  s.bytes.resize(static_cast<size_t>(w.rows() * w.cols()) * DTypeSize(t));
  ConvertFromF32(w.data(), t, s.bytes.data(), w.rows() * w.cols());
  s.view = TensorView{"w", t, {w.rows(), w.cols()}, s.bytes.data()};
  return s;
}

class LinearTest : public ::testing::TestWithParam<std::tuple<DType, ComputeType, int>> {};

TEST_P(LinearTest, MatchesScalarReference) {
  const auto [dtype, compute, m] = GetParam();
  const int64_t k = 77, n = 1030;  // odd sizes, more than two weight panels
  Matrix x = RandomMatrix(m, k, 1);
  StoredWeight w = Store(RandomMatrix(n, k, 2), dtype);
  Matrix bias_m = RandomMatrix(1, n, 3);
  TensorView bias{"b", DType::F32, {n}, bias_m.data()};
  LinearWeight lw(w.view, &bias, compute);
  GemmContext gemm(compute);
  Matrix y, ref;
  gemm.Linear(x, lw, y);
  std::vector<float> b(bias_m.data(), bias_m.data() + n);
  // Reference on exactly what the kernel multiplies: the prepared weight (bf16 after
  // conversion in BF16 mode) and, for the oneDNN bf16 path, bf16-rounded activations.
  Matrix xr = x;
  if (compute == ComputeType::BF16 && m > kGemvMaxRows)
    for (int64_t i = 0; i < m * k; ++i) xr.data()[i] = BF16ToF32(F32ToBF16(x.data()[i]));
  LinearReference(xr, lw.weight(), b, ref);
  ASSERT_EQ(y.rows(), m);
  ASSERT_EQ(y.cols(), n);
  EXPECT_LE(test::MaxAbsDiff(y.data(), ref.data(), m * n), 1e-3f);
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, LinearTest,
                         ::testing::Combine(::testing::Values(DType::F32, DType::F16, DType::BF16),
                                            ::testing::Values(ComputeType::F32, ComputeType::BF16),
                                            ::testing::Values(1, 3, 37)));

// tq 1 and 3 take the in-place path for few query rows (decode), 9 the batched one.
class AttentionRows : public ::testing::TestWithParam<int64_t> {};

TEST_P(AttentionRows, MatchesNaiveSoftmaxWithCausalMaskAndGqa) {
  const int h = 4, hkv = 2, d = 8;
  const int64_t tq = GetParam(), tk = 7 + tq, offset = 4;
  Matrix q = RandomMatrix(tq, h * d, 5), k = RandomMatrix(tk, hkv * d, 6), v = RandomMatrix(tk, hkv * d, 7);
  GemmContext gemm(ComputeType::F32);
  Matrix out;
  MultiHeadAttention(gemm, q, k, v, {h, hkv, d}, {true, offset}, out);
  for (int hi = 0; hi < h; ++hi) {
    const int kh = hi / (h / hkv);
    for (int64_t i = 0; i < tq; ++i) {
      const int64_t vis = offset + i + 1;
      std::vector<double> s(static_cast<size_t>(vis));
      double mx = -1e30, sum = 0;
      for (int64_t j = 0; j < vis; ++j) {
        double acc = 0;
        for (int t = 0; t < d; ++t) acc += q.at(i, hi * d + t) * k.at(j, kh * d + t);
        s[static_cast<size_t>(j)] = acc / std::sqrt(static_cast<double>(d));
        mx = std::max(mx, s[static_cast<size_t>(j)]);
      }
      for (auto& e : s) sum += (e = std::exp(e - mx));
      for (int t = 0; t < d; ++t) {
        double o = 0;
        for (int64_t j = 0; j < vis; ++j) o += s[static_cast<size_t>(j)] / sum * v.at(j, kh * d + t);
        EXPECT_NEAR(out.at(i, hi * d + t), o, 1e-5) << "head " << hi << " row " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FewAndManyQueries, AttentionRows, ::testing::Values(1, 3, 9));

// The decode path and the batched path (forced by asking for the probabilities) agree,
// key bias included, for head sizes with a register-resident SIMD form (32, 64, 128),
// and ones without (16, 40); 299 and 300 visible keys cover the 4-key loop's tail.
class AttentionDecodeHeadDim : public ::testing::TestWithParam<int> {};

TEST_P(AttentionDecodeHeadDim, InPlaceDecodePathEqualsBatchedPath) {
  const int h = 4, hkv = 4, d = GetParam();
  const int64_t tk = 300;
  Matrix q = RandomMatrix(2, h * d, 11), k = RandomMatrix(tk, hkv * d, 12), v = RandomMatrix(tk, hkv * d, 13);
  std::vector<float> bias(static_cast<size_t>(tk));
  for (int64_t j = 0; j < tk; ++j) bias[static_cast<size_t>(j)] = std::log(1.0f + static_cast<float>(j % 5));
  GemmContext gemm(ComputeType::F32);
  AttentionMask mask{true, tk - 2, &bias};
  Matrix fast, batched;
  std::vector<float> probs;
  MultiHeadAttention(gemm, q, k, v, {h, hkv, d}, mask, fast);
  MultiHeadAttention(gemm, q, k, v, {h, hkv, d}, mask, batched, &probs);
  ASSERT_EQ(fast.rows(), 2);
  EXPECT_LE(test::MaxAbsDiff(fast.data(), batched.data(), fast.rows() * fast.cols()), 1e-5f);
}

// Half-float keys and values (the KV cache's default type): both paths widen them exactly,
// so they match fp32 attention over the widened copies.
TEST_P(AttentionDecodeHeadDim, HalfFloatRowsEqualTheirWidenedCopies) {
  const int h = 4, hkv = 2, d = GetParam();
  const int64_t tk = 299;
  Matrix q = RandomMatrix(2, h * d, 21), k = RandomMatrix(tk, hkv * d, 22), v = RandomMatrix(tk, hkv * d, 23);
  std::vector<uint16_t> k16(static_cast<size_t>(tk * hkv * d)), v16(k16.size());
  ConvertFromF32(k.data(), DType::F16, k16.data(), tk * hkv * d);
  ConvertFromF32(v.data(), DType::F16, v16.data(), tk * hkv * d);
  ConvertToF32(DType::F16, k16.data(), k.data(), tk * hkv * d);  // k, v := their rounded values
  ConvertToF32(DType::F16, v16.data(), v.data(), tk * hkv * d);
  const KvRows hk{KvType::F16, k16.data(), tk, hkv * d}, hv{KvType::F16, v16.data(), tk, hkv * d};
  GemmContext gemm(ComputeType::F32);
  const AttentionMask mask{true, tk - 2};
  Matrix want, fast, batched;
  std::vector<float> probs;
  MultiHeadAttention(gemm, q, k, v, {h, hkv, d}, mask, want);
  MultiHeadAttention(gemm, q, hk, hv, {h, hkv, d}, mask, fast);
  MultiHeadAttention(gemm, q, hk, hv, {h, hkv, d}, mask, batched, &probs);
  EXPECT_LE(test::MaxAbsDiff(fast.data(), want.data(), want.rows() * want.cols()), 1e-5f);
  EXPECT_LE(test::MaxAbsDiff(batched.data(), want.data(), want.rows() * want.cols()), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(HeadSizes, AttentionDecodeHeadDim, ::testing::Values(16, 32, 40, 64, 128));

// The decode path splits the visible keys over the threads and combines the parts: with
// more threads than keys some parts are empty, and keys biased to -inf (never attended)
// can make a whole part empty of weight. Both must leave the result that of the batched path.
TEST(AttentionDecodeSplit, EmptyAndFullyMaskedPartsLeaveTheBatchedResult) {
  const int h = 4, d = 32;
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(5);
  for (const int64_t tk : {1, 2, 3, 7, 41}) {
    Matrix q = RandomMatrix(2, h * d, 31), k = RandomMatrix(tk, h * d, 32), v = RandomMatrix(tk, h * d, 33);
    std::vector<float> bias(static_cast<size_t>(tk), 0.0f);
    for (int64_t j = 0; j + 1 < tk && j < tk / 2; ++j) bias[static_cast<size_t>(j)] = -INFINITY;
    const std::vector<float>* biases[] = {nullptr, &bias};
    for (const std::vector<float>* b : biases) {
      GemmContext gemm(ComputeType::F32);
      const AttentionMask mask{true, tk - 2, b};
      Matrix fast, batched;
      std::vector<float> probs;
      MultiHeadAttention(gemm, q, k, v, {h, h, d}, mask, fast);
      MultiHeadAttention(gemm, q, k, v, {h, h, d}, mask, batched, &probs);
      // Counted, not ASSERTed: an early return would skip restoring the thread count below.
      int64_t non_finite = 0;
      for (int64_t i = 0; i < fast.rows() * fast.cols(); ++i) non_finite += !std::isfinite(fast.data()[i]);
      EXPECT_EQ(non_finite, 0) << tk << " keys, bias " << (b != nullptr);
      EXPECT_LE(test::MaxAbsDiff(fast.data(), batched.data(), fast.rows() * fast.cols()), 1e-5f)
          << tk << " keys, bias " << (b != nullptr);
    }
  }
  omp_set_num_threads(saved_threads);
}

TEST(AttentionSignals, HeadMeanLogitIsFullWidthDotOverHSqrtD) {
  const int h = 2, d = 2;
  Matrix q(1, 4), k(2, 4);
  // q = [1,2 | 3,4], k0 = [1,0 | 0,1], k1 = [2,2 | -1,1]
  const float qv[] = {1, 2, 3, 4}, kv[] = {1, 0, 0, 1, 2, 2, -1, 1};
  std::copy(qv, qv + 4, q.data());
  std::copy(kv, kv + 8, k.data());
  AttentionSignals s(q, k, {h, h, d}, {});
  Matrix z = s.MeanLogits({0}, {0, 1});
  // head 0: q·k0 = 1, q·k1 = 6; head 1: 4, 1 → mean / sqrt(2)
  EXPECT_NEAR(z.at(0, 0), (1 + 4) / 2.0 / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(z.at(0, 1), (6 + 1) / 2.0 / std::sqrt(2.0), 1e-6);
  Matrix a = s.MeanOfProbs({0}, {0, 1});
  EXPECT_NEAR(a.at(0, 0) + a.at(0, 1), 1.0, 1e-6);
  const double p0h0 = 1 / (1 + std::exp((6 - 1) / std::sqrt(2.0)));
  const double p0h1 = 1 / (1 + std::exp((1 - 4) / std::sqrt(2.0)));
  EXPECT_NEAR(a.at(0, 0), (p0h0 + p0h1) / 2, 1e-6);
  Matrix p = s.ProbsOfMeanLogits({0}, {1});
  EXPECT_NEAR(p.at(0, 0), 1 / (1 + std::exp(z.at(0, 0) - z.at(0, 1))), 1e-6);
}

// The GEMM path (any-shape oneDNN product, GQA key heads repeated) and the row-mean
// shortcut (query against the mean key) agree with the scalar definition.
TEST(AttentionSignals, GemmBlocksAndRowMeansMatchTheDefinitionWithGqaAndMha) {
  for (const int hkv : {2, 4}) {
  const int h = 4, d = 8;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  Matrix q(9, h * d), k(9, hkv * d);
  for (int64_t i = 0; i < q.rows() * q.cols(); ++i) q.data()[i] = nd(rng);
  for (int64_t i = 0; i < k.rows() * k.cols(); ++i) k.data()[i] = nd(rng);
  GemmContext gemm(ComputeType::F32);
  AttentionSignals fast(q, k, {h, hkv, d}, {}, &gemm), slow(q, k, {h, hkv, d}, {});
  for (auto [rows, cols] : {std::pair<std::vector<int32_t>, std::vector<int32_t>>{{0, 3, 8}, {1, 2, 5, 7, 8}},
                            {{4}, {0, 1, 2, 3, 4, 5, 6, 7, 8}}, {{1, 2, 3, 4, 5, 6}, {8}}}) {
    Matrix a = fast.MeanLogits(rows, cols), b = slow.MeanLogits(rows, cols);
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t j = 0; j < cols.size(); ++j) {
        double z = 0;
        for (int hi = 0; hi < h; ++hi)
          for (int t = 0; t < d; ++t) z += q.at(rows[i], hi * d + t) * k.at(cols[j], (hi / (h / hkv)) * d + t);
        z /= h * std::sqrt(static_cast<double>(d));
        EXPECT_NEAR(a.at(static_cast<int64_t>(i), static_cast<int64_t>(j)), z, 1e-5);
        EXPECT_NEAR(b.at(static_cast<int64_t>(i), static_cast<int64_t>(j)), z, 1e-5);
      }
    std::vector<float> means = fast.RowMeanLogits(rows, cols);
    for (size_t i = 0; i < rows.size(); ++i) {
      double m = 0;
      for (size_t j = 0; j < cols.size(); ++j) m += b.at(static_cast<int64_t>(i), static_cast<int64_t>(j));
      EXPECT_NEAR(means[i], m / static_cast<double>(cols.size()), 1e-5);
    }
  }
  }
}

// Proportional attention: a key of size 3 counts three times in the softmax.
TEST(Attention, KeyBiasActsAsLogSizeWeights) {
  Matrix q(1, 1), k(2, 1), v(2, 1), out;
  q.at(0, 0) = 1;
  k.at(0, 0) = k.at(1, 0) = 1;  // equal logits
  v.at(0, 0) = 0;
  v.at(1, 0) = 4;
  const std::vector<float> bias{0.0f, std::log(3.0f)};
  AttentionMask mask;
  mask.key_bias = &bias;
  GemmContext gemm(ComputeType::F32);
  std::vector<float> probs;
  MultiHeadAttention(gemm, q, k, v, {1, 1, 1}, mask, out, &probs);
  EXPECT_NEAR(probs[0], 0.25f, 1e-6);
  EXPECT_NEAR(probs[1], 0.75f, 1e-6);
  EXPECT_NEAR(out.at(0, 0), 3.0f, 1e-5);
  AttentionSignals signals(q, k, {1, 1, 1}, mask);
  EXPECT_NEAR(signals.MeanOfProbs({0}, {1}).at(0, 0), 0.75f, 1e-6);
  EXPECT_NEAR(signals.ProbsOfMeanLogits({0}, {1}).at(0, 0), 0.75f, 1e-6);
  const std::vector<float> wrong{0.0f};
  mask.key_bias = &wrong;
  test::ExpectError([&] { MultiHeadAttention(gemm, q, k, v, {1, 1, 1}, mask, out); }, {"key bias", "2 keys"});
}

TEST(Rope, PositionZeroIsIdentityAndRotationPreservesNorm) {
  Matrix x = RandomMatrix(2, 8, 9), y = x;
  ApplyRope(y, 2, 4, {0, 17}, 10000.0f);
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(y.at(0, i), x.at(0, i));
  for (int h = 0; h < 2; ++h) {
    double n0 = 0, n1 = 0;
    for (int i = 0; i < 4; ++i) {
      n0 += x.at(1, h * 4 + i) * x.at(1, h * 4 + i);
      n1 += y.at(1, h * 4 + i) * y.at(1, h * 4 + i);
    }
    EXPECT_NEAR(n0, n1, 1e-4);
  }
}

TEST(Norms, RmsAndLayerNormOnKnownRows) {
  Matrix x(1, 4);
  const float v[] = {1, 2, 3, 4};
  std::copy(v, v + 4, x.data());
  Matrix y;
  RmsNorm(x, {1, 1, 1, 1}, 0.0f, y);
  EXPECT_NEAR(y.at(0, 3), 4 / std::sqrt(7.5), 1e-6);
  LayerNorm(x, {1, 1, 1, 1}, {0, 0, 0, 0}, 0.0f, y);
  EXPECT_NEAR(y.at(0, 0), -1.5 / std::sqrt(1.25), 1e-6);
}

}  // namespace
}  // namespace ficoco

namespace ficoco {
namespace {

TEST(Softmax, MatchesDoublePrecisionOnOddLengthsAndExtremes) {
  for (int64_t n : {1, 7, 16, 17, 33, 577}) {
    Matrix x = RandomMatrix(1, n, static_cast<uint32_t>(n));
    for (int64_t i = 0; i < n; ++i) x.data()[i] *= 20.0f;  // logits over a wide range
    if (n > 3) x.data()[2] = -1e30f;                        // a masked-like entry
    std::vector<float> row(x.data(), x.data() + n);
    SoftmaxRow(row.data(), n);
    double mx = -1e300, sum = 0;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(x.data()[i]));
    for (int64_t i = 0; i < n; ++i) sum += std::exp(x.data()[i] - mx);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = std::exp(x.data()[i] - mx) / sum;
      EXPECT_NEAR(row[static_cast<size_t>(i)], ref, 1e-6 * std::max(1.0, ref)) << "n " << n << " i " << i;
    }
  }
}

}  // namespace
}  // namespace ficoco
