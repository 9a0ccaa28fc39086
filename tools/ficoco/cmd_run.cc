// `ficoco run`: answer a question about an image with LLaVA-1.5.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/memory_stats.h"
#include "base/timer.h"
#include "commands.h"
#include "engine/generate.h"
#include "engine/llava_model.h"
#include "engine/tensor_dump.h"
#include "image/image.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ficoco::cli {
namespace {

struct RunArgs {
  std::string model, image, prompt, prompt_template = "llava-1.5", tokenizer, dump, compute = "bf16";
  int max_tokens = 64, threads = 0, top_k = 0;
  float temperature = 0, top_p = 1, repeat_penalty = 1;
  uint64_t seed = 0;
  bool json = false;
};

std::string TokenizerPath(const RunArgs& a) {
  if (!a.tokenizer.empty()) return a.tokenizer;
  std::string p = a.model + "/tokenizer.model";
  if (!std::filesystem::exists(p))
    Fail("no tokenizer: ", p, " does not exist; pass --tokenizer FILE (a SentencePiece tokenizer.model)");
  return p;
}

int RunRun(const RunArgs& a) {
  const int threads = SetThreads(a.threads);
  if (a.max_tokens < 1) Fail("--max-tokens must be at least 1, got ", a.max_tokens);
  LoadOptions lo;
  lo.compute = ParseComputeType(a.compute);
  Stopwatch sw;
  auto model = LlavaModel::Load(a.model, lo);
  Tokenizer tok = Tokenizer::FromFile(TokenizerPath(a));
  const double load_s = sw.Seconds();
  const LlavaConfig& cfg = model->config();
  if (tok.vocab_size() > cfg.text.vocab_size)
    Fail("tokenizer has ", tok.vocab_size(), " pieces but the model's vocabulary has only ", cfg.text.vocab_size);
  if (cfg.image_token_index < tok.vocab_size())
    Fail("the model's image_token_index ", cfg.image_token_index, " is a regular piece of this tokenizer (",
         tok.vocab_size(), " pieces): tokenizer and model do not match");

  const bool with_image = !a.image.empty();
  std::string prompt;
  if (ParsePromptTemplate(a.prompt_template) == PromptTemplate::Llava15) {
    prompt = ApplyLlava15Template(a.prompt, with_image);
  } else {
    prompt = a.prompt;
    if (with_image && prompt.find(kImagePlaceholder) == std::string::npos) prompt = std::string(kImagePlaceholder) + "\n" + prompt;
  }
  std::vector<int> ids = TokenizeWithImages(tok, prompt, cfg.image_token_index);

  Stopwatch ttft;
  GemmContext gemm(lo.compute);
  EncodedImage enc;
  double encode_s = 0;
  if (with_image) {
    sw.Restart();
    ImageU8 img = DecodeImageFile(a.image);
    enc = model->EncodeImage(gemm, img);
    encode_s = sw.Seconds();
  }
  GenerateRequest req;
  req.prompt_ids = ids;
  req.image_features = with_image ? &enc.image_features : nullptr;
  req.image_meta = with_image ? &enc.image_meta : nullptr;
  req.max_new_tokens = a.max_tokens;
  req.sampling = {a.temperature, a.top_k, a.top_p, a.repeat_penalty, a.seed};
  double first_token_s = 0;
  // The answer is the streamed text: printed as it comes unless --json.
  std::string answer;
  StreamingDecoder stream(tok);
  auto emit = [&](const std::string& text) {
    answer += text;
    if (!a.json) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    }
  };
  req.on_token = [&](int id) {
    if (first_token_s == 0) first_token_s = ttft.Seconds();
    // Ids past the tokenizer's pieces (LLaVA pads the vocabulary to a multiple of 64)
    // have no text; they are kept in generated_ids but print nothing.
    if (id != cfg.text.eos_token_id && tok.IsValidId(id)) emit(stream.Push(id));
  };
  GenerateResult r = Generate(gemm, *model, req);
  emit(stream.Finish());
  if (!a.json) {
    std::puts("");
    std::fflush(stdout);  // the stats line goes to stderr after the answer
  }

