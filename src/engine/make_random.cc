#include "engine/make_random.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/timer.h"
#include "io/safetensors.h"
#include "model/weight_table.h"

namespace ficoco {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPresetNames = "tiny, llava-1.5-7b, llava-1.5-13b";
constexpr int64_t kChunkElems = int64_t{1} << 20;  // generated and appended 1M elements at a time

uint64_t Mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// How one tensor's values are drawn: offset + uniform(-half_width, half_width).
struct Distribution {
  float offset;
  float half_width;
};

Distribution DistributionFor(const WeightSpec& w) {
  constexpr float kStd = 0.02f;
  const float uniform_half = kStd * 1.7320508f;  // a uniform on [-a, a] has std a / sqrt(3)
  const bool is_norm_weight = w.shape.size() == 1 && w.name.find("norm") != std::string::npos &&
                              w.name.size() > 7 && w.name.compare(w.name.size() - 7, 7, ".weight") == 0;
  // Norm scales ~ 1 + small noise; biases, embeddings and linear weights ~ std 0.02.
  return {is_norm_weight ? 1.0f : 0.0f, uniform_half};
}

// Element i of a tensor is a pure function of (key, i) (splitmix64 at stream position i),
// so chunks can be made in any order. A plain loop that the compiler vectorises
// (AVX-512 64-bit multiplies): about 1 ns per element on one core.
void Generate(uint64_t key, Distribution d, int64_t first, int64_t n, float* out) {
  constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
  const uint64_t base = key + static_cast<uint64_t>(first + 1) * kGamma;
  const float scale = 2.0f / 16777216.0f;  // 24 random bits -> [0, 2)
  for (int64_t j = 0; j < n; ++j) {
    const uint64_t z = Mix64(base + static_cast<uint64_t>(j) * kGamma);
    const float u = static_cast<float>(static_cast<int32_t>(z >> 40)) * scale - 1.0f;  // [-1, 1)
    out[j] = d.offset + d.half_width * u;
  }
}

// Buffers for one chunk: values as float and as stored.
struct ChunkBuffers {
  std::vector<float> values;
  std::vector<unsigned char> bytes;
};

void WriteTensor(SafetensorsWriter& w, const WeightSpec& spec, DType dtype, uint64_t seed, ChunkBuffers& buf) {
  int64_t numel = 1;
  for (int64_t s : spec.shape) numel *= s;
  const uint64_t key = Mix64(Mix64(seed) ^ Fnv1a(spec.name));
  const Distribution d = DistributionFor(spec);
  const size_t esize = DTypeSize(dtype);
  for (int64_t first = 0; first < numel; first += kChunkElems) {
    const int64_t n = std::min(kChunkElems, numel - first);
    Generate(key, d, first, n, buf.values.data());
    ConvertFromF32(buf.values.data(), dtype, buf.bytes.data(), n);
    w.Append(buf.bytes.data(), static_cast<size_t>(n) * esize);
  }
}

const char* TorchDtypeName(DType t) {
  switch (t) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    default: return "float32";
  }
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) Fail("cannot write '", path.string(), "'");
}

std::string Gigabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

std::string ShardName(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", k, n);
  return buf;
}

}  // namespace

LlavaConfig PresetConfig(const std::string& preset) {
  LlavaConfig cfg;
  cfg.vision_feature_layer = -2;
  cfg.vision_feature_select_strategy = "default";
  cfg.projector_hidden_act = Activation::GeluErf;
  cfg.image_token_index = 32000;
  cfg.pad_token_id = 32001;
  VisionConfig& v = cfg.vision;
  TextConfig& t = cfg.text;
  // Shared by every preset: CLIP quick_gelu, LLaMA silu, llava-1.5's vocabulary and eps.
  v.num_channels = 3;
  v.layer_norm_eps = 1e-5f;
  v.hidden_act = Activation::QuickGelu;
  t.vocab_size = 32064;
  t.max_position_embeddings = 4096;
  t.rms_norm_eps = 1e-5f;
  t.rope_theta = 10000.0f;
  t.hidden_act = Activation::Silu;
  t.attention_bias = false;
  t.tie_word_embeddings = false;
  t.bos_token_id = 1;
  t.eos_token_id = 2;
  if (preset == "tiny") {  // the llava-tiny fixture's shapes
    v.image_size = 56, v.patch_size = 14, v.hidden_size = 64, v.intermediate_size = 128;
    v.num_hidden_layers = 4, v.num_attention_heads = 4;
    t.hidden_size = 64, t.intermediate_size = 172, t.num_hidden_layers = 4;
    t.num_attention_heads = 4, t.num_key_value_heads = 4;
  } else if (preset == "llava-1.5-7b" || preset == "llava-1.5-13b") {
    v.image_size = 336, v.patch_size = 14, v.hidden_size = 1024, v.intermediate_size = 4096;  // CLIP ViT-L/14-336
    v.num_hidden_layers = 24, v.num_attention_heads = 16;
    if (preset == "llava-1.5-7b") {  // LLaMA-2-7B (Vicuna-7B v1.5)
      t.hidden_size = 4096, t.intermediate_size = 11008, t.num_hidden_layers = 32;
      t.num_attention_heads = 32, t.num_key_value_heads = 32;
    } else {  // LLaMA-2-13B (Vicuna-13B v1.5)
      t.hidden_size = 5120, t.intermediate_size = 13824, t.num_hidden_layers = 40;
      t.num_attention_heads = 40, t.num_key_value_heads = 40;
    }
  } else {
    Fail("unknown preset '", preset, "' (valid: ", kPresetNames, ")");
  }
  return cfg;
}

