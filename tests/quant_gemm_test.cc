// QuantGemm (packed Q8_0 / Q4_0 / Q4_1 / Q4_K / Q6_K weights, any row count) and the
// quantized LinearWeight.
// References, in double precision:
//  * tight: Dequantize(W) times the SAME 8-bit activations (QuantizeActivationRow). Block
//    sums are exact integers in both, so only the fp32 scaling and the fp32 sum over
//    k/32 blocks round: error <= 1e-5 * sum |w * xq| (see quant_gemv_test.cc);
//    For the types with a min (Q4_1, Q4_K: w = s*q + m, computed as s*sum(q*x) + m*sum(x))
//    the bound is taken over |s*q| + |m| instead of |w|, the terms the kernel adds;
//  * QuantGemvScalar on the original ggml blocks (same integer sums): the same bound twice
//    (Q8_0 / Q4_0, the types QuantGemv reads).
// Shapes are odd on purpose: M = 1..130 (row tiles of 4 plus every tail), n_out not a
// multiple of the 16-column group nor of the 2-group pair, k = 32 (one block) to 4096.
#include "kernels/quant_gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/generate.h"
#include "engine/llava_model.h"
#include "image/image.h"
#include "kernels/gemm.h"
#include "kernels/quant_gemv.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "test_support.h"

