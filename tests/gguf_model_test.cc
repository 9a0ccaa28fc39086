// GGUF pairs in the engine: the RoPE row order, the tokenizer rebuilt from a GGUF
// vocabulary (against the real LLaMA-2 tokenizer.model and its goldens), the llava-tiny
// fixture exported with `quantize` and loaded back (against the transformers goldens),
// quantized pairs (measured error; Q4_1 and a Q4_K_M mix multiplied without widening,
// against their own weights widened to F32), legacy mmproj layouts and bad files.
#include <gtest/gtest.h>

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "engine/generate.h"
#include "engine/gguf_export.h"
#include "engine/llava_model.h"
#include "engine/make_random.h"
#include "image/image.h"
#include "io/gguf_model.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "model/llava_weights.h"
#include "model/weight_table.h"
#include "tensor/quant.h"
#include "tiny_model_test.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/gguf_vocab.h"

namespace ficoco {
namespace {

using test::ExpectError;

std::string LlamaTokenizerPath() { return test::LlamaTokenizerDir() + "/tokenizer.model"; }

// The LLaMA-2 vocabulary read through the SentencePiece library's API (independent of our
// protobuf decoder).
GgufVocab VocabFromLibrary(const std::string& path) {
  sentencepiece::SentencePieceProcessor sp;
  EXPECT_TRUE(sp.Load(path).ok());
  GgufVocab v;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    v.tokens.push_back(sp.IdToPiece(i));
    v.scores.push_back(sp.GetScore(i));
    PieceType t = sp.IsUnknown(i) ? PieceType::Unknown
                  : sp.IsControl(i) ? PieceType::Control
                  : sp.IsByte(i)    ? PieceType::Byte
                  : sp.IsUnused(i)  ? PieceType::Unused
                                    : PieceType::Normal;
    v.types.push_back(static_cast<int32_t>(t));
  }
  v.unk_id = sp.unk_id();
  v.bos_id = sp.bos_id();
  v.eos_id = sp.eos_id();
  v.pad_id = sp.pad_id();
  return v;
}

// A GGUF file holding only a vocabulary.
std::string WriteVocabGguf(const GgufVocab& v, const std::string& dir, const std::string& name = "vocab.gguf") {
  const std::string path = dir + "/" + name;
  GgufWriter w(path);
  w.AddString("general.architecture", "llama");
  WriteGgufVocab(v, w);
  w.Finish();
  return path;
}

TEST(GgufModel, RopeRowOrder) {
  // head_dim 4: Hugging Face rows (i, j) = (0,0) (0,1) (1,0) (1,1) go to 2j + i = 0, 2, 1, 3.
  const std::vector<int64_t> want{0, 2, 1, 3, 4, 6, 5, 7};
  for (int64_t r = 0; r < 8; ++r) EXPECT_EQ(RopeRowToGguf(r, 4), want[r]) << "row " << r;
  // head_dim 8, second head: HF row 8 + 4 + 1 (i = 1, j = 1) is stored at 8 + 3.
  EXPECT_EQ(RopeRowToGguf(13, 8), 11);
  // A permutation: every stored row used once.
  std::vector<int> seen(128, 0);
  for (int64_t r = 0; r < 128; ++r) ++seen[static_cast<size_t>(RopeRowToGguf(r, 32))];
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
}

TEST(GgufVocabTest, SentencePieceFileReadsLikeTheLibrary) {
  const GgufVocab lib = VocabFromLibrary(LlamaTokenizerPath());
  const GgufVocab ours = ReadSentencePieceVocab(LlamaTokenizerPath());
  ASSERT_EQ(ours.tokens.size(), 32000u);
  EXPECT_EQ(ours.tokens, lib.tokens);
  EXPECT_EQ(ours.scores, lib.scores);
  EXPECT_EQ(ours.types, lib.types);
  EXPECT_EQ(ours.unk_id, 0);
  EXPECT_EQ(ours.bos_id, 1);
  EXPECT_EQ(ours.eos_id, 2);
  EXPECT_EQ(ours.pad_id, -1);
  EXPECT_TRUE(ours.add_dummy_prefix);
  EXPECT_FALSE(ours.remove_extra_whitespaces);
  EXPECT_TRUE(ours.byte_fallback);
  EXPECT_EQ(ours.types[3], static_cast<int32_t>(PieceType::Byte));  // <0x00>
}

TEST(GgufVocabTest, TokenizerFromGgufMatchesTokenizerModel) {
  const std::string dir = test::MakeTempDir("gguf-vocab");
  const GgufFile f(WriteVocabGguf(VocabFromLibrary(LlamaTokenizerPath()), dir));
  const Tokenizer gguf = TokenizerFromGguf(f);
  const Tokenizer real = Tokenizer::FromFile(LlamaTokenizerPath());
  ASSERT_EQ(gguf.vocab_size(), 32000);
  EXPECT_EQ(gguf.bos_id(), 1);
  EXPECT_EQ(gguf.eos_id(), 2);
  for (int id = 0; id < real.vocab_size(); ++id) {
    ASSERT_EQ(gguf.IdToPiece(id), real.IdToPiece(id)) << "id " << id;
    ASSERT_EQ(gguf.IsByte(id), real.IsByte(id)) << "id " << id;
  }
  // The goldens (sentencepiece 0.1.97 and llama-tokenizer-js agree on them).
  const nlohmann::json golden =
      nlohmann::json::parse(test::ReadFile(test::LlamaTokenizerDir() + "/golden_tokenization.json"));
  ASSERT_GE(golden["cases"].size(), 5u);
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(gguf.Encode(text, false), c["ids_no_bos"].get<std::vector<int>>()) << text;
    EXPECT_EQ(gguf.Encode(text, true), c["with_bos"].get<std::vector<int>>()) << text;
  }
  // Harder strings: runs of spaces, tabs, digits, bytes, characters outside the vocabulary.
  for (const std::string text :
       {"  two leading spaces", "tabs\tand\nnew\n\nlines   ", "12345 67.89 1,000", "ünïcödé 日本語 🙂 ∮ ⸘",
        "\x01\x7f control bytes", "<s> not a control token </s>", "", " ", "a"}) {
    const std::vector<int> ids = real.Encode(text, true);
    EXPECT_EQ(gguf.Encode(text, true), ids) << "'" << text << "'";
    EXPECT_EQ(gguf.Decode(ids), real.Decode(ids)) << "'" << text << "'";
  }
  // The LLaVA prompt with its image placeholder, as `run` tokenises it.
  EXPECT_EQ(TokenizeWithImages(gguf, "USER: <image>\nWhat is in the picture? ASSISTANT:", 32000), test::FixturePromptIds());
}

