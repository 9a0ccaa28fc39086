// `ficoco quantize`: writes a llava-hf model directory as a llama.cpp GGUF pair.
//  * OUT/<name>-<type>.gguf: the LLaMA text model (general.architecture llama, llama.cpp's
//    tensor names and keys, LLaMA q/k rows in ggml's RoPE order) with the SentencePiece
//    vocabulary embedded. 1-D tensors are F32; 2-D weights take the requested type when
//    their row length is a multiple of its block size (32; 256 for the k-quants), else F16.
//    The mix q4_k_m (llama.cpp's usual download) stores Q6_K for output.weight and for
//    attn_v and ffn_down in the first and last eighth of the layers and every third layer
//    in between (i < n/8, i >= 7n/8 or (i - n/8) % 3 == 2), Q4_K for the rest. The embedding and
//    output rows are cut to the tokenizer's pieces (llava-hf pads the vocabulary past them
//    with <image>, <pad> and filler rows that llama.cpp's LLaVA text models do not have).
//  * OUT/mmproj-<name>-f16.gguf: the CLIP blocks up to the feature layer and the projector
//    (general.architecture clip, the current converter's names: ffn_up = fc1), 2-D and 4-D
//    weights F16, 1-D tensors F32.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/ggml_type.h"

namespace ficoco {

struct GgufExportOptions {
  std::string in_dir;     // llava-hf directory
  std::string out_dir;    // created if missing
  std::string name;       // file name stem; default: the last component of in_dir
  std::string tokenizer;  // SentencePiece tokenizer.model; default: IN_DIR/tokenizer.model
  GgmlType type = GgmlType::F16;  // F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K
  bool q4_k_m = false;            // the Q4_K / Q6_K mix above (type must be Q4_K)
};

struct GgufExportResult {
  std::string model_path, mmproj_path;
  int64_t text_quantized = 0;  // text tensors stored in a block type (the requested one, or the mix's)
  int64_t text_f16 = 0;        // 2-D text tensors kept F16 (requested type F16, or rows not a multiple of 32)
  int64_t text_f32 = 0;        // 1-D text tensors
  std::vector<std::string> kept_f16;  // GGUF names of the 2-D tensors a block type could not take
  std::vector<std::string> q6_k;      // q4_k_m: the GGUF names stored as Q6_K
  int64_t vocab_rows = 0;      // rows of token_embd / output written
};

// "f16" | "bf16" | "q8_0" | "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q4_k" | "q6_k" (Error
// listing them otherwise).
GgmlType ParseExportType(const std::string& name);
// Those names and "q4_k_m": sets options.type and options.q4_k_m.
void SetExportType(const std::string& name, GgufExportOptions& options);
// llama.cpp's layer choice for the extra bits of q4_k_m (see above).
bool Q4KMUsesMoreBits(int layer, int n_layers);
// The lower-case spelling used in file names.
std::string ExportTypeName(GgmlType type);

// Validates the checkpoint (every tensor, the config's vision and projector settings) and the
// tokenizer, then streams both files (one tensor in memory at a time). Progress goes to `log`.
GgufExportResult ExportGgufPair(const GgufExportOptions& options, std::ostream& log);

}  // namespace ficoco
