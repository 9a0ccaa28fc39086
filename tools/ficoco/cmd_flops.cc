// `ficoco flops`: the theoretical prefill cost (LLM-Viewer count, as the FiCoCo paper
// reports it), KV cache size and per-layer token counts of a model and a reduction,
// without loading weights.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "commands.h"
#include "engine/make_random.h"
#include "reduce/flops.h"
#include "reduction_options.h"

namespace ficoco::cli {
namespace {

struct FlopsArgs {
  std::string preset, model;
  int64_t visual_tokens = -1;  // -1 = not given
  int64_t text_tokens = 60;    // the paper's convention for the 7B tables (13B used 512)
  ReductionArgs reduction;
  bool json = false;
  bool keep_given = false, tflops_given = false, visual_given = false;
};

LlavaConfig ConfigOf(const FlopsArgs& a) {
  if (!a.preset.empty() && !a.model.empty()) Fail("give --preset or --model, not both");
  if (!a.model.empty()) return LoadLlavaConfig(a.model);
  if (a.preset.empty()) Fail("no model: give --preset tiny|llava-1.5-7b|llava-1.5-13b or --model DIR");
  return PresetConfig(a.preset);
}

// Fills empty (meaning "no reduction") vectors so the printed schedule has one entry per layer.
ReductionSchedule FullLength(ReductionSchedule s, const LlavaConfig& cfg) {
  const ReductionSchedule none = NoReduction(cfg);
  if (s.vision.empty()) s.vision = none.vision;
  if (s.llm.empty()) s.llm = none.llm;
  return s;
}

nlohmann::json LayersJson(const std::vector<LayerTokens>& layers, const std::vector<int64_t>* visual) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t l = 0; l < layers.size(); ++l) {
    nlohmann::json row = {{"attention", layers[l].attention}, {"mlp", layers[l].mlp}};
    if (visual != nullptr) row["visual"] = (*visual)[l];
    out.push_back(row);
  }
  return out;
}

void PrintTable(const std::string& model, const std::string& method, const LlavaConfig& cfg,
                const ReductionSchedule& s, int64_t pre_llm, const TokenFlow& flow, const PrefillCost& cost) {
  std::printf("model      %s (CLIP %d of %d layers run, LLM %d layers, hidden %d)\n", model.c_str(),
              cfg.vision_last_layer() + 1, cfg.vision.num_hidden_layers, cfg.text.num_hidden_layers,
              cfg.text.hidden_size);
  std::printf("method     %s; schedule %s", method.c_str(), DescribeSchedule(s).c_str());
  if (pre_llm > 0) std::printf("; %lld visual tokens removed before the LLM", static_cast<long long>(pre_llm));
  std::printf("\ntokens     %lld image + %lld text reach the LLM; %.1f visual tokens per LLM layer on average\n\n",
              static_cast<long long>(flow.image_tokens), static_cast<long long>(flow.text_tokens),
              flow.mean_llm_visual());
  std::printf("layer  vision attn  mlp  discards  |  llm attn   mlp  visual  discards\n");
  const size_t rows = std::max(flow.vision.size(), flow.llm.size());
  for (size_t l = 0; l < rows; ++l) {
    std::printf("%5zu", l);
    if (l < flow.vision.size())
      std::printf("  %11lld %4lld %9d", static_cast<long long>(flow.vision[l].attention),
                  static_cast<long long>(flow.vision[l].mlp), s.vision[l]);
    else
      std::printf("  %11s %4s %9s", "", "", "");
    if (l < flow.llm.size())
      std::printf("  |  %8lld %5lld %7lld %9d", static_cast<long long>(flow.llm[l].attention),
                  static_cast<long long>(flow.llm[l].mlp), static_cast<long long>(flow.llm_visual[l]), s.llm[l]);
    std::printf("\n");
  }
  // Three decimals as the paper prints them; small models (the bundled MiniLLaVA needs
  // ~1e-4 TFLOPs) get three significant digits instead of "0.000".
  auto tflops = [](double flops) {
    char buf[32];
    std::snprintf(buf, sizeof buf, flops >= 1e10 ? "%.3f" : "%.3g", flops / 1e12);
    return std::string(buf);
  };
  std::printf("\nLLM prefill   %s TFLOPs  (LLM-Viewer count; the paper's \"TFLOPs\")\n", tflops(cost.llm_prefill_flops).c_str());
  std::printf("vision tower  %s TFLOPs  (patch embedding + CLIP layers run)\n", tflops(cost.vision_flops).c_str());
  std::printf("projector     %s TFLOPs\n", tflops(cost.projector_flops).c_str());
  std::printf("KV cache      %.1f MB fp16  (%lld bytes, 1 MB = 1e6 B)\n", static_cast<double>(cost.kv_cache_bytes) / 1e6,
              static_cast<long long>(cost.kv_cache_bytes));
}

