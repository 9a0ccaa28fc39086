// A model directory in the Hugging Face llava-hf layout: config.json,
// preprocessor_config.json and the weights, either model.safetensors or shards
// listed by model.safetensors.index.json. Tensors are found by their llava-hf
// (transformers < 4.52) name; files written with the newer names
// (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*,
// lm_head.weight) are mapped onto the old ones when opened.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"

namespace ficoco {

class Checkpoint {
 public:
  // Opens every weight file of `dir` (throws Error naming the missing/bad file).
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // Tensor by canonical (old-scheme) name, or nullptr.
  const TensorView* Find(const std::string& canonical_name) const;
  // Like Find, but throws "checkpoint DIR: missing tensor 'NAME'".
  const TensorView& Get(const std::string& canonical_name) const;
  // Every tensor, by canonical name (ignored buffers such as position_ids excluded).
  std::vector<std::string> Names() const;
  // Drops a tensor's mapped pages from the process (after conversion at load).
  void ReleasePages(const std::string& canonical_name) const;

  // Maps a name of either scheme to the canonical llava-hf one.
  static std::string CanonicalName(const std::string& name);

 private:
  struct Entry {
    const SafetensorsFile* file;
    const TensorView* view;
  };
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, Entry> by_name_;
};

}  // namespace ficoco
