// A record of every plan applied during one request, in original token indices, for
// --dump (reduce.<site>.<layer>.*), --viz and tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/token_meta.h"
#include "reduce/plan.h"

namespace ficoco {

enum class ReductionSite { Vision, PreLlm, Llm };
const char* ReductionSiteName(ReductionSite site);  // "vision" | "pre_llm" | "llm"

struct RecordedPlan {
  ReductionSite site = ReductionSite::Vision;
  int layer = 0;
  CompressRule rule = CompressRule::SelfPreserving;
  int64_t tokens_before = 0, tokens_after = 0;  // sequence length around the hook
  // Token records (orig_index: CLS = 0 and patch p = p + 1 in the vision encoder;
  // prompt sequence position in the LLM; grid cells for visual tokens).
  std::vector<TokenMeta> kept;       // T
  std::vector<TokenMeta> discarded;  // S
  std::vector<TokenMeta> src, dst;   // one entry per routed pair
  std::vector<float> alpha;
  std::vector<float> scores;         // filter's final score per candidate, current order
};

struct ReductionTrace {
  int grid = 0;  // original patch grid side of the image
  std::vector<RecordedPlan> plans;
  // Time spent in the reduction hooks (filter + correlate + compress + recording).
  double vision_seconds = 0, llm_seconds = 0;

  // Records `plan` as applied to a sequence whose records were `meta_before`.
  void Record(ReductionSite site, int layer, const LayerPlan& plan, const std::vector<TokenMeta>& meta_before,
              int64_t tokens_after);
};

}  // namespace ficoco