namespace ficoco {
namespace {

using GemmFn = void (*)(const QuantPackedWeight&, const float*, int64_t, float*, const float*);
struct Path {
  const char* name;
  GemmFn fn;
};
#if defined(__AVX2__) && defined(__FMA__)
#define FICOCO_TEST_AVX2 1
#endif
// The AVX2 kernel is listed too whenever it is compiled, also on AVX-512 builds where
// QuantGemm itself dispatches to VNNI, so every test below covers all three kernels.
const Path kPaths[] = {{"dispatched", QuantGemm},
                       {"scalar", QuantGemmScalar},
#if defined(FICOCO_TEST_AVX2)
                       {"avx2", QuantGemmAvx2},
#endif
};

std::vector<uint8_t> Half(float v) {
  const uint16_t h = F32ToF16(v);
  return {static_cast<uint8_t>(h & 0xFF), static_cast<uint8_t>(h >> 8)};
}

TEST(QuantGemm, HandComputedQ4_0) {
  // Row 0: d = 0.25, qs = 0x9F: elements 0..15 code 15 (value 7d), 16..31 code 9 (1d).
  // Row 1: d = 0.5, all codes 8 except element 3 (low nibble of qs[3] = 12: value +4d = 2).
  std::vector<uint8_t> w = Half(0.25f);
  w.insert(w.end(), 16, 0x9F);
  std::vector<uint8_t> r1 = Half(0.5f);
  r1.insert(r1.end(), 16, 0x88);
  r1[2 + 3] = 0x8C;
  w.insert(w.end(), r1.begin(), r1.end());
  std::vector<float> x(32, 1.0f);  // x = +1 on 0..15, -1 on 16..31; x[3] = 1 -> y1 = 2
  std::fill(x.begin() + 16, x.end(), -1.0f);
  const QuantPackedWeight pw = PackQuantWeight(GgmlType::Q4_0, w.data(), 2, 32);
  const float bias[2] = {0.5f, -1.0f};
  for (const Path& p : kPaths) {
    float y[2] = {};
    p.fn(pw, x.data(), 1, y, bias);
    EXPECT_NEAR(y[0], 0.25f * (16 * 7 - 16 * 1) + 0.5f, 1e-4f) << p.name;
    EXPECT_NEAR(y[1], 2.0f - 1.0f, 1e-4f) << p.name;
  }
}

TEST(QuantGemm, HandComputedQ8_0) {
  // d = 0.5, q = -3 on even elements and +5 on odd ones; x = 2 everywhere (exact on the
  // 8-bit grid): y = 0.5 * 2 * 16 * (5 - 3) = 32.
  std::vector<uint8_t> w = Half(0.5f);
  for (int i = 0; i < 32; ++i) w.push_back(static_cast<uint8_t>(static_cast<int8_t>(i % 2 ? 5 : -3)));
  std::vector<float> x(32, 2.0f);
  const QuantPackedWeight pw = PackQuantWeight(GgmlType::Q8_0, w.data(), 1, 32);
  for (const Path& p : kPaths) {
    float y = 0;
    p.fn(pw, x.data(), 1, &y, nullptr);
    EXPECT_NEAR(y, 32.0f, 1e-4f) << p.name;
  }
}

struct Problem {
  std::vector<uint8_t> blocks;  // ggml layout
  std::vector<float> x, tight, tol;
};

// Per weight, the magnitude of what the kernel adds for it: |s*q| + |m| for the types with
// a min (Q4_1: s = d, m = m; Q4_K: s = d*sc, m = -dmin*mn), else |w| (wdq, dequantized).
std::vector<float> TermMagnitudes(GgmlType type, const std::vector<uint8_t>& blocks, const std::vector<float>& wdq) {
  std::vector<float> mag(wdq.size());
  if (type == GgmlType::Q4_1) {
    for (size_t b = 0; b < wdq.size() / 32; ++b) {
      const uint8_t* blk = blocks.data() + b * 20;
      const float d = F16ToF32(static_cast<uint16_t>(blk[0] | blk[1] << 8));
      const float mn = F16ToF32(static_cast<uint16_t>(blk[2] | blk[3] << 8));
      for (int e = 0; e < 32; ++e) {
        const int q = e < 16 ? blk[4 + e] & 15 : blk[4 + e - 16] >> 4;
        mag[b * 32 + e] = std::fabs(d * q) + std::fabs(mn);
      }
    }
  } else if (type == GgmlType::Q4_K) {
    for (size_t sb = 0; sb < wdq.size() / 256; ++sb) {
      uint8_t q[256];
      float scale[8], min[8];
      UnpackQ4_K(blocks.data() + sb * 144, q, scale, min);
      for (int e = 0; e < 256; ++e) mag[sb * 256 + e] = std::fabs(scale[e / 32] * q[e]) + std::fabs(min[e / 32]);
    }
  } else {
    for (size_t i = 0; i < wdq.size(); ++i) mag[i] = std::fabs(wdq[i]);
  }
  return mag;
}

// Activations for m rows (normal, with outliers and a zero block) and the double-precision
// reference of Dequantize(blocks) times their 8-bit form.
void FillActivationsAndReference(Problem& p, GgmlType type, int64_t n, int64_t k, int64_t m, std::mt19937& g) {
  std::normal_distribution<float> xd(0, 1.0f);
  std::vector<float> wdq(static_cast<size_t>(n * k));
  Dequantize(type, p.blocks.data(), wdq.data(), n * k);
  const std::vector<float> mag = TermMagnitudes(type, p.blocks, wdq);
  p.x.resize(static_cast<size_t>(m * k));
  for (float& v : p.x) v = xd(g);
  for (size_t i = 5; i < p.x.size(); i += 97) p.x[i] *= 20;  // outliers: coarse blocks
  std::fill(p.x.begin(), p.x.begin() + 32, 0.0f);            // a zero block (scale 0)
  const int64_t nb = k / 32;
  std::vector<int8_t> xq(p.x.size());
  std::vector<float> dx(static_cast<size_t>(m * nb));
  for (int64_t i = 0; i < m; ++i) QuantizeActivationRow(p.x.data() + i * k, k, xq.data() + i * k, dx.data() + i * nb);
  p.tight.resize(static_cast<size_t>(m * n));
  p.tol.resize(p.tight.size());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0, a = 0;
      for (int64_t t = 0; t < k; ++t) {
        const double xv = static_cast<double>(dx[i * nb + t / 32]) * xq[i * k + t];
        s += static_cast<double>(wdq[j * k + t]) * xv;
        a += static_cast<double>(mag[j * k + t]) * std::fabs(xv);
      }
      p.tight[i * n + j] = static_cast<float>(s);
      p.tol[i * n + j] = static_cast<float>(1e-5 * a + 1e-30);
    }
}

Problem MakeProblem(GgmlType type, int64_t n, int64_t k, int64_t m, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> wd(0, 0.02f);
  std::vector<float> wf(static_cast<size_t>(n * k));
  for (float& v : wf) v = wd(g);
  Problem p;
  p.blocks.resize(QuantRowBytes(type, k) * static_cast<size_t>(n));
  Quantize(type, wf.data(), p.blocks.data(), n * k);
  FillActivationsAndReference(p, type, n, k, m, g);
  return p;
}


void CheckShape(GgmlType type, int64_t n, int64_t k, int64_t m, uint32_t seed) {
  const Problem p = MakeProblem(type, n, k, m, seed);
  const QuantPackedWeight pw = PackQuantWeight(type, p.blocks.data(), n, k);
  std::vector<float> gemv(p.tight.size());
  const bool with_gemv = QuantGemvSupports(type);
  if (with_gemv) QuantGemvScalar(type, p.blocks.data(), n, k, p.x.data(), m, gemv.data());
  for (const Path& path : kPaths) {
    std::vector<float> y(p.tight.size(), NAN);
    path.fn(pw, p.x.data(), m, y.data(), nullptr);
    for (size_t o = 0; o < y.size(); ++o) {
      const std::string where = std::string(path.name) + " " + GgmlTypeName(type) + " n=" + std::to_string(n) +
                                " k=" + std::to_string(k) + " m=" + std::to_string(m) + " out " + std::to_string(o);
      ASSERT_LE(std::fabs(y[o] - p.tight[o]), p.tol[o]) << where;
      if (with_gemv) {
        ASSERT_LE(std::fabs(y[o] - gemv[o]), 2 * p.tol[o]) << where;
      }
    }
  }
}

TEST(QuantGemm, OddShapesAgainstReferences) {
  uint32_t seed = 1;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 9, 13, 33, 130})
      for (int64_t n : {1, 17, 50}) CheckShape(t, n, 96, m, seed++);
    for (int64_t m : {1, 5, 130}) CheckShape(t, 37, 32, m, seed++);
  }
}

TEST(QuantGemm, LargeK) {
  CheckShape(GgmlType::Q4_0, 100, 4096, 11, 200);
  CheckShape(GgmlType::Q8_0, 70, 4096, 6, 201);
}