int RunFlops(const FlopsArgs& a) {
  const LlavaConfig cfg = ConfigOf(a);
  const std::string model = a.model.empty() ? a.preset : a.model;
  const MethodInfo& method = a.reduction.Method();
  const ReductionParams params = a.reduction.Params();
  if (a.keep_given && a.tflops_given) Fail("--keep and --tflops are alternatives: give one of them");
  if ((a.keep_given || a.tflops_given) && method.site == MethodSite::None)
    Fail(a.keep_given ? "--keep" : "--tflops", " needs a reduction method: --method ficoco-v|ficoco-l|ficoco-vl");
  if (a.keep_given && a.reduction.keep < 0) Fail("--keep must be >= 1, got ", a.reduction.keep);
  if (a.tflops_given && !(a.reduction.tflops > 0)) Fail("--tflops must be positive, got ", a.reduction.tflops);
  if (method.site != MethodSite::None && !a.reduction.GetBudget().set())
    Fail("--method ", method.name, " needs a budget: --keep N (visual tokens) or --tflops X");
  if (a.visual_given && a.visual_tokens < 1) Fail("--visual-tokens must be >= 1, got ", a.visual_tokens);
  if (a.text_tokens < 0) Fail("--text-tokens must be >= 0, got ", a.text_tokens);
  if (a.visual_given && method.site != MethodSite::None)
    Fail("--visual-tokens (a reduction before the LLM) cannot be combined with --method ", method.name);

  ReductionSchedule schedule = NoReduction(cfg);
  TokenFlow flow;
  int64_t pre_llm = 0;
  if (a.visual_given) {
    flow = PreLlmFlow(cfg, a.visual_tokens, a.text_tokens);
    pre_llm = std::max<int64_t>(0, FlowOf(cfg, schedule, a.text_tokens).image_tokens - a.visual_tokens);
  } else {
    schedule = FullLength(ScheduleForBudget(method, cfg, params, a.reduction.GetBudget(), a.text_tokens), cfg);
    pre_llm = schedule.pre_llm;
    flow = FlowOf(cfg, schedule, a.text_tokens);
  }
  const PrefillCost cost = CountPrefill(cfg, flow, 2);

  if (!a.json) {
    PrintTable(model, method.name, cfg, schedule, pre_llm, flow, cost);
    return 0;
  }
  nlohmann::json j = {
      {"model", model},
      {"method", method.name},
      {"ficoco_preset", FicocoPresetName(params.preset)},
      {"llm_prefill_tflops", cost.llm_prefill_flops / 1e12},
      {"vision_tflops", cost.vision_flops / 1e12},
      {"projector_tflops", cost.projector_flops / 1e12},
      {"kv_cache_bytes", cost.kv_cache_bytes},
      {"image_tokens", flow.image_tokens},
      {"text_tokens", flow.text_tokens},
      {"mean_llm_visual_tokens", flow.mean_llm_visual()},
      {"tokens_per_layer", {{"vision", LayersJson(flow.vision, nullptr)}, {"llm", LayersJson(flow.llm, &flow.llm_visual)}}},
      {"schedule", {{"vision", schedule.vision}, {"llm", schedule.llm}, {"pre_llm", pre_llm}}},
  };
  std::cout << j.dump(2) << std::endl;
  return 0;
}

}  // namespace

void AddFlopsCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<FlopsArgs>();
  CLI::App* sub = app.add_subcommand(
      "flops",
      "Theoretical prefill TFLOPs (LLM-Viewer count, as the FiCoCo paper reports them), KV cache size and per-layer "
      "token counts for a model and a reduction. Reads only config.json; no weights.");
  sub->add_option("--preset", args->preset, "Built-in architecture: tiny | llava-1.5-7b | llava-1.5-13b");
  sub->add_option("--model", args->model, "llava-hf model directory (only its config.json is read)");
  CLI::Option* visual = sub->add_option(
      "--visual-tokens", args->visual_tokens,
      "Visual tokens reaching the LLM, removed before it (encoder and every LLM layer unreduced); default: all patches");
  sub->add_option("--text-tokens", args->text_tokens,
                  "Non-image prompt tokens (the paper counts 60 for 7B, 512 for 13B)")
      ->capture_default_str();
  sub->add_flag("--json", args->json, "Print one JSON object instead of a table");
  AddReductionOptions(sub, args->reduction);
  sub->callback([args, sub, visual, &exit_code] {
    args->keep_given = sub->get_option("--keep")->count() > 0;
    args->tflops_given = sub->get_option("--tflops")->count() > 0;
    args->visual_given = visual->count() > 0;
    exit_code = RunFlops(*args);
  });
}

}  // namespace ficoco::cli
