#include "engine/gguf_export.h"

#include <algorithm>
#include <filesystem>

#include "base/error.h"
#include "io/checkpoint.h"
#include "io/gguf_model.h"
#include "io/gguf_writer.h"
#include "model/config.h"
#include "model/llava_weights.h"
#include "model/weight_table.h"
#include "tensor/quant.h"
#include "tokenizer/gguf_vocab.h"

namespace ficoco {
namespace fs = std::filesystem;
namespace {

struct TypeName {
  const char* name;
  GgmlType type;
  uint32_t llama_ftype;  // general.file_type (llama.cpp's llama_ftype "mostly X")
};
// llama_ftype has no "all Q4_K" value: q4_k is labelled Q4_K_S (14), the closest (that mix
// also has a few Q5_K tensors); q6_k is MOSTLY_Q6_K (18).
constexpr TypeName kTypes[] = {
    {"f16", GgmlType::F16, 1},   {"bf16", GgmlType::BF16, 32}, {"q8_0", GgmlType::Q8_0, 7}, {"q4_0", GgmlType::Q4_0, 2},
    {"q4_1", GgmlType::Q4_1, 3}, {"q5_0", GgmlType::Q5_0, 8},  {"q5_1", GgmlType::Q5_1, 9},
    {"q4_k", GgmlType::Q4_K, 14}, {"q6_k", GgmlType::Q6_K, 18},
};
constexpr TypeName kQ4KM = {"q4_k_m", GgmlType::Q4_K, 15};  // MOSTLY_Q4_K_M
constexpr const char* kTypeList = "f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k, q4_k_m";

const TypeName& FindType(GgmlType t) {
  for (const TypeName& n : kTypes)
    if (n.type == t) return n;
  Fail("quantize: type ", GgmlTypeName(t), " cannot be written (", kTypeList, ")");
}

// The block type of 2-D text tensor `gguf_name` (layer `layer`, -1 outside the layers).
GgmlType TextTensorType(const GgufExportOptions& o, const std::string& gguf_name, int layer, int n_layers) {
  if (!o.q4_k_m) return o.type;
  if (gguf_name == "output.weight") return GgmlType::Q6_K;
  const bool v_or_down = gguf_name.find(".attn_v.") != std::string::npos || gguf_name.find(".ffn_down.") != std::string::npos;
  return v_or_down && layer >= 0 && Q4KMUsesMoreBits(layer, n_layers) ? GgmlType::Q6_K : GgmlType::Q4_K;
}

// One tensor of an output file: where it comes from and how it is stored.
struct Planned {
  std::string gguf_name;
  std::string canonical;
  GgmlType type;
  std::vector<int64_t> shape;  // as written (PyTorch order)
  int64_t rope_heads = 0;      // > 0: rows go to ggml's RoPE order
};

// The widened rows [0, shape[0]) of the canonical tensor, rows reordered for RoPE if asked.
std::vector<float> SourceRows(const Checkpoint& ckpt, const Planned& p) {
  const TensorView& t = ckpt.Get(p.canonical);
  int64_t row_len = 1;
  for (size_t i = 1; i < p.shape.size(); ++i) row_len *= p.shape[i];
  const int64_t rows = p.shape[0];
  std::vector<float> src(static_cast<size_t>(rows * row_len));
  ConvertToF32(t.dtype, t.data, src.data(), rows * row_len);  // the first `rows` rows
  if (p.rope_heads <= 0) return src;
  const int64_t head_dim = rows / p.rope_heads;
  std::vector<float> out(src.size());
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(src.data() + r * row_len, row_len, out.data() + RopeRowToGguf(r, head_dim) * row_len);
  return out;
}

void WriteTensors(GgufWriter& w, const Checkpoint& ckpt, const std::vector<Planned>& plan) {
  for (const Planned& p : plan) w.AddTensor(p.gguf_name, p.type, p.shape);
  for (const Planned& p : plan) {
    const std::vector<float> rows = SourceRows(ckpt, p);
    const int64_t n = static_cast<int64_t>(rows.size());
    const int64_t row_len = p.shape.back(), n_rows = n / row_len;
    const size_t row_bytes = QuantRowBytes(p.type, row_len);
    std::vector<uint8_t> bytes(row_bytes * static_cast<size_t>(n_rows));
    // Rows are independent blocks: quantized in parallel (a 7B model is 6.7e9 values).
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n_rows; ++r)
      Quantize(p.type, rows.data() + r * row_len, bytes.data() + static_cast<size_t>(r) * row_bytes, row_len);
    w.Append(bytes.data(), bytes.size());
    ckpt.ReleasePages(p.canonical);  // keeps the resident set at about one tensor
  }
}

std::string Str(int64_t v) { return std::to_string(v); }

}  // namespace

