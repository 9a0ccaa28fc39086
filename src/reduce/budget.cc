#include "reduce/budget.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "reduce/flops.h"

namespace ficoco {

std::vector<int> VisionSpread(const LlavaConfig& cfg, int start, int64_t keep, const char* method) {
  const int runs = cfg.vision_last_layer() + 1;
  const int64_t patches = cfg.vision.num_patches();
  std::vector<int> sched(static_cast<size_t>(runs), 0);
  if (keep < 1 || keep > patches)
    Fail("--keep ", keep, " is impossible for ", method, " in the vision encoder: it has ", patches, " patches (keep 1..",
         patches, ")");
  if (start < 0 || start >= runs)
    Fail("the first reducing vision layer (", start, ") is not one whose output reaches the projector (0..", runs - 1,
         "); use --vision-start 0..", runs - 1);
  const int64_t layers = runs - start, total = patches - keep;
  for (int l = start; l < runs; ++l) {
    const int64_t from_end = runs - 1 - l;  // the last `total % layers` layers take one more
    sched[static_cast<size_t>(l)] = static_cast<int>(total / layers + (from_end < total % layers ? 1 : 0));
  }
  return sched;
}

double MeanLlmVisual(const std::vector<int>& llm, int64_t v0) {
  double sum = 0;
  int64_t v = v0;
  for (int d : llm) {  // a layer's attention sees the tokens before its own removal
    sum += static_cast<double>(v);
    v -= d;
  }
  return llm.empty() ? static_cast<double>(v0) : sum / static_cast<double>(llm.size());
}

namespace {

void CheckLlmKeep(int64_t keep, int64_t v0) {
  if (keep < 1 || keep > v0)
    Fail("--keep ", keep, " is impossible in the LLM: ", v0, " visual tokens enter it (keep 1..", v0, ")");
}

// `option` moves the first reducing layer (--llm-start, --fastv-k, --pdrop-layers).
[[noreturn]] void OutOfReach(int64_t keep, double least, int first_layer, const char* option) {
  Fail("--keep ", keep, " is out of reach in the LLM: layers 0..", first_layer,
       " see every visual token, so the mean over the layers is at least ", least, " (first reducing layer ",
       first_layer, "); choose a larger --keep", first_layer > 0 ? std::string(" or an earlier ") + option : std::string());
}

// Visual tokens seen by each layer's attention when, from layer `start` on, every
// layer but the last removes `r` more (never fewer than one left).
std::vector<int64_t> EqualStepCounts(int layers, int start, int64_t v0, double r) {
  std::vector<int64_t> a(static_cast<size_t>(layers), v0);
  for (int l = start + 1; l < layers; ++l)
    a[static_cast<size_t>(l)] = std::max<int64_t>(1, std::llround(static_cast<double>(v0) - r * (l - start)));
  return a;
}

std::vector<int> Removals(const std::vector<int64_t>& attention_counts) {
  std::vector<int> d(attention_counts.size(), 0);
  for (size_t l = 0; l + 1 < attention_counts.size(); ++l) d[l] = static_cast<int>(attention_counts[l] - attention_counts[l + 1]);
  return d;
}

}  // namespace

std::vector<int> LlmEqualSteps(const LlavaConfig& cfg, int start, int64_t v0, int64_t keep) {
  const int layers = cfg.text.num_hidden_layers;
  CheckLlmKeep(keep, v0);
  if (keep == v0) return std::vector<int>(static_cast<size_t>(layers), 0);
  if (start < 0 || start >= layers - 1)
    Fail("the first reducing LLM layer (", start, ") leaves no later layer to benefit; use --llm-start 0..", layers - 2);
  auto mean = [&](double r) {
    const auto a = EqualStepCounts(layers, start, v0, r);
    double s = 0;
    for (int64_t x : a) s += static_cast<double>(x);
    return s / layers;
  };
  const double least = mean(static_cast<double>(v0));
  if (static_cast<double>(keep) < least - 0.5) OutOfReach(keep, least, start, "--llm-start");
  double lo = 0, hi = static_cast<double>(v0);  // the mean decreases as the step r grows
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (mean(mid) > static_cast<double>(keep) ? lo : hi) = mid;
  }
  return Removals(EqualStepCounts(layers, start, v0, hi));
}