TEST(GgufVocabTest, BadVocabularies) {
  const std::string dir = test::MakeTempDir("gguf-badvocab");
  GgufVocab v = VocabFromLibrary(LlamaTokenizerPath());
  {
    GgufWriter w(dir + "/gpt2.gguf");
    w.AddString("tokenizer.ggml.model", "gpt2");
    w.AddStringArray("tokenizer.ggml.tokens", {"a", "b"});
    w.Finish();
    ExpectError([&] { TokenizerFromGguf(GgufFile(dir + "/gpt2.gguf")); },
                {"gpt2.gguf", "tokenizer.ggml.model", "'gpt2'", "only 'llama'"});
  }
  {
    GgufWriter w(dir + "/none.gguf");
    w.AddString("general.architecture", "llama");
    w.Finish();
    ExpectError([&] { TokenizerFromGguf(GgufFile(dir + "/none.gguf")); }, {"none.gguf", "tokenizer.ggml.model", "--tokenizer"});
  }
  GgufVocab short_scores = v;
  short_scores.scores.pop_back();
  ExpectError([&] { TokenizerFromGguf(GgufFile(WriteVocabGguf(short_scores, dir, "scores.gguf"))); },
              {"scores.gguf", "31999 scores for 32000 tokens"});
  GgufVocab bad_bos = v;
  bad_bos.bos_id = 40000;
  ExpectError([&] { TokenizerFromGguf(GgufFile(WriteVocabGguf(bad_bos, dir, "bos.gguf"))); },
              {"bos.gguf", "BOS id 40000"});
  GgufVocab dup = v;
  dup.tokens[500] = dup.tokens[501];
  ExpectError([&] { TokenizerFromGguf(GgufFile(WriteVocabGguf(dup, dir, "dup.gguf"))); }, {"dup.gguf", "appears twice"});
}

// ---------------------------------------------------------------------------------------------
// The llava-tiny fixture as GGUF pairs.

struct Pair {
  std::string model, mmproj;
};

Pair Export(const std::string& tag, GgmlType type) {
  GgufExportOptions o;
  o.in_dir = test::LlavaTinyDir();
  o.out_dir = test::MakeTempDir("gguf-" + tag);
  o.tokenizer = LlamaTokenizerPath();
  o.type = type;
  std::ostringstream log;
  const GgufExportResult r = ExportGgufPair(o, log);
  return {r.model_path, r.mmproj_path};
}

