// A LLaVA-1.5 model as llama.cpp stores it: a GGUF pair of the text model
// (`general.architecture = llama`) and the "mmproj" (`general.architecture = clip`: CLIP
// vision tower + LLaVA's MLP projector). Both files are mapped; their hyperparameters become
// a LlavaConfig and PreprocessorConfig, and every tensor is listed under its canonical
// llava-hf name with what it takes to read it in the Hugging Face layout. Differences to
// llama.cpp's own reading (vision layer count, activations) are in docs/gguf.md.
//
// (This io/ file uses model/config.h: the config structs are plain data with no model code.)
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"

namespace ficoco {

struct GgufModelTensor {
  std::string name;             // canonical llava-hf name
  const GgufFile* file = nullptr;
  const GgufTensor* stored = nullptr;
  std::vector<int64_t> shape;   // PyTorch order (the stored dims reversed)
  // > 0: the rows are LLaMA q/k projection rows in ggml's RoPE order for this many heads
  // (see RopeRowToGguf); they are put back in Hugging Face order when read.
  int64_t rope_heads = 0;

  GgmlType type() const { return stored->type; }
  // F32, F16 or BF16: readable as a TensorView.
  bool is_float() const;
  // "FILE: tensor 'blk.0.attn_q.weight'" for messages.
  std::string Where() const;
};

class GgufModel {
 public:
  // Opens and validates the pair: architectures, hyperparameters, every tensor the config
  // needs (present, readable type, exact shape). Throws Error naming the file and the
  // key or tensor at fault.
  GgufModel(const std::string& model_path, const std::string& mmproj_path);

  const LlavaConfig& config() const { return config_; }
  const PreprocessorConfig& preprocessor() const { return preprocessor_; }
  // What the loader decided that a user should know (legacy names, vision layer choice).
  const std::vector<std::string>& notes() const { return notes_; }
  const GgufFile& text_file() const { return *text_; }
  const GgufFile& mmproj_file() const { return *mmproj_; }
  // "MODEL.gguf + MMPROJ.gguf", for messages.
  std::string origin() const;

  // Every tensor the engine uses, by canonical name.
  const std::vector<GgufModelTensor>& tensors() const { return tensors_; }
  const GgufModelTensor* Find(const std::string& canonical_name) const;

 private:
  void ReadTextConfig();
  void ReadVisionConfig();
  void MapTensors();
  void Add(const GgufFile& file, const std::string& gguf_name, const std::string& canonical, int64_t rope_heads = 0);

  std::unique_ptr<GgufFile> text_, mmproj_;
  LlavaConfig config_;
  PreprocessorConfig preprocessor_;
  std::vector<std::string> notes_;
  std::vector<GgufModelTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// llama.cpp's converter reorders the rows of each head of LLaMA's q and k projections so
// that the two halves rotated together by Hugging Face's rotate_half become adjacent pairs
// (ggml's RoPE rotates elements 2i and 2i+1): within a head of `head_dim` rows, the
// Hugging Face row i * head_dim/2 + j (i in {0, 1}) is stored at row 2j + i.
// Returns the stored row of Hugging Face row `hf_row` (any head).
int64_t RopeRowToGguf(int64_t hf_row, int64_t head_dim);

// The tensor's bytes in its stored type, rows in Hugging Face order (a copy).
std::vector<uint8_t> ReadRowsHfOrder(const GgufModelTensor& t);
// The tensor widened to float32, rows in Hugging Face order.
std::vector<float> ReadAsF32(const GgufModelTensor& t);

}  // namespace ficoco
