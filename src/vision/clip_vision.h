// CLIP ViT vision tower (LLaVA-1.5's image encoder), with a hook between each
// layer's attention residual and its MLP where token reduction can act.
#pragma once
#include <functional>
#include <vector>

#include "image/preprocess.h"
#include "kernels/gemm.h"
#include "model/attention_signals.h"
#include "model/config.h"
#include "model/llava_weights.h"
#include "model/token_meta.h"

namespace ficoco {

// Seen by a hook after layer `layer`'s attention residual, before its MLP. The hook
// may shrink `hidden` and `meta` together (same rows, same order); `attention` is
// this layer's attention over the token set it ran on (before the hook's change).
struct VisionHookContext {
  int layer = 0;
  int num_layers_run = 0;  // layers that run (the last one's output reaches the projector)
  int grid = 0;            // original patch grid side
  Matrix& hidden;
  std::vector<TokenMeta>& meta;
  const AttentionSignals& attention;
};
using VisionLayerHook = std::function<void(VisionHookContext&)>;

struct VisionRunOptions {
  VisionLayerHook hook;             // none: the plain forward pass
  // Called once after the last layer (its MLP included) with that layer's attention:
  // where methods acting between the encoder and the projector reduce (VisionZip,
  // pooling, ...). `layer` is the last layer's index.
  VisionLayerHook output_hook;
  // ToMe's proportional attention: add log(meta.size) of each key to its logits.
  bool proportional_attention = false;
  bool keep_hidden_states = false;  // embeddings + each layer's output (dumps, tests)
  bool keep_attentions = false;     // each layer's per-head probabilities [H, T, T]
};

struct VisionOutput {
  Matrix hidden;                   // output of the last layer run, CLS included, [T, D]
  std::vector<TokenMeta> meta;     // one per row of `hidden`
  std::vector<Matrix> hidden_states;
  std::vector<std::vector<float>> attentions;
};

class ClipVisionTower {
 public:
  ClipVisionTower(const VisionConfig& cfg, const VisionWeights& weights) : cfg_(cfg), w_(weights) {}

  // Runs embeddings and layers 0 .. weights.layers.size()-1 (only those whose output is used).
  VisionOutput Run(GemmContext& gemm, const PixelValues& pixels, const VisionRunOptions& options = {}) const;

 private:
  Matrix Embed(GemmContext& gemm, const PixelValues& pixels) const;
  const VisionConfig& cfg_;
  const VisionWeights& w_;
};

// Image features handed to the projector: rows of `out` without CLS ("default"
// strategy) or all rows ("full").
Matrix SelectImageFeatures(const VisionOutput& out, const std::string& strategy, std::vector<TokenMeta>* meta = nullptr);

}  // namespace ficoco
