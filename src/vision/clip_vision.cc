#include "vision/clip_vision.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/norm.h"

namespace ficoco {

Matrix ClipVisionTower::Embed(GemmContext& gemm, const PixelValues& pixels) const {
  const int p = cfg_.patch_size, g = cfg_.grid(), c = cfg_.num_channels, d = cfg_.hidden_size;
  if (pixels.height != cfg_.image_size || pixels.width != cfg_.image_size)
    Fail("vision tower: pixel_values are ", pixels.height, "x", pixels.width, ", the model expects ", cfg_.image_size,
         "x", cfg_.image_size);
  // Patchify (the stride-p convolution as a product): row = patch, col = (c, ky, kx).
  Matrix patches(static_cast<int64_t>(g) * g, static_cast<int64_t>(c) * p * p);
  for (int py = 0; py < g; ++py)
    for (int px = 0; px < g; ++px) {
      float* row = patches.row(py * g + px);
      for (int ch = 0; ch < c; ++ch)
        for (int ky = 0; ky < p; ++ky) {
          const float* src = pixels.chw.data() + (static_cast<size_t>(ch) * pixels.height + py * p + ky) * pixels.width + px * p;
          std::copy_n(src, p, row + (ch * p + ky) * p);
        }
    }
  Matrix patch_embeds;
  gemm.Linear(patches, w_.patch_embedding, patch_embeds);
  Matrix x(static_cast<int64_t>(g) * g + 1, d);
  for (int i = 0; i < d; ++i) x.at(0, i) = w_.class_embedding[i] + w_.position_embedding[i];
  for (int64_t t = 1; t < x.rows(); ++t)
    for (int i = 0; i < d; ++i) x.at(t, i) = patch_embeds.at(t - 1, i) + w_.position_embedding[t * d + i];
  Matrix y;
  LayerNorm(x, w_.pre_ln_weight, w_.pre_ln_bias, cfg_.layer_norm_eps, y);  // "pre_layrnorm"
  return y;
}

VisionOutput ClipVisionTower::Run(GemmContext& gemm, const PixelValues& pixels, const VisionRunOptions& options) const {
  VisionOutput out;
  out.hidden = Embed(gemm, pixels);
  out.meta = VisionTokenMeta(cfg_.grid());
  if (options.keep_hidden_states) out.hidden_states.push_back(out.hidden);
  const AttentionShape shape{cfg_.num_attention_heads, cfg_.num_attention_heads, cfg_.head_dim()};
  Matrix h, q, k, v, attn, proj, mlp;
  AttentionMask mask;
  std::vector<float> key_bias;
  const int num_layers = static_cast<int>(w_.layers.size());
  for (int li = 0; li < num_layers; ++li) {
    const VisionLayerWeights& l = w_.layers[static_cast<size_t>(li)];
    Matrix& x = out.hidden;
    // x = x + out_proj(attention(layer_norm1(x)))
    LayerNorm(x, l.ln1_weight, l.ln1_bias, cfg_.layer_norm_eps, h);
    gemm.Linear(h, l.q_proj, q);
    gemm.Linear(h, l.k_proj, k);
    gemm.Linear(h, l.v_proj, v);
    std::vector<float> probs;
    mask = AttentionMask{};
    if (options.proportional_attention && std::any_of(out.meta.begin(), out.meta.end(), [](const TokenMeta& m) { return m.size != 1.0f; })) {
      key_bias.resize(out.meta.size());
      for (size_t t = 0; t < out.meta.size(); ++t) key_bias[t] = std::log(out.meta[t].size);
      mask.key_bias = &key_bias;
    }
    MultiHeadAttention(gemm, q, k, v, shape, mask, attn, options.keep_attentions ? &probs : nullptr);
    gemm.Linear(attn, l.out_proj, proj);
    AddInPlace(x, proj);
    if (options.keep_attentions) out.attentions.push_back(std::move(probs));
    // Token reduction acts here, on the layer's own attention.
    if (options.hook) {
      AttentionSignals signals(q, k, shape, mask, &gemm);
      VisionHookContext ctx{li, num_layers, cfg_.grid(), x, out.meta, signals};
      options.hook(ctx);
      if (static_cast<int64_t>(out.meta.size()) != x.rows())
        Fail("vision layer ", li, ": reduction hook left ", x.rows(), " hidden rows but ", out.meta.size(), " token records");
    }
    // x = x + fc2(act(fc1(layer_norm2(x))))
    LayerNorm(x, l.ln2_weight, l.ln2_bias, cfg_.layer_norm_eps, h);
    gemm.Linear(h, l.fc1, mlp);
    ApplyActivation(cfg_.hidden_act, mlp);
    gemm.Linear(mlp, l.fc2, proj);
    AddInPlace(x, proj);
    if (options.keep_hidden_states) out.hidden_states.push_back(x);
  }
  if (options.output_hook && num_layers > 0) {
    if (q.rows() != out.hidden.rows())
      Fail("vision output hook: the last layer reduced its tokens (", q.rows(), " → ", out.hidden.rows(),
           "), so its attention no longer matches the output");
    AttentionSignals signals(q, k, shape, mask, &gemm);
    VisionHookContext ctx{num_layers - 1, num_layers, cfg_.grid(), out.hidden, out.meta, signals};
    options.output_hook(ctx);
    if (static_cast<int64_t>(out.meta.size()) != out.hidden.rows())
      Fail("vision output hook left ", out.hidden.rows(), " hidden rows but ", out.meta.size(), " token records");
  }
  return out;
}

Matrix SelectImageFeatures(const VisionOutput& out, const std::string& strategy, std::vector<TokenMeta>* meta) {
  std::vector<int32_t> rows;
  for (size_t i = 0; i < out.meta.size(); ++i)
    if (strategy == "full" || out.meta[i].role != TokenRole::Cls) rows.push_back(static_cast<int32_t>(i));
  Matrix features = out.hidden;
  features.KeepRows(rows);
  if (meta != nullptr) {
    meta->clear();
    for (int32_t r : rows) meta->push_back(out.meta[static_cast<size_t>(r)]);
  }
  return features;
}

}  // namespace ficoco
