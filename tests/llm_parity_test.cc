// The language path against the transformers goldens of the llava-tiny fixture:
// spliced embeddings, hidden states, logits, 8 greedy tokens with their top-5, KV
// cache decoding vs recomputation, and the reduced-sequence case (reduce.*).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "engine/generate.h"
#include "engine/llava_model.h"
#include "image/image.h"
#include "test_support.h"
#include "tokenizer/chat_template.h"

namespace ficoco {
namespace {

using Case = test::FixtureCase;

std::vector<int> FixturePromptIds() {
  return {1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 338, 297, 278, 7623, 29973, 319, 1799, 9047, 13566, 29901};
}

class LlmParity : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = test::LlavaTinyDir();
    golden_ = std::make_unique<SafetensorsFile>(dir_ + "/" + GetParam().golden);
    LoadOptions lo;
    lo.compute = ComputeType::F32;
    model_ = LlavaModel::Load(dir_, lo);
    gemm_ = std::make_unique<GemmContext>(ComputeType::F32);
    encoded_ = model_->EncodeImage(*gemm_, DecodeImageFile(dir_ + "/images/" + GetParam().image));
  }
  std::string dir_;
  std::unique_ptr<SafetensorsFile> golden_;
  std::unique_ptr<LlavaModel> model_;
  std::unique_ptr<GemmContext> gemm_;
  EncodedImage encoded_;
};