// Copies a GGUF file, letting `tensor_name` rename (or drop, with "") tensors and `kv`
// override (or drop, with a null value) metadata keys.
void RewriteGguf(const std::string& src, const std::string& dst, const std::function<std::string(const std::string&)>& tensor_name,
                 const std::function<void(GgufWriter&)>& extra_kv = {}, const std::vector<std::string>& drop_keys = {}) {
  const GgufFile in(src);
  GgufWriter w(dst, in.alignment());
  for (const auto& [key, value] : in.metadata()) {
    if (key == "general.alignment" || std::count(drop_keys.begin(), drop_keys.end(), key)) continue;
    w.AddValue(key, value);
  }
  if (extra_kv) extra_kv(w);
  std::vector<const GgufTensor*> kept;
  for (const GgufTensor& t : in.tensors()) {
    const std::string name = tensor_name ? tensor_name(t.name) : t.name;
    if (name.empty()) continue;
    w.AddTensor(name, t.type, t.shape);
    kept.push_back(&t);
  }
  for (const GgufTensor* t : kept) w.Append(t->data, t->nbytes);
  w.Finish();
}

class GgufTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (f16_ != nullptr) return;
    f16_ = new Pair(Export("f16", GgmlType::F16));
  }
  static std::unique_ptr<LlavaModel> LoadF32(const Pair& p, bool text = true) {
    LoadOptions lo;
    lo.compute = ComputeType::F32;
    lo.load_text = text;
    return LlavaModel::LoadGguf(p.model, p.mmproj, lo);
  }
  static ImageU8 Photo() { return DecodeImageFile(test::LlavaTinyDir() + "/images/grace_hopper.png"); }
  static SafetensorsFile Golden() { return SafetensorsFile(test::LlavaTinyDir() + "/golden_photo.safetensors"); }

  struct Answer {
    std::vector<float> logits_last;  // first 32000 entries (the GGUF vocabulary)
    std::vector<int> ids;
  };
  static Answer Ask(const LlavaModel& m, GemmContext& gemm) {
    const EncodedImage e = m.EncodeImage(gemm, Photo());
    GenerateRequest req;
    req.prompt_ids = test::FixturePromptIds();  // the image token 32000 = the GGUF model's first id past its vocabulary
    req.image_features = &e.image_features;
    req.image_meta = &e.image_meta;
    req.max_new_tokens = 8;
    req.stop_at_eos = false;
    const GenerateResult r = Generate(gemm, m, req);
    Answer a;
    a.logits_last.assign(r.logits_last.begin(), r.logits_last.begin() + 32000);
    a.ids = r.new_ids;
    return a;
  }

  inline static Pair* f16_ = nullptr;
};

TEST_F(GgufTiny, ConfigFromGgufKeys) {
  const GgufModel g(f16_->model, f16_->mmproj);
  const LlavaConfig ref = LoadLlavaConfig(test::LlavaTinyDir());
  const LlavaConfig& c = g.config();
  EXPECT_EQ(c.text.hidden_size, ref.text.hidden_size);
  EXPECT_EQ(c.text.intermediate_size, ref.text.intermediate_size);
  EXPECT_EQ(c.text.num_hidden_layers, ref.text.num_hidden_layers);
  EXPECT_EQ(c.text.num_attention_heads, ref.text.num_attention_heads);
  EXPECT_EQ(c.text.num_key_value_heads, ref.text.num_key_value_heads);
  EXPECT_FLOAT_EQ(c.text.rms_norm_eps, ref.text.rms_norm_eps);
  EXPECT_FLOAT_EQ(c.text.rope_theta, ref.text.rope_theta);
  EXPECT_EQ(c.text.vocab_size, 32000);  // the tokenizer's pieces; llava-hf pads to 32064
  EXPECT_EQ(c.image_token_index, 32000);
  EXPECT_EQ(c.vision.hidden_size, ref.vision.hidden_size);
  EXPECT_EQ(c.vision.image_size, 56);
  EXPECT_EQ(c.vision.hidden_act, Activation::QuickGelu);
  // 4 CLIP layers, feature layer -2: 3 stored blocks, all run, as in the reference.
  EXPECT_EQ(c.vision.num_hidden_layers, 3);
  EXPECT_EQ(c.vision_last_layer(), ref.vision_last_layer());
  EXPECT_EQ(g.preprocessor().crop_height, 56);
  EXPECT_FLOAT_EQ(g.preprocessor().image_mean[0], 0.48145466f);
  EXPECT_TRUE(g.notes().empty());
  // 5 + 3 x 16 vision tensors + 4 projector, 1 + 4 x 9 + 2 text tensors.
  EXPECT_EQ(g.tensors().size(), 57u + 39u);
}

