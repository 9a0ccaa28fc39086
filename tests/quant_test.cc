// ggml block formats: hand-written blocks with hand-computed values for every type, the
// size table, quantize -> dequantize error bounds, exact round trips of on-grid values and
// the rounding rules of the reference quantizers.
#include "tensor/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/dtype.h"
#include "test_support.h"

namespace ficoco {
namespace {

// IEEE half bit patterns used below (stored little-endian: low byte first).
constexpr uint8_t kHalf_0_125[2] = {0x00, 0x30};
constexpr uint8_t kHalf_0_25[2] = {0x00, 0x34};
constexpr uint8_t kHalf_0_5[2] = {0x00, 0x38};
constexpr uint8_t kHalf_1[2] = {0x00, 0x3C};
constexpr uint8_t kHalf_2[2] = {0x00, 0x40};
constexpr uint8_t kHalf_minus_1[2] = {0x00, 0xBC};

std::vector<uint8_t> Bytes(std::initializer_list<const uint8_t*> halves,
                           std::initializer_list<uint8_t> rest) {
  std::vector<uint8_t> b;
  for (const uint8_t* h : halves) b.insert(b.end(), h, h + 2);
  b.insert(b.end(), rest);
  return b;
}

std::vector<float> Decode(GgmlType t, const std::vector<uint8_t>& bytes) {
  const size_t blocks = bytes.size() / QuantBlockBytes(t);
  EXPECT_EQ(blocks * QuantBlockBytes(t), bytes.size());
  std::vector<float> out(blocks * QuantBlockElements(t));
  Dequantize(t, bytes.data(), out.data(), static_cast<int64_t>(out.size()));
  return out;
}

TEST(QuantTable, BlockSizesAndIds) {
  struct Row {
    GgmlType t;
    const char* name;
    uint32_t id;
    size_t elements, bytes;
  };
  const Row rows[] = {
      {GgmlType::F32, "F32", 0, 1, 4},       {GgmlType::F16, "F16", 1, 1, 2},
      {GgmlType::Q4_0, "Q4_0", 2, 32, 18},   {GgmlType::Q4_1, "Q4_1", 3, 32, 20},
      {GgmlType::Q5_0, "Q5_0", 6, 32, 22},   {GgmlType::Q5_1, "Q5_1", 7, 32, 24},
      {GgmlType::Q8_0, "Q8_0", 8, 32, 34},   {GgmlType::Q4_K, "Q4_K", 12, 256, 144},
      {GgmlType::Q5_K, "Q5_K", 13, 256, 176}, {GgmlType::Q6_K, "Q6_K", 14, 256, 210},
      {GgmlType::BF16, "BF16", 30, 1, 2},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(QuantBlockElements(r.t), r.elements);
    EXPECT_EQ(QuantBlockBytes(r.t), r.bytes);
    EXPECT_EQ(GgufTypeId(r.t), r.id);
    EXPECT_STREQ(GgmlTypeName(r.t), r.name);
    ASSERT_TRUE(GgmlTypeFromGgufId(r.id).has_value());
    EXPECT_EQ(*GgmlTypeFromGgufId(r.id), r.t);
    EXPECT_EQ(QuantRowBytes(r.t, static_cast<int64_t>(4 * r.elements)), 4 * r.bytes);
  }
  // Q8_1 (9), Q2_K (10), Q3_K (11), Q8_K (15), IQ types: not supported.
  for (uint32_t id : {4u, 5u, 9u, 10u, 11u, 15u, 16u, 29u, 31u, 1000u}) {
    EXPECT_FALSE(GgmlTypeFromGgufId(id).has_value()) << id;
  }
}

TEST(QuantErrors, CountNotAMultipleOfTheBlock) {
  std::vector<uint8_t> bytes(4 * 210);
  std::vector<float> f(1024);
  test::ExpectError([&] { Dequantize(GgmlType::Q8_0, bytes.data(), f.data(), 31); },
                    {"dequantize", "Q8_0", "31", "32"});
  test::ExpectError([&] { Dequantize(GgmlType::Q4_K, bytes.data(), f.data(), 300); },
                    {"dequantize", "Q4_K", "300", "256"});
  test::ExpectError([&] { Dequantize(GgmlType::Q6_K, bytes.data(), f.data(), -256); },
                    {"Q6_K", "-256"});
  test::ExpectError([&] { Quantize(GgmlType::Q4_0, f.data(), bytes.data(), 33); },
                    {"quantize", "Q4_0", "33", "32"});
  test::ExpectError([&] { Quantize(GgmlType::Q5_K, f.data(), bytes.data(), 255); },
                    {"quantize", "Q5_K", "255", "256"});
  test::ExpectError([&] { QuantRowBytes(GgmlType::Q5_1, 40); }, {"Q5_1", "40", "32"});
  test::ExpectError(
      [&] { Dequantize(static_cast<GgmlType>(9), bytes.data(), f.data(), 32); },
      {"unknown quantization type id 9"});
  // n == 0 is a valid (empty) row.
  Dequantize(GgmlType::Q4_K, bytes.data(), f.data(), 0);
}

// ---- Hand-written blocks ------------------------------------------------------------

TEST(QuantBlocks, Q8_0) {
  // d = 0.125; x = 0.125 * q.
  const auto b = Bytes({kHalf_0_125}, {0,    1,    0xFF, 0x7F, 0x81, 0x80, 0x40, 0xC0,  //
                                       2,    3,    4,    5,    6,    7,    8,    9,     //
                                       0xF6, 0xF5, 0xF4, 0xF3, 0xF2, 0xF1, 0xF0, 0xEF,  //
                                       100,  101,  102,  103,  0x9C, 0x9B, 0x9A, 0x99});
  ASSERT_EQ(b.size(), 34u);
  const std::vector<float> want = {
      0, 0.125f, -0.125f, 15.875f /*127*/, -15.875f /*-127*/, -16 /*-128*/, 8 /*64*/, -8,
      0.25f, 0.375f, 0.5f, 0.625f, 0.75f, 0.875f, 1, 1.125f,
      -1.25f /*-10*/, -1.375f, -1.5f, -1.625f, -1.75f, -1.875f, -2, -2.125f /*-17*/,
      12.5f /*100*/, 12.625f, 12.75f, 12.875f, -12.5f /*-100*/, -12.625f, -12.75f, -12.875f};
  EXPECT_EQ(Decode(GgmlType::Q8_0, b), want);
}

TEST(QuantBlocks, Q4_0) {
  // d = 2, x = 2 * (q - 8). Byte j = j | (15 - j) << 4: element j has code j, element
  // j + 16 has code 15 - j.
  const auto b = Bytes({kHalf_2}, {0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87,  //
                                   0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F});
  ASSERT_EQ(b.size(), 18u);
  const std::vector<float> want = {
      -16, -14, -12, -10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10, 12, 14,  // codes 0..15
      14, 12, 10, 8, 6, 4, 2, 0, -2, -4, -6, -8, -10, -12, -14, -16};  // codes 15..0
  EXPECT_EQ(Decode(GgmlType::Q4_0, b), want);
}

TEST(QuantBlocks, Q4_1) {
  // d = 0.5, m = -1, x = 0.5 * q - 1.
  const auto b = Bytes({kHalf_0_5, kHalf_minus_1},
                       {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE,  //
                        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF});
  ASSERT_EQ(b.size(), 20u);
  // Low nibbles (elements 0..15): 0 2 4 6 8 10 12 14 1 3 5 7 9 11 13 15.
  // High nibbles (elements 16..31): 1 3 5 7 9 11 13 15 0 2 4 6 8 10 12 14.
  const std::vector<float> want = {
      -1, 0, 1, 2, 3, 4, 5, 6, -0.5f, 0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f,
      -0.5f, 0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, -1, 0, 1, 2, 3, 4, 5, 6};
  EXPECT_EQ(Decode(GgmlType::Q4_1, b), want);
}

TEST(QuantBlocks, Q5_0) {
  // d = 0.25, qh = 0x80010001 (bits 0, 16 and 31), nibbles as in the Q4_0 test:
  // element j code j (+16 for j = 0), element 16 + j code 15 - j (+16 for j = 0, 15).
  // x = 0.25 * (q - 16).
  const auto b = Bytes({kHalf_0_25}, {0x01, 0x00, 0x01, 0x80,  //
                                      0xF0, 0xE1, 0xD2, 0xC3, 0xB4, 0xA5, 0x96, 0x87,  //
                                      0x78, 0x69, 0x5A, 0x4B, 0x3C, 0x2D, 0x1E, 0x0F});
  ASSERT_EQ(b.size(), 22u);
  std::vector<float> want(32);
  for (int j = 0; j < 16; ++j) want[j] = 0.25f * static_cast<float>(j - 16);
  for (int j = 0; j < 16; ++j) want[16 + j] = 0.25f * static_cast<float>(15 - j - 16);
  want[0] = 0;       // code 0 + 16
  want[16] = 3.75f;  // code 15 + 16 = 31
  want[31] = 0;      // code 0 + 16
  EXPECT_EQ(Decode(GgmlType::Q5_0, b), want);
  EXPECT_EQ(want[1], -3.75f);  // code 1
  EXPECT_EQ(want[17], -0.5f);  // code 14
}

TEST(QuantBlocks, Q5_1) {
  // d = 1, m = 0.5, qh bytes 00 80 FF 00 = bits 15 and 16..23; every nibble byte 0x5A
  // (element j < 16 low code 10, element 16 + j high code 5). x = q + 0.5.
  const auto b = Bytes({kHalf_1, kHalf_0_5}, {0x00, 0x80, 0xFF, 0x00,  //
                                              0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A,
                                              0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A});
  ASSERT_EQ(b.size(), 24u);
  std::vector<float> want(32);
  for (int i = 0; i < 16; ++i) want[i] = 10.5f;        // code 10
  want[15] = 26.5f;                                    // code 10 + 16
  for (int i = 16; i < 24; ++i) want[i] = 21.5f;       // code 5 + 16
  for (int i = 24; i < 32; ++i) want[i] = 5.5f;        // code 5
  EXPECT_EQ(Decode(GgmlType::Q5_1, b), want);
}

TEST(QuantBlocks, TwoBlocksInARow) {
  // Two Q4_0 blocks: the second has d = -1 and all codes 0 -> x = 8.
  auto b = Bytes({kHalf_1}, {0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
                             0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x89});
  const auto second = Bytes({kHalf_minus_1}, std::initializer_list<uint8_t>{});
  b.insert(b.end(), second.begin(), second.end());
  b.resize(36, 0x00);
  const auto got = Decode(GgmlType::Q4_0, b);
  ASSERT_EQ(got.size(), 64u);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(got[i], i == 15 ? 1.0f : 0.0f) << i;
  for (int i = 32; i < 64; ++i) EXPECT_EQ(got[i], 8.0f) << i;
}

// Q4_K / Q5_K shared header: d = 1, dmin = 0.5 and the 6-bit scales and mins
//   sub-block:  0  1  2  3   4   5   6   7
//   scale:      1  2  3  4  17  33  63   0
//   min:        0  1  2  3  20  40   5  63
// packed by hand:
//   s[0] = 1 | (17>>4)<<6 = 0x41    s[4] = 0 | (20>>4)<<6 = 0x40    s[8]  = 1 | 4<<4  = 0x41
//   s[1] = 2 | (33>>4)<<6 = 0x82    s[5] = 1 | (40>>4)<<6 = 0x81    s[9]  = 1 | 8<<4  = 0x81
//   s[2] = 3 | (63>>4)<<6 = 0xC3    s[6] = 2 | (5>>4)<<6  = 0x02    s[10] = 15 | 5<<4 = 0x5F
//   s[3] = 4 | (0>>4)<<6  = 0x04    s[7] = 3 | (63>>4)<<6 = 0xC3    s[11] = 0 | 15<<4 = 0xF0
constexpr int kKScale[8] = {1, 2, 3, 4, 17, 33, 63, 0};
constexpr int kKMin[8] = {0, 1, 2, 3, 20, 40, 5, 63};
constexpr uint8_t kKPacked[12] = {0x41, 0x82, 0xC3, 0x04, 0x40, 0x81,
                                  0x02, 0xC3, 0x41, 0x81, 0x5F, 0xF0};

// Nibble bytes: qs[32c + l] has low nibble l % 16 (element 64c + l, sub-block 2c) and high
// nibble 15 - l % 16 (element 64c + 32 + l, sub-block 2c + 1).
std::vector<uint8_t> KNibbles() {
  std::vector<uint8_t> qs(128);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      qs[32 * c + l] = static_cast<uint8_t>((l % 16) | (15 - l % 16) << 4);
    }
  }
  return qs;
}

