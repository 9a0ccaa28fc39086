// `ficoco quantize`: write a llava-hf model directory as a llama.cpp GGUF pair.
#include <iostream>

#include "base/timer.h"
#include "commands.h"
#include "engine/gguf_export.h"

namespace ficoco::cli {
namespace {

struct QuantizeArgs {
  std::string in_dir, out_dir, type = "f16", tokenizer, name;
};

int RunQuantize(const QuantizeArgs& a) {
  GgufExportOptions o;
  o.in_dir = a.in_dir;
  o.out_dir = a.out_dir;
  SetExportType(a.type, o);
  o.tokenizer = a.tokenizer;
  o.name = a.name;
  Stopwatch sw;
  const GgufExportResult r = ExportGgufPair(o, std::cout);
  std::cout << "text model: " << r.text_quantized << " tensors " << a.type << ", " << r.text_f16 << " f16, " << r.text_f32
            << " f32; vocabulary " << r.vocab_rows << " rows\n";
  if (!r.q6_k.empty()) std::cout << "q4_k_m: " << r.q6_k.size() << " tensors q6_k (output, attn_v/ffn_down of the layers that get more bits), the others q4_k\n";
  if (!r.kept_f16.empty()) {
    std::cout << "kept f16 (row length not a multiple of the block size, 32 or 256):";
    for (size_t i = 0; i < r.kept_f16.size() && i < 8; ++i) std::cout << " " << r.kept_f16[i];
    if (r.kept_f16.size() > 8) std::cout << " ... (" << r.kept_f16.size() << " in all)";
    std::cout << "\n";
  }
  std::cout << "wrote " << r.model_path << " and " << r.mmproj_path << " in " << sw.Seconds() << " s" << std::endl;
  return 0;
}

}  // namespace

void AddQuantizeCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* sub = app.add_subcommand(
      "quantize",
      "Write a llava-hf model directory as a llama.cpp GGUF pair: OUT_DIR/<name>-<type>.gguf (LLaMA text model with "
      "the tokenizer embedded; 2-D weights in --type when their rows are a multiple of its block size, 32 or 256 for "
      "the k-quants, else f16; 1-D f32) and "
      "OUT_DIR/mmproj-<name>-f16.gguf (CLIP blocks up to the feature layer + projector, f16/f32). Run either with "
      "`ficoco run --model X.gguf --mmproj Y.gguf`.");
  sub->add_option("IN_DIR", a->in_dir, "llava-hf model directory")->required();
  sub->add_option("OUT_DIR", a->out_dir, "Output directory (created)")->required();
  sub->add_option("--type", a->type,
                  "Text weights: f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q4_k | q6_k | q4_k_m (Q6_K for "
                  "output and for attn_v/ffn_down in the first and last eighth of the layers and every third one "
                  "between, Q4_K elsewhere, as llama.cpp's Q4_K_M). k-quants need rows that are a multiple of 256")
      ->capture_default_str()
      ->check(CLI::IsMember({"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q6_k", "q4_k_m"}));
  sub->add_option("--tokenizer", a->tokenizer, "SentencePiece BPE tokenizer.model to embed (default: IN_DIR/tokenizer.model)");
  sub->add_option("--name", a->name, "File name stem (default: the last component of IN_DIR)");
  sub->callback([a, &exit_code] { exit_code = RunQuantize(*a); });
}

}  // namespace ficoco::cli
