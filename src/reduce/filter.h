// Filter-stage building blocks shared by the methods (ficoco-spec §2.2, §3.2).
#pragma once
#include <cstdint>
#include <vector>

#include "model/token_meta.h"
#include "reduce/plan.h"

namespace ficoco {

// Scales v to unit L2 norm; an all-zero vector is left unchanged.
void L2Normalize(std::vector<float>& v);

// a·x + b·y element-wise (same lengths).
std::vector<float> WeightedSum(float a, const std::vector<float>& x, float b, const std::vector<float>& y);

// FiCoCo-V's local penalty (spec §2.2): lay the candidates' scores on the original
// patch grid (cells from meta; cells of tokens already removed are empty), cut it into
// window×window blocks (⌈grid/window⌉ per side, the last ones partial), and in each
// block multiply the largest score by `coefficient` if it is positive, divide it by
// `coefficient` otherwise. Ties inside a block: the lower candidate position wins.
void ApplyLocalPenalty(std::vector<float>& scores, const std::vector<TokenMeta>& candidate_meta, int grid, int window,
                       float coefficient);

// S = the n highest scores (ties: lower row first), T = the other candidates; both
// returned ascending. Requires 0 <= n <= candidates.size().
FilterResult DiscardHighest(std::vector<int32_t> candidates, std::vector<float> scores, int64_t n);

// Positions of the n largest values, largest first; ties: the lower position first.
std::vector<int32_t> TopPositions(const std::vector<float>& values, int64_t n);

// The filter result that keeps exactly `kept_rows` of `candidates` (scores per candidate).
FilterResult KeepExactly(const std::vector<int32_t>& candidates, std::vector<float> scores, std::vector<int32_t> kept_rows);

// Keeps the n_keep candidates of highest importance (ties: the lower row is kept),
// drops the others. scores = −importance, so that as for every filter a higher score
// means discarded first. Both sets ascending (spatial order kept).
FilterResult KeepMostImportant(std::vector<int32_t> candidates, const std::vector<float>& importance, int64_t n_keep);

}  // namespace ficoco