// Long odd k (130 blocks) with a large bias: the bias is added exactly once.
TEST(QuantGemm, LongKWithBias) {
  const int64_t n = 45, k = 32 * 130, m = 6;
  const Problem p = MakeProblem(GgmlType::Q4_0, n, k, m, 400);
  const QuantPackedWeight pw = PackQuantWeight(GgmlType::Q4_0, p.blocks.data(), n, k);
  std::vector<float> bias(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) bias[static_cast<size_t>(j)] = 100.0f + static_cast<float>(j);
  std::vector<float> y(p.tight.size(), NAN), ys(p.tight.size(), NAN);
  QuantGemm(pw, p.x.data(), m, y.data(), bias.data());
  QuantGemmScalar(pw, p.x.data(), m, ys.data(), bias.data());
  for (size_t o = 0; o < y.size(); ++o) {
    const float b = bias[o % static_cast<size_t>(n)];
    ASSERT_LE(std::fabs(y[o] - (p.tight[o] + b)), p.tol[o] + 1e-4f) << o;
    ASSERT_LE(std::fabs(ys[o] - (p.tight[o] + b)), p.tol[o] + 1e-4f) << o;
  }
}

// Several column panels (OpenMP work items) and a partial last group.
TEST(QuantGemm, ManyPanels) { CheckShape(GgmlType::Q4_0, 16 * 40 + 3, 1024, 9, 300); }

// A random F16 linear layer [n, k] with bias and m activation rows, for the LinearWeight
// constructor tests: wf holds the F16 weights widened, wv/bv view the stored tensors.
struct RandomF16Linear {
  std::vector<uint16_t> wf16;
  std::vector<float> wf, bias;
  TensorView wv, bv;
  Matrix x;
  RandomF16Linear(int64_t n, int64_t k, int64_t m, unsigned seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0, 0.05f);
    wf16.resize(static_cast<size_t>(n * k));
    wf.resize(wf16.size());
    for (size_t i = 0; i < wf.size(); ++i) {
      wf16[i] = F32ToF16(d(g));
      wf[i] = F16ToF32(wf16[i]);
    }
    bias.resize(static_cast<size_t>(n));
    for (float& b : bias) b = d(g) * 10;
    wv = TensorView{"layer.weight", DType::F16, {n, k}, wf16.data()};
    bv = TensorView{"layer.bias", DType::F32, {n}, bias.data()};
    x = Matrix(m, k);
    for (int64_t i = 0; i < m * k; ++i) x.data()[i] = d(g) * 20;
  }
};

TEST(QuantGemm, LinearWeightBothConstructorsAndBias) {
  const int64_t n = 23, k = 64, m = 7;
  const RandomF16Linear layer(n, k, m, 5);
  const auto& [wf16, wf, bias, wv, bv, x] = layer;  // wf16 is what wv views
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    std::vector<uint8_t> blocks(QuantRowBytes(t, k) * n);
    Quantize(t, wf.data(), blocks.data(), n * k);
    const LinearWeight from_float(wv, &bv, t);
    const LinearWeight from_blocks(t, blocks.data(), n, k, &bv, "layer.weight");
    EXPECT_TRUE(from_float.quantized());
    EXPECT_EQ(from_float.quant_type(), t);
    EXPECT_EQ(from_float.out_features(), n);
    EXPECT_EQ(from_float.in_features(), k);
    EXPECT_TRUE(from_blocks.converted());
    // The same blocks either way: identical packed bytes.
    ASSERT_EQ(from_float.packed().nbytes(), from_blocks.packed().nbytes());
    EXPECT_EQ(std::memcmp(from_float.packed().data(), from_blocks.packed().data(), from_float.packed().nbytes()), 0);
    GemmContext ctx(ComputeType::BF16);
    for (int64_t rows : {int64_t{1}, m}) {  // the decode and the prefill dispatch
      Matrix xs(rows, k);
      std::memcpy(xs.data(), x.data(), sizeof(float) * rows * k);
      Matrix y, ref;
      ctx.Linear(xs, from_blocks, y);
      ref.Resize(rows, n);
      QuantGemmScalar(from_blocks.packed(), xs.data(), rows, ref.data(), bias.data());
      ASSERT_EQ(y.rows(), rows);
      ASSERT_EQ(y.cols(), n);
      // Against the float weight: quantization error only (loose, relative to |y|).
      for (int64_t i = 0; i < rows * n; ++i) {
        EXPECT_NEAR(y.data()[i], ref.data()[i], 1e-4f * (1 + std::fabs(ref.data()[i]))) << GgmlTypeName(t);
        double exact = bias[static_cast<size_t>(i % n)];
        for (int64_t c = 0; c < k; ++c) exact += static_cast<double>(xs.data()[i / n * k + c]) * wf[(i % n) * k + c];
        EXPECT_NEAR(y.data()[i], exact, t == GgmlType::Q8_0 ? 0.05 : 0.3) << GgmlTypeName(t) << " out " << i;
      }
    }
  }
}

