// make-random: writes a complete llava-hf model directory (config.json,
// preprocessor_config.json, generation_config.json, weights) with random weights of
// a preset architecture, for tests and benchmarks without downloading a real model.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>

#include "model/config.h"
#include "tensor/dtype.h"

namespace ficoco {

struct MakeRandomOptions {
  std::string preset;             // "tiny", "llava-1.5-7b", "llava-1.5-13b"
  DType dtype = DType::F16;       // F16, BF16 or F32
  uint64_t seed = 0;
  std::string out_dir;            // created if missing; existing weight files are replaced
  int64_t max_shard_bytes = 5'000'000'000;  // above this total the weights are sharded
  int vocab_size_override = 0;    // > 0: use this vocabulary size instead of the preset's
  int image_token_index_override = 0;  // > 0: id of <image> (and <pad> = id + 1), e.g. a smaller tokenizer's size
};

// The architecture of a preset; throws Error listing the valid names.
LlavaConfig PresetConfig(const std::string& preset);

// Writes the model directory, streaming the weights (memory use is one chunk buffer,
// not a tensor). A weight's values depend only on the seed and its name, so they do not
// change with sharding or dtype order. Progress goes to `log`.
void MakeRandomCheckpoint(const MakeRandomOptions& options, std::ostream& log);

}  // namespace ficoco
