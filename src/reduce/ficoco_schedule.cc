// FiCoCo's schedules: where the removed tokens go layer by layer (ficoco-spec §2.1, §3.1, §4).
#include <cmath>

#include "base/error.h"
#include "reduce/budget.h"
#include "reduce/ficoco.h"

namespace ficoco {

ReductionSchedule FicocoVSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  ReductionSchedule s = NoReduction(cfg);
  s.vision = VisionSpread(cfg, p.VisionStart(cfg.vision.num_hidden_layers), keep, "ficoco-v");
  return s;
}

ReductionSchedule FicocoLSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  ReductionSchedule s = NoReduction(cfg);
  s.llm = LlmEqualSteps(cfg, p.LlmStart(cfg.text.num_hidden_layers), cfg.vision.num_patches(), keep);
  return s;
}

ReductionSchedule FicocoVLSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  const int64_t patches = cfg.vision.num_patches();
  if (keep < 1 || keep > patches) Fail("--keep ", keep, " is impossible: the image has ", patches, " patches (keep 1..", patches, ")");
  // FiCoCo-V removes --vl-split of the removed tokens; FiCoCo-L brings the mean to keep.
  const int64_t after_vision = patches - std::llround(static_cast<double>(p.vl_split) * static_cast<double>(patches - keep));
  ReductionSchedule s = NoReduction(cfg);
  s.vision = VisionSpread(cfg, p.VisionStart(cfg.vision.num_hidden_layers), after_vision, "ficoco-vl");
  s.llm = LlmEqualSteps(cfg, p.LlmStart(cfg.text.num_hidden_layers), after_vision, keep);
  return s;
}

}  // namespace ficoco
