#include "model/llava_weights.h"

#include <algorithm>
#include <cctype>

#include "base/error.h"
#include "model/weight_table.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

namespace ficoco {

void ValidateCheckpoint(const Checkpoint& ckpt, const LlavaConfig& cfg) {
  for (const WeightSpec& spec : LlavaWeightTable(cfg)) {
    const TensorView* t = ckpt.Find(spec.name);
    if (t == nullptr) Fail("checkpoint ", ckpt.dir(), ": missing tensor '", spec.name, "'");
    if (t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
      Fail("checkpoint ", ckpt.dir(), ": tensor '", spec.name, "' has unsupported dtype ", DTypeName(t->dtype),
           " (expected F32, F16 or BF16)");
    if (t->shape != spec.shape)
      Fail("checkpoint ", ckpt.dir(), ": tensor '", spec.name, "' has shape ", t->ShapeString(),
           ", config implies ", ShapeToString(spec.shape));
  }
}

namespace {

std::vector<float> Vec(const Checkpoint& ckpt, const std::string& name) { return ckpt.Get(name).ToF32(); }

// A linear layer held as options.weights asks (see WeightType).
// `release`: false for a head tied to the embeddings, whose view must stay valid.
LinearWeight PreparedLinear(const Checkpoint& ckpt, const std::string& name, bool has_bias, const LoadOptions& options,
                        bool release = true) {
  const std::string wname = name + ".weight";
  const TensorView* b = has_bias ? &ckpt.Get(name + ".bias") : nullptr;
  const Checkpoint::QuantizedTensor* q = ckpt.FindQuantized(wname);
  const GgmlType want = options.weights == WeightType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q4_0;
  const bool quantize = options.weights == WeightType::Q8_0 || options.weights == WeightType::Q4_0;
  // Stored blocks the int8 kernels read as they are: kept unless another type is asked for.
  if (q != nullptr && LinearQuantSupports(q->type) && q->shape.size() == 2 &&
      (options.weights == WeightType::Checkpoint || (quantize && q->type == want))) {
    LinearWeight lw(q->type, q->blocks, q->shape[0], q->shape[1], b, wname);
    if (release) ckpt.ReleasePages(wname);
    return lw;
  }
  const TensorView& w = ckpt.Get(wname);  // float, or blocks widened to F32 by the checkpoint
  LinearWeight lw;
  if (quantize && w.shape.size() == 2 && w.shape[1] % 32 == 0) {
    lw = LinearWeight(w, b, want);
  } else if (options.weights == WeightType::F16 || options.weights == WeightType::BF16) {
    lw = LinearWeight(w, b, options.compute, options.weights == WeightType::F16 ? DType::F16 : DType::BF16);
  } else {
    lw = LinearWeight(w, b, options.compute);
  }
  if (lw.converted() && release) ckpt.ReleasePages(wname);
  return lw;
}

// A vision/projector linear layer: held as stored (GGUF Q8_0/Q4_0 blocks included) or
// converted for `compute`, mapped pages released once a copy exists.
LinearWeight Linear(const Checkpoint& ckpt, const std::string& name, bool has_bias, ComputeType compute) {
  LoadOptions as_stored;
  as_stored.compute = compute;
  return PreparedLinear(ckpt, name, has_bias, as_stored);
}

EmbeddingTable LoadEmbeddingTable(const Checkpoint& ckpt, const std::string& name) {
  EmbeddingTable e;
  const Checkpoint::QuantizedTensor* q = ckpt.FindQuantized(name);
  if (q != nullptr && q->shape.size() == 2 && q->shape[1] % static_cast<int64_t>(QuantBlockElements(q->type)) == 0) {
    e.block_type = q->type;
    e.blocks = static_cast<const uint8_t*>(q->blocks);
    e.vocab = q->shape[0];
    e.dim = q->shape[1];
    return e;
  }
  e.floats = ckpt.Get(name);
  if (e.floats.shape.size() != 2) Fail("tensor '", name, "': the token embedding must be 2-D, got ", e.floats.ShapeString());
  return e;
}

}  // namespace

void EmbeddingTable::Row(int64_t id, float* out) const {
  if (blocks != nullptr) {
    const size_t row_bytes = QuantRowBytes(block_type, dim);
    Dequantize(block_type, blocks + static_cast<size_t>(id) * row_bytes, out, dim);
    return;
  }
  const int64_t d = floats.shape[1];
  ConvertToF32(floats.dtype, static_cast<const uint8_t*>(floats.data) + static_cast<size_t>(id) * d * DTypeSize(floats.dtype),
               out, d);
}

VisionWeights LoadVisionWeights(const Checkpoint& ckpt, const LlavaConfig& cfg, ComputeType compute) {
  const VisionConfig& v = cfg.vision;
  const std::string vm = "vision_tower.vision_model.";
  VisionWeights w;
  w.class_embedding = Vec(ckpt, vm + "embeddings.class_embedding");
  TensorView patch = ckpt.Get(vm + "embeddings.patch_embedding.weight");
  patch.shape = {v.hidden_size, static_cast<int64_t>(v.num_channels) * v.patch_size * v.patch_size};
  w.patch_embedding = LinearWeight(patch, nullptr, compute);
  w.position_embedding = Vec(ckpt, vm + "embeddings.position_embedding.weight");
  w.pre_ln_weight = Vec(ckpt, vm + "pre_layrnorm.weight");
  w.pre_ln_bias = Vec(ckpt, vm + "pre_layrnorm.bias");
  for (int i = 0; i <= cfg.vision_last_layer(); ++i) {
    const std::string p = VisionLayerPrefix(i);
    VisionLayerWeights l;
    l.ln1_weight = Vec(ckpt, p + "layer_norm1.weight");
    l.ln1_bias = Vec(ckpt, p + "layer_norm1.bias");
    l.ln2_weight = Vec(ckpt, p + "layer_norm2.weight");
    l.ln2_bias = Vec(ckpt, p + "layer_norm2.bias");
    l.q_proj = Linear(ckpt, p + "self_attn.q_proj", true, compute);
    l.k_proj = Linear(ckpt, p + "self_attn.k_proj", true, compute);
    l.v_proj = Linear(ckpt, p + "self_attn.v_proj", true, compute);
    l.out_proj = Linear(ckpt, p + "self_attn.out_proj", true, compute);
    l.fc1 = Linear(ckpt, p + "mlp.fc1", true, compute);
    l.fc2 = Linear(ckpt, p + "mlp.fc2", true, compute);
    w.layers.push_back(std::move(l));
  }
  return w;
}

ProjectorWeights LoadProjectorWeights(const Checkpoint& ckpt, ComputeType compute) {
  ProjectorWeights w;
  w.linear_1 = Linear(ckpt, "multi_modal_projector.linear_1", true, compute);
  w.linear_2 = Linear(ckpt, "multi_modal_projector.linear_2", true, compute);
  return w;
}

WeightType ParseWeightType(const std::string& name) {
  if (name == "auto") return WeightType::Checkpoint;
  if (name == "f16") return WeightType::F16;
  if (name == "bf16") return WeightType::BF16;
  if (name == "q8_0") return WeightType::Q8_0;
  if (name == "q4_0") return WeightType::Q4_0;
  Fail("unknown weight type '", name, "' (expected auto, f16, bf16, q8_0 or q4_0)");
}

const char* WeightTypeName(WeightType t) {
  switch (t) {
    case WeightType::F16: return "f16";
    case WeightType::BF16: return "bf16";
    case WeightType::Q8_0: return "q8_0";
    case WeightType::Q4_0: return "q4_0";
    default: return "auto";
  }
}

std::string DescribeTextWeights(const TextWeights& w) {
  std::vector<std::string> kinds;
  auto add = [&](const LinearWeight& lw) {
    std::string k = lw.quantized() ? std::string(GgmlTypeName(lw.quant_type())) : std::string(DTypeName(lw.weight().dtype));
    for (char& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  };
  for (const TextLayerWeights& l : w.layers)
    for (const LinearWeight* lw : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj})
      add(*lw);
  add(w.lm_head);
  if (kinds.size() == 1) return kinds[0];
  std::string s = "mixed:";
  for (size_t i = 0; i < kinds.size(); ++i) s += (i ? " + " : " ") + kinds[i];
  return s;
}

TextWeights LoadTextWeights(const Checkpoint& ckpt, const LlavaConfig& cfg, ComputeType compute) {
  LoadOptions options;
  options.compute = compute;
  return LoadTextWeights(ckpt, cfg, options);
}

TextWeights LoadTextWeights(const Checkpoint& ckpt, const LlavaConfig& cfg, const LoadOptions& options) {
  const TextConfig& t = cfg.text;
  TextWeights w;
  w.embed_tokens = LoadEmbeddingTable(ckpt, "language_model.model.embed_tokens.weight");
  for (int i = 0; i < t.num_hidden_layers; ++i) {
    const std::string p = TextLayerPrefix(i);
    TextLayerWeights l;
    l.input_norm = Vec(ckpt, p + "input_layernorm.weight");
    l.post_attention_norm = Vec(ckpt, p + "post_attention_layernorm.weight");
    l.q_proj = PreparedLinear(ckpt, p + "self_attn.q_proj", t.attention_bias, options);
    l.k_proj = PreparedLinear(ckpt, p + "self_attn.k_proj", t.attention_bias, options);
    l.v_proj = PreparedLinear(ckpt, p + "self_attn.v_proj", t.attention_bias, options);
    l.o_proj = PreparedLinear(ckpt, p + "self_attn.o_proj", t.attention_bias, options);
    l.gate_proj = PreparedLinear(ckpt, p + "mlp.gate_proj", false, options);
    l.up_proj = PreparedLinear(ckpt, p + "mlp.up_proj", false, options);
    l.down_proj = PreparedLinear(ckpt, p + "mlp.down_proj", false, options);
    w.layers.push_back(std::move(l));
  }
  w.norm = Vec(ckpt, "language_model.model.norm.weight");
  const std::string head = t.tie_word_embeddings ? "language_model.model.embed_tokens" : "language_model.lm_head";
  w.lm_head = PreparedLinear(ckpt, head, false, options, !t.tie_word_embeddings);
  return w;
}

}  // namespace ficoco