TEST(QuantBlocks, Q4_K) {
  auto b = Bytes({kHalf_1, kHalf_0_5}, {});
  b.insert(b.end(), kKPacked, kKPacked + 12);
  const auto qs = KNibbles();
  b.insert(b.end(), qs.begin(), qs.end());
  ASSERT_EQ(b.size(), 144u);
  const auto got = Decode(GgmlType::Q4_K, b);
  // x = 1 * scale * q - 0.5 * min.
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const float lo = static_cast<float>(kKScale[2 * c] * (l % 16)) - 0.5f * kKMin[2 * c];
      const float hi =
          static_cast<float>(kKScale[2 * c + 1] * (15 - l % 16)) - 0.5f * kKMin[2 * c + 1];
      EXPECT_EQ(got[64 * c + l], lo) << 64 * c + l;
      EXPECT_EQ(got[64 * c + 32 + l], hi) << 64 * c + 32 + l;
    }
  }
  EXPECT_EQ(got[5], 5.0f);      // sub-block 0: 1*5 - 0
  EXPECT_EQ(got[32], 29.5f);    // sub-block 1: 2*15 - 0.5*1
  EXPECT_EQ(got[131], 41.0f);   // sub-block 4: 17*3 - 0.5*20
  EXPECT_EQ(got[161], 442.0f);  // sub-block 5: 33*14 - 0.5*40
  EXPECT_EQ(got[202], 627.5f);  // sub-block 6: 63*10 - 0.5*5
  EXPECT_EQ(got[224], -31.5f);  // sub-block 7: 0*15 - 0.5*63
}

