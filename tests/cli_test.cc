// The `ficoco` tool end to end: outputs, --json fields, --dump contents, and clear
// errors (non-zero exit, message naming the culprit) on bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace ficoco {
namespace {

std::string Q(const std::string& s) { return "'" + s + "'"; }

std::string Tiny() { return test::LlavaTinyDir(); }
std::string Photo() { return Tiny() + "/images/grace_hopper.png"; }
std::string LlamaTok() { return test::LlamaTokenizerDir() + "/tokenizer.model"; }

// Through bash (not sh) so that $'...' can spell newlines and raw bytes in prompts.
test::CommandResult Cli(const std::string& args) {
  static int counter = 0;
  const std::string script = test::MakeTempDir("cmd") + "/cmd" + std::to_string(counter++) + ".sh";
  test::WriteFile(script, test::CliPath() + " " + args + "\n");
  return test::RunCommand("bash " + script);
}

TEST(Cli, HelpExplainsEverySubcommand) {
  auto r = Cli("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* sub : {"encode", "run", "make-random"}) EXPECT_NE(r.output.find(sub), std::string::npos) << sub;
  auto e = Cli("encode --help");
  for (const char* opt : {"--model", "--image", "--dump", "--json", "--threads", "--compute"})
    EXPECT_NE(e.output.find(opt), std::string::npos) << opt;
  auto run = Cli("run --help");
  for (const char* opt : {"--template", "--tokenizer", "--max-tokens", "--temperature", "--seed", "--json", "--dump"})
    EXPECT_NE(run.output.find(opt), std::string::npos) << opt;
}

TEST(Cli, EncodeJsonReportsTokensAndTimings) {
  auto r = Cli("encode --model " + Q(Tiny()) + " --image " + Q(Photo()) + " --json --compute f32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["image_tokens"], 16);
  EXPECT_EQ(j["vision_tokens"], 17);
  EXPECT_GT(j["timings_s"]["vision"].get<double>(), 0.0);
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), 0);
}

TEST(Cli, RunMatchesReferenceIdsAndDumpsGoldenNames) {
  const std::string out = test::MakeTempDir("cli") + "/run.safetensors";
  auto r = Cli("run --model " + Q(Tiny()) + " --image " + Q(Photo()) + " --tokenizer " + Q(LlamaTok()) +
               " --template raw --prompt $'USER: <image>\\nWhat is in the picture? ASSISTANT:' --max-tokens 8"
               " --compute f32 --json --dump " + Q(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["generated_ids"], nlohmann::json({17359, 3523, 6253, 7400, 13879, 21274, 31612, 27628}));
  EXPECT_EQ(j["stats"]["image_tokens"], 16);
  EXPECT_EQ(j["stats"]["text_tokens"], 18);
  for (const char* k : {"load_s", "image_encode_s", "prefill_s", "time_to_first_token_s", "decode_tokens_per_s", "peak_rss_bytes"})
    EXPECT_TRUE(j["stats"].contains(k)) << k;
  SafetensorsFile dump(out);
  for (const char* name : {"pixel_values", "vision.selected", "projector.image_features", "llm.inputs_embeds",
                           "llm.logits_last", "gen.new_ids"})
    EXPECT_NE(dump.Find(name), nullptr) << name;
  EXPECT_EQ(dump.Find("llm.inputs_embeds")->shape, (std::vector<int64_t>{1, 34, 64}));
}

struct BadCase {
  const char* name;
  std::string args;
  const char* expected;  // substring of the error
};

class CliBadInput : public ::testing::TestWithParam<int> {};

std::vector<BadCase> BadCases() {
  const std::string dir = test::MakeTempDir("bad");
  test::WriteFile(dir + "/broken.png", "\x89PNG\r\n\x1a\n garbage");
  test::WriteFile(dir + "/empty.png", "");
  const std::string run = "run --model " + Q(Tiny()) + " --tokenizer " + Q(LlamaTok()) + " ";
  return {
      {"missing_model", "encode --model /nonexistent/model --image " + Q(Photo()), "/nonexistent/model"},
      {"missing_image", "encode --model " + Q(Tiny()) + " --image /nonexistent.png", "/nonexistent.png"},
      {"corrupt_image", "encode --model " + Q(Tiny()) + " --image " + Q(dir + "/broken.png"), "broken.png"},
      {"empty_image", "encode --model " + Q(Tiny()) + " --image " + Q(dir + "/empty.png"), "empty.png"},
      {"max_tokens_zero", run + "--image " + Q(Photo()) + " --prompt hi --max-tokens 0", "--max-tokens"},
      {"placeholder_without_image", run + "--template raw --prompt '<image> hi'", "no image"},
      {"two_placeholders", run + "--image " + Q(Photo()) + " --template raw --prompt '<image><image> hi'", "<image>"},
      {"invalid_utf8", run + "--prompt $'\\xff\\xfe'", "UTF-8"},
      {"too_long", run + "--image " + Q(Photo()) + " --prompt hi --max-tokens 5000", "context"},
      {"no_tokenizer", "run --model " + Q(Tiny()) + " --prompt hi", "tokenizer"},
      {"bad_temperature", run + "--prompt hi --temperature -1", "--temperature"},
  };
}

TEST(CliBadInputs, ClearErrorsAndNonZeroExit) {
  for (const BadCase& c : BadCases()) {
    auto r = Cli(c.args);
    EXPECT_NE(r.exit_code, 0) << c.name << ": " << r.output;
    EXPECT_LT(r.exit_code, 128) << c.name << " crashed: " << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.name << ": " << r.output;
  }
}

}  // namespace
}  // namespace ficoco
