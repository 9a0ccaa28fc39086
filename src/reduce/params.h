// Every knob of the FiCoCo methods, with the two presets of ficoco-spec §2.5 / §3.6.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ficoco {

enum class FicocoPreset {
  Paper,          // the equations as written (our resolution of their ambiguities)
  ReferenceCode,  // the official code's choices where they differ and are not plain bugs
};
FicocoPreset ParseFicocoPreset(const std::string& name);  // "paper" | "reference-code"
const char* FicocoPresetName(FicocoPreset preset);

// Position ids after an in-LLM reduction (baselines.md §12).
enum class PositionPolicy {
  KeepOriginal,  // survivors keep their prompt positions; decode step t sits at P + t
  Compact,       // every layer numbers its tokens 0..n−1 in order (cache rows included)
};
PositionPolicy ParsePositionPolicy(const std::string& name);  // "original" | "compact"
const char* PositionPolicyName(PositionPolicy policy);

struct ReductionParams {
  FicocoPreset preset = FicocoPreset::Paper;
  // V filter: s = λ·v̂ − (1−λ)·ĉ (paper Eq. 1); reference-code swaps the roles,
  // s = (1−λ)·v̂ − λ·ĉ (the code's `beta` multiplies the [CLS] term).
  float lambda = 0.35f;
  float beta = 0.6f;       // L filter: vision-vision vs vision-text term
  float gamma = 0.6f;      // L correlate: direct vs indirect (through text) term
  float epsilon = 0.998f;  // quantile for token-adaptive targets
  float penalty = 2.0f;    // V local-penalty coefficient (1 = off)
  int window = 2;          // V local-penalty window side
  // First reducing layer (0-based); −1 = the preset's choice scaled to the model's depth:
  // vision paper 11/24 ("12th layer"), reference-code 12/24; LLM paper 3/32 ("4th layer"),
  // reference-code 5/32.
  int vision_start = -1;
  int llm_start = -1;
  // FiCoCo-VL: share of the removed visual tokens that FiCoCo-V removes in the encoder
  // (the rest is FiCoCo-L's in the LLM). The paper does not give its split.
  float vl_split = 0.5f;
  PositionPolicy positions = PositionPolicy::KeepOriginal;

  // Baselines (baselines.md); each is used only by its method.
  bool proportional_attention = true;  // ToMe: add log(size) to attention logits in later layers
  bool evit_fuse = true;               // EViT: fold the inattentive tokens into one extra token (else drop)
  int fastv_k = 2;                     // FastV / DART: prune before LLM layer K (after layer K − 1's attention)
  std::string fastv_rank = "last-token";  // FastV ranking: "last-token" (its code) or "mean-received" (its paper)
  std::vector<int> pdrop_layers = {8, 16, 24};  // PyramidDrop: prune before these LLM layers
  float visionzip_contextual = 0.15625f;  // VisionZip: contextual share of the kept tokens (10/64: 54+10, 108+20, 162+30)
  int dart_pivots = 8;                 // DART: pivot tokens
  uint64_t seed = 0;                   // random baseline

  // Throws Error naming the parameter if a value is out of range.
  void Validate() const;
  int VisionStart(int encoder_layers) const;  // resolved against the encoder's depth (24 for CLIP-L)
  int LlmStart(int decoder_layers) const;
};

}  // namespace ficoco