  if (!a.dump.empty()) {
    TensorDump dump;
    if (with_image) AddEncodeTensors(enc, dump);
    dump.AddF32("llm.inputs_embeds", {1, r.inputs_embeds.rows(), r.inputs_embeds.cols()}, r.inputs_embeds.data());
    dump.AddF32("llm.logits_last", {1, static_cast<int64_t>(r.logits_last.size())}, r.logits_last.data());
    dump.AddI64("gen.new_ids", {1, static_cast<int64_t>(r.new_ids.size())},
                std::vector<int64_t>(r.new_ids.begin(), r.new_ids.end()));
    dump.Write(a.dump);
  }
  const double decode_steps = static_cast<double>(r.new_ids.size()) - 1;
  nlohmann::json stats = {
      {"load_s", load_s},
      {"image_encode_s", encode_s},
      {"prefill_s", r.prefill_s},
      {"time_to_first_token_s", first_token_s},
      {"decode_s", r.decode_s},
      {"decode_tokens_per_s", decode_steps > 0 && r.decode_s > 0 ? decode_steps / r.decode_s : 0.0},
      {"image_tokens", r.image_tokens},
      {"text_tokens", r.text_tokens},
      {"prompt_tokens", r.prompt_tokens},
      {"new_tokens", r.new_ids.size()},
      {"stopped_at_eos", r.hit_eos},
      {"kv_cache_bytes", r.kv_cache_bytes},
      {"peak_rss_bytes", PeakRssBytes()},
      {"compute", ComputeTypeName(lo.compute)},
      {"threads", threads},
  };
  if (a.json) {
    nlohmann::json j = {{"answer", answer}, {"generated_ids", r.new_ids}, {"stats", stats}};
    std::cout << j.dump(2) << std::endl;
  } else {
    std::fprintf(stderr,
                 "[%lld image + %lld text tokens; encode %.2f s, prefill %.2f s, first token %.2f s, decode %.2f tok/s, "
                 "peak RSS %.0f MiB]\n",
                 static_cast<long long>(r.image_tokens), static_cast<long long>(r.text_tokens), encode_s, r.prefill_s,
                 first_token_s, stats["decode_tokens_per_s"].get<double>(), static_cast<double>(PeakRssBytes()) / (1 << 20));
  }
  return 0;
}

}  // namespace

void AddRunCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* sub = app.add_subcommand("run", "Answer a question about an image (or plain text) with LLaVA-1.5, streaming the answer.");
  sub->add_option("--model", a->model, "llava-hf model directory")->required();
  sub->add_option("--image", a->image, "PNG or JPEG image (omit for a text-only prompt)");
  sub->add_option("--prompt", a->prompt, "The question (wrapped by --template)")->required();
  sub->add_option("--template", a->prompt_template,
                  "llava-1.5: LLaVA-1.5's vicuna_v1 conversation with its system prompt; raw: the prompt as given, "
                  "<image> marking where the image goes (inserted at the start if absent)")
      ->capture_default_str()
      ->check(CLI::IsMember({"llava-1.5", "raw"}));
  sub->add_option("--tokenizer", a->tokenizer, "SentencePiece tokenizer.model (default: MODEL/tokenizer.model)");
  sub->add_option("--max-tokens", a->max_tokens, "Most new tokens to generate (stops earlier at EOS)")->capture_default_str();
  sub->add_option("--temperature", a->temperature, "0 = greedy; > 0 samples")->capture_default_str();
  sub->add_option("--top-k", a->top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str();
  sub->add_option("--top-p", a->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  sub->add_option("--repeat-penalty", a->repeat_penalty, "Repetition penalty on tokens already in the context (1 = off)")
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "Sampling seed")->capture_default_str();
  sub->add_option("--threads", a->threads, "Worker threads (0 = all cores)")->capture_default_str();
  sub->add_option("--compute", a->compute, "bf16 (fast) or f32 (reference parity) for the large products")
      ->capture_default_str()
      ->check(CLI::IsMember({"bf16", "f32"}));
  sub->add_flag("--json", a->json, "Print one JSON object: answer, generated_ids, stats");
  sub->add_option("--dump", a->dump,
                  "Write the encode tensors plus llm.inputs_embeds, llm.logits_last and gen.new_ids to this "
                  "safetensors file (golden-file names and layouts)");
  sub->callback([a, &exit_code] { exit_code = RunRun(*a); });
}

}  // namespace ficoco::cli