TEST(QuantBlocks, Q5_K) {
  // Header and nibbles as Q4_K; qh[l] = 0x55 for l < 16 (bit 2c: +16 on the low-nibble
  // sub-block 2c) and 0xAA for l >= 16 (bit 2c + 1: +16 on sub-block 2c + 1).
  auto b = Bytes({kHalf_1, kHalf_0_5}, {});
  b.insert(b.end(), kKPacked, kKPacked + 12);
  for (int l = 0; l < 32; ++l) b.push_back(l < 16 ? 0x55 : 0xAA);
  const auto qs = KNibbles();
  b.insert(b.end(), qs.begin(), qs.end());
  ASSERT_EQ(b.size(), 176u);
  const auto got = Decode(GgmlType::Q5_K, b);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int qlo = l % 16 + (l < 16 ? 16 : 0);
      const int qhi = 15 - l % 16 + (l >= 16 ? 16 : 0);
      EXPECT_EQ(got[64 * c + l], static_cast<float>(kKScale[2 * c] * qlo) - 0.5f * kKMin[2 * c])
          << 64 * c + l;
      EXPECT_EQ(got[64 * c + 32 + l],
                static_cast<float>(kKScale[2 * c + 1] * qhi) - 0.5f * kKMin[2 * c + 1])
          << 64 * c + 32 + l;
    }
  }
  EXPECT_EQ(got[0], 16.0f);     // sub-block 0, code 0 + 16: 1*16 - 0
  EXPECT_EQ(got[32], 29.5f);    // sub-block 1, code 15: 2*15 - 0.5
  EXPECT_EQ(got[48], 61.5f);    // sub-block 1, code 15 + 16: 2*31 - 0.5
  EXPECT_EQ(got[131], 313.0f);  // sub-block 4, code 3 + 16: 17*19 - 10
  EXPECT_EQ(got[255], -31.5f);  // sub-block 7, code 0 + 16, scale 0: 0*16 - 0.5*63
}

