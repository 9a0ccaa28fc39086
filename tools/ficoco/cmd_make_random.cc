// `ficoco make-random`: write a random-weight llava-hf checkpoint with real shapes.
#include <iostream>

#include "base/error.h"
#include "base/timer.h"
#include "commands.h"
#include "engine/make_random.h"

namespace ficoco::cli {
namespace {

struct MakeRandomArgs {
  std::string preset, dtype = "f16", out;
  uint64_t seed = 0;
  double max_shard_gb = 5.0;
  int vocab_size = 0;
  int image_token_index = 0;
};

int RunMakeRandom(const MakeRandomArgs& a) {
  MakeRandomOptions o;
  o.preset = a.preset;
  if (a.dtype == "f16") o.dtype = DType::F16;
  else if (a.dtype == "bf16") o.dtype = DType::BF16;
  else if (a.dtype == "f32") o.dtype = DType::F32;
  else Fail("--dtype must be f16, bf16 or f32, got '", a.dtype, "'");
  if (!(a.max_shard_gb > 0)) Fail("--max-shard-gb must be positive");
  o.seed = a.seed;
  o.out_dir = a.out;
  o.max_shard_bytes = static_cast<int64_t>(a.max_shard_gb * 1e9);
  o.vocab_size_override = a.vocab_size;
  o.image_token_index_override = a.image_token_index;
  Stopwatch sw;
  MakeRandomCheckpoint(o, std::cout);
  std::cout << "wrote " << a.out << " in " << sw.Seconds() << " s" << std::endl;
  return 0;
}

}  // namespace

void AddMakeRandomCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<MakeRandomArgs>();
  CLI::App* sub = app.add_subcommand(
      "make-random",
      "Write a random-weight checkpoint with the real shapes, config and (sharded) llava-hf layout, streaming "
      "(the 7B model is 14 GB in f16). Values depend only on --seed and the tensor name.");
  sub->add_option("--preset", args->preset, "tiny | llava-1.5-7b | llava-1.5-13b")->required();
  sub->add_option("--dtype", args->dtype, "f16 | bf16 | f32")->capture_default_str();
  sub->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  sub->add_option("--out", args->out, "Output directory (created)")->required();
  sub->add_option("--max-shard-gb", args->max_shard_gb, "Largest shard in GB before splitting into model-0000k-of-0000n files")
      ->capture_default_str();
  sub->add_option("--vocab-size", args->vocab_size, "Override the text vocabulary size (0 = preset's)")
      ->capture_default_str();
  sub->add_option("--image-token-index", args->image_token_index,
                  "Id of <image> (<pad> follows it); set it to your tokenizer's piece count (0 = preset's 32000)")
      ->capture_default_str();
  sub->callback([args, &exit_code] { exit_code = RunMakeRandom(*args); });
}

}  // namespace ficoco::cli
