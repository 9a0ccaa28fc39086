#include "reduce/budget.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "reduce/flops.h"

namespace ficoco {
namespace {

int VisionLayersRun(const LlavaConfig& cfg) { return cfg.vision_last_layer() + 1; }

// Vision: N0 − keep patches removed, spread evenly over the layers from the start
// layer to the last one run (its output feeds the projector); remainder in the last layers.
std::vector<int> VisionSchedule(const LlavaConfig& cfg, const FicocoParams& p, int64_t keep) {
  const int runs = VisionLayersRun(cfg);
  const int64_t patches = cfg.vision.num_patches();
  std::vector<int> sched(static_cast<size_t>(runs), 0);
  if (keep < 1 || keep > patches) Fail("--keep ", keep, " is impossible for the vision encoder: it has ", patches, " patches (keep 1..", patches, ")");
  const int start = p.VisionStart(cfg.vision.num_hidden_layers);
  if (start >= runs)
    Fail("the first reducing vision layer (", start, ") is past the last layer whose output reaches the projector (",
         runs - 1, "); use --vision-start 0..", runs - 1);
  const int64_t layers = runs - start, total = patches - keep;
  for (int l = start; l < runs; ++l) {
    const int64_t from_end = runs - 1 - l;  // the last `total % layers` layers take one more
    sched[static_cast<size_t>(l)] = static_cast<int>(total / layers + (from_end < total % layers ? 1 : 0));
  }
  return sched;
}

// LLM: visual tokens seen by each layer's attention when, from layer `start` on,
// every layer but the last removes `r` more (never fewer than one left).
std::vector<int64_t> LlmVisualCounts(int layers, int start, int64_t v0, double r) {
  std::vector<int64_t> a(static_cast<size_t>(layers), v0);
  for (int l = start + 1; l < layers; ++l)
    a[static_cast<size_t>(l)] = std::max<int64_t>(1, std::llround(static_cast<double>(v0) - r * (l - start)));
  return a;
}

double Mean(const std::vector<int64_t>& a) {
  double s = 0;
  for (int64_t x : a) s += static_cast<double>(x);
  return s / static_cast<double>(a.size());
}

// LLM: the equal-step schedule from `v0` visual tokens whose mean over layers is closest to `keep`.
std::vector<int> LlmSchedule(const LlavaConfig& cfg, const FicocoParams& p, int64_t v0, int64_t keep) {
  const int layers = cfg.text.num_hidden_layers;
  std::vector<int> sched(static_cast<size_t>(layers), 0);
  if (keep < 1 || keep > v0)
    Fail("--keep ", keep, " is impossible in the LLM: ", v0, " visual tokens enter it (keep 1..", v0, ")");
  if (keep == v0) return sched;
  const int start = p.LlmStart(layers);
  if (start >= layers - 1)
    Fail("the first reducing LLM layer (", start, ") leaves no later layer to benefit; use --llm-start 0..", layers - 2);
  const double least = Mean(LlmVisualCounts(layers, start, v0, static_cast<double>(v0)));
  if (static_cast<double>(keep) < least - 0.5)
    Fail("--keep ", keep, " is out of reach in the LLM: layers 0..", start, " see all ", v0,
         " visual tokens, so the mean over ", layers, " layers is at least ", least,
         " (with --llm-start ", start, "); choose a larger --keep",
         start > 0 ? " or an earlier --llm-start" : "");
  double lo = 0, hi = static_cast<double>(v0);  // mean decreases as the step r grows
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (Mean(LlmVisualCounts(layers, start, v0, mid)) > static_cast<double>(keep) ? lo : hi) = mid;
  }
  const std::vector<int64_t> a = LlmVisualCounts(layers, start, v0, hi);
  for (int l = start; l + 1 < layers; ++l) sched[static_cast<size_t>(l)] = static_cast<int>(a[static_cast<size_t>(l)] - a[static_cast<size_t>(l + 1)]);
  return sched;
}

ReductionSchedule ScheduleForKeep(MethodSite site, const LlavaConfig& cfg, const FicocoParams& p, int64_t keep) {
  ReductionSchedule s = NoReduction(cfg);
  const int64_t patches = cfg.vision.num_patches();
  switch (site) {
    case MethodSite::None:
      Fail("--keep and --tflops need a reduction method (--method)");
    case MethodSite::Vision:
      s.vision = VisionSchedule(cfg, p, keep);
      break;
    case MethodSite::Llm:
      s.llm = LlmSchedule(cfg, p, patches, keep);
      break;
    case MethodSite::VisionAndLlm: {
      if (keep < 1 || keep > patches) Fail("--keep ", keep, " is impossible: the image has ", patches, " patches (keep 1..", patches, ")");
      const int64_t after_vision =
          patches - std::llround(static_cast<double>(p.vl_split) * static_cast<double>(patches - keep));
      s.vision = VisionSchedule(cfg, p, after_vision);
      s.llm = LlmSchedule(cfg, p, after_vision, keep);
      break;
    }
  }
  return s;
}

}  // namespace

ReductionSchedule ScheduleForBudget(MethodSite site, const LlavaConfig& cfg, const FicocoParams& params,
                                    const Budget& budget, int64_t text_tokens) {
  params.Validate();
  if (budget.keep >= 0 && budget.tflops >= 0) Fail("give either --keep or --tflops, not both");
  if (!budget.set()) return NoReduction(cfg);
  if (budget.keep >= 0) return ScheduleForKeep(site, cfg, params, budget.keep);
  if (site == MethodSite::None) Fail("--keep and --tflops need a reduction method (--method)");
  if (!(budget.tflops > 0)) Fail("--tflops must be positive, got ", budget.tflops);
  // The largest keep whose LLM prefill fits: cost grows with keep.
  const int64_t patches = cfg.vision.num_patches();
  double least = -1;
  for (int64_t keep = patches; keep >= 1; --keep) {
    ReductionSchedule s;
    try {
      s = ScheduleForKeep(site, cfg, params, keep);
    } catch (const Error&) {
      break;  // smaller keeps are out of reach too
    }
    least = CountPrefill(cfg, FlowOf(cfg, s, text_tokens)).llm_prefill_flops / 1e12;
    if (least <= budget.tflops) return s;
  }
  Fail("--tflops ", budget.tflops, " is out of reach for this method and prompt (", text_tokens,
       " text tokens): the cheapest schedule costs ", least, " TFLOPs");
}

}  // namespace ficoco