TEST(QuantBlocks, Q6_K) {
  // ql: in each half h, bytes ql[64h + l] = 0x21 for l < 32, 0x43 for 32 <= l < 64.
  // qh: 0xE4 (bit pairs 0,1,2,3) in the first half, 0x1B (3,2,1,0) in the second.
  // scales: 1 -1 2 -2 3 -3 4 -4 5 -5 6 -6 7 -7 8 -128, d = 0.25 (last two bytes).
  // Codes by position p = i % 128 within a half (q - 32):
  //   first half:  p < 32: 1 + 0*16 - 32 = -31     p < 64: 3 + 1*16 - 32 = -13
  //                p < 96: 2 + 2*16 - 32 = 2       else:   4 + 3*16 - 32 = 20
  //   second half: 1 + 48 - 32 = 17,  3 + 32 - 32 = 3,  2 + 16 - 32 = -14,  4 - 32 = -28
  std::vector<uint8_t> b;
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 64; ++l) b.push_back(l < 32 ? 0x21 : 0x43);
  }
  for (int l = 0; l < 64; ++l) b.push_back(l < 32 ? 0xE4 : 0x1B);
  const int8_t scales[16] = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 8, -128};
  for (int8_t s : scales) b.push_back(static_cast<uint8_t>(s));
  b.insert(b.end(), kHalf_0_25, kHalf_0_25 + 2);
  ASSERT_EQ(b.size(), 210u);
  const auto got = Decode(GgmlType::Q6_K, b);
  const int codes[2][4] = {{-31, -13, 2, 20}, {17, 3, -14, -28}};
  for (int i = 0; i < 256; ++i) {
    const float want = 0.25f * static_cast<float>(scales[i / 16]) *
                       static_cast<float>(codes[i / 128][(i % 128) / 32]);
    EXPECT_EQ(got[i], want) << i;
  }
  EXPECT_EQ(got[0], -7.75f);   // 0.25 * 1 * -31
  EXPECT_EQ(got[40], -6.5f);   // 0.25 * 2 * -13
  EXPECT_EQ(got[70], 1.5f);    // 0.25 * 3 * 2
  EXPECT_EQ(got[100], 20.0f);  // 0.25 * 4 * 20
  EXPECT_EQ(got[128], 21.25f); // 0.25 * 5 * 17
  EXPECT_EQ(got[180], -4.5f);  // 0.25 * -6 * 3
  EXPECT_EQ(got[255], 896.0f); // 0.25 * -128 * -28
}