TEST(QuantGemm, Errors) {
  std::vector<uint8_t> blocks(34 * 4, 0);
  EXPECT_TRUE(QuantGemmSupports(GgmlType::Q8_0));
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K}) EXPECT_TRUE(QuantGemmSupports(t));
  for (GgmlType t : {GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q5_K, GgmlType::F16}) EXPECT_FALSE(QuantGemmSupports(t));
  test::ExpectError([&] { PackQuantWeight(GgmlType::Q5_1, blocks.data(), 1, 32); }, {"unsupported weight type Q5_1", "Q4_K"});
  test::ExpectError([&] { PackQuantWeight(GgmlType::Q4_K, blocks.data(), 1, 32); }, {"k = 32", "256", "Q4_K"});
  EXPECT_THROW(PackQuantWeight(GgmlType::Q8_0, blocks.data(), 1, 48), Error);
  EXPECT_THROW(PackQuantWeight(GgmlType::Q8_0, blocks.data(), 0, 32), Error);
  EXPECT_THROW(PackQuantWeight(GgmlType::Q8_0, nullptr, 1, 32), Error);
  std::vector<float> y(4), x(64);
  EXPECT_THROW(QuantGemm(QuantPackedWeight(), x.data(), 1, y.data()), Error);
  std::vector<uint16_t> w(2 * 40, 0);
  const TensorView odd{"model.odd.weight", DType::F16, {2, 40}, w.data()};
  try {
    LinearWeight lw(odd, nullptr, GgmlType::Q8_0);
    FAIL() << "k = 40 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.odd.weight"), std::string::npos) << e.what();
  }
  try {
    LinearWeight lw(GgmlType::Q5_K, blocks.data(), 1, 256, nullptr, "blk.0.ffn_up.weight");
    FAIL() << "Q5_K accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_up.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Q5_K"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Q6_K"), std::string::npos) << "lists the supported types: " << e.what();
  }
  std::vector<uint8_t> q6(210 * 2, 0);
  test::ExpectError([&] { LinearWeight(GgmlType::Q6_K, q6.data(), 1, 128, nullptr, "blk.0.attn_v.weight"); },
                    {"blk.0.attn_v.weight", "Q6_K", "multiple of 256"});
  std::vector<float> b3(3);
  const TensorView bad_bias{"layer.bias", DType::F32, {3}, b3.data()};
  EXPECT_THROW(LinearWeight(GgmlType::Q8_0, blocks.data(), 2, 32, &bad_bias, "layer.weight"), Error);
}

// The AVX2 kernel for every row count 1..130 (tiles of FICOCO_QGEMM_AVX2_MR rows and all
// tails), odd column counts (partial 16-column groups and 8-column halves), with and
// without bias: against the double reference with the tolerance of the tests above, and
// against the scalar kernel on the same packed weight.
TEST(QuantGemmAvx2, EveryRowCountBothTypesWithAndWithoutBias) {
#if !defined(FICOCO_TEST_AVX2)
  GTEST_SKIP() << "the compiler does not target AVX2 + FMA: QuantGemmAvx2 is not built";
#else
  const int64_t kMaxM = 130;
  struct Shape {
    int64_t n, k;
  };
  uint32_t seed = 700;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    for (const Shape sh : {Shape{37, 64}, Shape{9, 32}, Shape{50, 416}}) {
      // One problem of 130 rows; a call with m rows uses its first m (rows are independent).
      const Problem p = MakeProblem(t, sh.n, sh.k, kMaxM, seed++);
      const QuantPackedWeight pw = PackQuantWeight(t, p.blocks.data(), sh.n, sh.k);
      std::vector<float> bias(static_cast<size_t>(sh.n));
      for (int64_t j = 0; j < sh.n; ++j) bias[static_cast<size_t>(j)] = 3.0f - 0.25f * static_cast<float>(j);
      for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
        for (int64_t m = 1; m <= kMaxM; ++m) {
          const size_t outs = static_cast<size_t>(m * sh.n);
          std::vector<float> y(outs + 1, NAN), ys(outs, NAN);
          y[outs] = 12345.0f;  // guard: nothing written past row m
          QuantGemmAvx2(pw, p.x.data(), m, y.data(), b);
          QuantGemmScalar(pw, p.x.data(), m, ys.data(), b);
          ASSERT_EQ(y[outs], 12345.0f) << "write past the last row, m=" << m;
          for (size_t o = 0; o < outs; ++o) {
            const float bo = b ? b[o % static_cast<size_t>(sh.n)] : 0.0f;
            const std::string where = std::string(GgmlTypeName(t)) + (b ? " bias" : " no bias") +
                                      " n=" + std::to_string(sh.n) + " k=" + std::to_string(sh.k) +
                                      " m=" + std::to_string(m) + " out " + std::to_string(o);
            ASSERT_LE(std::fabs(y[o] - (p.tight[o] + bo)), p.tol[o] + (b ? 1e-5f : 0.0f)) << where;
            ASSERT_LE(std::fabs(y[o] - ys[o]), 2 * p.tol[o] + (b ? 1e-5f : 0.0f)) << where;
          }
        }
      }
    }
  }
#endif
}

// Extreme values: weights and activations at +-127 (and Q8_0 weights at -128, which ggml's
// quantizer never writes but a GGUF file may hold) in every lane, scales 1. Every partial
// sum is an integer below 2^24, so all kernels must be exact. This catches int16
// saturation: vpmaddubsw on Q8_0's offset bytes (255 * 127 * 2 > 32767), the sign trick
// applied the wrong way round (negating a -128), or Q4_0's int16 block sums kept longer
// than one block.
struct ExtremeCase {
  std::vector<uint8_t> blocks;
  std::vector<float> x;
  std::vector<float> exact;
};

// Activation row r, element e: always +-127, so d_x = 1 and q = x exactly.
float ExtremeActivation(int64_t r, int64_t e) {
  switch (r % 6) {
    case 0: return 127.0f;
    case 1: return -127.0f;
    case 2: return e % 2 ? -127.0f : 127.0f;
    case 3: return e % 2 ? 127.0f : -127.0f;
    case 4: return e % 32 < 16 ? 127.0f : -127.0f;
    default: return (e * 7 + r) % 5 < 2 ? -127.0f : 127.0f;
  }
}

