// `ficoco encode`: preprocess one image and run the vision tower and projector.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/memory_stats.h"
#include "base/timer.h"
#include "commands.h"
#include "engine/llava_model.h"
#include "engine/tensor_dump.h"
#include "image/image.h"

namespace ficoco::cli {
namespace {

struct EncodeArgs {
  std::string model, mmproj, image, dump, compute = "bf16";
  bool json = false;
  int threads = 0;
};

int RunEncode(const EncodeArgs& a) {
  const int threads = SetThreads(a.threads);
  Stopwatch total;
  LoadOptions lo;
  lo.compute = ParseComputeType(a.compute);
  lo.load_text = false;
  Stopwatch sw;
  auto model = LlavaModel::Load(a.model, a.mmproj, lo);
  for (const std::string& note : model->load_notes()) std::fprintf(stderr, "note: %s\n", note.c_str());
  const double load_s = sw.Seconds();
  sw.Restart();
  ImageU8 img = DecodeImageFile(a.image);
  const double decode_s = sw.Seconds();
  GemmContext gemm(lo.compute);
  EncodedImage e = model->EncodeImage(gemm, img);
  if (!a.dump.empty()) {
    TensorDump dump;
    AddEncodeTensors(e, dump);
    dump.Write(a.dump);
  }
  const auto& cfg = model->config();
  nlohmann::json j = {
      {"model", a.model},
      {"image", a.image},
      {"image_size", {img.width, img.height}},
      {"vision_tokens", cfg.vision.num_positions()},
      {"image_tokens", e.image_features.rows()},
      {"image_feature_dim", e.image_features.cols()},
      {"vision_layers_run", cfg.vision_last_layer() + 1},
      {"compute", ComputeTypeName(lo.compute)},
      {"threads", threads},
      {"timings_s",
       {{"load", load_s},
        {"decode", decode_s},
        {"preprocess", e.timings.preprocess_s},
        {"vision", e.timings.vision_s},
        {"projector", e.timings.projector_s},
        {"total", total.Seconds()}}},
      {"peak_rss_bytes", PeakRssBytes()},
  };
  if (!a.dump.empty()) j["dump"] = a.dump;
  if (a.json) {
    std::cout << j.dump(2) << std::endl;
  } else {
    std::printf("model    %s (vision %dx%d px, patch %d, %d of %d CLIP layers run)\n", a.model.c_str(),
                cfg.vision.image_size, cfg.vision.image_size, cfg.vision.patch_size, cfg.vision_last_layer() + 1,
                cfg.vision.num_hidden_layers);
    std::printf("image    %s (%dx%d)\n", a.image.c_str(), img.width, img.height);
    std::printf("tokens   %lld image tokens of dimension %lld for the language model\n",
                static_cast<long long>(e.image_features.rows()), static_cast<long long>(e.image_features.cols()));
    std::printf("time     load %.3f s, decode %.3f s, preprocess %.3f s, vision %.3f s, projector %.3f s (%s, %d threads)\n",
                load_s, decode_s, e.timings.preprocess_s, e.timings.vision_s, e.timings.projector_s,
                ComputeTypeName(lo.compute), threads);
    std::printf("memory   peak RSS %.1f MiB\n", static_cast<double>(PeakRssBytes()) / (1 << 20));
    if (!a.dump.empty()) std::printf("dump     %s\n", a.dump.c_str());
  }
  return 0;
}

}  // namespace

void AddEncodeCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<EncodeArgs>();
  CLI::App* sub = app.add_subcommand(
      "encode", "Encode one image: LLaVA-1.5 preprocessing, CLIP vision tower, projector. Prints the number of image "
                "tokens and timings.");
  sub->add_option("--model", args->model, "llava-hf model directory, or a llama.cpp GGUF text model (then also --mmproj)")->required();
  sub->add_option("--mmproj", args->mmproj, "With a GGUF --model: the llama.cpp mmproj GGUF (CLIP vision tower + projector)");
  sub->add_option("--image", args->image, "PNG or JPEG image")->required();
  sub->add_option("--dump", args->dump,
                  "Write pixel_values, vision.selected and projector.image_features to this safetensors file "
                  "(names, shapes and layouts of the reference golden files)");
  sub->add_flag("--json", args->json, "Print one JSON object instead of text");
  sub->add_option("--threads", args->threads, "Worker threads (0 = all cores)")->capture_default_str();
  sub->add_option("--compute", args->compute,
                  "Arithmetic for the large products: bf16 (fast, AVX512-BF16) or f32 (reference parity)")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "f32"}));
  sub->callback([args, &exit_code] { exit_code = RunEncode(*args); });
}

}  // namespace ficoco::cli