TEST_F(GgufTiny, F16PairReproducesTheTransformersGoldens) {
  auto m = LoadF32(*f16_);
  EXPECT_TRUE(m->is_gguf());
  GemmContext gemm(ComputeType::F32);
  const EncodedImage e = m->EncodeImage(gemm, Photo());
  const SafetensorsFile golden = Golden();
  const auto feat = test::GoldenF32(golden, "projector.image_features");
  ASSERT_EQ(static_cast<size_t>(e.image_features.rows() * e.image_features.cols()), feat.size());
  EXPECT_LE(test::MaxAbsDiff(e.image_features.data(), feat.data(), static_cast<int64_t>(feat.size())), 1e-4f);

  const Answer a = Ask(*m, gemm);
  const auto last = test::GoldenF32(golden, "llm.logits_last");  // 32064 entries
  EXPECT_LE(test::MaxAbsDiff(a.logits_last.data(), last.data(), 32000), 1e-3f);
  const auto ids = test::GoldenF32(golden, "gen.new_ids");
  ASSERT_EQ(a.ids.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(a.ids[i], static_cast<int>(ids[i])) << "token " << i;
  // The embedded tokenizer is the LLaMA-2 one.
  EXPECT_EQ(m->LoadTokenizer("").Decode({15043, 3186}), "Hello world");
}

// With bf16 compute the GGUF pair converts the same F16 weights as the llava-hf directory:
// the same numbers come out.
TEST_F(GgufTiny, Bf16ComputeMatchesTheSafetensorsPath) {
  LoadOptions lo;
  lo.compute = ComputeType::BF16;
  auto gguf = LlavaModel::LoadGguf(f16_->model, f16_->mmproj, lo);
  auto st = LlavaModel::Load(test::LlavaTinyDir(), lo);
  GemmContext g1(ComputeType::BF16), g2(ComputeType::BF16);
  const Answer a = Ask(*gguf, g1), b = Ask(*st, g2);
  EXPECT_LE(test::MaxAbsDiff(a.logits_last.data(), b.logits_last.data(), 32000), 1e-4f);
  EXPECT_EQ(a.ids, b.ids);
}

// Every Q8_0 tensor of the exported pair, read back in Hugging Face order (q/k rows
// reordered block-row by block-row), is the fixture's tensor within Q8_0's rounding:
// |x - x'| <= d/2 + 127 d 2^-11 with d = max|block|/127 (the F16 rounding of d).
TEST_F(GgufTiny, Q8BlocksComeBackInHuggingFaceOrder) {
  const Pair p = Export("q8_0-blocks", GgmlType::Q8_0);
  const Checkpoint gguf(std::make_shared<const GgufModel>(p.model, p.mmproj));
  const Checkpoint ref(test::LlavaTinyDir());
  int checked = 0;
  for (const std::string& name : gguf.Names()) {
    const Checkpoint::QuantizedTensor* q = gguf.FindQuantized(name);
    if (q == nullptr) continue;
    ASSERT_EQ(q->type, GgmlType::Q8_0) << name;
    const std::vector<float> want = ref.Get(name).ToF32();  // the first 32000 rows for the vocabulary
    const int64_t n = q->shape[0] * q->shape[1];
    std::vector<float> blocks(static_cast<size_t>(n));
    Dequantize(q->type, q->blocks, blocks.data(), n);
    const std::vector<float> widened = gguf.Get(name).ToF32();
    ASSERT_EQ(widened.size(), blocks.size()) << name;
    for (int64_t b = 0; b < n / 32; ++b) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(want[b * 32 + i]));
      // Rounding to the step d, plus up to 127 steps of d's own F16 rounding (2^-11 relative).
      const float d = amax / 127;
      const float tol = d * (0.5f + 127.0f / 2048) * 1.001f + 1e-7f;
      for (int i = 0; i < 32; ++i) {
        const int64_t k = b * 32 + i;
        ASSERT_LE(std::fabs(blocks[k] - want[k]), tol) << name << " element " << k;
        ASSERT_EQ(widened[k], blocks[k]) << name << " element " << k;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 1 + 4 * 6 + 1);  // embeddings, q k v o gate up per layer, lm_head (down: 172 columns, F16)
}

// Q8_0 / Q4_0 text weights end to end against the transformers goldens (llava-tiny, photo,
// fixture prompt, f32 compute, quantized linears through the int8 kernels). Measured here:
//   Q8_0: max |logit error| 0.23, 7 of 8 greedy tokens agree
//   Q4_0: max |logit error| 2.86, 0 of 8 greedy tokens agree
// The fixture's logits spread ±9 (std 2) and its random weights amplify noise: bf16
// arithmetic alone moves them by 0.11, and its greedy margins are 0.08..0.8, so the
// Q4_0 answer is a different one. Bounds below leave about 1.5x room.
TEST_F(GgufTiny, QuantizedPairsStayCloseToTheReference) {
  const SafetensorsFile golden = Golden();
  const auto last = test::GoldenF32(golden, "llm.logits_last");
  const auto gold_ids = test::GoldenF32(golden, "gen.new_ids");
  struct Case {
    GgmlType type;
    float max_err;
    int min_agree;
  };
  for (const Case& c : {Case{GgmlType::Q8_0, 0.35f, 6}, Case{GgmlType::Q4_0, 4.5f, 0}}) {
    const Pair p = Export(GgmlTypeName(c.type), c.type);
    auto m = LoadF32(p);
    GemmContext gemm(ComputeType::F32);
    const Answer a = Ask(*m, gemm);
    const float err = test::MaxAbsDiff(a.logits_last.data(), last.data(), 32000);
    int agree = 0;
    for (size_t i = 0; i < gold_ids.size(); ++i) agree += a.ids[i] == static_cast<int>(gold_ids[i]) ? 1 : 0;
    std::printf("%s: max |logit error| %.3g, greedy agreement %d of 8\n", GgmlTypeName(c.type), err, agree);
    EXPECT_GT(err, 0.0f) << "a quantized model cannot be exact";
    EXPECT_LE(err, c.max_err) << GgmlTypeName(c.type);
    EXPECT_GE(agree, c.min_agree) << GgmlTypeName(c.type);
    if (c.type == GgmlType::Q8_0) {
      EXPECT_EQ(a.ids[0], static_cast<int>(gold_ids[0])) << "first token, margin 0.8";
    }
  }
}

// Types the int8 kernels do not take are widened to F32 at load: a Q5_1 pair answers, with
// an error between Q8_0's and Q4_0's (measured 1.16).
TEST_F(GgufTiny, OtherBlockTypesAreWidenedAtLoad) {
  const Pair p = Export("q5_1", GgmlType::Q5_1);
  auto m = LoadF32(p);
  GemmContext gemm(ComputeType::F32);
  const Answer a = Ask(*m, gemm);
  const auto last = test::GoldenF32(Golden(), "llm.logits_last");
  const float err = test::MaxAbsDiff(a.logits_last.data(), last.data(), 32000);
  EXPECT_GT(err, 0.0f);
  EXPECT_LE(err, 1.8f);
}

// A copy of a GGUF file with every block-quantized tensor widened to F32 (Dequantize, in the
// stored row order): the same weights, read without the int8 kernels.
void WriteWidenedGguf(const std::string& src, const std::string& dst) {
  const GgufFile in(src);
  GgufWriter w(dst, in.alignment());
  for (const auto& [key, value] : in.metadata())
    if (key != "general.alignment") w.AddValue(key, value);
  auto is_float = [](GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; };
  for (const GgufTensor& t : in.tensors()) w.AddTensor(t.name, is_float(t.type) ? t.type : GgmlType::F32, t.shape);
  for (const GgufTensor& t : in.tensors()) {
    if (is_float(t.type)) {
      w.Append(t.data, t.nbytes);
      continue;
    }
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<float> f(static_cast<size_t>(n));
    Dequantize(t.type, t.data, f.data(), n);
    w.Append(f.data(), f.size() * sizeof(float));
  }
  w.Finish();
}

// Q4_1 text weights stay in blocks (the int8 kernel's "4-bit with min" layout) instead of
// being widened: the answer equals that of the same weights widened to F32 up to the
// kernel's 8-bit activations: measured max |logit diff| 0.125 (the fixture's logits reach
// ±9 and its random weights amplify noise), all 8 greedy tokens equal. Bound: 2x.
TEST_F(GgufTiny, Q4_1StaysPackedAndMatchesItsWidenedWeights) {
  const Pair p = Export("q4_1", GgmlType::Q4_1);
  const std::string widened = test::MakeTempDir("gguf-q4_1-wide") + "/widened.gguf";
  WriteWidenedGguf(p.model, widened);
  auto packed = LoadF32(p), wide = LoadF32({widened, p.mmproj});
  EXPECT_EQ(DescribeTextWeights(packed->text()), "mixed: q4_1 + f16");  // down_proj: 172 columns, F16
  EXPECT_EQ(DescribeTextWeights(wide->text()), "mixed: f32 + f16");
  GemmContext gemm(ComputeType::F32);
  const Answer a = Ask(*packed, gemm), b = Ask(*wide, gemm);
  const float diff = test::MaxAbsDiff(a.logits_last.data(), b.logits_last.data(), 32000);
  std::printf("q4_1 packed vs widened: max |logit diff| %.3g, tokens %s\n", diff, a.ids == b.ids ? "equal" : "differ");
  EXPECT_GT(diff, 0.0f) << "the packed path quantizes activations";
  EXPECT_LE(diff, 0.25f);
}

// Without output.weight the output layer is the token embedding (tied). With Q8_0 blocks the
// output layer and the embedding lookup both read the stored blocks: the output layer must
// not release them after load (8 MB: freed memory would fault on lookup).
TEST_F(GgufTiny, TiedQuantizedEmbeddingsStayReadable) {
  const Pair q8 = Export("q8_0-tied", GgmlType::Q8_0);
  const std::string tied = test::MakeTempDir("gguf-tied") + "/tied.gguf";
  RewriteGguf(q8.model, tied, [](const std::string& n) { return n == "output.weight" ? "" : n; });
  LoadOptions lo;
  lo.compute = ComputeType::BF16;
  auto m = LlavaModel::LoadGguf(tied, q8.mmproj, lo);
  EXPECT_TRUE(m->config().text.tie_word_embeddings);
  const GgufFile f(tied);
  const GgufTensor& t = f.GetTensor("token_embd.weight");
  std::vector<float> want(32000 * 64);
  Dequantize(t.type, t.data, want.data(), static_cast<int64_t>(want.size()));
  const EmbeddingTable& table = m->text().embed_tokens;
  EXPECT_NE(table.blocks, nullptr) << "token_embd should be read as stored Q8_0 blocks";
  ASSERT_EQ(table.rows(), 32000);
  ASSERT_EQ(table.cols(), 64);
  std::vector<float> got(want.size());
  for (int64_t id = 0; id < 32000; ++id) table.Row(id, got.data() + id * 64);
  EXPECT_EQ(test::MaxAbsDiff(got.data(), want.data(), static_cast<int64_t>(want.size())), 0.0f);
  GemmContext gemm(ComputeType::BF16);
  EXPECT_EQ(Ask(*m, gemm).ids.size(), 8u);
}

// A type the int8 kernels do not take is widened, then converted to bf16 for its
// LinearWeight, which owns that copy: after load the checkpoint holds no widened or
// reordered copies (it once kept every widened F32 copy: about 26 GB for a 7B Q4_K_M
// file). With f32 compute the widened copy is the weight itself and stays.
TEST_F(GgufTiny, WidenedCopiesAreNotKeptAfterLoad) {
  const Pair p = Export("q5_1-held", GgmlType::Q5_1);
  LoadOptions lo;
  lo.compute = ComputeType::BF16;
  auto m = LlavaModel::LoadGguf(p.model, p.mmproj, lo);
  EXPECT_EQ(m->checkpoint().HeldCopyBytes(), 0u);
}

TEST_F(GgufTiny, LegacySwappedFfnNamesAreDetected) {
  const std::string dir = test::MakeTempDir("gguf-legacy");
  const std::string legacy = dir + "/mmproj-legacy.gguf";
  RewriteGguf(f16_->mmproj, legacy, [](const std::string& n) {
    std::string s = n;
    for (auto [a, b] : {std::pair{".ffn_up.", ".ffn_down."}, {".ffn_down.", ".ffn_up."}}) {
      const size_t at = n.find(a);
      if (at != std::string::npos) return n.substr(0, at) + b + n.substr(at + std::string(a).size());
    }
    return s;
  });
  auto base = LoadF32(*f16_, false), old = LoadF32({f16_->model, legacy}, false);
  ASSERT_EQ(old->load_notes().size(), 1u);
  EXPECT_NE(old->load_notes()[0].find("legacy"), std::string::npos);
  GemmContext gemm(ComputeType::F32);
  const EncodedImage a = base->EncodeImage(gemm, Photo()), b = old->EncodeImage(gemm, Photo());
  EXPECT_EQ(test::MaxAbsDiff(a.image_features.data(), b.image_features.data(), a.image_features.rows() * a.image_features.cols()),
            0.0f);
}

TEST_F(GgufTiny, FeatureLayerKeyIsFollowedAndReported) {
  const std::string dir = test::MakeTempDir("gguf-featlayer");
  const std::string path = dir + "/mmproj-fl.gguf";
  RewriteGguf(f16_->mmproj, path, {}, [](GgufWriter& w) { w.AddI32Array("clip.vision.feature_layer", {2}); });
  auto m = LoadF32({f16_->model, path}, false);
  EXPECT_EQ(m->config().vision_last_layer(), 1);  // the output of the first 2 blocks
  ASSERT_EQ(m->load_notes().size(), 1u);
  EXPECT_NE(m->load_notes()[0].find("feature_layer = 2"), std::string::npos);
  // hidden_states[2] of the reference.
  GemmContext gemm(ComputeType::F32);
  const EncodedImage e = m->EncodeImage(gemm, Photo());
  const auto hs = test::GoldenF32(Golden(), "vision.hidden_states");  // [5, 1, 17, 64]
  const int64_t per = 17 * 64;
  EXPECT_LE(test::MaxAbsDiff(e.vision.hidden.data(), hs.data() + 2 * per, per), 1e-4f);

  RewriteGguf(f16_->mmproj, dir + "/bad-fl.gguf", {}, [](GgufWriter& w) { w.AddI32Array("clip.vision.feature_layer", {7}); });
  ExpectError([&] { GgufModel(f16_->model, dir + "/bad-fl.gguf"); }, {"bad-fl.gguf", "clip.vision.feature_layer = 7", "1..3"});
}

TEST_F(GgufTiny, BadPairsNameTheFileAndTensor) {
  const std::string dir = test::MakeTempDir("gguf-bad");
  // Files given the wrong way round.
  ExpectError([&] { GgufModel(f16_->mmproj, f16_->model); },
              {f16_->mmproj, "general.architecture is 'clip'", "'llama'", "swapped"});
  // A text tensor missing.
  RewriteGguf(f16_->model, dir + "/no-up.gguf", [](const std::string& n) { return n == "blk.1.ffn_up.weight" ? "" : n; });
  ExpectError([&] { GgufModel(dir + "/no-up.gguf", f16_->mmproj); },
              {"no-up.gguf", "missing tensor 'blk.1.ffn_up.weight'", "language_model.model.layers.1.mlp.up_proj.weight"});
  // Hyperparameters that disagree with the tensors.
  RewriteGguf(f16_->model, dir + "/ffn.gguf", {}, [](GgufWriter& w) { w.AddU32("llama.feed_forward_length", 160); },
              {"llama.feed_forward_length"});
  ExpectError([&] { GgufModel(dir + "/ffn.gguf", f16_->mmproj); },
              {"ffn.gguf", "tensor 'blk.0.ffn_gate.weight'", "[172,64]", "[160,64]"});
  // An mmproj without its projector.
  RewriteGguf(f16_->mmproj, dir + "/no-mm.gguf", [](const std::string& n) { return n == "mm.2.weight" ? "" : n; });
  ExpectError([&] { GgufModel(f16_->model, dir + "/no-mm.gguf"); }, {"no-mm.gguf", "without its projector", "'mm.2.weight'"});
  RewriteGguf(f16_->mmproj, dir + "/ldp.gguf", {}, [](GgufWriter& w) { w.AddString("clip.projector_type", "ldp"); },
              {"clip.projector_type"});
  ExpectError([&] { GgufModel(f16_->model, dir + "/ldp.gguf"); }, {"ldp.gguf", "clip.projector_type 'ldp'"});
  RewriteGguf(f16_->mmproj, dir + "/noproj.gguf", {}, {}, {"clip.projector_type", "clip.has_llava_projector"});
  ExpectError([&] { GgufModel(f16_->model, dir + "/noproj.gguf"); }, {"noproj.gguf", "no LLaVA projector"});
  // A GGUF model without its mmproj, through the front ends' entry point.
  ExpectError([&] { LlavaModel::Load(f16_->model, "", LoadOptions{}); }, {f16_->model, "--mmproj"});
}

// ---------------------------------------------------------------------------------------------
// Q4_K_M, llama.cpp's most common download. The k-quants need rows that are multiples of 256,
// which the fixture's width 64 is not, so these tests write a random llava-hf model with the
// tiny preset's vision side and a text model 256 wide (intermediate 512, 8 layers, 4 heads):
// `quantize --type q4_k_m` stores it as Q4_K with Q6_K for output and for attn_v / ffn_down in
// layers 0, 3, 6 and 7.

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::string WriteWideTextModel() {
  LlavaConfig cfg = PresetConfig("tiny");
  cfg.text.hidden_size = 256;
  cfg.text.intermediate_size = 512;
  cfg.text.num_hidden_layers = 8;
  const std::string dir = test::MakeTempDir("wide-text");
  WriteTextFile(dir + "/config.json", LlavaConfigToJson(cfg));
  PreprocessorConfig pre;
  pre.shortest_edge = pre.crop_height = pre.crop_width = cfg.vision.image_size;
  WriteTextFile(dir + "/preprocessor_config.json", PreprocessorConfigToJson(pre));
  // Uniform values of std 0.02 (norm weights 1 + that), as make-random draws them.
  std::mt19937 g(2026);
  std::uniform_real_distribution<float> u(-0.0346f, 0.0346f);
  const std::vector<WeightSpec> table = LlavaWeightTable(cfg);
  std::vector<std::vector<uint16_t>> data;
  std::vector<TensorView> views;
  for (const WeightSpec& spec : table) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    const bool norm = spec.shape.size() == 1 && spec.name.find("norm") != std::string::npos &&
                      spec.name.find(".weight") != std::string::npos;
    std::vector<uint16_t> v(static_cast<size_t>(n));
    for (uint16_t& h : v) h = F32ToF16((norm ? 1.0f : 0.0f) + u(g));
    data.push_back(std::move(v));
  }
  for (size_t i = 0; i < table.size(); ++i) views.push_back({table[i].name, DType::F16, table[i].shape, data[i].data()});
  WriteSafetensors(dir + "/model.safetensors", views);
  return dir;
}