// Q8_0 weight value of column j, element e (-128..127).
int ExtremeQ8(int64_t j, int64_t e) {
  switch (j % 6) {
    case 0: return 127;
    case 1: return -127;
    case 2: return -128;
    case 3: return e % 2 ? -127 : 127;
    case 4: return e % 2 ? 127 : -128;
    default: return e % 32 < 16 ? 127 : -128;
  }
}

// Q4_0 stored nibble (0..15, value nibble - 8) of column j, element e.
int ExtremeQ4Nibble(int64_t j, int64_t e) {
  switch (j % 5) {
    case 0: return 15;
    case 1: return 0;
    case 2: return e % 2 ? 0 : 15;
    case 3: return e % 2 ? 15 : 0;
    default: return e % 32 < 16 ? 15 : 0;
  }
}

ExtremeCase MakeExtreme(GgmlType type, int64_t n, int64_t k, int64_t m) {
  const bool q4 = type == GgmlType::Q4_0;
  ExtremeCase c;
  const std::vector<uint8_t> one = Half(1.0f);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t b = 0; b < k / 32; ++b) {
      c.blocks.insert(c.blocks.end(), one.begin(), one.end());
      if (q4) {
        for (int64_t i = 0; i < 16; ++i)
          c.blocks.push_back(static_cast<uint8_t>(ExtremeQ4Nibble(j, b * 32 + i) |
                                                  (ExtremeQ4Nibble(j, b * 32 + 16 + i) << 4)));
      } else {
        for (int64_t i = 0; i < 32; ++i)
          c.blocks.push_back(static_cast<uint8_t>(static_cast<int8_t>(ExtremeQ8(j, b * 32 + i))));
      }
    }
  }
  c.x.resize(static_cast<size_t>(m * k));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t e = 0; e < k; ++e) c.x[static_cast<size_t>(r * k + e)] = ExtremeActivation(r, e);
  c.exact.resize(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t e = 0; e < k; ++e) {
        const int64_t wv = q4 ? ExtremeQ4Nibble(j, e) - 8 : ExtremeQ8(j, e);
        s += wv * static_cast<int64_t>(ExtremeActivation(r, e));
      }
      c.exact[static_cast<size_t>(r * n + j)] = static_cast<float>(s);
    }
  return c;
}

TEST(QuantGemm, ExtremeValuesExactNoSaturation) {
#if !defined(FICOCO_TEST_AVX2)
  std::printf("note: AVX2 kernel not built; checking the other paths only\n");
#endif
  const int64_t n = 30, k = 128, m = 7;  // 2 groups (the second partial), 4 blocks
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    const ExtremeCase c = MakeExtreme(t, n, k, m);
    const QuantPackedWeight pw = PackQuantWeight(t, c.blocks.data(), n, k);
    // The reference itself must reach the int16 danger zone, or the test proves nothing:
    // row 0 against column 0 is 128 products of 127 * 127 (Q8_0) or 7 * 127 (Q4_0).
    EXPECT_EQ(c.exact[0], t == GgmlType::Q8_0 ? 128.0f * 127 * 127 : 128.0f * 7 * 127);
    for (const Path& p : kPaths) {
      std::vector<float> y(c.exact.size(), NAN);
      p.fn(pw, c.x.data(), m, y.data(), nullptr);
      for (size_t o = 0; o < y.size(); ++o)
        ASSERT_EQ(y[o], c.exact[o]) << p.name << " " << GgmlTypeName(t) << " row " << o / n << " col " << o % n;
    }
  }
}

// ---- Q4_1, Q4_K and Q6_K ------------------------------------------------------------------

void PutHalf(uint8_t* p, float v) {
  const uint16_t h = F32ToF16(v);
  p[0] = static_cast<uint8_t>(h & 0xFF);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// n rows of k elements of `type` from random raw bytes: any codes, and factors Quantize
// never writes: negative d and dmin / m, every 6-bit Q4_K scale and min at 63 in a third
// of the super-blocks, Q6_K sub-block scales at -128 and 127 in a third. The fp16 factors
// are kept small and finite so the products stay in a normal range.
std::vector<uint8_t> RandomRawBlocks(GgmlType type, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(0.5f, 1.0f);
  std::bernoulli_distribution negative(0.3);
  auto factor = [&](float scale) { return (negative(g) ? -scale : scale) * mag(g); };
  const size_t bytes = QuantBlockBytes(type);
  const int64_t blocks = n * k / static_cast<int64_t>(QuantBlockElements(type));
  std::vector<uint8_t> out(bytes * static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* blk = out.data() + static_cast<size_t>(b) * bytes;
    for (size_t i = 0; i < bytes; ++i) blk[i] = static_cast<uint8_t>(byte(g));
    const bool extreme = b % 3 == 0;
    switch (type) {
      case GgmlType::Q4_1:
        PutHalf(blk, factor(0.004f));
        PutHalf(blk + 2, factor(0.03f));
        break;
      case GgmlType::Q4_K:
        PutHalf(blk, factor(1e-4f));
        PutHalf(blk + 2, factor(3e-4f));
        if (extreme) std::memset(blk + 4, 0xFF, 12);  // sc = mn = 63 in all 8 sub-blocks
        break;
      case GgmlType::Q6_K:
        PutHalf(blk + 208, factor(1e-4f));
        if (extreme)
          for (int i = 0; i < 16; ++i) blk[192 + i] = i % 2 ? 0x80 : 0x7F;  // -128, 127
        break;
      default:
        ADD_FAILURE() << "no raw blocks for " << GgmlTypeName(type);
    }
  }
  return out;
}

Problem MakeRawProblem(GgmlType type, int64_t n, int64_t k, int64_t m, uint32_t seed) {
  Problem p;
  p.blocks = RandomRawBlocks(type, n, k, seed);
  std::mt19937 g(seed + 1);
  FillActivationsAndReference(p, type, n, k, m, g);
  return p;
}

const GgmlType kNewTypes[] = {GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q6_K};

// The kernels' view of the k-quants (UnpackQ4_K / UnpackQ6_K) is Dequantize's, bit for bit.
TEST(QuantGemmKQuants, UnpackMatchesDequantize) {
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    const int64_t n = 64 * 256;
    const std::vector<uint8_t> blocks = RandomRawBlocks(t, 1, n, 77);
    std::vector<float> w(static_cast<size_t>(n));
    Dequantize(t, blocks.data(), w.data(), n);
    for (int64_t sb = 0; sb < n / 256; ++sb) {
      uint8_t q[256];
      float scale[16], min[8];
      const uint8_t* blk = blocks.data() + sb * QuantBlockBytes(t);
      if (t == GgmlType::Q4_K) UnpackQ4_K(blk, q, scale, min);
      else UnpackQ6_K(blk, q, scale);
      for (int e = 0; e < 256; ++e) {
        const float want = w[static_cast<size_t>(sb * 256 + e)];
        const float got = t == GgmlType::Q4_K ? scale[e / 32] * static_cast<float>(q[e]) - min[e / 32]
                                              : scale[e / 16] * static_cast<float>(q[e] - 32);
        ASSERT_EQ(got, want) << GgmlTypeName(t) << " super-block " << sb << " element " << e;
        ASSERT_LT(q[e], t == GgmlType::Q4_K ? 16 : 64);
      }
    }
  }
}

