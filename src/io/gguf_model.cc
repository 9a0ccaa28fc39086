#include "io/gguf_model.h"

#include <cstring>
#include <optional>

#include "base/error.h"
#include "model/weight_table.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "tensor/tensor.h"

namespace ficoco {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

// An integer key that must be present and positive; the message names file and key.
int RequiredPositive(const GgufFile& f, const std::string& key) {
  if (!f.Has(key)) Fail(f.path(), ": missing key '", key, "'");
  const int64_t v = f.GetInteger(key);
  if (v < 1 || v > (int64_t{1} << 30)) Fail(f.path(), ": key '", key, "' = ", v, " is out of range");
  return static_cast<int>(v);
}

// An array of any integer type (writers differ: gguf-py stores Python ints as int32).
std::vector<int64_t> IntegerArray(const GgufFile& f, const std::string& key) {
  const GgufValue& v = f.Get(key);
  if (v.type == GgufType::ARRAY) {
    switch (v.elem_type) {
      case GgufType::INT32: { auto a = f.GetI32Array(key); return {a.begin(), a.end()}; }
      case GgufType::UINT32: { auto a = f.GetU32Array(key); return {a.begin(), a.end()}; }
      case GgufType::INT64: return f.GetI64Array(key);
      default: break;
    }
  }
  Fail(f.path(), ": key '", key, "' must be an array of int32, uint32 or int64");
}

float RequiredFloat(const GgufFile& f, const std::string& key) {
  if (!f.Has(key)) Fail(f.path(), ": missing key '", key, "'");
  const float v = f.GetF32(key);
  if (!(v > 0)) Fail(f.path(), ": key '", key, "' = ", v, " must be positive");
  return v;
}

void RequireArchitecture(const GgufFile& f, const std::string& want, const std::string& role, const std::string& hint) {
  if (!f.Has("general.architecture")) Fail(f.path(), ": missing key 'general.architecture' (expected '", want, "')");
  const std::string& arch = f.GetString("general.architecture");
  if (arch != want)
    Fail(f.path(), ": general.architecture is '", arch, "' but the ", role, " of a LLaVA-1.5 GGUF pair must be '", want,
         "'", arch == hint ? " (the two files look swapped: --model takes the text model, --mmproj the CLIP file)" : "");
}

std::optional<DType> FloatDType(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return DType::F32;
    case GgmlType::F16: return DType::F16;
    case GgmlType::BF16: return DType::BF16;
    default: return std::nullopt;
  }
}

}  // namespace

bool GgufModelTensor::is_float() const { return FloatDType(type()).has_value(); }

std::string GgufModelTensor::Where() const { return file->path() + ": tensor '" + stored->name + "'"; }

int64_t RopeRowToGguf(int64_t hf_row, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  const int64_t head = hf_row / head_dim, r = hf_row % head_dim;
  const int64_t i = r / half, j = r % half;
  return head * head_dim + 2 * j + i;
}

std::vector<uint8_t> ReadRowsHfOrder(const GgufModelTensor& t) {
  const uint8_t* src = t.stored->data;
  const size_t n = static_cast<size_t>(t.stored->nbytes);
  if (t.rope_heads <= 0) return std::vector<uint8_t>(src, src + n);
  const int64_t rows = t.shape[0];
  if (rows % t.rope_heads != 0 || (rows / t.rope_heads) % 2 != 0)
    Fail(t.Where(), ": ", rows, " rows do not split into ", t.rope_heads, " heads of even size");
  if (t.shape.size() == 1 && !t.is_float())
    Fail(t.Where(), ": a block-quantized 1-D q/k bias cannot be reordered per row");
  const size_t row_bytes = n / static_cast<size_t>(rows);
  const int64_t head_dim = rows / t.rope_heads;
  std::vector<uint8_t> out(n);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out.data() + r * row_bytes, src + RopeRowToGguf(r, head_dim) * row_bytes, row_bytes);
  return out;
}