TEST_P(LlmParity, PromptIdsMatchLlavaTokenisation) {
  auto ids = test::GoldenF32(*golden_, "llm.input_ids");
  std::vector<int> expected = FixturePromptIds();
  ASSERT_EQ(ids.size(), expected.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(static_cast<int>(ids[i]), expected[i]);
  Tokenizer tok = Tokenizer::FromFile(test::LlamaTokenizerDir() + "/tokenizer.model");
  EXPECT_EQ(TokenizeWithImages(tok, "USER: <image>\nWhat is in the picture? ASSISTANT:", 32000), expected);
}

TEST_P(LlmParity, EmbeddingsLogitsAndGreedyTokens) {
  GenerateRequest req;
  req.prompt_ids = FixturePromptIds();
  req.image_features = &encoded_.image_features;
  req.max_new_tokens = 8;
  req.keep_prefill_logits = true;
  req.keep_hidden_states = true;
  req.keep_step_logits = true;
  GenerateResult r = Generate(*gemm_, *model_, req);

  auto emb = test::GoldenF32(*golden_, "llm.inputs_embeds");
  ASSERT_EQ(r.inputs_embeds.rows(), 34);
  EXPECT_LE(test::MaxAbsDiff(r.inputs_embeds.data(), emb.data(), static_cast<int64_t>(emb.size())), 1e-4f);

  // Golden hidden states: [0] embeddings, [1..3] layer outputs, [4] final norm output.
  auto hs = test::GoldenF32(*golden_, "llm.hidden_states");
  const int64_t per = 34 * 64;
  ASSERT_EQ(r.hidden_states.size(), 6u);  // embeddings, 4 layers, final norm
  for (int i = 0; i < 4; ++i)
    EXPECT_LE(test::MaxAbsDiff(r.hidden_states[static_cast<size_t>(i)].data(), hs.data() + i * per, per), 1e-3f) << i;
  EXPECT_LE(test::MaxAbsDiff(r.hidden_states[5].data(), hs.data() + 4 * per, per), 1e-3f);

  auto last = test::GoldenF32(*golden_, "llm.logits_last");
  ASSERT_EQ(r.logits_last.size(), last.size());
  EXPECT_LE(test::MaxAbsDiff(r.logits_last.data(), last.data(), static_cast<int64_t>(last.size())), 1e-3f);
  if (golden_->Find("llm.logits_all") != nullptr) {
    auto all = test::GoldenF32(*golden_, "llm.logits_all");
    ASSERT_EQ(r.prefill_logits.rows() * r.prefill_logits.cols(), static_cast<int64_t>(all.size()));
    EXPECT_LE(test::MaxAbsDiff(r.prefill_logits.data(), all.data(), static_cast<int64_t>(all.size())), 1e-3f);
  }

  auto ids = test::GoldenF32(*golden_, "gen.new_ids");
  ASSERT_EQ(r.new_ids.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(r.new_ids[i], static_cast<int>(ids[i])) << "step " << i;

  auto top5 = test::GoldenF32(*golden_, "gen.top5_ids");
  ASSERT_EQ(r.step_logits.size(), 8u);
  for (size_t s = 0; s < 8; ++s) {
    const auto& lg = r.step_logits[s];
    std::vector<int> idx(lg.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + 5, idx.end(), [&](int a, int b) { return lg[a] > lg[b]; });
    for (int j = 0; j < 5; ++j) EXPECT_EQ(idx[static_cast<size_t>(j)], static_cast<int>(top5[s * 5 + j])) << "step " << s;
  }
}

TEST_P(LlmParity, CachedDecodingEqualsRecomputation) {
  GenerateRequest req;
  req.prompt_ids = FixturePromptIds();
  req.image_features = &encoded_.image_features;
  req.max_new_tokens = 6;
  req.keep_step_logits = true;
  GenerateResult cached = Generate(*gemm_, *model_, req);
  // Without a cache: rerun the whole sequence each step and take the last logits.
  const LlavaConfig& cfg = model_->config();
  LlamaDecoder dec(cfg.text, model_->text());
  std::vector<int> ids = req.prompt_ids;
  for (size_t step = 0; step < cached.new_ids.size(); ++step) {
    Matrix x;
    std::vector<TokenMeta> meta;
    BuildPromptEmbeddings(dec, ids, cfg.image_token_index, &encoded_.image_features, nullptr, &x, &meta);
    KvCache cache = dec.NewCache();
    TextForwardResult f = dec.Forward(*gemm_, x, meta, cache);
    Matrix last(1, f.normed.cols());
    std::copy_n(f.normed.row(f.normed.rows() - 1), f.normed.cols(), last.row(0));
    Matrix lg = dec.Logits(*gemm_, last);
    std::vector<float> v(lg.data(), lg.data() + lg.cols());
    EXPECT_EQ(ArgMax(v), cached.new_ids[step]) << "step " << step;
    EXPECT_LE(test::MaxAbsDiff(v.data(), cached.step_logits[step].data(), lg.cols()), 1e-4f);
    ids.push_back(cached.new_ids[step]);
  }
}

// A half-float KV cache (the default for bf16 and quantized compute): the prompt attends to
// its own fp32 rows, so prefill is bit-identical; decode steps read rounded keys and values
// and stay within 1e-2 of the fp32 cache's logits (|logits| up to ~9) with the same tokens.
TEST_P(LlmParity, HalfFloatCacheLeavesPrefillExactAndDecodeClose) {
  const LlavaConfig& cfg = model_->config();
  LlamaDecoder dec(cfg.text, model_->text());
  Matrix x;
  std::vector<TokenMeta> meta;
  BuildPromptEmbeddings(dec, FixturePromptIds(), cfg.image_token_index, &encoded_.image_features, nullptr, &x, &meta);
  KvCache full = dec.NewCache(KvType::F32), half = dec.NewCache(KvType::F16);
  TextForwardResult a = dec.Forward(*gemm_, x, meta, full), b = dec.Forward(*gemm_, x, meta, half);
  ASSERT_EQ(a.normed.rows(), b.normed.rows());
  EXPECT_EQ(test::MaxAbsDiff(a.normed.data(), b.normed.data(), a.normed.rows() * a.normed.cols()), 0.0f);
  EXPECT_EQ(half.Bytes() * 2, full.Bytes());
  int32_t pos = static_cast<int32_t>(x.rows());
  int id = 2;  // any token; both caches see the same ones
  for (int step = 0; step < 6; ++step, ++pos) {
    std::vector<TokenMeta> m{TokenMeta{pos, -1, -1, pos, TokenRole::Text}};
    TextForwardResult fa = dec.Forward(*gemm_, dec.Embed({id}), m, full), fb = dec.Forward(*gemm_, dec.Embed({id}), m, half);
    Matrix la = dec.Logits(*gemm_, fa.normed), lb = dec.Logits(*gemm_, fb.normed);
    std::vector<float> va(la.data(), la.data() + la.cols()), vb(lb.data(), lb.data() + lb.cols());
    const float diff = test::MaxAbsDiff(va.data(), vb.data(), la.cols());
    EXPECT_GT(diff, 0.0f) << "step " << step << ": the half cache was not read";
    EXPECT_LE(diff, 1e-2f) << "step " << step;
    EXPECT_EQ(ArgMax(va), ArgMax(vb)) << "step " << step;
    id = ArgMax(va);
  }
}

// reduce.*: keep the 4 image tokens with the largest head-mean CLS attention in the
// selected vision layer (read through the vision hook's attention signals), splice
// only those, renumber positions, and compare the last logits.
TEST_P(LlmParity, ReducedSequenceThroughTokenSetInterface) {
  std::vector<int32_t> kept;
  VisionRunOptions opts;
  opts.hook = [&](VisionHookContext& ctx) {
    if (ctx.layer != ctx.num_layers_run - 1) return;
    std::vector<int32_t> patches;
    for (int32_t i = 1; i < static_cast<int32_t>(ctx.meta.size()); ++i) patches.push_back(i);
    Matrix cls = ctx.attention.MeanOfProbs({0}, patches);
    std::vector<int32_t> order(patches.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cls.at(0, a) > cls.at(0, b); });
    kept.assign(order.begin(), order.begin() + 4);
    std::sort(kept.begin(), kept.end());
    auto golden_cls = test::GoldenF32(*golden_, "reduce.cls_attention");
    EXPECT_LE(test::MaxAbsDiff(cls.data(), golden_cls.data(), 16), 1e-5f);
  };
  EncodedImage e = model_->EncodeImage(*gemm_, DecodeImageFile(dir_ + "/images/" + GetParam().image), opts);
  auto golden_kept = test::GoldenF32(*golden_, "reduce.kept_idx");
  ASSERT_EQ(kept.size(), golden_kept.size());
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i], static_cast<int32_t>(golden_kept[i]));

  Matrix features = e.image_features;
  features.KeepRows(kept);
  GenerateRequest req;
  req.prompt_ids = FixturePromptIds();
  req.image_features = &features;  // positions are renumbered 0..21 by construction
  req.max_new_tokens = 1;
  GenerateResult r = Generate(*gemm_, *model_, req);
  EXPECT_EQ(r.prompt_tokens, 22);
  auto golden_logits = test::GoldenF32(*golden_, "reduce.logits_last");
  EXPECT_LE(test::MaxAbsDiff(r.logits_last.data(), golden_logits.data(), static_cast<int64_t>(golden_logits.size())), 1e-3f);
}

INSTANTIATE_TEST_SUITE_P(Fixture, LlmParity, ::testing::ValuesIn(test::kFixtureCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ficoco