// Every path, every row count 1..130 (all row tiles and tails), odd column counts (partial
// groups and 8-column halves), k = 256 and 768 (1 and 3 super-blocks), weights from
// Quantize and from raw random bytes, every other call with a bias: against the double
// reference of Dequantize(W) times the same 8-bit activations.
TEST(QuantGemmKQuants, EveryRowCountAllPathsQuantizedAndRawBlocks) {
  const int64_t kMaxM = 130;
  struct Shape {
    int64_t n, k;
  };
  uint32_t seed = 900;
  for (GgmlType t : kNewTypes) {
    for (bool raw : {false, true}) {
      for (const Shape sh : {Shape{37, 256}, Shape{19, 768}}) {
        const Problem p = raw ? MakeRawProblem(t, sh.n, sh.k, kMaxM, seed++) : MakeProblem(t, sh.n, sh.k, kMaxM, seed++);
        const QuantPackedWeight pw = PackQuantWeight(t, p.blocks.data(), sh.n, sh.k);
        std::vector<float> bias(static_cast<size_t>(sh.n));
        for (int64_t j = 0; j < sh.n; ++j) bias[static_cast<size_t>(j)] = 0.5f - 0.125f * static_cast<float>(j);
        for (int64_t m = 1; m <= kMaxM; ++m) {
          const float* b = m % 2 ? bias.data() : nullptr;
          const size_t outs = static_cast<size_t>(m * sh.n);
          for (const Path& path : kPaths) {
            std::vector<float> y(outs + 1, NAN);
            y[outs] = 12345.0f;  // guard: nothing written past row m
            path.fn(pw, p.x.data(), m, y.data(), b);
            ASSERT_EQ(y[outs], 12345.0f) << path.name << " wrote past the last row, m=" << m;
            for (size_t o = 0; o < outs; ++o) {
              const float bo = b ? b[o % static_cast<size_t>(sh.n)] : 0.0f;
              ASSERT_LE(std::fabs(y[o] - (p.tight[o] + bo)), p.tol[o] + (b ? 1e-5f : 0.0f))
                  << path.name << " " << GgmlTypeName(t) << (raw ? " raw" : " quantized") << " n=" << sh.n
                  << " k=" << sh.k << " m=" << m << " out " << o;
            }
          }
        }
      }
    }
  }
}

TEST(QuantGemmKQuants, LargeKAndManyPanels) {
  uint32_t seed = 950;
  for (GgmlType t : kNewTypes) {
    CheckShape(t, 100, 4096, 11, seed++);
    CheckShape(t, 16 * 40 + 3, 1024, 5, seed++);
  }
}

// One Q6_K super-block from codes q (0..63), sub-block scales and d, in ggml's layout
// (tensor/quant.h), written here independently of Quantize.
void EncodeQ6K(const int* q, const int8_t* sc, float d, uint8_t* blk) {
  std::memset(blk, 0, 210);
  for (int h = 0; h < 2; ++h) {
    uint8_t* L = blk + 64 * h;
    uint8_t* H = blk + 128 + 32 * h;
    const int* Q = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      L[l] = static_cast<uint8_t>((Q[l] & 15) | (Q[l + 64] & 15) << 4);
      L[l + 32] = static_cast<uint8_t>((Q[l + 32] & 15) | (Q[l + 96] & 15) << 4);
      H[l] = static_cast<uint8_t>(Q[l] >> 4 | (Q[l + 32] >> 4) << 2 | (Q[l + 64] >> 4) << 4 | (Q[l + 96] >> 4) << 6);
    }
  }
  std::memcpy(blk + 192, sc, 16);
  PutHalf(blk + 208, d);
}

