// `ficoco quantize`: writes a llava-hf model directory as a llama.cpp GGUF pair.
//  * OUT/<name>-<type>.gguf: the LLaMA text model (general.architecture llama, llama.cpp's
//    tensor names and keys, LLaMA q/k rows in ggml's RoPE order) with the SentencePiece
//    vocabulary embedded. 1-D tensors are F32; 2-D weights take the requested type when
//    their row length is a multiple of 32 (the block size), else F16. The embedding and
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
  GgmlType type = GgmlType::F16;  // F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
};

struct GgufExportResult {
  std::string model_path, mmproj_path;
  int64_t text_quantized = 0;  // text tensors stored in the requested block type
  int64_t text_f16 = 0;        // 2-D text tensors kept F16 (requested type F16, or rows not a multiple of 32)
  int64_t text_f32 = 0;        // 1-D text tensors
  std::vector<std::string> kept_f16;  // GGUF names of the 2-D tensors a block type could not take
  int64_t vocab_rows = 0;      // rows of token_embd / output written
};

// "f16" | "bf16" | "q8_0" | "q4_0" | "q4_1" | "q5_0" | "q5_1" (Error listing them otherwise).
GgmlType ParseExportType(const std::string& name);
// The lower-case spelling used in file names.
std::string ExportTypeName(GgmlType type);

// Validates the checkpoint (every tensor, the config's vision and projector settings) and the
// tokenizer, then streams both files (one tensor in memory at a time). Progress goes to `log`.
GgufExportResult ExportGgufPair(const GgufExportOptions& options, std::ostream& log);

}  // namespace ficoco
