// A model directory in the Hugging Face llava-hf layout: config.json,
// preprocessor_config.json and the weights, either model.safetensors or shards
// listed by model.safetensors.index.json. Tensors are found by their llava-hf
// (transformers < 4.52) name; files written with the newer names
// (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*,
// lm_head.weight) are mapped onto the old ones when opened.
// A Checkpoint can also present a llama.cpp GGUF pair (io/gguf_model.h) under the same
// canonical names, so the weight loading code is shared.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"
#include "tensor/ggml_type.h"

namespace ficoco {

class GgufModel;
struct GgufModelTensor;

class Checkpoint {
 public:
  // Opens every weight file of `dir` (throws Error naming the missing/bad file).
  explicit Checkpoint(const std::string& dir);
  // The tensors of a GGUF pair. Float tensors stored in Hugging Face order are views of the
  // mapped files; the others (ggml blocks, LLaMA q/k rows in RoPE order) are converted on
  // first Find/Get: block types to F32, float types kept, rows put in Hugging Face order.
  // Loading is single-threaded: Find/Get/ReleasePages must not race.
  explicit Checkpoint(std::shared_ptr<const GgufModel> gguf);
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  // The directory, or "MODEL.gguf + MMPROJ.gguf" for a GGUF pair.
  const std::string& dir() const { return dir_; }
  const GgufModel* gguf() const { return gguf_.get(); }
  // Tensor by canonical (old-scheme) name, or nullptr.
  const TensorView* Find(const std::string& canonical_name) const;
  // Like Find, but throws "checkpoint DIR: missing tensor 'NAME'".
  const TensorView& Get(const std::string& canonical_name) const;
  // Every tensor, by canonical name (ignored buffers such as position_ids excluded).
  std::vector<std::string> Names() const;
  // Drops a tensor's mapped pages from the process (after conversion at load). For a GGUF
  // tensor it also frees the copy the caller used: the reordered blocks if FindQuantized was
  // called, else the converted Find/Get copy (a later call makes it again). Pointers the
  // caller got from those calls must not be used afterwards.
  void ReleasePages(const std::string& canonical_name) const;
  // Bytes of the converted and reordered copies of GGUF tensors held now (0 for safetensors).
  size_t HeldCopyBytes() const;

  // A GGUF tensor stored in ggml blocks (Q8_0, Q4_0, ...), rows in Hugging Face order,
  // ready for LinearWeight's block constructor; nullptr for float tensors and safetensors.
  struct QuantizedTensor {
    std::string name;            // canonical name
    GgmlType type;
    std::vector<int64_t> shape;  // PyTorch order
    const void* blocks;
    size_t nbytes;
  };
  const QuantizedTensor* FindQuantized(const std::string& canonical_name) const;

  // Maps a name of either scheme to the canonical llava-hf one.
  static std::string CanonicalName(const std::string& name);

 private:
  struct Entry {
    const SafetensorsFile* file = nullptr;        // safetensors
    const TensorView* view = nullptr;             // safetensors, or a GGUF float tensor viewed in place
    const GgufModelTensor* gguf = nullptr;        // GGUF tensors
  };
  struct Converted;      // a GGUF tensor converted on first use
  struct QuantizedSlot;  // a GGUF block tensor handed out by FindQuantized
  std::string dir_;
  std::shared_ptr<const GgufModel> gguf_;
  std::vector<std::unique_ptr<TensorView>> gguf_views_;
  mutable std::unordered_map<std::string, std::unique_ptr<Converted>> converted_;
  mutable std::unordered_map<std::string, std::unique_ptr<QuantizedSlot>> quantized_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, Entry> by_name_;
};

}  // namespace ficoco
