#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>

#include "base/error.h"
#include "io/gguf_writer.h"
#include "tensor/dtype.h"
#include "test_support.h"

namespace ficoco {
namespace {
namespace fs = std::filesystem;
using test::ExpectError;
using test::MakeTempDir;
using test::ReadFile;
using test::WriteFile;

// Little-endian byte builder for hand-made GGUF files (independent of GgufWriter).
struct Bytes {
  std::string s;
  template <class T>
  Bytes& Num(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
    return *this;
  }
  Bytes& U32(uint32_t v) { return Num(v); }
  Bytes& U64(uint64_t v) { return Num(v); }
  Bytes& Str(const std::string& v) {
    U64(v.size());
    s += v;
    return *this;
  }
  Bytes& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    s += "GGUF";
    return U32(version).U64(n_tensors).U64(n_kv);
  }
  Bytes& KvU32(const std::string& key, uint32_t v) { return Str(key).U32(4).U32(v); }
  Bytes& KvStr(const std::string& key, const std::string& v) { return Str(key).U32(8).Str(v); }
  Bytes& Tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    return U32(type).U64(offset);
  }
  Bytes& Align(size_t a = 32) {
    s.append((a - s.size() % a) % a, '\0');
    return *this;
  }
  Bytes& Data(size_t n, char fill = '\x5a') {
    s.append(n, fill);
    return *this;
  }
};

template <class T>
std::vector<T> Iota(size_t n, T start) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(start + static_cast<T>(i));
  return v;
}

std::string PatternBytes(size_t n, uint8_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed) & 0xff);
  return s;
}

TEST(Gguf, TypeTable) {
  struct Row {
    GgmlType t;
    int64_t elems, bytes;
  };
  for (const Row& r : {Row{GgmlType::F32, 1, 4}, Row{GgmlType::F16, 1, 2}, Row{GgmlType::BF16, 1, 2},
                       Row{GgmlType::Q8_0, 32, 34}, Row{GgmlType::Q4_0, 32, 18}, Row{GgmlType::Q4_1, 32, 20},
                       Row{GgmlType::Q5_0, 32, 22}, Row{GgmlType::Q5_1, 32, 24}, Row{GgmlType::Q4_K, 256, 144},
                       Row{GgmlType::Q5_K, 256, 176}, Row{GgmlType::Q6_K, 256, 210}}) {
    const GgmlTypeTraits& tr = GgmlTraits(r.t);
    EXPECT_EQ(tr.block_elems, r.elems) << tr.name;
    EXPECT_EQ(tr.block_bytes, r.bytes) << tr.name;
  }
  EXPECT_EQ(FindGgmlType(4), nullptr);  // Q4_2: removed from ggml
  EXPECT_EQ(*GgmlTensorBytes(GgmlType::Q4_K, {512, 3}), 2u * 144u * 3u);
  EXPECT_FALSE(GgmlTensorBytes(GgmlType::Q8_0, {33}));
  EXPECT_FALSE(GgmlTensorBytes(GgmlType::F32, {0}));
  EXPECT_FALSE(GgmlTensorBytes(GgmlType::F32, {int64_t{1} << 40, int64_t{1} << 40}));
}

// Writes a file with metadata of every type and tensors of several types.
struct RoundTripData {
  std::vector<float> f32 = Iota<float>(6, -2.5f);
  std::vector<uint16_t> f16, bf16;
  std::string q8 = PatternBytes(2 * 2 * 34, 1);  // [2, 64] Q8_0
  std::string q4 = PatternBytes(18, 2);          // [32] Q4_0
  std::string q4k = PatternBytes(3 * 144, 3);    // [3, 256] Q4_K
  std::string q6k = PatternBytes(210, 4);        // [256] Q6_K
  std::string q5_1 = PatternBytes(24 * 2, 5);    // [1, 64] Q5_1
  RoundTripData() {
    for (int i = 0; i < 5; ++i) f16.push_back(F32ToF16(0.5f * static_cast<float>(i) - 1.0f));
    for (int i = 0; i < 4; ++i) bf16.push_back(F32ToBF16(3.0f * static_cast<float>(i) + 0.25f));
  }
};