class GgufKQuant : public GgufTiny {
 protected:
  static void SetUpTestSuite() {
    GgufTiny::SetUpTestSuite();
    if (wide_ != nullptr) return;
    wide_ = new std::string(WriteWideTextModel());
    GgufExportOptions o;
    o.in_dir = *wide_;
    o.out_dir = test::MakeTempDir("gguf-q4_k_m");
    o.tokenizer = LlamaTokenizerPath();
    SetExportType("q4_k_m", o);
    std::ostringstream log;
    const GgufExportResult r = ExportGgufPair(o, log);
    q4km_ = new Pair{r.model_path, r.mmproj_path};
  }
  inline static std::string* wide_ = nullptr;
  inline static Pair* q4km_ = nullptr;
};

TEST_F(GgufKQuant, Q4KMMixFollowsTheLayerRule) {
  // 7B (32 layers): attn_v / ffn_down of 16 layers get Q6_K (0-3, 28-31 and every third between).
  int more = 0;
  for (int i = 0; i < 32; ++i) more += Q4KMUsesMoreBits(i, 32) ? 1 : 0;
  EXPECT_EQ(more, 16);
  const GgufFile f(q4km_->model);
  EXPECT_NE(q4km_->model.find("-q4_k_m.gguf"), std::string::npos) << q4km_->model;
  EXPECT_EQ(f.GetU32("general.file_type"), 15u);  // llama.cpp's MOSTLY_Q4_K_M
  EXPECT_EQ(f.GetTensor("output.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(f.GetTensor("token_embd.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(f.GetTensor("output_norm.weight").type, GgmlType::F32);
  for (int i = 0; i < 8; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const GgmlType more_bits = (i == 0 || i == 3 || i == 6 || i == 7) ? GgmlType::Q6_K : GgmlType::Q4_K;
    EXPECT_EQ(f.GetTensor(b + "attn_v.weight").type, more_bits) << i;
    EXPECT_EQ(f.GetTensor(b + "ffn_down.weight").type, more_bits) << i;
    for (const char* t : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
      EXPECT_EQ(f.GetTensor(b + t + ".weight").type, GgmlType::Q4_K) << b << t;
  }
}

// The Q4_K_M pair runs with its Q4_K and Q6_K linears in the int8 kernels (nothing widened)
// and answers as its own weights widened to F32 do, up to the kernels' 8-bit activations.
// Measured (f32 compute, photo, fixture prompt; last-position logits up to 1.21): max
// |logit diff| packed vs widened 0.0169, all 8 greedy tokens equal; the weights' own 4-bit
// quantization error (widened Q4_K_M vs the F16 safetensors model) is 0.252, 15x that.
// Bounds: 3x, and the activation error at most a fifth of the weight error.
TEST_F(GgufKQuant, Q4KMPairStaysPackedAndMatchesItsWidenedWeights) {
  const std::string widened = test::MakeTempDir("gguf-q4_k_m-wide") + "/widened.gguf";
  WriteWidenedGguf(q4km_->model, widened);
  auto packed = LoadF32(*q4km_), wide = LoadF32({widened, q4km_->mmproj});
  EXPECT_EQ(DescribeTextWeights(packed->text()), "mixed: q4_k + q6_k");
  EXPECT_EQ(DescribeTextWeights(wide->text()), "f32");
  LoadOptions lo;
  lo.compute = ComputeType::F32;
  auto f16 = LlavaModel::Load(*wide_, lo);
  GemmContext gemm(ComputeType::F32);
  const Answer a = Ask(*packed, gemm), b = Ask(*wide, gemm), c = Ask(*f16, gemm);
  const float act = test::MaxAbsDiff(a.logits_last.data(), b.logits_last.data(), 32000);
  const float weights = test::MaxAbsDiff(b.logits_last.data(), c.logits_last.data(), 32000);
  float amax = 0;
  for (float v : b.logits_last) amax = std::max(amax, std::fabs(v));
  int agree = 0;
  for (size_t i = 0; i < a.ids.size(); ++i) agree += a.ids[i] == b.ids[i] ? 1 : 0;
  std::printf("q4_k_m: max |logit| %.3g; packed vs widened %.3g (greedy %d of 8 agree); widened vs f16 %.3g\n", amax,
              act, agree, weights);
  EXPECT_GT(act, 0.0f) << "the packed path quantizes activations";
  EXPECT_LE(act, 0.05f);
  EXPECT_LT(5 * act, weights);
  EXPECT_GE(agree, 6);
}

}  // namespace
}  // namespace ficoco
