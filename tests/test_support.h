// Shared helpers for tests: where the fixtures are, temporary folders, running the CLI.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "tensor/tensor.h"

namespace ficoco::test {

// ../shared/fixtures, checked to exist: a missing fixture folder FAILS the test
// (ADD_FAILURE + exception), it never skips, so CI cannot pass without the data.
std::string FixturesDir();
std::string LlavaTinyDir();       // ../shared/fixtures/llava-tiny
std::string LlamaTokenizerDir();  // ../shared/fixtures/llama-tokenizer
std::string SourceDir();          // the repository root
std::string CliPath();            // the built `ficoco` executable

// The two llava-tiny golden cases: golden file and source image (under images/).
struct FixtureCase {
  const char* name;
  const char* golden;
  const char* image;
};
inline constexpr std::array<FixtureCase, 2> kFixtureCases{{
    {"photo", "golden_photo.safetensors", "grace_hopper.png"},
    {"synthetic", "golden_synthetic.safetensors", "synthetic_40x24.png"},
}};

// A fresh empty directory under the system temp dir, removed at process exit.
std::string MakeTempDir(const std::string& tag);
void WriteFile(const std::string& path, const std::string& bytes);
std::string ReadFile(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};
CommandResult RunCommand(const std::string& command_line);

// Runs `fn` and expects a ficoco::Error whose message contains every one of `parts`.
void ExpectError(const std::function<void()>& fn, const std::vector<std::string>& parts);

// max |a - b| over all elements (sizes must match).
float MaxAbsDiff(const float* a, const float* b, int64_t n);
// A golden tensor widened to float (F32/F16/BF16) or converted from integer types.
std::vector<float> GoldenF32(const SafetensorsFile& f, const std::string& name);

}  // namespace ficoco::test
