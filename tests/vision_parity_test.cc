// The image path against the Hugging Face transformers goldens of the llava-tiny
// fixture: pixel_values, every CLIP hidden state and attention map, the selected
// layer and the projector output. Tolerances: pixel_values 1e-6 (in practice exact),
// floats 1e-4 absolute (F32 arithmetic from F16 weights, as the reference).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/llava_model.h"
#include "image/image.h"
#include "test_support.h"

namespace ficoco {
namespace {

using Case = test::FixtureCase;

class VisionParity : public ::testing::TestWithParam<Case> {};

TEST_P(VisionParity, MatchesTransformers) {
  const Case c = GetParam();
  const std::string dir = test::LlavaTinyDir();
  SafetensorsFile golden(dir + "/" + c.golden);
  LoadOptions lo;
  lo.compute = ComputeType::F32;
  lo.load_text = false;
  auto model = LlavaModel::Load(dir, lo);
  GemmContext gemm(ComputeType::F32);
  VisionRunOptions opts;
  opts.keep_hidden_states = true;
  opts.keep_attentions = true;
  EncodedImage e = model->EncodeImage(gemm, DecodeImageFile(dir + "/images/" + c.image), opts);

  auto pv = test::GoldenF32(golden, "pixel_values");
  ASSERT_EQ(e.image.pixels.chw.size(), pv.size());
  EXPECT_LE(test::MaxAbsDiff(e.image.pixels.chw.data(), pv.data(), static_cast<int64_t>(pv.size())), 1e-6f);

  // hidden_states: [0] embeddings, [i] output of layer i-1; we run layers 0..L-2 only.
  auto hs = test::GoldenF32(golden, "vision.hidden_states");
  const int64_t per = 17 * 64;
  ASSERT_EQ(e.vision.hidden_states.size(), 4u);  // embeddings + 3 layers run of 4
  for (size_t i = 0; i < e.vision.hidden_states.size(); ++i) {
    EXPECT_LE(test::MaxAbsDiff(e.vision.hidden_states[i].data(), hs.data() + i * per, per), 1e-4f) << "hidden state " << i;
  }
  auto attn = test::GoldenF32(golden, "vision.attentions");
  const int64_t per_attn = 4 * 17 * 17;
  for (size_t i = 0; i < e.vision.attentions.size(); ++i) {
    EXPECT_LE(test::MaxAbsDiff(e.vision.attentions[i].data(), attn.data() + i * per_attn, per_attn), 1e-5f)
        << "attention " << i;
  }
  auto sel = test::GoldenF32(golden, "vision.selected");
  ASSERT_EQ(e.vision.hidden.rows() * e.vision.hidden.cols(), static_cast<int64_t>(sel.size()));
  EXPECT_LE(test::MaxAbsDiff(e.vision.hidden.data(), sel.data(), static_cast<int64_t>(sel.size())), 1e-4f);

  auto feat = test::GoldenF32(golden, "projector.image_features");
  ASSERT_EQ(e.image_features.rows(), 16);
  ASSERT_EQ(e.image_features.cols(), 64);
  EXPECT_LE(test::MaxAbsDiff(e.image_features.data(), feat.data(), static_cast<int64_t>(feat.size())), 1e-4f);
  // Token records follow the raster order of the 4x4 grid, CLS dropped.
  ASSERT_EQ(e.image_meta.size(), 16u);
  EXPECT_EQ(e.image_meta[5].grid_row, 1);
  EXPECT_EQ(e.image_meta[5].grid_col, 1);
}

TEST_P(VisionParity, Bf16ComputeStaysClose) {
  const Case c = GetParam();
  const std::string dir = test::LlavaTinyDir();
  SafetensorsFile golden(dir + "/" + c.golden);
  LoadOptions lo;
  lo.compute = ComputeType::BF16;
  lo.load_text = false;
  auto model = LlavaModel::Load(dir, lo);
  GemmContext gemm(ComputeType::BF16);
  EncodedImage e = model->EncodeImage(gemm, DecodeImageFile(dir + "/images/" + c.image));
  auto feat = test::GoldenF32(golden, "projector.image_features");
  float max_ref = 0;
  for (float f : feat) max_ref = std::max(max_ref, std::fabs(f));
  // bf16 keeps 8 mantissa bits: errors of a few 1e-3 relative to the tensor's scale.
  EXPECT_LE(test::MaxAbsDiff(e.image_features.data(), feat.data(), static_cast<int64_t>(feat.size())), 0.02f * max_ref);
}

INSTANTIATE_TEST_SUITE_P(Fixture, VisionParity, ::testing::ValuesIn(test::kFixtureCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ficoco
