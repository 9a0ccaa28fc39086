// `ficoco bench`: load a model once, then time one request under several methods and
// budgets, interleaved (round after round) so a noisy host affects every config alike.
// Reports measured times next to the LLM-Viewer FLOPs of the same request.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "base/memory_stats.h"
#include "base/timer.h"
#include "commands.h"
#include "engine/pipeline.h"
#include "reduction_options.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace ficoco::cli {
namespace {

struct BenchArgs {
  std::string model, mmproj, image, prompt = "What is in the picture? Describe it in detail.", tokenizer, compute = "bf16", json_out, weights = "auto", kv_cache = "auto";
  std::vector<std::string> methods{"none", "ficoco-v", "ficoco-l", "ficoco-vl"};
  std::vector<int64_t> keeps{192, 128, 64};
  int max_tokens = 32, threads = 0, rounds = 1;
  bool warmup = true;
  ReductionArgs reduction;
};

struct Config {
  std::string method;
  int64_t keep = -1;  // -1 for none
  std::string skipped;  // why this config cannot run (impossible budget)
  std::vector<PipelineResult> runs;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

int RunBench(const BenchArgs& a) {
  const int threads = SetThreads(a.threads);
  if (a.max_tokens < 1) Fail("--max-tokens must be at least 1, got ", a.max_tokens);
  if (a.rounds < 1) Fail("--rounds must be at least 1, got ", a.rounds);
  LoadOptions lo;
  lo.compute = ParseComputeType(a.compute);
  lo.weights = ParseWeightType(a.weights);
  lo.kv_cache = ParseKvCacheChoice(a.kv_cache);
  auto model = LlavaModel::Load(a.model, a.mmproj, lo);
  for (const std::string& note : model->load_notes()) std::fprintf(stderr, "note: %s\n", note.c_str());
  Tokenizer tok = model->LoadTokenizer(a.tokenizer);
  const std::vector<int> ids =
      TokenizeWithImages(tok, ApplyLlava15Template(a.prompt, true), model->config().image_token_index);
  const ImageU8 image = DecodeImageFile(a.image);
  a.reduction.ParamsFor(FindMethod("none")).Validate();  // bad values fail before the model loads

  std::vector<Config> configs;
  for (const std::string& m : a.methods) {
    const MethodInfo& info = FindMethod(m);
    if (info.site == MethodSite::None) {
      configs.push_back({m, -1, "", {}});
      continue;
    }
    for (int64_t k : a.keeps) configs.push_back({m, k, "", {}});
  }
  GemmContext gemm(lo.compute);
  if (a.warmup) {  // first-call costs (kernel JIT, scratch buffers) stay out of the first config's times
    PipelineRequest req;
    req.prompt_ids = ids;
    req.image = &image;
    req.max_new_tokens = 2;
    RunPipeline(gemm, *model, req);
  }
  for (int round = 0; round < a.rounds; ++round) {
    for (Config& c : configs) {
      if (!c.skipped.empty()) continue;
      PipelineRequest req;
      req.prompt_ids = ids;
      req.image = &image;
      req.method = &FindMethod(c.method);
      req.params = a.reduction.ParamsFor(*req.method);
      req.budget = Budget{c.keep, -1};
      req.max_new_tokens = a.max_tokens;
      req.stop_at_eos = false;  // every config decodes the same number of tokens
      try {
        c.runs.push_back(RunPipeline(gemm, *model, req));
      } catch (const Error& e) {
        c.skipped = e.what();
        continue;
      }
      const PipelineResult& r = c.runs.back();
      std::fprintf(stderr, "round %d  %-10s keep %4lld: encode %.3g s, prefill %.3g s, first token %.3g s, total %.3g s\n",
                   round + 1, c.method.c_str(), static_cast<long long>(c.keep), r.encode_s, r.generated.prefill_s,
                   r.first_token_s, r.total_s);
    }
  }

  // Medians per config, and speedups against `none` (if it ran).
  nlohmann::json out = nlohmann::json::array();
  const Config* base = nullptr;
  for (const Config& c : configs)
    if (c.method == "none" && !c.runs.empty()) base = &c;
  auto median_of = [](const Config& c, auto field) {
    std::vector<double> v;
    for (const PipelineResult& r : c.runs) v.push_back(field(r));
    return Median(v);
  };
  auto enc_prefill = [](const PipelineResult& r) { return r.encode_s + r.generated.prefill_s; };
  auto flops_of = [](const PipelineResult& r) {
    return r.cost.llm_prefill_flops + r.cost.vision_flops + r.cost.projector_flops;
  };
  std::ostringstream table;
  table << "| method | keep | visual→LLM | mean LLM visual | LLM prefill TFLOPs | encode+prefill TFLOPs | encode s | prefill s | "
           "first token s | total s (" << a.max_tokens << " tokens) | speedup (encode+prefill) | FLOPs ratio | share | overhead |\n"
        << "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Config& c : configs) {
    nlohmann::json j = {{"method", c.method}, {"keep", c.keep}};
    if (c.runs.empty()) {
      j["skipped"] = c.skipped;
      table << "| " << c.method << " | " << c.keep << " | out of reach: " << c.skipped << " |\n";
      out.push_back(j);
      continue;
    }
    const PipelineResult& r0 = c.runs.front();
    const double encode = median_of(c, [](const PipelineResult& r) { return r.encode_s; });
    const double prefill = median_of(c, [](const PipelineResult& r) { return r.generated.prefill_s; });
    const double ttft = median_of(c, [](const PipelineResult& r) { return r.first_token_s; });
    const double total = median_of(c, [](const PipelineResult& r) { return r.total_s; });
    const double ep = median_of(c, enc_prefill);
    const double overhead = median_of(c, [&](const PipelineResult& r) {
      return (r.trace.vision_seconds + r.trace.llm_seconds) / std::max(1e-9, enc_prefill(r));
    });
    j.update({{"image_tokens", r0.flow.image_tokens},
              {"mean_llm_visual_tokens", r0.flow.mean_llm_visual()},
              {"llm_prefill_tflops", r0.cost.llm_prefill_flops / 1e12},
              {"vision_tflops", r0.cost.vision_flops / 1e12},
              {"projector_tflops", r0.cost.projector_flops / 1e12},
              {"encode_s", encode},
              {"prefill_s", prefill},
              {"time_to_first_token_s", ttft},
              {"total_s", total},
              {"reduction_overhead_share", overhead},
              {"runs", c.runs.size()},
              {"schedule", {{"vision", r0.schedule.vision}, {"pre_llm", r0.schedule.pre_llm}, {"llm", r0.schedule.llm}}}});
    double speedup = 0, ratio = 0;
    if (base != nullptr) {
      speedup = median_of(*base, enc_prefill) / ep;
      ratio = flops_of(base->runs.front()) / flops_of(r0);
      j["speedup_encode_prefill"] = speedup;
      j["flops_ratio"] = ratio;
      j["share_of_theoretical"] = speedup / ratio;
    }
    out.push_back(j);
    char line[512];
    std::snprintf(line, sizeof line,
                  "| %s | %lld | %lld | %.1f | %.4g | %.4g | %.4g | %.4g | %.4g | %.4g | %.2fx | %.2fx | %.0f%% | %.2f%% |\n",
                  c.method.c_str(), static_cast<long long>(c.keep), static_cast<long long>(r0.flow.image_tokens),
                  r0.flow.mean_llm_visual(), r0.cost.llm_prefill_flops / 1e12, flops_of(r0) / 1e12, encode, prefill, ttft,
                  total, speedup, ratio, ratio > 0 ? 100 * speedup / ratio : 0.0, 100 * overhead);
    table << line;
  }
  std::cout << table.str();
  std::printf("(%d threads, %s compute, %s text weights, %s KV cache, %d round(s), %zu prompt ids, peak RSS %.1f MiB)\n",
              threads, ComputeTypeName(lo.compute), DescribeTextWeights(model->text()).c_str(),
              KvTypeName(model->kv_cache()), a.rounds, ids.size(),
              static_cast<double>(PeakRssBytes()) / (1 << 20));
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    if (!f) Fail("cannot write ", a.json_out);
    f << nlohmann::json{{"threads", threads}, {"compute", ComputeTypeName(lo.compute)},
                        {"weights", DescribeTextWeights(model->text())},
                        {"kv_cache", KvTypeName(model->kv_cache())}, {"rounds", a.rounds},
                        {"max_new_tokens", a.max_tokens}, {"prompt_ids", ids.size()}, {"configs", out}}
             .dump(2)
      << "\n";
  }
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Time one image request under several methods and budgets (model loaded once, configs interleaved).");
  sub->add_option("--model", a->model, "llava-hf model directory, or a llama.cpp GGUF text model (then also --mmproj)")->required();
  sub->add_option("--mmproj", a->mmproj, "With a GGUF --model: the llama.cpp mmproj GGUF (CLIP vision tower + projector)");
  sub->add_option("--image", a->image, "PNG or JPEG image")->required();
  sub->add_option("--prompt", a->prompt, "The question (LLaVA-1.5 template)")->capture_default_str();
  sub->add_option("--tokenizer", a->tokenizer, "SentencePiece tokenizer.model (default: MODEL/tokenizer.model, or a GGUF model's own vocabulary)");
  sub->add_option("--methods", a->methods, "Methods to compare (none = the unreduced baseline)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--keeps", a->keeps, "Budgets (--keep N of each method)")->delimiter(',')->capture_default_str();
  sub->add_option("--max-tokens", a->max_tokens, "New tokens per request (EOS ignored)")->capture_default_str();
  sub->add_option("--rounds", a->rounds, "Rounds over all configs; medians are reported")->capture_default_str();
  sub->add_option("--threads", a->threads, "Worker threads (0 = all cores)")->capture_default_str();
  sub->add_option("--warmup", a->warmup, "One untimed unreduced request first (true/false)")->capture_default_str();
  sub->add_option("--compute", a->compute, "bf16 or f32")->capture_default_str()->check(CLI::IsMember({"bf16", "f32"}));
  sub->add_option("--weights", a->weights, "Text-model linear layers: auto (as stored), f16, bf16, or q8_0/q4_0 (quantized at load, int8 kernels); vision and projector stay 16-bit")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "f16", "bf16", "q8_0", "q4_0"}));
  sub->add_option("--kv-cache", a->kv_cache,
                  "Element type of the KV cache: auto (f32 with --compute f32, else f16), f16 (half the bytes each decode step reads) or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "f16", "f32"}));
  sub->add_option("--json", a->json_out, "Also write the results as JSON to this file");
  AddReductionOptions(sub, a->reduction, /*with_method_and_budget=*/false);
  sub->callback([a, &exit_code] { exit_code = RunBench(*a); });
}

}  // namespace ficoco::cli
