#include "model/weight_table.h"

namespace ficoco {

std::string VisionLayerPrefix(int layer) {
  return "vision_tower.vision_model.encoder.layers." + std::to_string(layer) + ".";
}

std::string TextLayerPrefix(int layer) { return "language_model.model.layers." + std::to_string(layer) + "."; }

std::vector<WeightSpec> LlavaWeightTable(const LlavaConfig& cfg) {
  const VisionConfig& v = cfg.vision;
  const TextConfig& t = cfg.text;
  const int64_t dv = v.hidden_size, iv = v.intermediate_size;
  const int64_t dt = t.hidden_size, it = t.intermediate_size;
  const int64_t kv = static_cast<int64_t>(t.num_key_value_heads) * t.head_dim();
  std::vector<WeightSpec> w;
  auto add = [&](std::string name, std::vector<int64_t> shape, WeightPart part) {
    w.push_back({std::move(name), std::move(shape), part});
  };
  const std::string vm = "vision_tower.vision_model.";
  add(vm + "embeddings.class_embedding", {dv}, WeightPart::Vision);
  add(vm + "embeddings.patch_embedding.weight", {dv, v.num_channels, v.patch_size, v.patch_size}, WeightPart::Vision);
  add(vm + "embeddings.position_embedding.weight", {v.num_positions(), dv}, WeightPart::Vision);
  add(vm + "pre_layrnorm.weight", {dv}, WeightPart::Vision);
  add(vm + "pre_layrnorm.bias", {dv}, WeightPart::Vision);
  for (int i = 0; i < v.num_hidden_layers; ++i) {
    const std::string p = VisionLayerPrefix(i);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add(p + "self_attn." + proj + ".weight", {dv, dv}, WeightPart::Vision);
      add(p + "self_attn." + proj + ".bias", {dv}, WeightPart::Vision);
    }
    add(p + "layer_norm1.weight", {dv}, WeightPart::Vision);
    add(p + "layer_norm1.bias", {dv}, WeightPart::Vision);
    add(p + "mlp.fc1.weight", {iv, dv}, WeightPart::Vision);
    add(p + "mlp.fc1.bias", {iv}, WeightPart::Vision);
    add(p + "mlp.fc2.weight", {dv, iv}, WeightPart::Vision);
    add(p + "mlp.fc2.bias", {dv}, WeightPart::Vision);
    add(p + "layer_norm2.weight", {dv}, WeightPart::Vision);
    add(p + "layer_norm2.bias", {dv}, WeightPart::Vision);
  }
  add(vm + "post_layernorm.weight", {dv}, WeightPart::Vision);
  add(vm + "post_layernorm.bias", {dv}, WeightPart::Vision);

  add("multi_modal_projector.linear_1.weight", {dt, dv}, WeightPart::Projector);
  add("multi_modal_projector.linear_1.bias", {dt}, WeightPart::Projector);
  add("multi_modal_projector.linear_2.weight", {dt, dt}, WeightPart::Projector);
  add("multi_modal_projector.linear_2.bias", {dt}, WeightPart::Projector);

  add("language_model.model.embed_tokens.weight", {t.vocab_size, dt}, WeightPart::Text);
  for (int i = 0; i < t.num_hidden_layers; ++i) {
    const std::string p = TextLayerPrefix(i);
    add(p + "self_attn.q_proj.weight", {dt, dt}, WeightPart::Text);
    add(p + "self_attn.k_proj.weight", {kv, dt}, WeightPart::Text);
    add(p + "self_attn.v_proj.weight", {kv, dt}, WeightPart::Text);
    add(p + "self_attn.o_proj.weight", {dt, dt}, WeightPart::Text);
    if (t.attention_bias) {
      add(p + "self_attn.q_proj.bias", {dt}, WeightPart::Text);
      add(p + "self_attn.k_proj.bias", {kv}, WeightPart::Text);
      add(p + "self_attn.v_proj.bias", {kv}, WeightPart::Text);
      add(p + "self_attn.o_proj.bias", {dt}, WeightPart::Text);
    }
    add(p + "mlp.gate_proj.weight", {it, dt}, WeightPart::Text);
    add(p + "mlp.up_proj.weight", {it, dt}, WeightPart::Text);
    add(p + "mlp.down_proj.weight", {dt, it}, WeightPart::Text);
    add(p + "input_layernorm.weight", {dt}, WeightPart::Text);
    add(p + "post_attention_layernorm.weight", {dt}, WeightPart::Text);
  }
  add("language_model.model.norm.weight", {dt}, WeightPart::Text);
  if (!t.tie_word_embeddings) add("language_model.lm_head.weight", {t.vocab_size, dt}, WeightPart::Text);
  return w;
}

}  // namespace ficoco