GgmlType ParseExportType(const std::string& name) {
  for (const TypeName& n : kTypes)
    if (name == n.name) return n.type;
  Fail("unknown --type '", name, "' (valid: ", kTypeList, ")");
}

void SetExportType(const std::string& name, GgufExportOptions& options) {
  options.q4_k_m = name == kQ4KM.name;
  options.type = options.q4_k_m ? kQ4KM.type : ParseExportType(name);
}

bool Q4KMUsesMoreBits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

std::string ExportTypeName(GgmlType type) { return FindType(type).name; }

GgufExportResult ExportGgufPair(const GgufExportOptions& o, std::ostream& log) {
  if (o.q4_k_m && o.type != GgmlType::Q4_K) Fail("quantize: the q4_k_m mix needs type Q4_K, got ", GgmlTypeName(o.type));
  const TypeName& type = o.q4_k_m ? kQ4KM : FindType(o.type);
  const LlavaConfig cfg = LoadLlavaConfig(o.in_dir);
  const PreprocessorConfig pre = LoadPreprocessorConfig(o.in_dir, cfg);
  const Checkpoint ckpt(o.in_dir);
  ValidateCheckpoint(ckpt, cfg);
  const TextConfig& t = cfg.text;
  const VisionConfig& v = cfg.vision;
  if (cfg.projector_hidden_act != Activation::GeluErf)
    Fail(o.in_dir, ": projector_hidden_act is ", ActivationName(cfg.projector_hidden_act),
         "; a GGUF 'mlp' projector is Linear-GELU-Linear");
  if (cfg.vision_feature_select_strategy != "default")
    Fail(o.in_dir, ": vision_feature_select_strategy '", cfg.vision_feature_select_strategy,
         "' cannot be expressed in an mmproj (LLaVA-1.5 drops the CLS token: 'default')");
  if (v.hidden_act == Activation::GeluTanh)
    Fail(o.in_dir, ": the CLIP activation gelu_pytorch_tanh has no GGUF flag (clip.use_gelu means exact GELU here)");

  const std::string tok_path = o.tokenizer.empty() ? (fs::path(o.in_dir) / "tokenizer.model").string() : o.tokenizer;
  if (!fs::exists(tok_path))
    Fail("no tokenizer: ", tok_path, " does not exist; pass --tokenizer FILE (a SentencePiece tokenizer.model)");
  const GgufVocab vocab = ReadSentencePieceVocab(tok_path);
  const int64_t n_vocab = static_cast<int64_t>(vocab.tokens.size());
  if (n_vocab > t.vocab_size)
    Fail("tokenizer ", tok_path, " has ", n_vocab, " pieces but the model's vocabulary has only ", t.vocab_size, " rows");
  if (cfg.image_token_index < n_vocab)
    Fail("the model's image_token_index ", cfg.image_token_index, " is a regular piece of ", tok_path,
         ": tokenizer and model do not match");

  std::string name = o.name;
  if (name.empty()) name = fs::path(o.in_dir).lexically_normal().filename().string();
  if (name.empty() || name == "." || name == "..") name = fs::weakly_canonical(fs::path(o.in_dir)).filename().string();
  if (name.empty()) name = "model";
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) Fail("cannot create output directory ", o.out_dir, ": ", ec.message());

  GgufExportResult res;
  res.model_path = (fs::path(o.out_dir) / (name + "-" + type.name + ".gguf")).string();
  res.mmproj_path = (fs::path(o.out_dir) / ("mmproj-" + name + "-f16.gguf")).string();
  res.vocab_rows = n_vocab;

  // --- text model ---------------------------------------------------------------------------
  std::vector<Planned> text;
  int layer = -1;  // the layer add_text is called for (-1: embeddings, head)
  auto add_text = [&](const std::string& g, const std::string& canon, std::vector<int64_t> shape, int64_t rope = 0) {
    GgmlType ty = GgmlType::F32;
    if (shape.size() >= 2) {
      const GgmlType want = TextTensorType(o, g, layer, t.num_hidden_layers);
      const auto block = static_cast<int64_t>(QuantBlockElements(want));
      if (block == 1) {
        ty = want;
        ++res.text_f16;
      } else if (shape.back() % block == 0) {
        ty = want;
        ++res.text_quantized;
        if (o.q4_k_m && want == GgmlType::Q6_K) res.q6_k.push_back(g);
      } else {
        ty = GgmlType::F16;
        ++res.text_f16;
        res.kept_f16.push_back(g);
      }
    } else {
      ++res.text_f32;
    }
    text.push_back({g, canon, ty, std::move(shape), rope});
  };
  const int64_t dt = t.hidden_size, it = t.intermediate_size, kv = int64_t{t.num_key_value_heads} * t.head_dim();
  add_text("token_embd.weight", "language_model.model.embed_tokens.weight", {n_vocab, dt});
  for (int i = 0; i < t.num_hidden_layers; ++i) {
    const std::string g = "blk." + Str(i) + ".", p = TextLayerPrefix(i);
    layer = i;
    add_text(g + "attn_norm.weight", p + "input_layernorm.weight", {dt});
    add_text(g + "attn_q.weight", p + "self_attn.q_proj.weight", {dt, dt}, t.num_attention_heads);
    add_text(g + "attn_k.weight", p + "self_attn.k_proj.weight", {kv, dt}, t.num_key_value_heads);
    add_text(g + "attn_v.weight", p + "self_attn.v_proj.weight", {kv, dt});
    add_text(g + "attn_output.weight", p + "self_attn.o_proj.weight", {dt, dt});
    if (t.attention_bias) {
      add_text(g + "attn_q.bias", p + "self_attn.q_proj.bias", {dt}, t.num_attention_heads);
      add_text(g + "attn_k.bias", p + "self_attn.k_proj.bias", {kv}, t.num_key_value_heads);
      add_text(g + "attn_v.bias", p + "self_attn.v_proj.bias", {kv});
      add_text(g + "attn_output.bias", p + "self_attn.o_proj.bias", {dt});
    }
    add_text(g + "ffn_norm.weight", p + "post_attention_layernorm.weight", {dt});
    add_text(g + "ffn_gate.weight", p + "mlp.gate_proj.weight", {it, dt});
    add_text(g + "ffn_up.weight", p + "mlp.up_proj.weight", {it, dt});
    add_text(g + "ffn_down.weight", p + "mlp.down_proj.weight", {dt, it});
  }
  layer = -1;
  add_text("output_norm.weight", "language_model.model.norm.weight", {dt});
  if (!t.tie_word_embeddings) add_text("output.weight", "language_model.lm_head.weight", {n_vocab, dt});

  log << "writing " << res.model_path << " (" << text.size() << " tensors, " << type.name << ")\n";
  {
    GgufWriter w(res.model_path);
    w.AddString("general.architecture", "llama");
    w.AddString("general.name", name);
    w.AddU32("general.file_type", type.llama_ftype);
    w.AddU32("general.quantization_version", 2);
    w.AddU32("llama.context_length", static_cast<uint32_t>(t.max_position_embeddings));
    w.AddU32("llama.embedding_length", static_cast<uint32_t>(t.hidden_size));
    w.AddU32("llama.block_count", static_cast<uint32_t>(t.num_hidden_layers));
    w.AddU32("llama.feed_forward_length", static_cast<uint32_t>(t.intermediate_size));
    w.AddU32("llama.rope.dimension_count", static_cast<uint32_t>(t.head_dim()));
    w.AddU32("llama.attention.head_count", static_cast<uint32_t>(t.num_attention_heads));
    w.AddU32("llama.attention.head_count_kv", static_cast<uint32_t>(t.num_key_value_heads));
    w.AddF32("llama.attention.layer_norm_rms_epsilon", t.rms_norm_eps);
    w.AddF32("llama.rope.freq_base", t.rope_theta);
    w.AddU32("llama.vocab_size", static_cast<uint32_t>(n_vocab));
    WriteGgufVocab(vocab, w);
    WriteTensors(w, ckpt, text);
    w.Finish();
  }

  // --- mmproj ---------------------------------------------------------------------------------
  std::vector<Planned> mm;
  auto add_mm = [&](const std::string& g, const std::string& canon) {
    const TensorView& src = ckpt.Get(canon);
    mm.push_back({g, canon, src.shape.size() >= 2 ? GgmlType::F16 : GgmlType::F32, src.shape, 0});
  };
  const std::string vm = "vision_tower.vision_model.";
  add_mm("v.class_embd", vm + "embeddings.class_embedding");
  add_mm("v.patch_embd.weight", vm + "embeddings.patch_embedding.weight");
  add_mm("v.position_embd.weight", vm + "embeddings.position_embedding.weight");
  add_mm("v.pre_ln.weight", vm + "pre_layrnorm.weight");
  add_mm("v.pre_ln.bias", vm + "pre_layrnorm.bias");
  const int blocks = cfg.vision_last_layer() + 1;  // the converter drops the blocks after the feature layer
  for (int i = 0; i < blocks; ++i) {
    const std::string g = "v.blk." + Str(i) + ".", p = VisionLayerPrefix(i);
    for (const auto& [to, from] : {std::pair{"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                                   {"attn_v", "self_attn.v_proj"}, {"attn_out", "self_attn.out_proj"},
                                   {"ln1", "layer_norm1"}, {"ln2", "layer_norm2"}, {"ffn_up", "mlp.fc1"},
                                   {"ffn_down", "mlp.fc2"}}) {
      add_mm(g + to + ".weight", p + from + ".weight");
      add_mm(g + to + ".bias", p + from + ".bias");
    }
  }
  add_mm("mm.0.weight", "multi_modal_projector.linear_1.weight");
  add_mm("mm.0.bias", "multi_modal_projector.linear_1.bias");
  add_mm("mm.2.weight", "multi_modal_projector.linear_2.weight");
  add_mm("mm.2.bias", "multi_modal_projector.linear_2.bias");

  log << "writing " << res.mmproj_path << " (" << mm.size() << " tensors, " << blocks << " of " << v.num_hidden_layers
      << " CLIP blocks, f16)\n";
  {
    GgufWriter w(res.mmproj_path);
    w.AddString("general.architecture", "clip");
    w.AddString("general.name", name);
    w.AddU32("general.file_type", 1);
    w.AddBool("clip.has_text_encoder", false);
    w.AddBool("clip.has_vision_encoder", true);
    w.AddBool("clip.has_llava_projector", true);
    w.AddString("clip.projector_type", "mlp");
    w.AddU32("clip.vision.image_size", static_cast<uint32_t>(v.image_size));
    w.AddU32("clip.vision.patch_size", static_cast<uint32_t>(v.patch_size));
    w.AddU32("clip.vision.embedding_length", static_cast<uint32_t>(v.hidden_size));
    w.AddU32("clip.vision.feed_forward_length", static_cast<uint32_t>(v.intermediate_size));
    w.AddU32("clip.vision.projection_dim", static_cast<uint32_t>(t.hidden_size));
    w.AddU32("clip.vision.attention.head_count", static_cast<uint32_t>(v.num_attention_heads));
    w.AddF32("clip.vision.attention.layer_norm_epsilon", v.layer_norm_eps);
    w.AddU32("clip.vision.block_count", static_cast<uint32_t>(blocks));
    w.AddF32Array("clip.vision.image_mean", {pre.image_mean[0], pre.image_mean[1], pre.image_mean[2]});
    w.AddF32Array("clip.vision.image_std", {pre.image_std[0], pre.image_std[1], pre.image_std[2]});
    w.AddBool("clip.use_gelu", v.hidden_act == Activation::GeluErf);
    w.AddBool("clip.use_silu", v.hidden_act == Activation::Silu);
    WriteTensors(w, ckpt, mm);
    w.Finish();
  }
  return res;
}

}  // namespace ficoco
