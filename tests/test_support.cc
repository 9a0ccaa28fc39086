#include "test_support.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace ficoco::test {
namespace fs = std::filesystem;

std::string FixturesDir() {
  std::string dir = std::string(FICOCO_SHARED_DIR) + "/fixtures";
  if (!fs::is_directory(dir)) {
    ADD_FAILURE() << "fixture folder missing: " << dir
                  << " (tests need ../shared/fixtures beside the repository; they fail, never skip)";
    throw Error("fixture folder missing: " + dir);
  }
  return dir;
}

std::string LlavaTinyDir() { return FixturesDir() + "/llava-tiny"; }
std::string LlamaTokenizerDir() { return FixturesDir() + "/llama-tokenizer"; }
std::string SourceDir() { return FICOCO_SOURCE_DIR; }
std::string CliPath() { return FICOCO_CLI_PATH; }

namespace {
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (auto& d : dirs) fs::remove_all(d, ec);
  }
};
TempDirs& AllTempDirs() {
  static TempDirs t;  // test-process bookkeeping only
  return t;
}
}  // namespace

std::string MakeTempDir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("ficoco-" + tag + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw Error("mkdtemp failed for " + tmpl);
  AllTempDirs().dirs.emplace_back(buf.data());
  return buf.data();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

CommandResult RunCommand(const std::string& command_line) {
  CommandResult result;
  std::string cmd = command_line + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw Error("popen failed: " + command_line);
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

void ExpectError(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    return;
  }
  ADD_FAILURE() << "no Error thrown; expected one mentioning '" << (parts.empty() ? "" : parts[0]) << "'";
}

float MaxAbsDiff(const float* a, const float* b, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) {
    float d = std::fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}

std::vector<float> GoldenF32(const SafetensorsFile& f, const std::string& name) {
  const TensorView* t = f.Find(name);
  if (t == nullptr) throw Error("golden tensor missing: " + name + " in " + f.path());
  std::vector<float> out(static_cast<size_t>(t->numel()));
  switch (t->dtype) {
    case DType::I64: {
      const auto* p = static_cast<const int64_t*>(t->data);
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(p[i]);
      break;
    }
    case DType::U8: {
      const auto* p = static_cast<const uint8_t*>(t->data);
      for (size_t i = 0; i < out.size(); ++i) out[i] = p[i];
      break;
    }
    default:
      ConvertToF32(t->dtype, t->data, out.data(), t->numel());
  }
  return out;
}

}  // namespace ficoco::test