void MakeRandomCheckpoint(const MakeRandomOptions& opt, std::ostream& log) {
  if (opt.dtype != DType::F16 && opt.dtype != DType::BF16 && opt.dtype != DType::F32)
    Fail("make-random: dtype must be F16, BF16 or F32, got ", DTypeName(opt.dtype));
  if (opt.out_dir.empty()) Fail("make-random: no output directory given");
  if (opt.max_shard_bytes <= 0) Fail("make-random: max_shard_bytes must be positive, got ", opt.max_shard_bytes);

  LlavaConfig cfg = PresetConfig(opt.preset);
  if (opt.image_token_index_override < 0) Fail("make-random: image token index must be positive");
  if (opt.image_token_index_override > 0) {
    // LLaVA's added tokens follow the tokenizer's pieces: <image> then <pad>.
    cfg.image_token_index = opt.image_token_index_override;
    cfg.pad_token_id = opt.image_token_index_override + 1;
  }
  if (opt.vocab_size_override < 0) Fail("make-random: vocab size override must be positive");
  if (opt.vocab_size_override > 0) {
    if (opt.vocab_size_override <= std::max(cfg.image_token_index, cfg.pad_token_id))
      Fail("make-random: vocab size ", opt.vocab_size_override, " must exceed the image token ",
           cfg.image_token_index, " and pad token ", cfg.pad_token_id);
    cfg.text.vocab_size = opt.vocab_size_override;
  }
  // Serialise and parse back: the written config is validated exactly as a loaded one would be.
  const std::string config_text = LlavaConfigToJson(cfg);
  cfg = ParseLlavaConfig(config_text, "make-random config.json");

  const std::vector<WeightSpec> table = LlavaWeightTable(cfg);
  const size_t esize = DTypeSize(opt.dtype);
  std::vector<uint64_t> bytes(table.size());
  uint64_t total = 0;
  for (size_t i = 0; i < table.size(); ++i) {
    uint64_t n = esize;
    for (int64_t s : table[i].shape) n *= static_cast<uint64_t>(s);
    bytes[i] = n;
    total += n;
  }

  // Shards: consecutive tensors in table order, a new shard when the next would overflow.
  std::vector<std::vector<size_t>> shards(1);
  {
    uint64_t in_shard = 0;
    for (size_t i = 0; i < table.size(); ++i) {
      if (total > static_cast<uint64_t>(opt.max_shard_bytes) && !shards.back().empty() &&
          in_shard + bytes[i] > static_cast<uint64_t>(opt.max_shard_bytes)) {
        shards.emplace_back();
        in_shard = 0;
      }
      shards.back().push_back(i);
      in_shard += bytes[i];
    }
  }
  const bool sharded = shards.size() > 1;

  const fs::path dir(opt.out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) Fail("make-random: cannot create directory '", opt.out_dir, "': ", ec.message());

  // Weight files of an earlier run would shadow or confuse the new ones.
  const std::regex shard_re(R"(model-\d{5}-of-\d{5}\.safetensors)");
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name == "model.safetensors" || name == "model.safetensors.index.json" ||
        std::regex_match(name, shard_re)) {
      log << "removing old " << entry.path().string() << "\n";
      fs::remove(entry.path(), ec);
      if (ec) Fail("make-random: cannot remove '", entry.path().string(), "': ", ec.message());
    }
  }

  log << "make-random: preset " << opt.preset << ", " << DTypeName(opt.dtype) << ", seed " << opt.seed << ", "
      << table.size() << " tensors, " << Gigabytes(total) << (sharded ? ", " + std::to_string(shards.size()) + " shards" : "")
      << " -> " << opt.out_dir << std::endl;

  ChunkBuffers buf{std::vector<float>(static_cast<size_t>(kChunkElems)),
                   std::vector<unsigned char>(static_cast<size_t>(kChunkElems) * esize)};
  nlohmann::json weight_map = nlohmann::json::object();
  Stopwatch total_time;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file = sharded ? ShardName(k + 1, shards.size()) : "model.safetensors";
    std::vector<TensorSpec> specs;
    uint64_t shard_bytes = 0;
    for (size_t i : shards[k]) {
      specs.push_back({table[i].name, opt.dtype, table[i].shape});
      shard_bytes += bytes[i];
      weight_map[table[i].name] = file;
    }
    Stopwatch shard_time;
    SafetensorsWriter writer((dir / file).string(), std::move(specs));
    for (size_t i : shards[k]) WriteTensor(writer, table[i], opt.dtype, opt.seed, buf);
    writer.Finish();
    log << "wrote " << file << ": " << shards[k].size() << " tensors, " << Gigabytes(shard_bytes) << " in "
        << shard_time.Seconds() << " s" << std::endl;
  }
  if (sharded) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    WriteText(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  }

  nlohmann::ordered_json config = nlohmann::ordered_json::parse(config_text);
  config["torch_dtype"] = TorchDtypeName(opt.dtype);
  WriteText(dir / "config.json", config.dump(2) + "\n");

  PreprocessorConfig pre;
  pre.shortest_edge = pre.crop_height = pre.crop_width = cfg.vision.image_size;
  WriteText(dir / "preprocessor_config.json", PreprocessorConfigToJson(pre));

  nlohmann::ordered_json gen = {{"bos_token_id", cfg.text.bos_token_id}, {"eos_token_id", cfg.text.eos_token_id}};
  if (cfg.pad_token_id >= 0) gen["pad_token_id"] = cfg.pad_token_id;
  WriteText(dir / "generation_config.json", gen.dump(2) + "\n");

  log << "make-random: done in " << total_time.Seconds() << " s" << std::endl;
}

}  // namespace ficoco