TEST(QuantBlocks, FloatTypes) {
  const std::vector<uint8_t> f16 = {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x35};  // 1, -2, 0.3125
  EXPECT_EQ(Decode(GgmlType::F16, f16), (std::vector<float>{1.0f, -2.0f, 0.3125f}));
  const std::vector<uint8_t> bf16 = {0x80, 0x3F, 0x40, 0xC0};  // 1, -3
  EXPECT_EQ(Decode(GgmlType::BF16, bf16), (std::vector<float>{1.0f, -3.0f}));
  const std::vector<uint8_t> f32 = {0x00, 0x00, 0x20, 0x41};  // 10
  EXPECT_EQ(Decode(GgmlType::F32, f32), (std::vector<float>{10.0f}));
  std::vector<uint8_t> back(6);
  const float v[3] = {1.0f, -2.0f, 0.3125f};
  Quantize(GgmlType::F16, v, back.data(), 3);
  EXPECT_EQ(back, f16);
}

// ---- Quantization -------------------------------------------------------------------

std::vector<float> Random(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(g);
  return x;
}

std::vector<float> RoundTrip(GgmlType t, const std::vector<float>& x,
                             std::vector<uint8_t>* bytes_out = nullptr) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> bytes(QuantRowBytes(t, n));
  Quantize(t, x.data(), bytes.data(), n);
  std::vector<float> y(x.size());
  Dequantize(t, bytes.data(), y.data(), n);
  if (bytes_out != nullptr) *bytes_out = bytes;
  return y;
}

float Half(const uint8_t* p) { return F16ToF32(static_cast<uint16_t>(p[0] | p[1] << 8)); }

// fp16 rounding of d and m (relative 2^-11) shifts each level by at most levels * |d| *
// 2^-11 + |m| * 2^-11; the bounds below add that to the rounding error.
constexpr float kHalfEps = 1.0f / 2048.0f;

TEST(QuantRoundTrip, Q8_0ErrorAtMostHalfAStep) {
  const auto x = Random(32 * 64, 1, 3.0f);
  std::vector<uint8_t> b;
  const auto y = RoundTrip(GgmlType::Q8_0, x, &b);
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = std::fabs(Half(&b[34 * (i / 32)]));
    EXPECT_LE(std::fabs(x[i] - y[i]), 0.5f * d + 128 * d * kHalfEps) << i;
  }
}

