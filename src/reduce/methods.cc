#include "reduce/methods.h"

#include "base/error.h"
#include "reduce/baselines_llm.h"
#include "reduce/baselines_prellm.h"
#include "reduce/baselines_sparsevlm.h"
#include "reduce/baselines_vision.h"
#include "reduce/ficoco.h"

namespace ficoco {

const std::vector<MethodInfo>& AllMethods() {
  static const std::vector<MethodInfo> methods = [] {
    std::vector<MethodInfo> m;
    m.push_back({.name = "none", .site = MethodSite::None, .summary = "No reduction: all visual tokens reach every LLM layer.", .params = {}});
    m.push_back({.name = "ficoco-v",
                 .site = MethodSite::Vision,
                 .summary = "FiCoCo-V (spec §2): in the CLIP layers from --vision-start on, discard patches that are "
                            "redundant (patch attention) and unimportant ([CLS] attention), with a local penalty, and fold "
                            "each into the kept patches it attends to most (token-adaptive targets, self-preserving "
                            "compression).",
                 .params = {"--keep", "--tflops", "--ficoco-preset", "--lambda", "--epsilon", "--penalty", "--window",
                            "--vision-start"},
                 .vision_plan = FicocoVisionPlan,
                 .schedule = FicocoVSchedule});
    m.push_back({.name = "ficoco-l",
                 .site = MethodSite::Llm,
                 .summary = "FiCoCo-L (spec §3): in the LLM prefill from --llm-start on, discard image tokens redundant to "
                            "other image tokens and unimportant to the text, and fold each into kept image tokens related "
                            "directly and through the text (token-adaptive targets, self-preserving compression).",
                 .params = {"--keep", "--tflops", "--ficoco-preset", "--beta", "--gamma", "--epsilon", "--llm-start",
                            "--positions"},
                 .llm_plan = FicocoLlmPlan,
                 .schedule = FicocoLSchedule});
    m.push_back({.name = "ficoco-vl",
                 .site = MethodSite::VisionAndLlm,
                 .summary = "FiCoCo-VL (spec §4): FiCoCo-V in the encoder removes --vl-split of the removed tokens, "
                            "FiCoCo-L in the LLM the rest.",
                 .params = {"--keep", "--tflops", "--ficoco-preset", "--vl-split", "--lambda", "--beta", "--gamma",
                            "--epsilon", "--penalty", "--window", "--vision-start", "--llm-start", "--positions"},
                 .vision_plan = FicocoVisionPlan,
                 .llm_plan = FicocoLlmPlan,
                 .schedule = FicocoVLSchedule});
    // Baselines (baselines.md): in the encoder, between encoder and LLM, in the LLM.
    for (MethodInfo (*factory)() : {TomeMethod, EvitMethod, RandomMethod, TopkClsMethod, PoolMethod, VisionZipMethod,
                                    PruMergeMethod, PruMergePlusMethod, FastvMethod, PdropMethod, DartMethod,
                                    SparseVlmMethod})
      m.push_back(factory());
    return m;
  }();
  return methods;
}

const MethodInfo& FindMethod(const std::string& name) {
  std::string valid;
  for (const MethodInfo& m : AllMethods()) {
    if (m.name == name) return m;
    valid += (valid.empty() ? "" : ", ") + m.name;
  }
  Fail("unknown method '", name, "' (valid: ", valid, "; `ficoco methods` describes them)");
}

const char* MethodSiteName(MethodSite site) {
  switch (site) {
    case MethodSite::None: return "none";
    case MethodSite::Vision: return "vision";
    case MethodSite::PreLlm: return "pre-llm";
    case MethodSite::Llm: return "llm";
    case MethodSite::VisionAndLlm: return "vision+llm";
  }
  return "?";
}

}  // namespace ficoco
