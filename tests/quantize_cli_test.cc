// `ficoco quantize` and the GGUF pair through the CLI: a random tiny llava-hf checkpoint
// (`make-random --preset tiny`) is written as F16, Q8_0 and Q4_0 pairs, then `run`,
// `encode` and `bench` take `--model X.gguf --mmproj Y.gguf` (tokenizer from the GGUF) and
// are compared with the safetensors directory on the same prompt; bad input fails clearly.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace ficoco {
namespace {

std::string Q(const std::string& s) { return "'" + s + "'"; }
std::string LlamaTok() { return test::LlamaTokenizerDir() + "/tokenizer.model"; }
std::string Photo() { return test::LlavaTinyDir() + "/images/grace_hopper.png"; }

test::CommandResult Cli(const std::string& args) { return test::RunCommand(test::CliPath() + " " + args + " 2>&1"); }

struct RunOutput {
  std::vector<float> logits;  // the first 32000 (the GGUF vocabulary)
  std::vector<int> ids;
};

class QuantizeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (dir_ != nullptr) return;
    dir_ = new std::string(test::MakeTempDir("quantize-cli"));
    auto r = Cli("make-random --preset tiny --seed 11 --out " + Q(Tiny()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* type : {"f16", "q8_0", "q4_0"}) {
      r = Cli("quantize " + Q(Tiny()) + " " + Q(Out(type)) + " --type " + type + " --tokenizer " + Q(LlamaTok()));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  static std::string Tiny() { return *dir_ + "/tiny"; }
  static std::string Out(const std::string& type) { return *dir_ + "/" + type; }
  static std::string Pair(const std::string& type) {
    return "--model " + Q(Out(type) + "/tiny-" + type + ".gguf") + " --mmproj " + Q(Out(type) + "/mmproj-tiny-f16.gguf");
  }
  // `run` with f32 compute, 8 greedy tokens (EOS included), logits dumped.
  static RunOutput Run(const std::string& model_args, const std::string& tag) {
    const std::string dump = *dir_ + "/dump-" + tag + ".safetensors";
    auto r = Cli("run " + model_args + " --image " + Q(Photo()) + " --prompt 'What is in the picture?' --max-tokens 8 " +
                 "--compute f32 --json --dump " + Q(dump));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    RunOutput out;
    if (r.exit_code != 0) return out;
    SafetensorsFile f(dump);
    const std::vector<float> logits = test::GoldenF32(f, "llm.logits_last");
    out.logits.assign(logits.begin(), logits.begin() + 32000);
    for (float id : test::GoldenF32(f, "gen.new_ids")) out.ids.push_back(static_cast<int>(id));
    return out;
  }
  static int Agreement(const std::vector<int>& a, const std::vector<int>& b) {
    int n = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) n += a[i] == b[i] ? 1 : 0;
    return n;
  }
  inline static std::string* dir_ = nullptr;
};

TEST_F(QuantizeCli, WritesLlamaCppNamedFiles) {
  const GgufFile text(Out("q4_0") + "/tiny-q4_0.gguf");
  EXPECT_EQ(text.GetString("general.architecture"), "llama");
  EXPECT_EQ(text.GetU32("general.file_type"), 2u);  // llama.cpp's MOSTLY_Q4_0
  EXPECT_EQ(text.GetStringArray("tokenizer.ggml.tokens").size(), 32000u);
  EXPECT_EQ(text.GetTensor("token_embd.weight").shape, (std::vector<int64_t>{32000, 64}));
  EXPECT_EQ(text.GetTensor("blk.0.attn_q.weight").type, GgmlType::Q4_0);
  EXPECT_EQ(text.GetTensor("blk.0.ffn_down.weight").type, GgmlType::F16);  // rows of 172: not a multiple of 32
  EXPECT_EQ(text.GetTensor("blk.0.attn_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(text.GetTensor("output.weight").type, GgmlType::Q4_0);
  const GgufFile mm(Out("q4_0") + "/mmproj-tiny-f16.gguf");
  EXPECT_EQ(mm.GetString("general.architecture"), "clip");
  EXPECT_EQ(mm.GetU32("clip.vision.block_count"), 3u);  // 4 layers, feature layer -2
  EXPECT_EQ(mm.FindTensor("v.blk.3.attn_q.weight"), nullptr);
  EXPECT_EQ(mm.GetTensor("v.blk.0.ffn_up.weight").shape, (std::vector<int64_t>{128, 64}));  // fc1
  EXPECT_EQ(mm.GetTensor("v.blk.0.ffn_up.weight").type, GgmlType::F16);
  EXPECT_EQ(mm.GetTensor("v.blk.0.ffn_up.bias").type, GgmlType::F32);
  EXPECT_EQ(mm.GetTensor("mm.2.weight").shape, (std::vector<int64_t>{64, 64}));
}

// The same random model through the directory and through the pairs (f32 compute; the
// quantized linears run in the int8 kernels). Measured here, max |logit error| over the
// 32000 logits of the prompt's last position and greedy agreement over 8 tokens:
//   F16 0 (the same weights), 8 of 8;  Q8_0 0.0079, 7 of 8;  Q4_0 0.086, 1 of 8.
// The random model's greedy margins are tiny, so 4-bit weights change the answer.
// Bounds leave about 2x room.
TEST_F(QuantizeCli, RunMatchesTheSafetensorsModel) {
  const RunOutput ref = Run("--model " + Q(Tiny()) + " --tokenizer " + Q(LlamaTok()), "ref");
  ASSERT_EQ(ref.logits.size(), 32000u);
  struct Case {
    const char* type;
    float max_err;
    int min_agree;
  };
  for (const Case& c : {Case{"f16", 1e-2f, 8}, Case{"q8_0", 0.02f, 5}, Case{"q4_0", 0.2f, 0}}) {
    const RunOutput got = Run(Pair(c.type), c.type);
    ASSERT_EQ(got.logits.size(), 32000u) << c.type;
    const float err = test::MaxAbsDiff(got.logits.data(), ref.logits.data(), 32000);
    const int agree = Agreement(got.ids, ref.ids);
    std::printf("%s: max |logit error| %.3g, greedy agreement %d of %zu\n", c.type, err, agree, ref.ids.size());
    EXPECT_LE(err, c.max_err) << c.type;
    EXPECT_GE(agree, c.min_agree) << c.type;
    if (std::string(c.type) != "f16") {
      EXPECT_GT(err, 0.0f) << c.type;
    }
  }
}

TEST_F(QuantizeCli, EncodeAndBenchTakeTheGgufPair) {
  auto r = Cli("encode " + Pair("q8_0") + " --image " + Q(Photo()) + " --json --compute f32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"vision_layers_run\": 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"image_tokens\": 16"), std::string::npos) << r.output;
  r = Cli("bench " + Pair("q4_0") + " --image " + Q(Photo()) + " --methods none --rounds 1 --max-tokens 2 --warmup false");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(QuantizeCli, BadInputFailsClearly) {
  auto r = Cli("quantize " + Q(Tiny()) + " " + Q(*dir_ + "/x") + " --type q8_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no tokenizer: " + Tiny() + "/tokenizer.model does not exist"), std::string::npos) << r.output;
  r = Cli("quantize " + Q(Tiny()) + " " + Q(*dir_ + "/x") + " --type q3_k --tokenizer " + Q(LlamaTok()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("q3_k"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("q4_k_m"), std::string::npos) << "the valid types are listed: " << r.output;
  r = Cli("quantize " + Q(*dir_ + "/missing") + " " + Q(*dir_ + "/x") + " --tokenizer " + Q(LlamaTok()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("missing"), std::string::npos) << r.output;
  const std::string model = Out("f16") + "/tiny-f16.gguf", mmproj = Out("f16") + "/mmproj-tiny-f16.gguf";
  r = Cli("run --model " + Q(model) + " --prompt hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("also give --mmproj"), std::string::npos) << r.output;
  r = Cli("run --model " + Q(mmproj) + " --mmproj " + Q(model) + " --prompt hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("look swapped"), std::string::npos) << r.output;
  r = Cli("run --model " + Q(Tiny()) + " --mmproj " + Q(mmproj) + " --prompt hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("is a directory"), std::string::npos) << r.output;
}

TEST_F(QuantizeCli, HelpDocumentsEveryOption) {
  auto r = Cli("quantize --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt : {"IN_DIR", "OUT_DIR", "--type", "--tokenizer", "--name", "q4_1", "q4_k_m", "q6_k", "mmproj"})
    EXPECT_NE(r.output.find(opt), std::string::npos) << opt;
  for (const char* cmd : {"run", "encode", "bench"}) {
    r = Cli(std::string(cmd) + " --help");
    EXPECT_NE(r.output.find("--mmproj"), std::string::npos) << cmd;
  }
}

}  // namespace
}  // namespace ficoco