void WriteRoundTrip(const std::string& path, const RoundTripData& d, uint32_t alignment) {
  GgufWriter w(path, alignment);
  w.AddU8("t.u8", 250);
  w.AddI8("t.i8", -120);
  w.AddU16("t.u16", 65000);
  w.AddI16("t.i16", -32000);
  w.AddU32("t.u32", 4000000000u);
  w.AddI32("t.i32", -2000000000);
  w.AddU64("t.u64", std::numeric_limits<uint64_t>::max());
  w.AddI64("t.i64", std::numeric_limits<int64_t>::min());
  w.AddF32("t.f32", 0.1f);
  w.AddF64("t.f64", -1e300);
  w.AddBool("t.bool", true);
  w.AddString("general.architecture", "llama");
  w.AddString("t.empty_string", "");
  w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "", "\xe2\x96\x81hello", std::string("a\0b", 3)});
  w.AddStringArray("t.empty_strings", {});
  w.AddU8Array("t.u8s", {0, 1, 255});
  w.AddI32Array("tokenizer.ggml.token_type", {1, 3, -7});
  w.AddU32Array("t.u32s", {7, 4000000000u});
  w.AddI64Array("t.i64s", {std::numeric_limits<int64_t>::min(), 0, 5});
  w.AddU64Array("t.u64s", {1, std::numeric_limits<uint64_t>::max()});
  w.AddF32Array("clip.vision.image_mean", {0.48145466f, 0.4578275f, 0.40821073f});
  w.AddF64Array("t.f64s", {1.5, -2.25});
  w.AddBoolArray("t.bools", {true, false, true});
  {  // [[1, 2], [], [["x"]]] as nested arrays: array of arrays of u16 / of arrays of strings
    GgufValue inner1;
    inner1.type = GgufType::ARRAY;
    inner1.elem_type = GgufType::UINT16;
    static const uint16_t vals[2] = {1, 2};
    inner1.raw = reinterpret_cast<const uint8_t*>(vals);
    inner1.count = 2;
    GgufValue inner2;
    inner2.type = GgufType::ARRAY;
    inner2.elem_type = GgufType::INT8;
    GgufValue strs;
    strs.type = GgufType::ARRAY;
    strs.elem_type = GgufType::STRING;
    strs.strings = {"x"};
    strs.count = 1;
    GgufValue inner3;
    inner3.type = GgufType::ARRAY;
    inner3.elem_type = GgufType::ARRAY;
    inner3.items = {strs};
    inner3.count = 1;
    GgufValue outer;
    outer.type = GgufType::ARRAY;
    outer.elem_type = GgufType::ARRAY;
    outer.items = {inner1, inner2, inner3};
    outer.count = 3;
    w.AddValue("t.nested", outer);
  }
  w.AddTensor("f32", GgmlType::F32, {2, 3});
  w.AddTensor("f16", GgmlType::F16, {5});
  w.AddTensor("bf16", GgmlType::BF16, {2, 1, 2});
  w.AddTensor("q8", GgmlType::Q8_0, {2, 64});
  w.AddTensor("q4", GgmlType::Q4_0, {32});
  w.AddTensor("q4k", GgmlType::Q4_K, {1, 3, 256});
  w.AddTensor("q6k", GgmlType::Q6_K, {1, 1, 1, 256});
  w.AddTensor("q5_1", GgmlType::Q5_1, {1, 64});
  w.AppendTensor("f32", d.f32.data(), d.f32.size() * 4);
  w.AppendTensor("f16", d.f16.data(), d.f16.size() * 2);
  w.AppendTensor("bf16", d.bf16.data(), d.bf16.size() * 2);
  w.AppendTensor("q8", d.q8.data(), d.q8.size());
  w.Append(d.q4.data(), 5);  // streamed in pieces, one piece running on into the next tensor
  const std::string joined = d.q4.substr(5) + d.q4k;
  w.Append(joined.data(), joined.size());
  w.AppendTensor("q6k", d.q6k.data(), d.q6k.size());
  w.AppendTensor("q5_1", d.q5_1.data(), d.q5_1.size());
  w.Finish();
}

