// Every weight of a LLaVA-1.5 checkpoint, checked by name, dtype and shape
// against the config before use, and prepared for the chosen arithmetic.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "kernels/gemm.h"
#include "kernels/kv_rows.h"
#include "model/config.h"
#include "tensor/ggml_type.h"

namespace ficoco {

struct VisionLayerWeights {
  std::vector<float> ln1_weight, ln1_bias, ln2_weight, ln2_bias;
  LinearWeight q_proj, k_proj, v_proj, out_proj, fc1, fc2;
};

struct VisionWeights {
  std::vector<float> class_embedding;     // [D]
  LinearWeight patch_embedding;           // conv [D, C, p, p] viewed as [D, C*p*p], no bias
  std::vector<float> position_embedding;  // [(N+1) * D]
  std::vector<float> pre_ln_weight, pre_ln_bias;
  std::vector<VisionLayerWeights> layers;  // only the layers whose output is used
};

struct ProjectorWeights {
  LinearWeight linear_1, linear_2;
};

struct TextLayerWeights {
  std::vector<float> input_norm, post_attention_norm;
  LinearWeight q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
};

// The token embedding table [V, D]: a float view, or (GGUF) the stored ggml blocks, of
// which only the looked-up rows are ever widened (a Q4_0 7B table widened whole would be
// 0.5 GB of F32 for a few rows per step).
struct EmbeddingTable {
  TensorView floats;                      // float tensors (and safetensors)
  GgmlType block_type = GgmlType::F32;    // else the ggml block type of `blocks`
  const uint8_t* blocks = nullptr;        // rows of ggml blocks, when not floats
  int64_t rows() const { return blocks != nullptr ? vocab : floats.shape[0]; }
  int64_t cols() const { return blocks != nullptr ? dim : floats.shape[1]; }
  // Row `id` as F32 into out[0..cols()).
  void Row(int64_t id, float* out) const;
  int64_t vocab = 0, dim = 0;             // shape of `blocks`
};

struct TextWeights {
  EmbeddingTable embed_tokens;
  std::vector<TextLayerWeights> layers;
  std::vector<float> norm;
  LinearWeight lm_head;
};

// How the text model's linear layers (q/k/v/o, gate/up/down, lm_head) are held:
//  Checkpoint: as stored (today's behaviour; Q8_0/Q4_0 blocks of a GGUF stay quantized);
//  F16/BF16:   converted to that 16-bit type at load (quantized GGUF tensors dequantized);
//  Q8_0/Q4_0:  quantized at load with ggml's quantizers and multiplied by the int8 kernels
//              (kernels/quant_gemm.h). Layers whose input width is not a multiple of 32
//              cannot be blocked and stay as stored.
// The vision tower and projector always stay 16-bit, as llama.cpp keeps the mmproj F16.
enum class WeightType { Checkpoint, F16, BF16, Q8_0, Q4_0 };
// "auto" (= Checkpoint), "f16", "bf16", "q8_0", "q4_0"; Error naming the accepted values.
WeightType ParseWeightType(const std::string& name);
const char* WeightTypeName(WeightType t);  // the spellings above

struct LoadOptions {
  ComputeType compute = ComputeType::BF16;
  WeightType weights = WeightType::Checkpoint;
  // Element type of the decoder's KV cache; unset = f32 with f32 compute (reference
  // parity), else f16 (half the bytes each decode step reads, as llama.cpp's default).
  std::optional<KvType> kv_cache;
  bool load_text = true;  // `encode` needs only the vision side
};

// LoadOptions::kv_cache resolved: the choice if made, else f32 for f32 compute, f16 otherwise.
inline KvType ResolveKvCache(const std::optional<KvType>& choice, ComputeType compute) {
  return choice.value_or(compute == ComputeType::F32 ? KvType::F32 : KvType::F16);
}

// Checks every tensor of LlavaWeightTable(cfg): present, floating dtype, exact shape.
// Throws Error naming the checkpoint and the first bad tensor.
void ValidateCheckpoint(const Checkpoint& ckpt, const LlavaConfig& cfg);

VisionWeights LoadVisionWeights(const Checkpoint& ckpt, const LlavaConfig& cfg, ComputeType compute);
ProjectorWeights LoadProjectorWeights(const Checkpoint& ckpt, ComputeType compute);
TextWeights LoadTextWeights(const Checkpoint& ckpt, const LlavaConfig& cfg, ComputeType compute);
// The same with options.weights applied to the linear layers.
TextWeights LoadTextWeights(const Checkpoint& ckpt, const LlavaConfig& cfg, const LoadOptions& options);
// What the text linears hold after loading with `w` ("q4_0", "bf16", "f16 (stored)",
// "mixed: q4_0 + f16", ...): for --json output and logs.
std::string DescribeTextWeights(const TextWeights& w);

}  // namespace ficoco
