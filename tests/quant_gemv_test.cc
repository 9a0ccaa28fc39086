// QuantGemv (Q8_0 / Q4_0 weights, 8-bit quantized activations): hand-computed blocks,
// then random products against two double-precision references:
//  * tight: Dequantize(W) times the SAME quantized activations (QuantizeActivationRow).
//    The kernel's block sums are exact integers; only the scaling by d_w * d_x (two fp32
//    roundings) and the fp32 sum over k/32 <= 128 blocks round, so the error is at most
//    (k/32 + 2) * 2^-24 * sum_i |w_i * xq_i| < 1e-5 * sum_i |w_i * xq_i|.
//  * loose: Dequantize(W) times the unquantized x. Rounding x to the 8-bit grid moves each
//    element by at most half a step, d_b / 2 = max_b|x| / 254, so the difference is at most
//    sum_b (max_b|x| / 254) * sum_{i in b} |w_i| (with 1% slack for the fp32 rounding of
//    x / d) plus the tight bound.
// Both the dispatched path (AVX512-VNNI when compiled for it) and the scalar path are run.
#include "kernels/quant_gemv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

namespace ficoco {
namespace {

using Fn = void (*)(GgmlType, const void*, int64_t, int64_t, const float*, int64_t, float*);

struct Path {
  const char* name;
  Fn fn;
};
const Path kPaths[] = {{"dispatched", QuantGemv}, {"scalar", QuantGemvScalar}};

std::vector<uint8_t> HalfBytes(float v) {
  const uint16_t h = F32ToF16(v);
  return {static_cast<uint8_t>(h & 0xFF), static_cast<uint8_t>(h >> 8)};
}

TEST(QuantGemv, HandComputedQ8_0) {
  // One block, d = 0.5, q = 1 everywhere; x = 2 everywhere (quantizes to 127 * 2/127).
  std::vector<uint8_t> w = HalfBytes(0.5f);
  w.insert(w.end(), 32, 1);
  std::vector<float> x(32, 2.0f);
  for (const Path& p : kPaths) {
    float y = 0;
    p.fn(GgmlType::Q8_0, w.data(), 1, 32, x.data(), 1, &y);
    EXPECT_NEAR(y, 32.0f, 1e-4f) << p.name;
  }
}

TEST(QuantGemv, HandComputedQ4_0NibbleOrder) {
  // qs = 0x9F: low nibble 15 (elements 0..15, value 7d), high nibble 9 (elements 16..31,
  // value 1d). d = 0.25; x = +1 on 0..15 and -1 on 16..31: y = 0.25 * (16*7 - 16*1) = 24.
  std::vector<uint8_t> w = HalfBytes(0.25f);
  w.insert(w.end(), 16, 0x9F);
  std::vector<float> x(32, 1.0f);
  std::fill(x.begin() + 16, x.end(), -1.0f);
  // Two output rows (the second all zero codes 8 -> 0) and a second activation row.
  std::vector<uint8_t> w2 = w;
  std::vector<uint8_t> zero = HalfBytes(0.25f);
  zero.insert(zero.end(), 16, 0x88);
  w2.insert(w2.end(), zero.begin(), zero.end());
  std::vector<float> x2 = x;
  x2.insert(x2.end(), x.begin(), x.end());
  for (float& v : std::span(x2).subspan(32)) v = -v;
  for (const Path& p : kPaths) {
    float y[4] = {};
    p.fn(GgmlType::Q4_0, w2.data(), 2, 32, x2.data(), 2, y);
    EXPECT_NEAR(y[0], 24.0f, 1e-4f) << p.name;
    EXPECT_EQ(y[1], 0.0f) << p.name;
    EXPECT_NEAR(y[2], -24.0f, 1e-4f) << p.name;
    EXPECT_EQ(y[3], 0.0f) << p.name;
  }
}

struct Case {
  GgmlType type;
  int64_t n_out, k, m;
};

void CheckRandom(const Case& c, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> wd(0, 0.02f), xd(0, 1.0f);
  std::vector<float> wf(static_cast<size_t>(c.n_out * c.k));
  for (float& v : wf) v = wd(g);
  std::vector<uint8_t> w(QuantRowBytes(c.type, c.k) * static_cast<size_t>(c.n_out));
  Quantize(c.type, wf.data(), w.data(), c.n_out * c.k);
  std::vector<float> wdq(wf.size());
  Dequantize(c.type, w.data(), wdq.data(), c.n_out * c.k);

  std::vector<float> x(static_cast<size_t>(c.m * c.k));
  for (float& v : x) v = xd(g);
  // Outliers in some blocks (coarse grid), and an all-zero block (scale 0) in row 0.
  for (size_t i = 5; i < x.size(); i += 97) x[i] *= 20;
  if (c.k >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);

  const int64_t nb = c.k / 32;
  std::vector<int8_t> xq(x.size());
  std::vector<float> xd_scale(static_cast<size_t>(c.m * nb));
  for (int64_t i = 0; i < c.m; ++i)
    QuantizeActivationRow(x.data() + i * c.k, c.k, xq.data() + i * c.k, xd_scale.data() + i * nb);

  std::vector<double> tight(static_cast<size_t>(c.m * c.n_out)), tight_tol(tight.size());
  std::vector<double> exact(tight.size()), loose_tol(tight.size());
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n_out; ++j) {
      double s = 0, abs_s = 0, e = 0, shift = 0;
      for (int64_t b = 0; b < nb; ++b) {
        double amax = 0, wabs = 0;
        for (int64_t t = b * 32; t < b * 32 + 32; ++t) {
          const double wv = wdq[j * c.k + t];
          const double xv = x[i * c.k + t];
          const double xqv = static_cast<double>(xd_scale[i * nb + b]) * xq[i * c.k + t];
          s += wv * xqv;
          abs_s += std::fabs(wv * xqv);
          e += wv * xv;
          amax = std::max(amax, std::fabs(xv));
          wabs += std::fabs(wv);
        }
        shift += amax / 254.0 * wabs;
      }
      const size_t o = static_cast<size_t>(i * c.n_out + j);
      tight[o] = s;
      tight_tol[o] = 1e-5 * abs_s + 1e-30;
      exact[o] = e;
      loose_tol[o] = 1.01 * shift + tight_tol[o];
    }
  }