void CheckRoundTrip(const GgufFile& f, const RoundTripData& d, uint32_t alignment) {
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  EXPECT_EQ(f.GetU8("t.u8"), 250);
  EXPECT_EQ(f.GetI8("t.i8"), -120);
  EXPECT_EQ(f.GetU16("t.u16"), 65000);
  EXPECT_EQ(f.GetI16("t.i16"), -32000);
  EXPECT_EQ(f.GetU32("t.u32"), 4000000000u);
  EXPECT_EQ(f.GetI32("t.i32"), -2000000000);
  EXPECT_EQ(f.GetU64("t.u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.GetI64("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.GetF32("t.f32"), 0.1f);
  EXPECT_EQ(f.GetF64("t.f64"), -1e300);
  EXPECT_TRUE(f.GetBool("t.bool"));
  EXPECT_EQ(f.GetString("general.architecture"), "llama");
  EXPECT_EQ(f.GetString("t.empty_string"), "");
  EXPECT_EQ(f.GetStringArray("tokenizer.ggml.tokens"),
            (std::vector<std::string>{"<unk>", "<s>", "", "\xe2\x96\x81hello", std::string("a\0b", 3)}));
  EXPECT_TRUE(f.GetStringArray("t.empty_strings").empty());
  EXPECT_EQ(f.GetU8Array("t.u8s"), (std::vector<uint8_t>{0, 1, 255}));
  EXPECT_EQ(f.GetI32Array("tokenizer.ggml.token_type"), (std::vector<int32_t>{1, 3, -7}));
  EXPECT_EQ(f.GetU32Array("t.u32s"), (std::vector<uint32_t>{7, 4000000000u}));
  EXPECT_EQ(f.GetI64Array("t.i64s"), (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 0, 5}));
  EXPECT_EQ(f.GetU64Array("t.u64s"), (std::vector<uint64_t>{1, std::numeric_limits<uint64_t>::max()}));
  EXPECT_EQ(f.GetF32Array("clip.vision.image_mean"), (std::vector<float>{0.48145466f, 0.4578275f, 0.40821073f}));
  EXPECT_EQ(f.GetBoolArray("t.bools"), (std::vector<bool>{true, false, true}));
  const GgufValue& f64s = f.Get("t.f64s");
  ASSERT_EQ(f64s.count, 2u);
  double dv[2];
  std::memcpy(dv, f64s.raw, sizeof(dv));
  EXPECT_EQ(dv[0], 1.5);
  EXPECT_EQ(dv[1], -2.25);
  const GgufValue& nested = f.Get("t.nested");
  ASSERT_EQ(nested.type, GgufType::ARRAY);
  ASSERT_EQ(nested.elem_type, GgufType::ARRAY);
  ASSERT_EQ(nested.items.size(), 3u);
  EXPECT_EQ(nested.items[0].elem_type, GgufType::UINT16);
  ASSERT_EQ(nested.items[0].count, 2u);
  uint16_t u16[2];
  std::memcpy(u16, nested.items[0].raw, sizeof(u16));
  EXPECT_EQ(u16[0], 1);
  EXPECT_EQ(u16[1], 2);
  EXPECT_EQ(nested.items[1].elem_type, GgufType::INT8);
  EXPECT_EQ(nested.items[1].count, 0u);
  ASSERT_EQ(nested.items[2].items.size(), 1u);
  EXPECT_EQ(nested.items[2].items[0].strings, (std::vector<std::string>{"x"}));
  EXPECT_EQ(f.GetInteger("t.u32"), 4000000000);
  EXPECT_EQ(f.GetInteger("t.i8"), -120);

  struct Want {
    const char* name;
    GgmlType type;
    std::vector<int64_t> shape;
    const void* bytes;
    size_t n;
  };
  const std::vector<Want> wants = {
      {"f32", GgmlType::F32, {2, 3}, d.f32.data(), 24},
      {"f16", GgmlType::F16, {5}, d.f16.data(), 10},
      {"bf16", GgmlType::BF16, {2, 1, 2}, d.bf16.data(), 8},
      {"q8", GgmlType::Q8_0, {2, 64}, d.q8.data(), d.q8.size()},
      {"q4", GgmlType::Q4_0, {32}, d.q4.data(), d.q4.size()},
      {"q4k", GgmlType::Q4_K, {1, 3, 256}, d.q4k.data(), d.q4k.size()},
      {"q6k", GgmlType::Q6_K, {1, 1, 1, 256}, d.q6k.data(), d.q6k.size()},
      {"q5_1", GgmlType::Q5_1, {1, 64}, d.q5_1.data(), d.q5_1.size()},
  };
  ASSERT_EQ(f.tensors().size(), wants.size());
  for (size_t i = 0; i < wants.size(); ++i) {
    const Want& w = wants[i];
    const GgufTensor& t = f.tensors()[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(t.name, w.name);
    EXPECT_EQ(&t, &f.GetTensor(w.name));
    EXPECT_EQ(t.type, w.type);
    EXPECT_EQ(t.shape, w.shape);
    EXPECT_EQ(t.dims, std::vector<int64_t>(w.shape.rbegin(), w.shape.rend()));
    EXPECT_EQ(t.offset % alignment, 0u);
    ASSERT_EQ(t.nbytes, w.n);
    EXPECT_EQ(std::memcmp(t.data, w.bytes, w.n), 0);
  }
  EXPECT_EQ(f.FindTensor("nope"), nullptr);
}

TEST(Gguf, RoundTripEveryValueTypeAndTensorType) {
  const std::string dir = MakeTempDir("gguf-roundtrip");
  RoundTripData d;
  for (uint32_t alignment : {32u, 64u, 8u}) {
    SCOPED_TRACE(alignment);
    const std::string path = dir + "/model-" + std::to_string(alignment) + ".gguf";
    WriteRoundTrip(path, d, alignment);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    GgufFile f(path);
    CheckRoundTrip(f, d, alignment);
    EXPECT_EQ(f.Has("general.alignment"), alignment != 32);

    // Re-writing what was read gives the very same bytes.
    const std::string copy = dir + "/copy-" + std::to_string(alignment) + ".gguf";
    {
      GgufWriter w(copy, alignment);
      for (const auto& [key, value] : f.metadata())
        if (key != "general.alignment") w.AddValue(key, value);
      for (const GgufTensor& t : f.tensors()) w.AddTensor(t.name, t.type, t.shape);
      for (const GgufTensor& t : f.tensors()) w.AppendTensor(t.name, t.data, t.nbytes);
      w.Finish();
    }
    EXPECT_EQ(ReadFile(copy), ReadFile(path));
  }
}

TEST(Gguf, HandBuiltFileFieldByField) {
  const std::string dir = MakeTempDir("gguf-hand");
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  Bytes b;
  b.Header(3, 2, 3)
      .KvStr("general.architecture", "llama")
      .KvU32("llama.block_count", 2)
      .Str("tokenizer.ggml.scores").U32(9).U32(6).U64(2).Num<float>(-1.5f).Num<float>(2.0f)
      .Tensor("w", {3, 2}, 0, 0)
      .Tensor("h", {32}, 1, 32);
  const size_t header_end = b.s.size();
  b.Align();
  const size_t data_start = b.s.size();
  b.s.append(reinterpret_cast<const char*>(w.data()), 24);
  b.Align();
  b.Data(64, '\x01');
  const std::string path = dir + "/hand.gguf";
  WriteFile(path, b.s);

  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_GT(data_start, header_end);
  EXPECT_EQ(f.data_offset(), data_start);
  ASSERT_EQ(f.metadata().size(), 3u);
  EXPECT_EQ(f.metadata()[0].first, "general.architecture");
  EXPECT_EQ(f.metadata()[1].first, "llama.block_count");
  EXPECT_EQ(f.GetString("general.architecture"), "llama");
  EXPECT_EQ(f.GetU32("llama.block_count"), 2u);
  EXPECT_EQ(f.GetF32Array("tokenizer.ggml.scores"), (std::vector<float>{-1.5f, 2.0f}));
  ASSERT_EQ(f.tensors().size(), 2u);
  const GgufTensor& t = f.tensors()[0];
  EXPECT_EQ(t.name, "w");
  EXPECT_EQ(t.type, GgmlType::F32);
  EXPECT_EQ(t.dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.offset, 0u);
  EXPECT_EQ(t.nbytes, 24u);
  EXPECT_EQ(t.data, reinterpret_cast<const uint8_t*>(f.tensors()[0].data));
  EXPECT_EQ(std::memcmp(t.data, w.data(), 24), 0);
  const GgufTensor& h = f.GetTensor("h");
  EXPECT_EQ(h.type, GgmlType::F16);
  EXPECT_EQ(h.nbytes, 64u);
  EXPECT_EQ(h.data, t.data + 32);
  EXPECT_EQ(h.data[63], 1);

  // Version 2 has the same layout for what we read.
  Bytes v2;
  v2.Header(2, 0, 1).KvU32("x", 7);
  WriteFile(dir + "/v2.gguf", v2.s);
  GgufFile f2(dir + "/v2.gguf");
  EXPECT_EQ(f2.version(), 2u);
  EXPECT_EQ(f2.GetU32("x"), 7u);
  EXPECT_TRUE(f2.tensors().empty());
}

TEST(Gguf, GettersNameKeyAndType) {
  const std::string dir = MakeTempDir("gguf-getters");
  Bytes b;
  b.Header(3, 0, 2).KvU32("llama.block_count", 2).KvStr("general.name", "x");
  const std::string path = dir + "/g.gguf";
  WriteFile(path, b.s);
  GgufFile f(path);
  ExpectError([&] { f.GetU32("llama.context_length"); }, {path, "missing metadata key 'llama.context_length'"});
  ExpectError([&] { f.GetI32("llama.block_count"); }, {path, "'llama.block_count'", "uint32", "expected int32"});
  ExpectError([&] { f.GetStringArray("general.name"); }, {path, "'general.name'", "expected array of string"});
  ExpectError([&] { f.GetF32Array("llama.block_count"); }, {path, "'llama.block_count'", "array of float32"});
  ExpectError([&] { f.GetTensor("w"); }, {path, "missing tensor 'w'"});
}

TEST(Gguf, WriterRejectsMisuse) {
  const std::string dir = MakeTempDir("gguf-writer");
  const std::string path = dir + "/w.gguf";
  {
    GgufWriter w(path);
    w.AddU32("a", 1);
    ExpectError([&] { w.AddString("a", "x"); }, {path, "duplicate metadata key 'a'"});
    ExpectError([&] { w.AddU32("general.alignment", 64); }, {path, "general.alignment"});
    ExpectError([&] { w.AddTensor("q", GgmlType::Q8_0, {2, 33}); }, {path, "'q'", "Q8_0"});
    ExpectError([&] { w.AddTensor("z", GgmlType::F32, {0}); }, {path, "'z'"});
    ExpectError([&] { w.AddTensor("five", GgmlType::F32, {1, 1, 1, 1, 1}); }, {path, "'five'", "1..4"});
    w.AddTensor("t", GgmlType::F32, {4});
    ExpectError([&] { w.AddTensor("t", GgmlType::F32, {4}); }, {path, "duplicate tensor 't'"});
    ExpectError([&] { w.AppendTensor("t", "abc", 3); }, {path, "'t'", "16"});
    ExpectError([&] { w.Finish(); }, {path, "'t' incomplete"});
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

// ---------------------------------------------------------------------------------------------

class GgufCorrupt : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("gguf-corrupt"); }
  void Expect(const std::string& bytes, std::vector<std::string> parts) {
    const std::string path = dir_ + "/bad.gguf";
    WriteFile(path, bytes);
    parts.push_back(path);
    ExpectError([&] { GgufFile f(path); }, parts);
  }
  // A header with one F32 tensor of `dims` at `offset` and `data` bytes of data.
  std::string OneTensor(std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data) {
    Bytes b;
    b.Header(3, 1, 0).Tensor("w", std::move(dims), type, offset).Align().Data(data);
    return b.s;
  }
  std::string dir_;
};

TEST_F(GgufCorrupt, TruncatedAtEveryByte) {
  // A small valid file whose last tensor ends exactly at the end: every shorter prefix is bad.
  GgufWriter w(dir_ + "/small.gguf");
  w.AddString("general.architecture", "llama");
  w.AddU32("llama.block_count", 2);
  w.AddStringArray("tokenizer.ggml.tokens", {"a", "bc"});
  w.AddF32Array("tokenizer.ggml.scores", {1.0f, 2.0f});
  w.AddTensor("a", GgmlType::F16, {3});
  w.AddTensor("b", GgmlType::F32, {8});
  const std::vector<uint16_t> a = {1, 2, 3};
  const std::vector<float> bb = Iota<float>(8, 0.0f);
  w.AppendTensor("a", a.data(), 6);
  w.AppendTensor("b", bb.data(), 32);
  w.Finish();
  const std::string full = ReadFile(dir_ + "/small.gguf");
  { GgufFile ok(dir_ + "/small.gguf"); }
  const std::string path = dir_ + "/trunc.gguf";
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    WriteFile(path, full.substr(0, n));
    ExpectError([&] { GgufFile f(path); }, {path});
  }
}

