// Plain-data results of the three stages of token reduction (ficoco-spec §1):
//   filter    — which tokens are discarded (scores, discard set S, keep set T);
//   correlate — for each discarded token, the kept tokens that absorb it, with weights;
//   compress  — how a kept token folds in what it receives (then S is deleted).
// Every index here is a row of the current (possibly already reduced) sequence.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ficoco {

struct FilterResult {
  std::vector<int32_t> candidates;  // rows that may be discarded, ascending (never CLS or text)
  std::vector<float> scores;        // final redundancy score per candidate (higher = discarded first)
  std::vector<int32_t> discard;     // S, ascending
  std::vector<int32_t> keep;        // T = candidates \ S, ascending
};

// Targets of discard[i] are dst[src_begin[i] .. src_begin[i+1]) with weights alpha;
// every target is in FilterResult::keep. No targets means the token is pruned.
struct Routing {
  std::vector<int32_t> src_begin{0};
  std::vector<int32_t> dst;
  std::vector<float> alpha;

  int64_t num_sources() const { return static_cast<int64_t>(src_begin.size()) - 1; }
  int64_t num_pairs() const { return static_cast<int64_t>(dst.size()); }
  // Routing where each of n discarded tokens is simply dropped.
  static Routing PruneAll(int64_t n) { return Routing{std::vector<int32_t>(static_cast<size_t>(n + 1), 0), {}, {}}; }
};

enum class CompressRule {
  Prune,           // drop S, ignore the routing
  SelfPreserving,  // X_j ← (X_j + Σ α_ij X_i) / (1 + Σ α_ij)          (FiCoCo, spec Eq. 2)
  Additive,        // X_j ← X_j + Σ α_ij X_i                            (FiCoCo-L official code, spec §9 L8)
  Average,         // X_j ← (X_j + Σ X_i) / (1 + |I_j|)                 (the paper's "average compression" ablation)
};
const char* CompressRuleName(CompressRule rule);

// What one reducing layer decided: the output of filter and correlate plus the
// compression rule to apply.
struct LayerPlan {
  FilterResult filter;
  Routing routing;
  CompressRule rule = CompressRule::SelfPreserving;
};

}  // namespace ficoco