  for (const Path& p : kPaths) {
    std::vector<float> y(tight.size(), NAN);
    p.fn(c.type, w.data(), c.n_out, c.k, x.data(), c.m, y.data());
    for (size_t o = 0; o < y.size(); ++o) {
      ASSERT_LE(std::fabs(y[o] - tight[o]), tight_tol[o])
          << p.name << " " << GgmlTypeName(c.type) << " n_out=" << c.n_out << " k=" << c.k << " m=" << c.m
          << " output " << o;
      ASSERT_LE(std::fabs(y[o] - exact[o]), loose_tol[o])
          << p.name << " " << GgmlTypeName(c.type) << " n_out=" << c.n_out << " k=" << c.k << " m=" << c.m
          << " output " << o;
    }
  }
}

TEST(QuantGemv, RandomAgainstReferences) {
  uint32_t seed = 1;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0})
    for (int64_t k : {32, 96, 4096})
      for (int64_t m : {1, 2, 3, 4, 5})
        for (int64_t n_out : {1, 7, 37}) CheckRandom({t, n_out, k, m}, seed++);
}

TEST(QuantGemv, LargeOddRowCount) {
  CheckRandom({GgmlType::Q8_0, 1001, 4096, 1}, 100);
  CheckRandom({GgmlType::Q4_0, 1001, 4096, 4}, 101);
}

TEST(QuantGemv, ActivationQuantization) {
  std::vector<float> x(64, 0.0f);
  x[0] = 127.0f;
  x[1] = -63.5f;  // exactly half a step: rounds away from zero to -64
  x[2] = 0.49f;
  std::vector<int8_t> q(64);
  float d[2];
  QuantizeActivationRow(x.data(), 64, q.data(), d);
  EXPECT_EQ(d[0], 1.0f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -64);
  EXPECT_EQ(q[2], 0);
  EXPECT_EQ(d[1], 0.0f);
  EXPECT_TRUE(std::all_of(q.begin() + 32, q.end(), [](int8_t v) { return v == 0; }));
}

// The vectorized activation quantization gives exactly the scalar bytes and scales,
// including values that land on .5 after scaling (ties round away from zero).
TEST(QuantGemv, ActivationQuantizationVectorMatchesScalar) {
  std::mt19937 g(9);
  std::normal_distribution<float> nd(0, 3.0f);
  const int64_t k = 32 * 40;
  std::vector<float> x(static_cast<size_t>(k));
  for (float& v : x) v = nd(g);
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // scale 0
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(128 + i)] = (i - 16) + 0.5f;  // amax 16.5 -> d = 16.5/127
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(160 + i)] = (i % 2 ? 1 : -1) * (i + 0.5f) * 127 / 31.5f;
  x[192] = 127.0f;  // block with exact halves: d = 1
  for (int i = 1; i < 32; ++i) x[static_cast<size_t>(192 + i)] = (i % 2 ? -1 : 1) * (i + 0.5f);
  std::vector<int8_t> qa(x.size()), qb(x.size());
  std::vector<float> da(static_cast<size_t>(k / 32)), db(da.size());
  QuantizeActivationRow(x.data(), k, qa.data(), da.data());
  QuantizeActivationRowScalar(x.data(), k, qb.data(), db.data());
  EXPECT_EQ(qa, qb);
  EXPECT_EQ(da, db);
  EXPECT_EQ(qb[193], -2);  // -1.5 -> -2
  EXPECT_EQ(qb[194], 3);   // 2.5 -> 3
}

TEST(QuantGemv, Errors) {
  std::vector<uint8_t> w(34 * 2, 0);
  std::vector<float> x(64, 1.0f), y(4);
  EXPECT_TRUE(QuantGemvSupports(GgmlType::Q8_0));
  EXPECT_TRUE(QuantGemvSupports(GgmlType::Q4_0));
  EXPECT_FALSE(QuantGemvSupports(GgmlType::Q4_1));
  EXPECT_FALSE(QuantGemvSupports(GgmlType::F32));
  for (const Path& p : kPaths) {
    EXPECT_THROW(p.fn(GgmlType::Q4_1, w.data(), 1, 32, x.data(), 1, y.data()), Error) << p.name;
    EXPECT_THROW(p.fn(GgmlType::F16, w.data(), 1, 32, x.data(), 1, y.data()), Error) << p.name;
    EXPECT_THROW(p.fn(GgmlType::Q8_0, w.data(), 1, 48, x.data(), 1, y.data()), Error) << p.name;
    EXPECT_THROW(p.fn(GgmlType::Q8_0, w.data(), 1, 0, x.data(), 1, y.data()), Error) << p.name;
    EXPECT_THROW(p.fn(GgmlType::Q8_0, w.data(), -1, 32, x.data(), 1, y.data()), Error) << p.name;
  }
  try {
    QuantGemv(GgmlType::Q5_0, w.data(), 1, 32, x.data(), 1, y.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q5_0"), std::string::npos) << e.what();
  }
}

TEST(QuantGemv, ReportsPath) {
  const std::string path = QuantGemvPath();
  EXPECT_TRUE(path == "avx512-vnni" || path == "scalar") << path;
  std::printf("QuantGemv path: %s\n", path.c_str());
}

}  // namespace
}  // namespace ficoco
