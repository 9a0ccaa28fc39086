// KvCache in both element types: appending, keeping rows, widening, byte counts, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "language/kv_cache.h"
#include "tensor/dtype.h"

namespace ficoco {
namespace {

Matrix Rows(int64_t n, int64_t width, float start) {
  Matrix m(n, width);
  for (int64_t i = 0; i < n * width; ++i) m.data()[i] = start + 0.37f * static_cast<float>(i);
  return m;
}

class KvCacheTypes : public ::testing::TestWithParam<KvType> {};

TEST_P(KvCacheTypes, AppendKeepRowsAndWiden) {
  const KvType type = GetParam();
  KvCache cache(2, 4, type);
  const Matrix k1 = Rows(3, 4, 1.0f), v1 = Rows(3, 4, -5.0f), k2 = Rows(2, 4, 100.0f), v2 = Rows(2, 4, 50.0f);
  cache.Append(1, k1, v1);
  cache.Append(1, k2, v2);
  EXPECT_EQ(cache.length(0), 0);
  ASSERT_EQ(cache.length(1), 5);
  EXPECT_EQ(cache.Bytes(), 2 * 5 * 4 * KvTypeSize(type));
  // Rows come back in order, exactly for f32 and rounded to the nearest half for f16.
  const Matrix keys = cache.WidenedKeys(1);
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t c = 0; c < 4; ++c) {
      const float want = r < 3 ? k1.at(r, c) : k2.at(r - 3, c);
      EXPECT_EQ(keys.at(r, c), type == KvType::F16 ? F16ToF32(F32ToF16(want)) : want) << r << "," << c;
    }
  float value;
  cache.values(1).Read(4, 2, 1, &value);
  EXPECT_NEAR(value, v2.at(1, 2), std::fabs(v2.at(1, 2)) * 1e-3);
  cache.KeepRows(1, {4, 0});
  ASSERT_EQ(cache.length(1), 2);
  EXPECT_EQ(cache.Bytes(), 2 * 2 * 4 * KvTypeSize(type));
  const Matrix kept = cache.WidenedKeys(1);
  EXPECT_NEAR(kept.at(0, 0), k2.at(1, 0), 0.1);
  EXPECT_NEAR(kept.at(1, 3), k1.at(0, 3), 0.01);
  EXPECT_EQ(cache.keys(1).type, type);
}

TEST_P(KvCacheTypes, BadShapesAndRowsAreErrors) {
  KvCache cache(1, 4, GetParam());
  cache.Append(0, Rows(2, 4, 0), Rows(2, 4, 0));
  try {
    cache.Append(0, Rows(1, 3, 0), Rows(1, 3, 0));
    FAIL() << "appending rows of the wrong width must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("width 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cache.Append(0, Rows(2, 4, 0), Rows(1, 4, 0)), Error);
  try {
    cache.KeepRows(0, {0, 2});
    FAIL() << "keeping a row past the end must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 2 out of range 2"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KvCacheTypes, ::testing::Values(KvType::F32, KvType::F16),
                         [](const ::testing::TestParamInfo<KvType>& i) { return std::string(KvTypeName(i.param)); });

TEST(KvType, NamesAndChoices) {
  EXPECT_EQ(ParseKvType("f16"), KvType::F16);
  EXPECT_EQ(ParseKvType("f32"), KvType::F32);
  try {
    ParseKvType("auto");
    FAIL() << "auto is a command-line choice, not a type";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'auto' (expected f16 or f32)"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(ParseKvCacheChoice("auto").has_value());
  EXPECT_EQ(ParseKvCacheChoice("f16"), KvType::F16);
  try {
    ParseKvCacheChoice("q8_0");
    FAIL() << "q8_0 is not a KV cache type here";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("auto, f16 or f32"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ficoco
