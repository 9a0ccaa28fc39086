#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>

#include "base/error.h"
#include "test_support.h"

namespace ficoco {
namespace {
namespace fs = std::filesystem;
using test::MakeTempDir;
using test::ReadFile;
using test::WriteFile;

// Runs `fn`, expecting an Error whose message contains every one of `parts`.
using test::ExpectError;

std::string LengthPrefix(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

// A file made of a raw JSON header and `data_bytes` bytes of data.
std::string HandMade(const std::string& dir, const std::string& name, const std::string& header, size_t data_bytes) {
  const std::string path = dir + "/" + name;
  WriteFile(path, LengthPrefix(header.size()) + header + std::string(data_bytes, '\x11'));
  return path;
}

class SafetensorsCorrupt : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("st-corrupt"); }
  // Opens a hand-made file and checks the message names the file and the given parts.
  void Expect(const std::string& header, size_t data_bytes, std::vector<std::string> parts) {
    const std::string path = HandMade(dir_, "model.safetensors", header, data_bytes);
    parts.push_back(path);
    ExpectError([&] { SafetensorsFile f(path); }, parts);
  }
  std::string dir_;
};

template <class T>
std::vector<T> Iota(size_t n, T start) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(start + static_cast<T>(i));
  return v;
}

TEST(Safetensors, RoundTripEveryDtype) {
  const std::string dir = MakeTempDir("st-roundtrip");
  auto f32 = Iota<float>(12, 0.5f);
  std::vector<uint16_t> f16(6), bf16(5);
  for (size_t i = 0; i < f16.size(); ++i) f16[i] = F32ToF16(0.25f * static_cast<float>(i) - 1.0f);
  for (size_t i = 0; i < bf16.size(); ++i) bf16[i] = F32ToBF16(3.0f * static_cast<float>(i) + 0.5f);
  auto i64 = Iota<int64_t>(3, -1);
  auto i32 = Iota<int32_t>(7, -3);
  auto u8 = Iota<uint8_t>(9, 250);  // wraps around
  const float scalar = 42.0f;
  std::vector<TensorView> views = {
      {"a.f32", DType::F32, {3, 4}, f32.data()},    {"b.f16", DType::F16, {2, 3}, f16.data()},
      {"c.bf16", DType::BF16, {5}, bf16.data()},    {"d.i64", DType::I64, {3, 1}, i64.data()},
      {"e.i32", DType::I32, {7}, i32.data()},       {"f.u8", DType::U8, {3, 3}, u8.data()},
      {"g.scalar", DType::F32, {}, &scalar},        {"h.empty", DType::F16, {0, 4}, nullptr},
  };
  const std::string path = dir + "/rt.safetensors";
  WriteSafetensors(path, views, {{"format", "pt"}, {"note", "hello"}});

  // Header padded with spaces so the data starts 8-byte aligned.
  const std::string raw = ReadFile(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(raw[8], '{');
  const std::string header = raw.substr(8, n);
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));  // only spaces after the JSON

  SafetensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  ASSERT_EQ(f.tensors().size(), views.size());
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "hello");
  for (const TensorView& v : views) {
    const TensorView* t = f.Find(v.name);
    ASSERT_NE(t, nullptr) << v.name;
    EXPECT_EQ(t->dtype, v.dtype) << v.name;
    EXPECT_EQ(t->shape, v.shape) << v.name;
    EXPECT_EQ(t->nbytes(), v.nbytes()) << v.name;
    EXPECT_NE(t->data, nullptr);
    if (v.nbytes() > 0) { EXPECT_EQ(std::memcmp(t->data, v.data, v.nbytes()), 0) << v.name; }
    f.ReleasePages(*t);  // must be harmless
  }
  EXPECT_EQ(f.Find("missing"), nullptr);
  // Tensors are listed in file order.
  for (size_t i = 1; i < f.tensors().size(); ++i)
    EXPECT_LE(f.tensors()[i - 1].data, f.tensors()[i].data);
  EXPECT_EQ(f.Find("a.f32")->ToF32(), f32);

  // A view not from this file is refused by ReleasePages.
  ExpectError([&] { f.ReleasePages(views[0]); }, {path, "a.f32", "does not belong"});
}

