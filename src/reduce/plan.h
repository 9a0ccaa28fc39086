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
  // Source rows, when they are not simply FilterResult::discard in order: a method may
  // also route information out of kept tokens (PruMerge adds every one of a kept
  // centre's neighbours into it, kept or not). Empty = the discarded tokens.
  std::vector<int32_t> sources;

  int64_t num_sources() const { return static_cast<int64_t>(src_begin.size()) - 1; }
  int32_t source_row(const std::vector<int32_t>& discard, size_t s) const { return sources.empty() ? discard[s] : sources[s]; }
  int64_t num_pairs() const { return static_cast<int64_t>(dst.size()); }
  // Routing where each of n discarded tokens is simply dropped.
  static Routing PruneAll(int64_t n) { return Routing{std::vector<int32_t>(static_cast<size_t>(n + 1), 0), {}, {}, {}}; }
};

enum class CompressRule {
  Prune,           // drop S, ignore the routing
  SelfPreserving,  // X_j ← (X_j + Σ α_ij X_i) / (1 + Σ α_ij)          (FiCoCo, spec Eq. 2)
  Additive,        // X_j ← X_j + Σ α_ij X_i                            (FiCoCo-L official code, spec §9 L8)
  Average,         // X_j ← (X_j + Σ X_i) / (1 + |I_j|)                 (the paper's "average compression" ablation)
  SizeWeighted,    // X_j ← (σ_j X_j + Σ α σ_i X_i) / (σ_j + Σ α σ_i), σ_j += Σ α σ_i   (ToMe; σ = TokenMeta::size)
  FuseIntoNew,     // new tokens Σ α_i X_i (EViT: one; SparseVLM: one per cluster); every dst is NewToken(g)
};

// Routing target meaning "the g-th token this layer creates" (CompressRule::FuseIntoNew).
// New tokens are inserted, in g order, right after the last kept candidate.
inline constexpr int32_t kNewToken = -1;
constexpr int32_t NewToken(int32_t g) { return kNewToken - g; }
const char* CompressRuleName(CompressRule rule);

// What one reducing layer decided: the output of filter and correlate plus the
// compression rule to apply.
struct LayerPlan {
  FilterResult filter;
  Routing routing;
  CompressRule rule = CompressRule::SelfPreserving;
  // Survivors' new order, as current rows (a permutation of the rows that stay), for
  // methods whose original reorders tokens (ToMe, EViT); empty = keep the current order.
  std::vector<int32_t> order;
};

}  // namespace ficoco