// Q4_0/Q5_0 codes span [-half, half - 1] steps with the largest |x| at -half, so values on
// the other side beyond (half - 1) steps clip: error <= d/2 inside the range, <= |d| overall.
void CheckSymmetric(GgmlType t, int half) {
  const auto x = Random(32 * 64, 2 + half, 1.5f);
  std::vector<uint8_t> b;
  const auto y = RoundTrip(t, x, &b);
  for (size_t i = 0; i < x.size(); ++i) {
    const float d = Half(&b[QuantBlockBytes(t) * (i / 32)]);
    const float slack = static_cast<float>(2 * half) * std::fabs(d) * kHalfEps + 1e-6f;
    const float err = std::fabs(x[i] - y[i]);
    const float steps = x[i] / d;  // code - half before rounding
    if (steps <= static_cast<float>(half - 1) + 0.5f) {
      EXPECT_LE(err, 0.5f * std::fabs(d) + slack) << i;
    } else {
      EXPECT_LE(err, std::fabs(d) + slack) << i;
    }
  }
}
TEST(QuantRoundTrip, Q4_0ErrorBound) { CheckSymmetric(GgmlType::Q4_0, 8); }
TEST(QuantRoundTrip, Q5_0ErrorBound) { CheckSymmetric(GgmlType::Q5_0, 16); }

void CheckAffine(GgmlType t, int top) {
  const auto x = Random(32 * 64, 3 + top, 2.0f);
  std::vector<uint8_t> b;
  const auto y = RoundTrip(t, x, &b);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint8_t* block = &b[QuantBlockBytes(t) * (i / 32)];
    const float d = Half(block), m = Half(block + 2);
    const float slack = (static_cast<float>(top) * d + std::fabs(m)) * kHalfEps + 1e-6f;
    EXPECT_LE(std::fabs(x[i] - y[i]), 0.5f * d + slack) << i;
  }
}
TEST(QuantRoundTrip, Q4_1ErrorAtMostHalfAStep) { CheckAffine(GgmlType::Q4_1, 15); }
TEST(QuantRoundTrip, Q5_1ErrorAtMostHalfAStep) { CheckAffine(GgmlType::Q5_1, 31); }

// The 6-bit scale/min of sub-block j of a Q4_K/Q5_K block, decoded by hand.
void KScaleMin(const uint8_t* s, int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

// Q4_K/Q5_K (simple quantizer): inside a sub-block's range the error is half its step;
// the 6-bit rounding of scale and min can shorten the range by 7.5 d + dmin/2.
void CheckK45(GgmlType t, int top) {
  const auto x = Random(256 * 16, 4 + top, 1.0f);
  std::vector<uint8_t> b;
  const auto y = RoundTrip(t, x, &b);
  double sq = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint8_t* block = &b[QuantBlockBytes(t) * (i / 256)];
    const float d = Half(block), dmin = Half(block + 2);
    int sc, mn;
    KScaleMin(block + 4, static_cast<int>(i % 256) / 32, &sc, &mn);
    const float step = d * static_cast<float>(sc);
    const float bound = std::max(0.5f * step, 7.5f * d + 0.5f * dmin) +
                        (static_cast<float>(top) * step + dmin * mn) * 4 * kHalfEps + 1e-5f;
    const float err = std::fabs(x[i] - y[i]);
    EXPECT_LE(err, bound) << i;
    sq += static_cast<double>(err) * err;
  }
  // A sub-block of 32 standard normals spans about 4.1; the step is that / top.
  const double rms = std::sqrt(sq / static_cast<double>(x.size()));
  EXPECT_LT(rms, 4.5 / top / std::sqrt(12.0) * 1.5);
}
TEST(QuantRoundTrip, Q4_KErrorBound) { CheckK45(GgmlType::Q4_K, 15); }
TEST(QuantRoundTrip, Q5_KErrorBound) { CheckK45(GgmlType::Q5_K, 31); }

