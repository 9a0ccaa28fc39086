#include "model/llava_weights.h"

#include "base/error.h"
#include "model/weight_table.h"

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

// A prepared linear layer; releases the mapped pages once a converted copy exists.
LinearWeight Linear(const Checkpoint& ckpt, const std::string& name, bool has_bias, ComputeType compute) {
  const TensorView& w = ckpt.Get(name + ".weight");
  const TensorView* b = has_bias ? &ckpt.Get(name + ".bias") : nullptr;
  LinearWeight lw(w, b, compute);
  if (lw.converted()) ckpt.ReleasePages(name + ".weight");
  return lw;
}

std::vector<float> Vec(const Checkpoint& ckpt, const std::string& name) { return ckpt.Get(name).ToF32(); }

}  // namespace

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

TextWeights LoadTextWeights(const Checkpoint& ckpt, const LlavaConfig& cfg, ComputeType compute) {
  const TextConfig& t = cfg.text;
  TextWeights w;
  w.embed_tokens = ckpt.Get("language_model.model.embed_tokens.weight");
  for (int i = 0; i < t.num_hidden_layers; ++i) {
    const std::string p = TextLayerPrefix(i);
    TextLayerWeights l;
    l.input_norm = Vec(ckpt, p + "input_layernorm.weight");
    l.post_attention_norm = Vec(ckpt, p + "post_attention_layernorm.weight");
    l.q_proj = Linear(ckpt, p + "self_attn.q_proj", t.attention_bias, compute);
    l.k_proj = Linear(ckpt, p + "self_attn.k_proj", t.attention_bias, compute);
    l.v_proj = Linear(ckpt, p + "self_attn.v_proj", t.attention_bias, compute);
    l.o_proj = Linear(ckpt, p + "self_attn.o_proj", t.attention_bias, compute);
    l.gate_proj = Linear(ckpt, p + "mlp.gate_proj", false, compute);
    l.up_proj = Linear(ckpt, p + "mlp.up_proj", false, compute);
    l.down_proj = Linear(ckpt, p + "mlp.down_proj", false, compute);
    w.layers.push_back(std::move(l));
  }
  w.norm = Vec(ckpt, "language_model.model.norm.weight");
  const std::string head = t.tie_word_embeddings ? "language_model.model.embed_tokens" : "language_model.lm_head";
  w.lm_head = Linear(ckpt, head, false, compute);
  return w;
}

}  // namespace ficoco
