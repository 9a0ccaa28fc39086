// `ficoco run`: answer a question about an image with LLaVA-1.5.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/memory_stats.h"
#include "base/timer.h"
#include "commands.h"
#include "engine/pipeline.h"
#include "engine/llava_model.h"
#include "engine/tensor_dump.h"
#include "image/image.h"
#include "reduce/flops.h"
#include "reduce/viz.h"
#include "reduction_options.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ficoco::cli {
namespace {

struct RunArgs {
  std::string model, mmproj, image, prompt, prompt_template = "llava-1.5", tokenizer, dump, compute = "bf16", viz, weights = "auto", kv_cache = "auto";
  ReductionArgs reduction;
  int max_tokens = 64, threads = 0, top_k = 0;
  float temperature = 0, top_p = 1, repeat_penalty = 1;
  uint64_t seed = 0;
  bool json = false;
};

int RunRun(const RunArgs& a) {
  const int threads = SetThreads(a.threads);
  if (a.max_tokens < 1) Fail("--max-tokens must be at least 1, got ", a.max_tokens);
  LoadOptions lo;
  lo.compute = ParseComputeType(a.compute);
  lo.weights = ParseWeightType(a.weights);
  lo.kv_cache = ParseKvCacheChoice(a.kv_cache);
  Stopwatch sw;
  auto model = LlavaModel::Load(a.model, a.mmproj, lo);
  for (const std::string& note : model->load_notes()) std::fprintf(stderr, "note: %s\n", note.c_str());
  Tokenizer tok = model->LoadTokenizer(a.tokenizer);
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
  const MethodInfo& method = a.reduction.Method();
  if (!a.viz.empty() && !with_image) Fail("--viz draws the image's patches: give --image");

  GemmContext gemm(lo.compute);
  Stopwatch ttft;
  ImageU8 img;
  if (with_image) img = DecodeImageFile(a.image);
  const double image_read_s = ttft.Seconds();
  PipelineRequest req;
  req.prompt_ids = ids;
  req.image = with_image ? &img : nullptr;
  req.method = &method;
  req.params = a.reduction.Params();
  req.budget = a.reduction.GetBudget();
  req.max_new_tokens = a.max_tokens;
  req.sampling = {a.temperature, a.top_k, a.top_p, a.repeat_penalty, a.seed};
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
    // Ids past the tokenizer's pieces (LLaVA pads the vocabulary to a multiple of 64)
    // have no text; they are kept in generated_ids but print nothing.
    if (id != cfg.text.eos_token_id && tok.IsValidId(id)) emit(stream.Push(id));
  };
  req.on_schedule = [&](const PipelineResult& plan) {
    if (method.site == MethodSite::None) return;
    const std::string preset = method.name.rfind("ficoco-", 0) == 0
                                   ? std::string(" (") + FicocoPresetName(req.params.preset) + " preset)"
                                   : std::string();
    std::fprintf(stderr, "[%s%s: %s; %lld visual tokens reach the LLM, mean %.1f over its layers; %.3g prefill TFLOPs]\n",
                 method.name.c_str(), preset.c_str(), DescribeSchedule(plan.schedule).c_str(),
                 static_cast<long long>(plan.flow.image_tokens), plan.flow.mean_llm_visual(),
                 plan.cost.llm_prefill_flops / 1e12);
  };
  const PipelineResult p = RunPipeline(gemm, *model, req);
  const GenerateResult& r = p.generated;
  const EncodedImage& enc = p.encoded;
  const double encode_s = with_image ? image_read_s + p.encode_s : 0.0;
  const double first_token_s = image_read_s + p.first_token_s;
  const ReductionTrace& trace = p.trace;
  const TokenFlow& flow = p.flow;
  const PrefillCost& cost = p.cost;
  const ReductionParams& params = req.params;
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
    AddReductionTensors(trace, dump);
    dump.AddI64("gen.new_ids", {1, static_cast<int64_t>(r.new_ids.size())},
                std::vector<int64_t>(r.new_ids.begin(), r.new_ids.end()));
    dump.Write(a.dump);
  }
  if (!a.viz.empty()) WriteReductionViz(a.viz, enc.image.resized, trace);
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
      {"weights", DescribeTextWeights(model->text())},
      {"kv_cache", KvTypeName(model->kv_cache())},
      {"threads", threads},
  };
  const double overhead_s = trace.vision_seconds + trace.llm_seconds;
  stats["reduction_overhead_s"] = overhead_s;
  stats["reduction_overhead_share"] = encode_s + r.prefill_s > 0 ? overhead_s / (encode_s + r.prefill_s) : 0.0;
  nlohmann::json layers = nlohmann::json::object({{"vision", nlohmann::json::array()}, {"llm", nlohmann::json::array()}});
  for (const LayerTokens& t : flow.vision) layers["vision"].push_back({{"attention", t.attention}, {"mlp", t.mlp}});
  for (const LayerTokens& t : flow.llm) layers["llm"].push_back({{"attention", t.attention}, {"mlp", t.mlp}});
  nlohmann::json reduction = {
      {"method", method.name},
      {"preset", FicocoPresetName(params.preset)},
      {"positions", PositionPolicyName(params.positions)},
      {"schedule", {{"vision", p.schedule.vision}, {"pre_llm", p.schedule.pre_llm}, {"llm", p.schedule.llm}}},
      {"image_tokens", flow.image_tokens},
      {"mean_llm_visual_tokens", flow.mean_llm_visual()},
  };
  nlohmann::json flops = {
      {"llm_prefill_tflops", cost.llm_prefill_flops / 1e12},
      {"vision_tflops", cost.vision_flops / 1e12},
      {"projector_tflops", cost.projector_flops / 1e12},
      {"kv_cache_bytes", cost.kv_cache_bytes},
      {"text_tokens", flow.text_tokens},
      {"tokens_per_layer", layers},
  };
  if (a.json) {
    nlohmann::json j = {{"answer", answer}, {"generated_ids", r.new_ids}, {"stats", stats},
                        {"reduction", reduction}, {"flops", flops}};
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
  sub->add_option("--model", a->model, "llava-hf model directory, or a llama.cpp GGUF text model (then also --mmproj)")->required();
  sub->add_option("--mmproj", a->mmproj, "With a GGUF --model: the llama.cpp mmproj GGUF (CLIP vision tower + projector)");
  sub->add_option("--image", a->image, "PNG or JPEG image (omit for a text-only prompt)");
  sub->add_option("--prompt", a->prompt, "The question (wrapped by --template)")->required();
  sub->add_option("--template", a->prompt_template,
                  "llava-1.5: LLaVA-1.5's vicuna_v1 conversation with its system prompt; raw: the prompt as given, "
                  "<image> marking where the image goes (inserted at the start if absent)")
      ->capture_default_str()
      ->check(CLI::IsMember({"llava-1.5", "raw"}));
  sub->add_option("--tokenizer", a->tokenizer, "SentencePiece tokenizer.model (default: MODEL/tokenizer.model, or a GGUF model's own vocabulary)");
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
  sub->add_option("--weights", a->weights, "Text-model linear layers: auto (as stored), f16, bf16, or q8_0/q4_0 (quantized at load, int8 kernels); vision and projector stay 16-bit")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "f16", "bf16", "q8_0", "q4_0"}));
  sub->add_option("--kv-cache", a->kv_cache,
                  "Element type of the KV cache: auto (f32 with --compute f32, else f16), f16 (half the bytes each decode step reads) or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "f16", "f32"}));
  AddReductionOptions(sub, a->reduction);
  sub->add_option("--viz", a->viz,
                  "Draw the image with the patches kept, merged (and where to) and pruned by --method to this PNG");
  sub->add_flag("--json", a->json, "Print one JSON object: answer, generated_ids, stats");
  sub->add_option("--dump", a->dump,
                  "Write the encode tensors plus llm.inputs_embeds, llm.logits_last, gen.new_ids and, with --method, "
                  "every reducing layer's plan (reduce.<vision|pre_llm|llm>.<layer>.kept/discarded/src/dst/alpha/scores) "
                  "to this safetensors file");
  sub->callback([a, &exit_code] { exit_code = RunRun(*a); });
}

}  // namespace ficoco::cli