TEST_F(GgufCorrupt, WrongMagic) {
  Bytes b;
  b.Header(3, 0, 0);
  b.s[0] = 'G';
  b.s[3] = 'G';
  Expect(b.s, {"bad magic 'GGUG'"});
  Expect("GG", {"magic", "truncated"});
  Expect(std::string("\x7fGUF", 4) + std::string(20, '\0'), {"bad magic '\\x7fGUF'"});
}

TEST_F(GgufCorrupt, UnsupportedVersion) {
  Bytes b;
  b.Header(4, 0, 0);
  Expect(b.s, {"unsupported GGUF version 4"});
  Bytes b1;
  b1.Header(1, 0, 0);
  Expect(b1.s, {"unsupported GGUF version 1"});
}

TEST_F(GgufCorrupt, TensorDataOutsideFile) {
  Expect(OneTensor({8}, 0, 0, 31), {"tensor 'w'", "beyond the data section"});
  Expect(OneTensor({8}, 0, 64, 32), {"tensor 'w'", "beyond the data section"});
  Expect(OneTensor({8}, 0, uint64_t{1} << 63, 32), {"tensor 'w'", "beyond the data section"});
}

TEST_F(GgufCorrupt, MisalignedOffset) { Expect(OneTensor({8}, 0, 4, 64), {"tensor 'w'", "offset 4", "alignment 32"}); }