// Q6_K codes at both ends (0 and 63, values -32 and 31) against activations at +-127, d = 1
// and small integer sub-block scales: every partial sum is an integer below 2^24, so all
// paths must be exact. Catches the AVX2 path adding more than two vpmaddubsw results
// (each up to 2 * 63 * 127 = 16002) in one int16 lane, and a wrong half (sub-block) scale.
TEST(QuantGemmKQuants, Q6ExtremeCodesExact) {
  const int64_t n = 21, k = 512, m = 7;
  std::vector<uint8_t> blocks(static_cast<size_t>(n * k / 256) * 210);
  std::vector<int> codes(static_cast<size_t>(n * k));
  const int8_t sc[16] = {1, -1, 2, 1, 1, -2, 1, 1, 2, 1, -1, 1, 1, 1, 2, -1};
  for (int64_t j = 0; j < n; ++j)
    for (int64_t e = 0; e < k; ++e) {
      int q;
      switch (j % 4) {
        case 0: q = 63; break;
        case 1: q = 0; break;
        case 2: q = e % 2 ? 0 : 63; break;
        default: q = e % 32 < 16 ? 63 : 0; break;
      }
      codes[static_cast<size_t>(j * k + e)] = q;
    }
  for (int64_t sb = 0; sb < n * k / 256; ++sb) EncodeQ6K(codes.data() + sb * 256, sc, 1.0f, blocks.data() + sb * 210);
  std::vector<float> x(static_cast<size_t>(m * k)), exact(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t e = 0; e < k; ++e) x[static_cast<size_t>(r * k + e)] = ExtremeActivation(r, e);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t e = 0; e < k; ++e)
        s += int64_t{sc[(e % 256) / 16]} * (codes[static_cast<size_t>(j * k + e)] - 32) * static_cast<int64_t>(ExtremeActivation(r, e));
      exact[static_cast<size_t>(r * n + j)] = static_cast<float>(s);
    }
  std::vector<float> w(static_cast<size_t>(n * k));
  Dequantize(GgmlType::Q6_K, blocks.data(), w.data(), n * k);
  ASSERT_EQ(w[0], 31.0f);  // the encoding is what Dequantize reads
  ASSERT_EQ(w[static_cast<size_t>(k)], -32.0f);  // row 1: code 0 under sub-block 0's scale 1
  const QuantPackedWeight pw = PackQuantWeight(GgmlType::Q6_K, blocks.data(), n, k);
  for (const Path& p : kPaths) {
    std::vector<float> y(exact.size(), NAN);
    p.fn(pw, x.data(), m, y.data(), nullptr);
    for (size_t o = 0; o < y.size(); ++o) ASSERT_EQ(y[o], exact[o]) << p.name << " row " << o / n << " col " << o % n;
  }
}

// Both LinearWeight constructors (float weight quantized at load, ggml blocks) give the same
// packed bytes for the new types, run through GemmContext::Linear, and take 24 (Q4_1, Q4_K)
// or 40 (Q6_K) bytes per 32 weights of a column.
TEST(QuantGemmKQuants, LinearWeightBothConstructors) {
  const int64_t n = 21, k = 512, m = 5;
  const RandomF16Linear layer(n, k, m, 15);
  const auto& [wf16, wf, bias, wv, bv, x] = layer;  // wf16 is what wv views
  for (GgmlType t : kNewTypes) {
    std::vector<uint8_t> blocks(QuantRowBytes(t, k) * n);
    Quantize(t, wf.data(), blocks.data(), n * k);
    std::vector<float> wdq(wf.size());
    Dequantize(t, blocks.data(), wdq.data(), n * k);
    const LinearWeight from_float(wv, &bv, t);
    const LinearWeight from_blocks(t, blocks.data(), n, k, &bv, "layer.weight");
    EXPECT_TRUE(from_float.quantized());
    EXPECT_EQ(from_blocks.quant_type(), t);
    const size_t per_block = t == GgmlType::Q6_K ? 40 : 24;
    EXPECT_EQ(from_blocks.packed().nbytes(), 2 * 16 * (k / 32) * per_block) << GgmlTypeName(t);
    ASSERT_EQ(from_float.packed().nbytes(), from_blocks.packed().nbytes());
    EXPECT_EQ(std::memcmp(from_float.packed().data(), from_blocks.packed().data(), from_float.packed().nbytes()), 0);
    GemmContext ctx(ComputeType::BF16);
    for (int64_t rows : {int64_t{1}, m}) {
      Matrix xs(rows, k);
      std::memcpy(xs.data(), x.data(), sizeof(float) * rows * k);
      Matrix y;
      ctx.Linear(xs, from_blocks, y);
      ASSERT_EQ(y.rows(), rows);
      ASSERT_EQ(y.cols(), n);
      for (int64_t i = 0; i < rows * n; ++i) {
        // Against the dequantized weight in double: activation quantization only.
        double ref = bias[static_cast<size_t>(i % n)];
        for (int64_t c = 0; c < k; ++c) ref += static_cast<double>(xs.data()[i / n * k + c]) * wdq[(i % n) * k + c];
        EXPECT_NEAR(y.data()[i], ref, 0.05) << GgmlTypeName(t) << " out " << i;
      }
    }
  }
}

TEST(QuantGemm, ReportsPath) {
  const std::string path = QuantGemmPath();
  EXPECT_TRUE(path == "avx512-vnni" || path == "avx2" || path == "scalar") << path;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
  EXPECT_EQ(path, "avx512-vnni");
#elif defined(FICOCO_TEST_AVX2)
  EXPECT_EQ(path, "avx2");
#endif
  std::printf("QuantGemm path: %s\n", path.c_str());
}


