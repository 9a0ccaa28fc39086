// Collects named tensors and writes them as one safetensors file, with the names,
// shapes and layouts of the reference golden files (llava-tiny fixture).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/llava_model.h"
#include "reduce/trace.h"

namespace ficoco {

class TensorDump {
 public:
  void AddF32(const std::string& name, std::vector<int64_t> shape, const float* data);
  void AddI64(const std::string& name, std::vector<int64_t> shape, const std::vector<int64_t>& data);
  void Write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries_;
};

// pixel_values [1,3,S,S], vision.selected [1,T,D] (CLS at row 0), projector.image_features [1,N,Dt].
void AddEncodeTensors(const EncodedImage& e, TensorDump& dump);

// For every reducing layer, reduce.<vision|pre_llm|llm>.<layer>.{kept,discarded,src,dst} (int64
// original token indices: CLS = 0 and patch p = p + 1 in the vision encoder, prompt
// sequence positions in the LLM), .alpha (float32, one per src/dst pair) and .scores
// (float32, the filter's final score per candidate in current order).
void AddReductionTensors(const ReductionTrace& trace, TensorDump& dump);

}  // namespace ficoco