TEST_F(GgufCorrupt, UnknownType) {
  Expect(OneTensor({8}, 99, 0, 32), {"tensor 'w'", "unknown ggml type 99"});
  Bytes b;
  b.Header(3, 0, 1).Str("k").U32(13).U32(0);
  Expect(b.s, {"metadata key 'k'", "unknown value type 13"});
  Bytes c;
  c.Header(3, 0, 1).Str("k").U32(9).U32(77).U64(0);
  Expect(c.s, {"metadata key 'k'", "unknown array element type 77"});
}

TEST_F(GgufCorrupt, HugeStringLength) {
  Bytes key;
  key.Header(3, 0, 1).U64(uint64_t{1} << 60).Data(16);
  Expect(key.s, {"metadata KV #0 key", "length 1152921504606846976"});
  Bytes value;
  value.Header(3, 0, 1).Str("general.name").U32(8).U64(~uint64_t{0});
  Expect(value.s, {"metadata key 'general.name'", "length 18446744073709551615"});
  Bytes name;
  name.Header(3, 1, 0).U64(1000).Data(40);
  Expect(name.s, {"tensor info #0 name", "length 1000"});
}

TEST_F(GgufCorrupt, HugeArrayLength) {
  Bytes b;
  b.Header(3, 0, 1).Str("tokenizer.ggml.tokens").U32(9).U32(8).U64(uint64_t{1} << 61).Data(64);
  Expect(b.s, {"metadata key 'tokenizer.ggml.tokens'", "array length 2305843009213693952"});
  Bytes c;
  c.Header(3, 0, 1).Str("scores").U32(9).U32(6).U64(17).Data(64);  // 68 bytes needed, 64 present
  Expect(c.s, {"metadata key 'scores'", "array length 17"});
}