// The llava-tiny fixture with its text linears quantized at load, against the f32 path
// (same image features, fp32 compute elsewhere). Its down_proj has k = 172 (not a multiple
// of 32) and stays F16. The fixture's random weights make it sensitive (4 layers of width 64,
// last-position logits up to ~9.3): measured max |diff| of those logits is 0.15 for Q8_0 and
// 2.2 for Q4_0. The bounds below leave 2x / 1.4x margin; a layout or scale bug gives errors of
// the logits' own size. Greedy: all 8 tokens agree for Q8_0, the first 4 for Q4_0.
struct TinyRun {
  std::vector<float> logits;
  std::vector<int> ids;
  std::string weights;
};

TinyRun RunTiny(WeightType weights) {
  const std::string dir = test::LlavaTinyDir();
  LoadOptions lo;
  lo.compute = ComputeType::F32;
  lo.weights = weights;
  auto model = LlavaModel::Load(dir, lo);
  GemmContext gemm(ComputeType::F32);
  EncodedImage enc = model->EncodeImage(gemm, DecodeImageFile(dir + "/images/grace_hopper.png"));
  GenerateRequest req;
  req.prompt_ids = {1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 297, 278, 7623, 29973, 319, 1799, 9047, 13566, 29901};
  req.image_features = &enc.image_features;
  req.max_new_tokens = 8;
  GenerateResult r = Generate(gemm, *model, req);
  return {r.logits_last, r.new_ids, DescribeTextWeights(model->text())};
}

TEST(QuantizedTinyModel, LogitsCloseAndGreedyTokensAgree) {
  const TinyRun ref = RunTiny(WeightType::Checkpoint);
  EXPECT_EQ(ref.weights, "f16");
  const TinyRun q8 = RunTiny(WeightType::Q8_0);
  const TinyRun q4 = RunTiny(WeightType::Q4_0);
  EXPECT_EQ(q8.weights, "mixed: q8_0 + f16");
  EXPECT_EQ(q4.weights, "mixed: q4_0 + f16");
  ASSERT_EQ(q8.logits.size(), ref.logits.size());
  const float d8 = test::MaxAbsDiff(q8.logits.data(), ref.logits.data(), static_cast<int64_t>(ref.logits.size()));
  const float d4 = test::MaxAbsDiff(q4.logits.data(), ref.logits.data(), static_cast<int64_t>(ref.logits.size()));
  float amax = 0;
  for (float v : ref.logits) amax = std::max(amax, std::fabs(v));
  std::printf("llava-tiny last-position logits (max |logit| %.3g), max |diff| vs f32 path: q8_0 %.4g, q4_0 %.4g\n",
              amax, d8, d4);
  EXPECT_GT(d8, 0.0f);  // really quantized
  EXPECT_LE(d8, 0.3f);
  EXPECT_LE(d4, 3.0f);
  EXPECT_LT(5 * d8, d4);  // 8-bit weights clearly closer than 4-bit ones
  EXPECT_EQ(q8.ids, ref.ids);
  ASSERT_EQ(q4.ids.size(), 8u);
  EXPECT_EQ(std::vector<int>(q4.ids.begin(), q4.ids.begin() + 4), std::vector<int>(ref.ids.begin(), ref.ids.begin() + 4));
}

// --weights bf16 under --compute f32: every text linear (down_proj included: no block
// constraint) is held as bf16, so the logits move, by less than with Q8_0.
TEST(QuantizedTinyModel, SixteenBitWeights) {
  const TinyRun ref = RunTiny(WeightType::Checkpoint);
  const TinyRun bf = RunTiny(WeightType::BF16);
  const TinyRun f16 = RunTiny(WeightType::F16);
  EXPECT_EQ(bf.weights, "bf16");
  EXPECT_EQ(f16.weights, "f16");
  EXPECT_EQ(f16.logits, ref.logits);  // the fixture is stored F16: nothing changes
  const float d = test::MaxAbsDiff(bf.logits.data(), ref.logits.data(), static_cast<int64_t>(ref.logits.size()));
  EXPECT_GT(d, 0.0f);
  EXPECT_LE(d, 0.3f);
  EXPECT_EQ(bf.ids, ref.ids);
}

TEST(QuantizedTinyModel, WeightTypeNames) {
  EXPECT_EQ(ParseWeightType("auto"), WeightType::Checkpoint);
  EXPECT_EQ(ParseWeightType("q4_0"), WeightType::Q4_0);
  EXPECT_STREQ(WeightTypeName(WeightType::Q8_0), "q8_0");
  test::ExpectError([] { ParseWeightType("q5_k"); }, {"q5_k", "q8_0"});
}

TEST(QuantizedTinyModel, RunJsonReportsWeights) {
  const std::string dir = test::LlavaTinyDir();
  const test::CommandResult r =
      test::RunCommand(test::CliPath() + " run --model " + dir + " --image " + dir + "/images/grace_hopper.png" +
                       " --prompt 'What is in the picture?' --tokenizer " + test::LlamaTokenizerDir() +
                       "/tokenizer.model --max-tokens 2 --weights q8_0 --json");
  // Default --compute bf16: the unblockable down_proj is held as bf16.
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"weights\": \"mixed: q8_0 + bf16\""), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ficoco
