#include "reduce/schedule.h"

#include <numeric>
#include <sstream>

#include "base/error.h"

namespace ficoco {
namespace {

int64_t Sum(const std::vector<int>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); }

int VisionLayersRun(const LlavaConfig& cfg) { return cfg.vision_last_layer() + 1; }

// CLS travels with the patches through the tower; "full" hands it to the LLM too.
int64_t ClsTokensForLlm(const LlavaConfig& cfg) { return cfg.vision_feature_select_strategy == "full" ? 1 : 0; }

// An empty vector means "no reduction there"; otherwise one entry per layer, none negative.
void CheckShape(const std::vector<int>& discards, int layers, const char* stack) {
  if (!discards.empty() && static_cast<int>(discards.size()) != layers)
    Fail("reduction schedule: ", stack, " has ", discards.size(), " entries, expected ", layers,
         " (one per ", stack, " layer that runs) or none");
  for (size_t l = 0; l < discards.size(); ++l)
    if (discards[l] < 0) Fail("reduction schedule: ", stack, " layer ", l, " discards ", discards[l], " tokens (negative)");
}

int DiscardsAt(const std::vector<int>& discards, size_t layer) { return discards.empty() ? 0 : discards[layer]; }

// Decoder layers over `visual` image tokens and `text` other tokens, reducing per `discards`.
void FillLlm(TokenFlow& flow, const LlavaConfig& cfg, const std::vector<int>& discards, int64_t visual) {
  const int layers = cfg.text.num_hidden_layers;
  flow.llm.resize(layers);
  flow.llm_visual.resize(layers);
  for (int l = 0; l < layers; ++l) {
    const int d = DiscardsAt(discards, l);
    if (d > 0 && d >= visual)
      Fail("reduction schedule: llm layer ", l, " discards ", d, " of ", visual,
           " visual tokens (at least one must remain)");
    flow.llm_visual[l] = visual;
    flow.llm[l].attention = flow.text_tokens + visual;
    flow.llm[l].mlp = flow.llm[l].attention - d;
    visual -= d;
  }
}

void CheckTextTokens(int64_t text_tokens) {
  if (text_tokens < 0) Fail("token flow: text_tokens must be >= 0, got ", text_tokens);
}

}  // namespace

bool ReductionSchedule::empty() const { return vision_total() == 0 && pre_llm == 0 && llm_total() == 0; }
int64_t ReductionSchedule::vision_total() const { return Sum(vision); }
int64_t ReductionSchedule::llm_total() const { return Sum(llm); }

ReductionSchedule NoReduction(const LlavaConfig& cfg) {
  ReductionSchedule s;
  s.vision.assign(VisionLayersRun(cfg), 0);
  s.llm.assign(cfg.text.num_hidden_layers, 0);
  return s;
}

double TokenFlow::mean_llm_visual() const {
  if (llm_visual.empty()) return 0.0;
  return static_cast<double>(std::accumulate(llm_visual.begin(), llm_visual.end(), int64_t{0})) /
         static_cast<double>(llm_visual.size());
}

TokenFlow FlowOf(const LlavaConfig& cfg, const ReductionSchedule& schedule, int64_t text_tokens, bool with_image) {
  CheckTextTokens(text_tokens);
  const int vision_layers = VisionLayersRun(cfg);
  CheckShape(schedule.vision, vision_layers, "vision");
  CheckShape(schedule.llm, cfg.text.num_hidden_layers, "llm");
  TokenFlow flow;
  flow.text_tokens = text_tokens;
  if (!with_image) {
    if (!schedule.empty())
      Fail("reduction schedule: discards ", schedule.vision_total() + schedule.llm_total(),
           " visual tokens but the prompt has no image");
    FillLlm(flow, cfg, {}, 0);
    return flow;
  }
  int64_t patches = cfg.vision.num_patches();
  flow.vision.resize(vision_layers);
  for (int l = 0; l < vision_layers; ++l) {
    const int d = DiscardsAt(schedule.vision, l);
    if (d > 0 && d >= patches)
      Fail("reduction schedule: vision layer ", l, " discards ", d, " of ", patches,
           " patches (at least one must remain)");
    flow.vision[l].attention = patches + 1;  // + CLS, which is never discarded
    flow.vision[l].mlp = flow.vision[l].attention - d;
    patches -= d;
  }
  if (schedule.pre_llm < 0 || (schedule.pre_llm > 0 && schedule.pre_llm >= patches))
    Fail("reduction schedule: removes ", schedule.pre_llm, " of ", patches,
         " patches between encoder and LLM (at least one must remain)");
  patches -= schedule.pre_llm;
  flow.image_tokens = patches + ClsTokensForLlm(cfg);
  FillLlm(flow, cfg, schedule.llm, flow.image_tokens);
  return flow;
}

TokenFlow PreLlmFlow(const LlavaConfig& cfg, int64_t visual_tokens, int64_t text_tokens) {
  CheckTextTokens(text_tokens);
  if (visual_tokens < 1) Fail("token flow: visual_tokens must be >= 1, got ", visual_tokens);
  TokenFlow flow = FlowOf(cfg, ReductionSchedule{}, text_tokens);
  flow.image_tokens = visual_tokens;
  FillLlm(flow, cfg, {}, visual_tokens);
  return flow;
}

std::string DescribeSchedule(const ReductionSchedule& schedule) {
  std::ostringstream os;
  auto stack = [&os](const char* name, const std::vector<int>& discards) {
    bool first = true;
    for (size_t l = 0; l < discards.size(); ++l) {
      if (discards[l] == 0) continue;
      if (first && os.tellp() > 0) os << "; ";
      os << (first ? std::string(name) + " " : ",") << l << ':' << discards[l];
      first = false;
    }
  };
  stack("vision", schedule.vision);
  if (schedule.pre_llm > 0) os << (os.tellp() > 0 ? "; " : "") << "before the projector " << schedule.pre_llm;
  stack("llm", schedule.llm);
  return os.tellp() > 0 ? os.str() : "none";
}

}  // namespace ficoco