std::vector<int> LlmOnce(const LlavaConfig& cfg, int layer, int64_t v0, int64_t keep) {
  const int layers = cfg.text.num_hidden_layers;
  CheckLlmKeep(keep, v0);
  std::vector<int> sched(static_cast<size_t>(layers), 0);
  if (keep == v0) return sched;
  if (layer < 0 || layer >= layers - 1) Fail("the pruning layer K − 1 = ", layer, " must be in 0..", layers - 2);
  // Layers 0..layer see v0, the remaining layers − layer − 1 see n: solve the mean for n.
  const double full = static_cast<double>(layer + 1) * static_cast<double>(v0);
  const double least = (full + (layers - layer - 1)) / layers;
  if (static_cast<double>(keep) < least - 0.5) OutOfReach(keep, least, layer, "--fastv-k");
  const int64_t n = std::clamp<int64_t>(std::llround((static_cast<double>(keep) * layers - full) / (layers - layer - 1)), 1, v0);
  sched[static_cast<size_t>(layer)] = static_cast<int>(v0 - n);
  return sched;
}

std::vector<int> LlmGeometricStages(const LlavaConfig& cfg, const std::vector<int>& stage_layers, int64_t v0, int64_t keep) {
  const int layers = cfg.text.num_hidden_layers;
  CheckLlmKeep(keep, v0);
  if (stage_layers.empty()) Fail("no pruning stages given");
  for (size_t i = 0; i < stage_layers.size(); ++i)
    if (stage_layers[i] < 0 || stage_layers[i] >= layers - 1 || (i > 0 && stage_layers[i] <= stage_layers[i - 1]))
      Fail("pruning stages must be ascending layers in 0..", layers - 2, ", got ", stage_layers[i]);
  auto schedule = [&](double ratio) {
    std::vector<int> sched(static_cast<size_t>(layers), 0);
    int64_t v = v0;
    for (int l : stage_layers) {
      const int64_t next = std::max<int64_t>(1, std::llround(static_cast<double>(v) * ratio));
      sched[static_cast<size_t>(l)] = static_cast<int>(v - next);
      v = next;
    }
    return sched;
  };
  if (keep == v0) return schedule(1.0);
  const double least = MeanLlmVisual(schedule(0.0), v0);
  if (static_cast<double>(keep) < least - 0.5) OutOfReach(keep, least, stage_layers.front(), "first stage (--pdrop-layers)");
  double lo = 0, hi = 1;  // the mean grows with the kept ratio
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    (MeanLlmVisual(schedule(mid), v0) > static_cast<double>(keep) ? hi : lo) = mid;
  }
  return schedule(lo);
}

ReductionSchedule ScheduleForBudget(const MethodInfo& method, const LlavaConfig& cfg, const ReductionParams& params,
                                    const Budget& budget, int64_t text_tokens) {
  params.Validate();
  if (budget.keep >= 0 && budget.tflops >= 0) Fail("give either --keep or --tflops, not both");
  if (!budget.set()) return NoReduction(cfg);
  if (method.schedule == nullptr) Fail("--keep and --tflops need a reduction method (--method)");
  if (budget.keep >= 0) return method.schedule(cfg, params, budget.keep);
  if (!(budget.tflops > 0)) Fail("--tflops must be positive, got ", budget.tflops);
  // The largest keep whose LLM prefill fits: cost grows with keep.
  double least = -1;
  for (int64_t keep = cfg.vision.num_patches(); keep >= 1; --keep) {
    ReductionSchedule s;
    try {
      s = method.schedule(cfg, params, keep);
    } catch (const Error&) {
      continue;  // not every keep is reachable (pooling grids, minimum means): try the next
    }
    least = CountPrefill(cfg, FlowOf(cfg, s, text_tokens)).llm_prefill_flops / 1e12;
    if (least <= budget.tflops) return s;
  }
  if (least < 0) Fail("--tflops: no budget is reachable for ", method.name, " with these settings");
  Fail("--tflops ", budget.tflops, " is out of reach for ", method.name, " and this prompt (", text_tokens,
       " text tokens): the cheapest schedule costs ", least, " TFLOPs");
}

}  // namespace ficoco