TEST(QuantRoundTrip, Q6_KErrorBound) {
  const auto x = Random(256 * 16, 7, 1.0f);
  std::vector<uint8_t> b;
  const auto y = RoundTrip(GgmlType::Q6_K, x, &b);
  double sq = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint8_t* block = &b[210 * (i / 256)];
    const float d = Half(block + 208);
    const auto sc = static_cast<float>(static_cast<int8_t>(block[192 + (i % 256) / 16]));
    const float step = std::fabs(d * sc);
    // Half a step inside [-32, 31] steps; the clipped side and the 8-bit rounding of the
    // scale (<= d/2 per step, 32 steps) add at most a step and 16 |d|.
    const float bound = step + 16 * std::fabs(d) + 64 * step * kHalfEps + 1e-6f;
    const float err = std::fabs(x[i] - y[i]);
    EXPECT_LE(err, bound) << i;
    sq += static_cast<double>(err) * err;
  }
  // 16 standard normals reach about 1.8 in magnitude; a step is that / 32.
  EXPECT_LT(std::sqrt(sq / static_cast<double>(x.size())), 2.5 / 32 / std::sqrt(12.0) * 1.5);
}

TEST(QuantRoundTrip, ZerosStayZero) {
  const std::vector<float> x(256, 0.0f);
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                      GgmlType::Q5_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    EXPECT_EQ(RoundTrip(t, x), x) << GgmlTypeName(t);
  }
}

// Values already on a block's grid (d a power of two, exact in fp16, and the grid's end
// codes present so the quantizer re-derives the same d and m) come back bit-exactly.
TEST(QuantRoundTrip, OnGridValuesAreExact) {
  std::mt19937 g(11);
  const int kBlocks = 8;
  struct Case {
    GgmlType t;
    int qmin, qmax;  // x = d * q (+ m for the affine types)
    bool affine;
  };
  for (const Case c : {Case{GgmlType::Q8_0, -127, 127, false}, Case{GgmlType::Q4_0, -8, 7, false},
                       Case{GgmlType::Q5_0, -16, 15, false}, Case{GgmlType::Q4_1, 0, 15, true},
                       Case{GgmlType::Q5_1, 0, 31, true}}) {
    SCOPED_TRACE(GgmlTypeName(c.t));
    std::vector<float> x(32 * kBlocks);
    for (int blk = 0; blk < kBlocks; ++blk) {
      const float d = std::ldexp(1.0f, blk - 4);  // 1/16 .. 8
      const float m = -3.0f * d;
      std::uniform_int_distribution<int> code(c.qmin, c.qmax);
      for (int i = 0; i < 32; ++i) {
        int q = code(g);
        // Pin the scale: Q8_0 needs |q| = 127, Q4_0/Q5_0 the most negative code (the
        // signed largest magnitude), Q4_1/Q5_1 both ends.
        if (i == 3) q = c.t == GgmlType::Q8_0 ? c.qmax : c.qmin;
        if (i == 9) q = c.qmax;
        x[32 * blk + i] = d * static_cast<float>(q) + (c.affine ? m : 0.0f);
      }
    }
    EXPECT_EQ(RoundTrip(c.t, x), x);
  }
}

// The reference quantizers' rounding rules, on hand-picked values.
TEST(QuantRules, Q8_0RoundsHalfAwayFromZero) {
  // max |x| = 63.5 -> d = 0.5; 0.25 / 0.5 = 0.5 -> 1, -0.25 -> -1, 0.75 -> 2 (1.5 -> 2).
  std::vector<float> x(32, 0.0f);
  x[0] = 63.5f;
  x[1] = 0.25f;
  x[2] = -0.25f;
  x[3] = 0.75f;
  x[4] = -63.5f;
  std::vector<uint8_t> b(34);
  Quantize(GgmlType::Q8_0, x.data(), b.data(), 32);
  EXPECT_EQ(b[0], kHalf_0_5[0]);
  EXPECT_EQ(b[1], kHalf_0_5[1]);
  EXPECT_EQ(static_cast<int8_t>(b[2]), 127);
  EXPECT_EQ(static_cast<int8_t>(b[3]), 1);
  EXPECT_EQ(static_cast<int8_t>(b[4]), -1);
  EXPECT_EQ(static_cast<int8_t>(b[5]), 2);
  EXPECT_EQ(static_cast<int8_t>(b[6]), -127);
  EXPECT_EQ(b[7], 0);
}

