#include "reduce/trace.h"

#include <utility>

#include "base/error.h"

namespace ficoco {
namespace {

// The record of sequence row `row`, checked: a bad row means a bug in a filter or
// correlate stage, and the message says which list held it.
const TokenMeta& RowMeta(const std::vector<TokenMeta>& meta_before, int32_t row, const char* list, int layer) {
  if (row < 0 || static_cast<size_t>(row) >= meta_before.size()) {
    Fail("reduction trace, layer ", layer, ": ", list, " row ", row, " is outside the sequence of ",
         meta_before.size(), " tokens");
  }
  return meta_before[static_cast<size_t>(row)];
}

}  // namespace

const char* ReductionSiteName(ReductionSite site) {
  switch (site) {
    case ReductionSite::Vision: return "vision";
    case ReductionSite::PreLlm: return "pre_llm";
    case ReductionSite::Llm: return "llm";
  }
  return "unknown";
}

void ReductionTrace::Record(ReductionSite site, int layer, const LayerPlan& plan,
                            const std::vector<TokenMeta>& meta_before, int64_t tokens_after) {
  const FilterResult& filter = plan.filter;
  const Routing& routing = plan.routing;
  // A default (empty) routing is accepted as "every discarded token pruned", which is
  // how a Prune-rule plan may arrive; any other shape must have one entry per source.
  const bool no_routing = routing.num_sources() == 0 && routing.num_pairs() == 0;
  const size_t sources = routing.sources.empty() ? filter.discard.size() : routing.sources.size();
  if (!no_routing && routing.num_sources() != static_cast<int64_t>(sources)) {
    Fail("reduction trace, layer ", layer, ": routing has ", routing.num_sources(), " sources for ",
         filter.discard.size(), " discarded tokens");
  }
  if (routing.alpha.size() != routing.dst.size()) {
    Fail("reduction trace, layer ", layer, ": routing has ", routing.alpha.size(), " weights for ",
         routing.dst.size(), " targets");
  }

  RecordedPlan rec;
  rec.site = site;
  rec.layer = layer;
  rec.rule = plan.rule;
  rec.tokens_before = static_cast<int64_t>(meta_before.size());
  rec.tokens_after = tokens_after;
  rec.scores = filter.scores;
  rec.kept.reserve(filter.keep.size());
  for (int32_t row : filter.keep) rec.kept.push_back(RowMeta(meta_before, row, "kept", layer));
  rec.discarded.reserve(filter.discard.size());
  for (int32_t row : filter.discard) rec.discarded.push_back(RowMeta(meta_before, row, "discarded", layer));

  if (!no_routing) {
    for (size_t i = 0; i < sources; ++i) {
      const int32_t begin = routing.src_begin[i], end = routing.src_begin[i + 1];
      if (begin < 0 || end < begin || static_cast<int64_t>(end) > routing.num_pairs()) {
        Fail("reduction trace, layer ", layer, ": routing src_begin[", i, "..", i + 1, "] = ", begin, "..", end,
             " is not a range of its ", routing.num_pairs(), " pairs");
      }
      for (int32_t k = begin; k < end; ++k) {
        rec.src.push_back(routing.sources.empty() ? rec.discarded[i]
                                                  : RowMeta(meta_before, routing.sources[i], "routing source", layer));
        const int32_t dst = routing.dst[static_cast<size_t>(k)];
        // The token a FuseIntoNew plan creates has no original index or cell.
        rec.dst.push_back(dst <= kNewToken ? TokenMeta{-1, -1, -1, -1, TokenRole::Visual}
                                           : RowMeta(meta_before, dst, "routing target", layer));
        rec.alpha.push_back(routing.alpha[static_cast<size_t>(k)]);
      }
    }
  }
  plans.push_back(std::move(rec));
}

}  // namespace ficoco