TEST_F(GgufCorrupt, CountsLargerThanFile) {
  Bytes b;
  b.Header(3, uint64_t{1} << 40, 0).Data(100);
  Expect(b.s, {"tensor count 1099511627776"});
  Bytes c;
  c.Header(3, 0, ~uint64_t{0});
  Expect(c.s, {"metadata KV count 18446744073709551615"});
}

TEST_F(GgufCorrupt, DuplicateNames) {
  Bytes b;
  b.Header(3, 2, 0).Tensor("w", {8}, 0, 0).Tensor("w", {8}, 0, 32).Align().Data(64);
  Expect(b.s, {"duplicate tensor 'w'"});
  Bytes k;
  k.Header(3, 0, 2).KvU32("a.b", 1).KvU32("a.b", 2);
  Expect(k.s, {"duplicate metadata key 'a.b'"});
}

TEST_F(GgufCorrupt, OverlappingTensors) {
  Bytes b;
  b.Header(3, 2, 0).Tensor("a", {16}, 0, 0).Tensor("b", {8}, 0, 32).Align().Data(128);
  Expect(b.s, {"tensor 'b'", "overlaps tensor 'a'"});
}

TEST_F(GgufCorrupt, BadDims) {
  Expect(OneTensor({1, 1, 1, 1, 8}, 0, 0, 32), {"tensor 'w'", "n_dims is 5"});
  Expect(OneTensor({}, 0, 0, 32), {"tensor 'w'", "n_dims is 0"});
  Expect(OneTensor({8, 0}, 0, 0, 32), {"tensor 'w'", "dim 1 is 0"});
  Expect(OneTensor({uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0, 32), {"tensor 'w'", "overflows"});
  Expect(OneTensor({33}, 8, 0, 64), {"tensor 'w'", "not a multiple of the Q8_0 block size 32"});
}

TEST_F(GgufCorrupt, BadAlignmentAndValues) {
  Bytes b;
  b.Header(3, 0, 1).KvU32("general.alignment", 24);
  Expect(b.s, {"'general.alignment'", "24", "power of two"});
  Bytes c;
  c.Header(3, 0, 1).KvStr("general.alignment", "32");
  Expect(c.s, {"'general.alignment'", "must be uint32"});
  Bytes d;
  d.Header(3, 0, 1).Str("flag").U32(7).Num<uint8_t>(2);
  Expect(d.s, {"metadata key 'flag'", "bool value is 2"});
  Bytes e;
  e.Header(3, 0, 1).Str("").U32(4).U32(0);
  Expect(e.s, {"metadata KV #0", "empty key"});
  // Arrays nested too deep are refused instead of recursing without bound.
  Bytes n;
  n.Header(3, 0, 1).Str("deep").U32(9);
  for (int i = 0; i < 64; ++i) n.U32(9).U64(1);
  n.U32(4).U64(0);
  Expect(n.s, {"metadata key 'deep'", "nested deeper"});
}

}  // namespace
}  // namespace ficoco