TEST(QuantRules, Q4_0RoundsHalfUpAndClipsAt15) {
  // Signed largest |x| is -2 -> d = -2 / -8 = 0.25, q = min(15, trunc(x / 0.25 + 8.5)).
  std::vector<float> x(32, 0.0f);
  x[0] = -2.0f;     // -8 + 8.5 = 0.5    -> 0
  x[1] = 0.125f;    //  0.5 + 8.5 = 9    -> 9
  x[2] = -0.125f;   // -0.5 + 8.5 = 8    -> 8
  x[3] = 1.75f;     //  7 + 8.5          -> 15
  x[4] = 2.0f;      //  8 + 8.5 = 16.5   -> 16, clipped to 15 (decodes to 1.75)
  x[16] = 0.3f;     //  1.2 + 8.5 = 9.7  -> 9
  x[17] = -0.3f;    // -1.2 + 8.5 = 7.3  -> 7
  // x[5..15], x[18..31] = 0 -> 8.
  std::vector<uint8_t> b(18);
  Quantize(GgmlType::Q4_0, x.data(), b.data(), 32);
  const std::vector<uint8_t> want = {0x00, 0x34,  // d = 0.25
                                     0x90, 0x79, 0x88, 0x8F, 0x8F, 0x88, 0x88, 0x88,
                                     0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88};
  EXPECT_EQ(b, want);
}

TEST(QuantRules, Q4_1AndQ5_1UseMinAndRange) {
  // min -1, max 2: Q4_1 d = 3/15 = 0.2, m = -1; x = 0 -> trunc(5 + 0.5) = 5.
  std::vector<float> x(32, 0.0f);
  x[0] = -1.0f;
  x[1] = 2.0f;
  std::vector<uint8_t> b(24);
  Quantize(GgmlType::Q4_1, x.data(), b.data(), 32);
  EXPECT_EQ(Half(&b[0]), F16ToF32(F32ToF16(0.2f)));
  EXPECT_EQ(Half(&b[2]), -1.0f);
  EXPECT_EQ(b[4], 0x50);  // element 0 code 0, element 16 code 5
  EXPECT_EQ(b[5], 0x5F);  // element 1 code 15, element 17 code 5
  EXPECT_EQ(b[6], 0x55);
  // Q5_1: d = 3/31; x = 0 -> 1/(3/31) + 0.5 = 10.83 -> 10.
  Quantize(GgmlType::Q5_1, x.data(), b.data(), 32);
  EXPECT_EQ(Half(&b[0]), F16ToF32(F32ToF16(3.0f / 31.0f)));
  EXPECT_EQ(b[4] | b[5] << 8 | b[6] << 16 | b[7] << 24, 0x00000002);  // only element 1 >= 16
  EXPECT_EQ(b[8], 0xA0);  // element 0 code 0, element 16 code 10
  EXPECT_EQ(b[9], 0xAF);  // element 1 code 31 (low bits 15), element 17 code 10
}

TEST(QuantRules, Q5_0HighBits) {
  // Signed largest |x| is -4 -> d = 0.25; codes = x / 0.25 + 16.
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;   // code 0
  x[5] = 3.75f;   // code 31: high bit 5
  x[20] = 0.25f;  // code 17: high bit 20
  x[31] = -0.25f; // code 15: no high bit
  // Every other element: code 16, high bit set.
  std::vector<uint8_t> b(22);
  Quantize(GgmlType::Q5_0, x.data(), b.data(), 32);
  EXPECT_EQ(b[0], kHalf_0_25[0]);
  EXPECT_EQ(b[1], kHalf_0_25[1]);
  const uint32_t qh = b[2] | b[3] << 8 | b[4] << 16 | static_cast<uint32_t>(b[5]) << 24;
  EXPECT_EQ(qh, 0x7FFFFFFEu);  // all but elements 0 and 31
  EXPECT_EQ(b[6], 0x00);       // elements 0 (code 0) and 16 (code 16): low nibbles 0, 0
  EXPECT_EQ(b[6 + 4], 0x10);   // element 4 (code 16 -> 0), element 20 (17 -> 1)
  EXPECT_EQ(b[6 + 5], 0x0F);   // element 5 (31 -> 15), element 21 (16 -> 0)
  EXPECT_EQ(b[6 + 15], 0xF0);  // element 15 (16 -> 0), element 31 (15 -> 15)
}

}  // namespace
}  // namespace ficoco
