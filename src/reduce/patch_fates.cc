// What happened to each patch over a whole request: chains followed across the
// recorded plans of the vision encoder and the LLM.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "base/error.h"
#include "reduce/viz.h"

namespace ficoco {
namespace {

// Grid cell of a token record, or -1 for a token that is not an image patch.
int CellOf(const TokenMeta& meta, int grid, const RecordedPlan& plan) {
  if (meta.grid_row < 0 && meta.grid_col < 0) return -1;
  if (meta.grid_row < 0 || meta.grid_row >= grid || meta.grid_col < 0 || meta.grid_col >= grid) {
    Fail("reduction trace, ", ReductionSiteName(plan.site), " layer ", plan.layer, ": token ", meta.orig_index,
         " has grid cell (", meta.grid_row, ", ", meta.grid_col, ") outside the ", grid, "x", grid, " grid");
  }
  return meta.grid_row * grid + meta.grid_col;
}

// A discarded patch's routing within one plan.
struct Outgoing {
  int pairs = 0;
  int best_cell = -1;  // largest-alpha target that is a patch
  float best_alpha = -std::numeric_limits<float>::infinity();
  float alpha_sum = 0.0f;
};

std::vector<Outgoing> OutgoingByCell(const RecordedPlan& plan, int grid) {
  std::vector<Outgoing> out(static_cast<size_t>(grid) * grid);
  for (size_t k = 0; k < plan.src.size() && k < plan.dst.size() && k < plan.alpha.size(); ++k) {
    const int src = CellOf(plan.src[k], grid, plan);
    if (src < 0) continue;
    const int dst = CellOf(plan.dst[k], grid, plan);
    Outgoing& o = out[static_cast<size_t>(src)];
    ++o.pairs;
    o.alpha_sum += plan.alpha[k];
    if (dst >= 0 && plan.alpha[k] > o.best_alpha) {
      o.best_alpha = plan.alpha[k];
      o.best_cell = dst;
    }
  }
  return out;
}

// "12-23" style ranges of sorted, distinct layer numbers.
std::string LayerRanges(const std::vector<int>& layers) {
  std::ostringstream os;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    if (i > 0) os << ", ";
    os << layers[i];
    if (j > i) os << "-" << layers[j];
    i = j + 1;
  }
  return os.str();
}

}  // namespace

std::vector<PatchFate> FinalFates(const ReductionTrace& trace) {
  const int grid = trace.grid;
  if (grid <= 0) Fail("reduction trace has no patch grid (grid ", grid, ")");
  const size_t cells = static_cast<size_t>(grid) * grid;
  std::vector<PatchFate> fates(cells);
  for (size_t c = 0; c < cells; ++c) fates[c] = {PatchFateKind::Kept, ReductionSite::Vision, -1,
                                                 static_cast<int>(c), static_cast<int>(c), 1.0f, true};
  // Plan index that discarded each cell (-1: never) and the share of its first hop.
  std::vector<int> discarded_at(cells, -1);
  std::vector<float> hop_share(cells, 0.0f);

  for (size_t p = 0; p < trace.plans.size(); ++p) {
    const RecordedPlan& plan = trace.plans[p];
    const std::vector<Outgoing> outgoing = OutgoingByCell(plan, grid);
    for (const TokenMeta& meta : plan.discarded) {
      const int c = CellOf(meta, grid, plan);
      if (c < 0) continue;
      if (discarded_at[c] >= 0) {
        const RecordedPlan& first = trace.plans[static_cast<size_t>(discarded_at[c])];
        Fail("reduction trace discards patch (", meta.grid_row, ", ", meta.grid_col, ") twice: at ",
             ReductionSiteName(first.site), " layer ", first.layer, " and at ", ReductionSiteName(plan.site),
             " layer ", plan.layer);
      }
      discarded_at[c] = static_cast<int>(p);
      const Outgoing& o = outgoing[static_cast<size_t>(c)];
      PatchFate& f = fates[c];
      f.site = plan.site;
      f.layer = plan.layer;
      // Under the Prune rule compress ignores the routing, so nothing was passed on.
      const bool routed = plan.rule != CompressRule::Prune && o.pairs > 0;
      f.kind = routed ? PatchFateKind::Merged : PatchFateKind::Pruned;
      f.first_cell = f.final_cell = routed ? o.best_cell : -1;
      f.share = 0.0f;
      f.final_survives = false;
      if (routed && o.best_cell >= 0) hop_share[c] = o.alpha_sum > 0.0f ? o.best_alpha / o.alpha_sum : 0.0f;
    }
  }

  // Follow each merged patch's chain. Each hop moves to a holder discarded at a
  // strictly later plan, so the walk ends within plans.size() hops even for a
  // malformed trace.
  for (size_t c = 0; c < cells; ++c) {
    PatchFate& f = fates[c];
    if (f.kind != PatchFateKind::Merged || f.first_cell < 0) continue;
    int holder = f.first_cell;
    int at = discarded_at[c];
    float share = hop_share[c];
    while (discarded_at[holder] > at && fates[holder].kind == PatchFateKind::Merged &&
           fates[holder].first_cell >= 0) {
      share *= hop_share[holder];
      at = discarded_at[holder];
      holder = fates[holder].first_cell;
    }
    f.final_cell = holder;
    f.share = share;
    f.final_survives = fates[holder].kind == PatchFateKind::Kept;
  }
  return fates;
}

std::string FateCountsText(const std::vector<PatchFate>& fates) {
  int kept = 0, merged_vision = 0, merged_llm = 0, pruned = 0;
  for (const PatchFate& f : fates) {
    switch (f.kind) {
      case PatchFateKind::Kept: ++kept; break;
      case PatchFateKind::Merged: ++(f.site == ReductionSite::Llm ? merged_llm : merged_vision); break;
      case PatchFateKind::Pruned: ++pruned; break;
    }
  }
  std::ostringstream os;
  os << fates.size() << " patches: " << kept << " kept, " << merged_vision << " merged in vision, " << merged_llm
     << " merged in LLM, " << pruned << " pruned";
  return os.str();
}

std::string ReducingLayersText(const ReductionTrace& trace) {
  std::vector<std::string> parts;
  for (ReductionSite site : {ReductionSite::Vision, ReductionSite::PreLlm, ReductionSite::Llm}) {
    std::vector<int> layers;
    for (const RecordedPlan& plan : trace.plans) {
      if (plan.site == site && !plan.discarded.empty()) layers.push_back(plan.layer);
    }
    if (layers.empty()) continue;
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    if (site == ReductionSite::PreLlm) {
      parts.push_back("the encoder output");
      continue;
    }
    parts.push_back(std::string(site == ReductionSite::Vision ? "vision" : "LLM") +
                    (layers.size() > 1 ? " layers " : " layer ") + LayerRanges(layers));
  }
  if (parts.empty()) return "no reduction";
  std::string text = "reduced at " + parts[0];
  for (size_t i = 1; i < parts.size(); ++i) text += ", " + parts[i];
  return text;
}

}  // namespace ficoco
