// A test fixture holding the llava-tiny model (fp32 compute), loaded once per test
// binary, with the fixture photo and seeded noise images.
#pragma once
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/llava_model.h"
#include "image/image.h"
#include "test_support.h"

namespace ficoco::test {

// The fixture prompt "USER: <image>\nWhat is in the picture? ASSISTANT:" as LLaVA
// tokenises it (the image token at position 5), and its non-image token count.
inline std::vector<int> FixturePromptIds() {
  return {1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 297, 278, 7623, 29973, 319, 1799, 9047, 13566, 29901};
}
inline constexpr int64_t kFixtureTextTokens = 18;

// The original indices of token records, in order.
inline std::vector<int32_t> OrigIndices(const std::vector<TokenMeta>& tokens) {
  std::vector<int32_t> out;
  for (const TokenMeta& t : tokens) out.push_back(t.orig_index);
  return out;
}

// A w×h image of uniform random bytes, the same for the same seed.
inline ImageU8 NoiseImage(uint32_t seed, int w, int h) {
  ImageU8 img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  std::mt19937 rng(seed);
  for (auto& p : img.rgb) p = static_cast<uint8_t>(rng() & 0xff);
  return img;
}

class TinyModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (model_ != nullptr) return;
    dir_ = new std::string(LlavaTinyDir());
    LoadOptions lo;
    lo.compute = ComputeType::F32;
    model_ = LlavaModel::Load(*dir_, lo).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
    model_ = nullptr;
    dir_ = nullptr;
  }
  ImageU8 Photo() const { return DecodeImageFile(*dir_ + "/images/grace_hopper.png"); }
  const LlavaConfig& cfg() const { return model_->config(); }

  inline static std::string* dir_ = nullptr;
  inline static LlavaModel* model_ = nullptr;
};

}  // namespace ficoco::test