TEST(Safetensors, WriterStreamsInPieces) {
  const std::string dir = MakeTempDir("st-stream");
  const std::string path = dir + "/s.safetensors";
  auto a = Iota<float>(1000, 1.0f);
  auto b = Iota<int32_t>(17, 5);
  {
    SafetensorsWriter w(path, {{"a", DType::F32, {10, 100}}, {"b", DType::I32, {17}}});
    const auto* pa = reinterpret_cast<const unsigned char*>(a.data());
    w.Append(pa, 1000);  // not tensor-aligned on purpose
    w.Append(pa + 1000, 3000);
    w.Append(b.data(), b.size() * 4);
    w.Finish();
  }
  SafetensorsFile f(path);
  EXPECT_EQ(f.Find("a")->ToF32(), a);
  EXPECT_EQ(std::memcmp(f.Find("b")->data, b.data(), 68), 0);
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(Safetensors, WriterChecksTotalsAndPaths) {
  const std::string dir = MakeTempDir("st-writer");
  const std::string path = dir + "/w.safetensors";
  std::vector<float> data(8, 1.0f);
  {
    SafetensorsWriter w(path, {{"x", DType::F32, {2, 2}}});
    ExpectError([&] { w.Append(data.data(), 20); }, {path, "overruns"});
    w.Append(data.data(), 8);
    ExpectError([&] { w.Finish(); }, {path, "8 of 16"});
  }
  // An unfinished writer leaves no truncated file behind.
  EXPECT_FALSE(fs::exists(path));

  ExpectError([&] { SafetensorsWriter w(path, {{"x", DType::F32, {1}}, {"x", DType::F16, {2}}}); },
              {path, "duplicate tensor name 'x'"});
  ExpectError([&] { SafetensorsWriter w(path, {{"x", DType::F32, {-1}}}); }, {path, "'x'", "[-1]"});
  const std::string bad = dir + "/no/such/dir/w.safetensors";
  ExpectError([&] { SafetensorsWriter w(bad, {{"x", DType::F32, {1}}}); }, {"cannot create", bad});
  ExpectError([&] { WriteSafetensors(dir + "/n.safetensors", {{"y", DType::F32, {2}, nullptr}}); },
              {"n.safetensors", "'y'", "no data"});
}

TEST_F(SafetensorsCorrupt, TooShort) {
  const std::string path = dir_ + "/short.safetensors";
  WriteFile(path, "abc");
  ExpectError([&] { SafetensorsFile f(path); }, {path, "3 bytes", "too short"});
  WriteFile(path, "");
  ExpectError([&] { SafetensorsFile f(path); }, {path, "0 bytes", "too short"});
}

TEST_F(SafetensorsCorrupt, HeaderLongerThanFile) {
  const std::string path = dir_ + "/model.safetensors";
  WriteFile(path, LengthPrefix(500) + "{}");
  ExpectError([&] { SafetensorsFile f(path); }, {path, "header length 500", "exceeds the file size"});
}

TEST_F(SafetensorsCorrupt, AbsurdHeaderLength) {
  const std::string path = dir_ + "/model.safetensors";
  WriteFile(path, LengthPrefix(uint64_t{1} << 40) + "{}");
  ExpectError([&] { SafetensorsFile f(path); }, {path, "absurd"});
  WriteFile(path, LengthPrefix(~uint64_t{0}) + "{}");
  ExpectError([&] { SafetensorsFile f(path); }, {path, "absurd"});
}

TEST_F(SafetensorsCorrupt, JsonErrors) {
  Expect(R"({"x": {"dtype": "F32", "shape": [1], )", 4, {"not valid JSON"});
  Expect("\x01\x02garbage", 0, {"not valid JSON"});
  Expect(R"([1, 2, 3])", 0, {"must be a JSON object"});
}

TEST_F(SafetensorsCorrupt, EntryNotAnObject) {
  Expect(R"({"x": [1, 2]})", 0, {"tensor 'x'", "entry must be an object"});
  Expect(R"({"__metadata__": {"format": "pt"}, "y": "F32"})", 0, {"tensor 'y'", "entry must be an object"});
}

TEST_F(SafetensorsCorrupt, MetadataNotStrings) {
  Expect(R"({"__metadata__": {"format": 3}})", 0, {"__metadata__", "'format'", "must be a string"});
  Expect(R"({"__metadata__": [1]})", 0, {"__metadata__", "must be an object"});
}

TEST_F(SafetensorsCorrupt, Dtype) {
  Expect(R"({"x": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"tensor 'x'", "missing dtype"});
  Expect(R"({"x": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8, {"tensor 'x'", "unknown dtype 'F64'"});
  Expect(R"({"x": {"dtype": 7, "shape": [1], "data_offsets": [0, 4]}})", 4, {"tensor 'x'", "dtype must be a string"});
}

TEST_F(SafetensorsCorrupt, Shape) {
  Expect(R"({"x": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, {"tensor 'x'", "missing shape"});
  for (const char* shape : {R"("4")", "[2, -2]", "[1.5]", R"([1, "2"])", "{}", "[[1]]", "[true]"}) {
    Expect(std::string(R"({"x": {"dtype": "F32", "shape": )") + shape + R"(, "data_offsets": [0, 4]}})", 4,
           {"tensor 'x'", "shape must be an array of non-negative integers"});
  }
}

TEST_F(SafetensorsCorrupt, DataOffsetsForm) {
  Expect(R"({"x": {"dtype": "F32", "shape": [1]}})", 4, {"tensor 'x'", "missing data_offsets"});
  for (const char* off : {"[0]", "[0, 4, 8]", R"([0, "4"])", "[-1, 3]", "[0.0, 4.0]", "4", "null"}) {
    Expect(std::string(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": )") + off + "}}", 8,
           {"tensor 'x'", "data_offsets must be two non-negative integers"});
  }
  Expect(R"({"x": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 8, {"tensor 'x'", "[8,4]", "begin > end"});
}

TEST_F(SafetensorsCorrupt, SizeMismatch) {
  Expect(R"({"x": {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 10]}})", 32,
         {"tensor 'x': data_offsets [0,10] do not match shape [4,4] of F16 (32 bytes)"});
  Expect(R"({"y": {"dtype": "BF16", "shape": [], "data_offsets": [0, 4]}})", 4,
         {"tensor 'y': data_offsets [0,4] do not match shape [] of BF16 (2 bytes)"});
}

TEST_F(SafetensorsCorrupt, SizeOverflow) {
  Expect(R"({"x": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})", 0,
         {"tensor 'x'", "overflows"});
  Expect(R"({"x": {"dtype": "I64", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0,
         {"tensor 'x'", "overflows"});
}

TEST_F(SafetensorsCorrupt, BeyondDataArea) {
  Expect(R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12,
         {"tensor 'x'", "[0,16]", "beyond the data area (12 bytes)"});
}

TEST_F(SafetensorsCorrupt, TruncatedFileIsDetected) {
  const std::string path = dir_ + "/model.safetensors";
  std::vector<float> a(64, 1.0f), b(32, 2.0f);
  WriteSafetensors(path, {{"a", DType::F32, {64}, a.data()}, {"b", DType::F32, {32}, b.data()}});
  const std::string full = ReadFile(path);
  WriteFile(path, full.substr(0, full.size() - 1));
  ExpectError([&] { SafetensorsFile f(path); }, {path, "tensor 'b'", "beyond the data area", "truncated"});
  WriteFile(path, full.substr(0, 20));  // cut inside the header
  ExpectError([&] { SafetensorsFile f(path); }, {path, "exceeds the file size"});
}

TEST_F(SafetensorsCorrupt, Overlap) {
  Expect(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
         20, {"'b'", "overlap", "'a'"});
  // One tensor inside another.
  Expect(R"({"a": {"dtype": "U8", "shape": [32], "data_offsets": [0, 32]},
             "b": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12]},
             "c": {"dtype": "U8", "shape": [4], "data_offsets": [20, 24]}})",
         32, {"overlap", "'a'"});
  // Empty tensors share offsets harmlessly.
  const std::string path = HandMade(dir_, "ok.safetensors",
                                    R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                        "e": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}})",
                                    16);
  SafetensorsFile f(path);
  EXPECT_EQ(f.tensors().size(), 2u);
}

TEST_F(SafetensorsCorrupt, DuplicateNames) {
  Expect(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
             "x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
         8, {"duplicate tensor name 'x'"});
  Expect(R"({"x": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}})", 4,
         {"duplicate key 'dtype'"});
}

TEST(Safetensors, OpensFixture) {
  SafetensorsFile f(test::LlavaTinyDir() + "/model.safetensors");
  EXPECT_EQ(f.tensors().size(), 114u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorView* t = f.Find("language_model.lm_head.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::F16);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{32064, 64}));
}

}  // namespace
}  // namespace ficoco