std::vector<float> ReadAsF32(const GgufModelTensor& t) {
  int64_t numel = 1;
  for (int64_t d : t.shape) numel *= d;
  std::vector<uint8_t> reordered;
  const void* src = t.stored->data;
  if (t.rope_heads > 0) {
    reordered = ReadRowsHfOrder(t);
    src = reordered.data();
  }
  std::vector<float> out(static_cast<size_t>(numel));
  if (auto dt = FloatDType(t.type())) {
    ConvertToF32(*dt, src, out.data(), numel);
  } else {
    if (!Quantizable(t.type())) Fail(t.Where(), ": type ", GgmlTypeName(t.type()), " cannot be read");
    Dequantize(t.type(), src, out.data(), numel);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

GgufModel::GgufModel(const std::string& model_path, const std::string& mmproj_path) {
  text_ = std::make_unique<GgufFile>(model_path);
  mmproj_ = std::make_unique<GgufFile>(mmproj_path);
  RequireArchitecture(*text_, "llama", "text model (--model)", "clip");
  RequireArchitecture(*mmproj_, "clip", "vision model (--mmproj)", "llama");
  ReadTextConfig();
  ReadVisionConfig();
  MapTensors();
}

std::string GgufModel::origin() const { return text_->path() + " + " + mmproj_->path(); }

const GgufModelTensor* GgufModel::Find(const std::string& canonical_name) const {
  auto it = index_.find(canonical_name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void GgufModel::ReadTextConfig() {
  const GgufFile& f = *text_;
  TextConfig& t = config_.text;
  t.hidden_size = RequiredPositive(f, "llama.embedding_length");
  t.intermediate_size = RequiredPositive(f, "llama.feed_forward_length");
  t.num_hidden_layers = RequiredPositive(f, "llama.block_count");
  t.num_attention_heads = RequiredPositive(f, "llama.attention.head_count");
  t.num_key_value_heads =
      f.Has("llama.attention.head_count_kv") ? RequiredPositive(f, "llama.attention.head_count_kv") : t.num_attention_heads;
  t.max_position_embeddings = f.Has("llama.context_length") ? RequiredPositive(f, "llama.context_length") : 4096;
  t.rms_norm_eps = RequiredFloat(f, "llama.attention.layer_norm_rms_epsilon");
  t.rope_theta = f.Has("llama.rope.freq_base") ? RequiredFloat(f, "llama.rope.freq_base") : 10000.0f;
  t.hidden_act = Activation::Silu;
  if (t.hidden_size % t.num_attention_heads != 0)
    Fail(f.path(), ": llama.embedding_length ", t.hidden_size, " is not a multiple of llama.attention.head_count ",
         t.num_attention_heads);
  if (t.num_attention_heads % t.num_key_value_heads != 0)
    Fail(f.path(), ": llama.attention.head_count ", t.num_attention_heads,
         " is not a multiple of llama.attention.head_count_kv ", t.num_key_value_heads);
  if (f.Has("llama.rope.dimension_count") && f.GetInteger("llama.rope.dimension_count") != t.head_dim())
    Fail(f.path(), ": llama.rope.dimension_count = ", f.GetInteger("llama.rope.dimension_count"),
         " but the head size is ", t.head_dim(), " (partial rotary embeddings are not supported)");
  if (f.Has("llama.rope.scaling.type") && f.GetString("llama.rope.scaling.type") != "none")
    Fail(f.path(), ": llama.rope.scaling.type '", f.GetString("llama.rope.scaling.type"),
         "' is not supported (LLaVA-1.5 uses plain RoPE)");
  if (f.Has("llama.expert_count") && f.GetInteger("llama.expert_count") > 0)
    Fail(f.path(), ": mixture-of-experts models (llama.expert_count) are not supported");
  const GgufTensor* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) Fail(f.path(), ": missing tensor 'token_embd.weight' (llava-hf 'language_model.model.embed_tokens.weight')");
  if (embd->shape.size() != 2) Fail(f.path(), ": tensor 'token_embd.weight' must be 2-D, has ", embd->shape.size(), " dims");
  t.vocab_size = static_cast<int>(embd->shape[0]);
  if (f.Has("llama.vocab_size") && f.GetInteger("llama.vocab_size") != t.vocab_size)
    Fail(f.path(), ": llama.vocab_size = ", f.GetInteger("llama.vocab_size"), " but 'token_embd.weight' has ",
         t.vocab_size, " rows");
  t.bos_token_id = f.Has("tokenizer.ggml.bos_token_id") ? static_cast<int>(f.GetInteger("tokenizer.ggml.bos_token_id")) : 1;
  t.eos_token_id = f.Has("tokenizer.ggml.eos_token_id") ? static_cast<int>(f.GetInteger("tokenizer.ggml.eos_token_id")) : 2;
  t.tie_word_embeddings = f.FindTensor("output.weight") == nullptr;
  t.attention_bias = f.FindTensor("blk.0.attn_q.bias") != nullptr;
  // llama.cpp's LLaVA text model has no <image> piece: the image is spliced in as
  // embeddings. The engine marks its place with the first id past the vocabulary.
  config_.image_token_index = t.vocab_size;
  config_.pad_token_id = -1;
}

void GgufModel::ReadVisionConfig() {
  const GgufFile& f = *mmproj_;
  if (f.Has("clip.has_vision_encoder") && !f.GetBool("clip.has_vision_encoder"))
    Fail(f.path(), ": clip.has_vision_encoder is false: this mmproj holds no vision tower");
  if (f.Has("clip.projector_type") && f.GetString("clip.projector_type") != "mlp")
    Fail(f.path(), ": clip.projector_type '", f.GetString("clip.projector_type"),
         "' is not LLaVA-1.5's 'mlp' projector (Linear-GELU-Linear); not supported");
  const bool llava_flag = f.Has("clip.has_llava_projector") && f.GetBool("clip.has_llava_projector");
  if (!llava_flag && !f.Has("clip.projector_type"))
    Fail(f.path(), ": no LLaVA projector (neither clip.has_llava_projector = true nor clip.projector_type = 'mlp'): "
         "a CLIP file without a projector cannot feed the language model");
  for (const char* name : {"mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"})
    if (f.FindTensor(name) == nullptr)
      Fail(f.path(), ": mmproj without its projector: missing tensor '", name, "'");

  VisionConfig& v = config_.vision;
  v.hidden_size = RequiredPositive(f, "clip.vision.embedding_length");
  v.intermediate_size = RequiredPositive(f, "clip.vision.feed_forward_length");
  v.num_attention_heads = RequiredPositive(f, "clip.vision.attention.head_count");
  v.image_size = RequiredPositive(f, "clip.vision.image_size");
  v.patch_size = RequiredPositive(f, "clip.vision.patch_size");
  v.layer_norm_eps = RequiredFloat(f, "clip.vision.attention.layer_norm_epsilon");
  v.num_channels = 3;
  if (v.hidden_size % v.num_attention_heads != 0)
    Fail(f.path(), ": clip.vision.embedding_length ", v.hidden_size, " is not a multiple of clip.vision.attention.head_count ",
         v.num_attention_heads);
  if (v.image_size % v.patch_size != 0)
    Fail(f.path(), ": clip.vision.image_size ", v.image_size, " is not a multiple of clip.vision.patch_size ", v.patch_size);
  const bool gelu = f.Has("clip.use_gelu") && f.GetBool("clip.use_gelu");
  const bool silu = f.Has("clip.use_silu") && f.GetBool("clip.use_silu");
  // As clip.cpp decides; "gelu" is taken as the exact (erf) GELU of Hugging Face's CLIP,
  // where ggml uses the tanh approximation.
  v.hidden_act = gelu ? Activation::GeluErf : silu ? Activation::Silu : Activation::QuickGelu;
  if (f.Has("clip.vision.image_grid_pinpoints") || f.Has("clip.vision.mm_patch_merge_type"))
    notes_.push_back(f.path() + ": LLaVA-1.6 'anyres' keys (image_grid_pinpoints / mm_patch_merge_type) are ignored; "
                     "the image is processed as one LLaVA-1.5 square crop");

  // llama.cpp's converter stores the CLIP blocks up to the feature layer and drops the rest,
  // so LLaVA-1.5's hidden_states[-2] of the 24-layer CLIP is the output of the last of the
  // 23 stored blocks: the engine runs every stored block unless clip.vision.feature_layer
  // names another one (k = take the output of the first k blocks, hidden_states[k]).
  const int blocks = RequiredPositive(f, "clip.vision.block_count");
  int run = blocks;
  if (f.Has("clip.vision.feature_layer")) {
    const std::vector<int64_t> fl = IntegerArray(f, "clip.vision.feature_layer");
    if (fl.size() != 1)
      Fail(f.path(), ": clip.vision.feature_layer lists ", fl.size(),
           " layers; only a single feature layer (LLaVA-1.5) is supported");
    if (fl[0] < 1 || fl[0] > blocks)
      Fail(f.path(), ": clip.vision.feature_layer = ", fl[0], " is outside 1..", blocks, " (clip.vision.block_count)");
    run = static_cast<int>(fl[0]);
    if (run != blocks)
      notes_.push_back(f.path() + ": clip.vision.feature_layer = " + Str(run) + " selects the output of vision block " +
                       Str(run) + " of the " + Str(blocks) + " stored; following the file");
  }
  const bool clip_l336 = v.hidden_size == 1024 && v.image_size == 336 && v.patch_size == 14;
  if (clip_l336 && run != 23)
    notes_.push_back(f.path() + ": the vision tower runs " + Str(run) +
                     " CLIP blocks; LLaVA-1.5 takes hidden_states[-2] of CLIP ViT-L/14-336, i.e. 23 blocks; following the file");
  v.num_hidden_layers = blocks;
  config_.vision_feature_layer = run - blocks - 1;  // hidden_states[run], counted from the end
  config_.vision_feature_select_strategy = "default";
  config_.projector_hidden_act = Activation::GeluErf;

  PreprocessorConfig& p = preprocessor_;
  p.shortest_edge = v.image_size;
  p.crop_height = p.crop_width = v.image_size;
  for (const char* key : {"clip.vision.image_mean", "clip.vision.image_std"}) {
    if (!f.Has(key)) continue;  // CLIP's defaults stay
    const std::vector<float> vals = f.GetF32Array(key);
    if (vals.size() != 3) Fail(f.path(), ": key '", key, "' has ", vals.size(), " values, expected 3");
    auto& dst = std::string(key) == "clip.vision.image_mean" ? p.image_mean : p.image_std;
    for (int c = 0; c < 3; ++c) {
      if (std::string(key) == "clip.vision.image_std" && !(vals[c] > 0))
        Fail(f.path(), ": clip.vision.image_std[", c, "] = ", vals[c], " must be positive");
      dst[c] = vals[c];
    }
  }
  config_.source_json = LlavaConfigToJson(config_);
}

void GgufModel::Add(const GgufFile& file, const std::string& gguf_name, const std::string& canonical, int64_t rope_heads) {
  const GgufTensor* t = file.FindTensor(gguf_name);
  if (t == nullptr) Fail(file.path(), ": missing tensor '", gguf_name, "' (llava-hf '", canonical, "')");
  GgufModelTensor m;
  m.name = canonical;
  m.file = &file;
  m.stored = t;
  m.shape = t->shape;
  m.rope_heads = rope_heads;
  if (!m.is_float() && !Quantizable(t->type))
    Fail(m.Where(), " has type ", GgmlTypeName(t->type),
         ", which this engine cannot read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
  index_[canonical] = tensors_.size();
  tensors_.push_back(std::move(m));
}

void GgufModel::MapTensors() {
  const GgufFile& mm = *mmproj_;
  const GgufFile& tx = *text_;
  const VisionConfig& v = config_.vision;
  const TextConfig& t = config_.text;
  const std::string vm = "vision_tower.vision_model.";
  Add(mm, "v.class_embd", vm + "embeddings.class_embedding");
  Add(mm, "v.patch_embd.weight", vm + "embeddings.patch_embedding.weight");
  Add(mm, "v.position_embd.weight", vm + "embeddings.position_embedding.weight");
  Add(mm, "v.pre_ln.weight", vm + "pre_layrnorm.weight");
  Add(mm, "v.pre_ln.bias", vm + "pre_layrnorm.bias");
  if (mm.FindTensor("v.patch_embd.bias") != nullptr)
    notes_.push_back(mm.path() + ": tensor 'v.patch_embd.bias' is ignored (CLIP's patch embedding has no bias)");
  bool swapped_note = false;
  for (int i = 0; i < v.num_hidden_layers; ++i) {
    const std::string g = "v.blk." + Str(i) + ".";
    const std::string p = VisionLayerPrefix(i);
    for (const auto& [from, to] : {std::pair{"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
                                   {"attn_v", "self_attn.v_proj"}, {"attn_out", "self_attn.out_proj"},
                                   {"ln1", "layer_norm1"}, {"ln2", "layer_norm2"}}) {
      Add(mm, g + from + ".weight", p + to + ".weight");
      Add(mm, g + from + ".bias", p + to + ".bias");
    }
    // The legacy converter wrote CLIP's fc1 as ffn_down and fc2 as ffn_up; the shapes
    // tell which is which (fc1 is [intermediate, hidden]).
    const GgufTensor* up = mm.FindTensor(g + "ffn_up.weight");
    const GgufTensor* down = mm.FindTensor(g + "ffn_down.weight");
    const std::vector<int64_t> fc1_shape{v.intermediate_size, v.hidden_size};
    const bool swapped = up != nullptr && down != nullptr && v.intermediate_size != v.hidden_size &&
                         down->shape == fc1_shape && up->shape != fc1_shape;
    const std::string fc1 = swapped ? "ffn_down" : "ffn_up", fc2 = swapped ? "ffn_up" : "ffn_down";
    Add(mm, g + fc1 + ".weight", p + "mlp.fc1.weight");
    Add(mm, g + fc1 + ".bias", p + "mlp.fc1.bias");
    Add(mm, g + fc2 + ".weight", p + "mlp.fc2.weight");
    Add(mm, g + fc2 + ".bias", p + "mlp.fc2.bias");
    if (swapped && !swapped_note) {
      notes_.push_back(mm.path() + ": legacy mmproj layout: ffn_down holds CLIP's fc1 and ffn_up its fc2 (told by shape); read accordingly");
      swapped_note = true;
    }
  }
  Add(mm, "mm.0.weight", "multi_modal_projector.linear_1.weight");
  Add(mm, "mm.0.bias", "multi_modal_projector.linear_1.bias");
  Add(mm, "mm.2.weight", "multi_modal_projector.linear_2.weight");
  Add(mm, "mm.2.bias", "multi_modal_projector.linear_2.bias");

  Add(tx, "token_embd.weight", "language_model.model.embed_tokens.weight");
  for (int i = 0; i < t.num_hidden_layers; ++i) {
    const std::string g = "blk." + Str(i) + ".";
    const std::string p = TextLayerPrefix(i);
    Add(tx, g + "attn_norm.weight", p + "input_layernorm.weight");
    Add(tx, g + "ffn_norm.weight", p + "post_attention_layernorm.weight");
    const std::string sfx[] = {".weight", ".bias"};
    for (int b = 0; b < (t.attention_bias ? 2 : 1); ++b) {
      Add(tx, g + "attn_q" + sfx[b], p + "self_attn.q_proj" + sfx[b], t.num_attention_heads);
      Add(tx, g + "attn_k" + sfx[b], p + "self_attn.k_proj" + sfx[b], t.num_key_value_heads);
      Add(tx, g + "attn_v" + sfx[b], p + "self_attn.v_proj" + sfx[b]);
      Add(tx, g + "attn_output" + sfx[b], p + "self_attn.o_proj" + sfx[b]);
    }
    Add(tx, g + "ffn_gate.weight", p + "mlp.gate_proj.weight");
    Add(tx, g + "ffn_up.weight", p + "mlp.up_proj.weight");
    Add(tx, g + "ffn_down.weight", p + "mlp.down_proj.weight");
  }
  Add(tx, "output_norm.weight", "language_model.model.norm.weight");
  if (!t.tie_word_embeddings) Add(tx, "output.weight", "language_model.lm_head.weight");

  // Every tensor the config implies, with its exact shape (post_layernorm is not used by
  // LLaVA and not stored in mmproj files).
  for (const WeightSpec& spec : LlavaWeightTable(config_)) {
    if (spec.name.find("post_layernorm") != std::string::npos) continue;
    const GgufModelTensor* m = Find(spec.name);
    if (m == nullptr) Fail(origin(), ": no tensor maps to llava-hf '", spec.name, "'");
    if (m->shape != spec.shape)
      Fail(m->Where(), " has shape ", ShapeToString(m->shape), " but the file's hyperparameters imply ",
           ShapeToString(spec.shape), " (llava-hf '", spec.name, "')");
  }
}

}  // namespace ficoco
