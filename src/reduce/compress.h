// Compress stage: apply a plan to the hidden states and the token records.
#pragma once
#include <vector>

#include "model/token_meta.h"
#include "reduce/plan.h"
#include "tensor/tensor.h"

namespace ficoco {

// Folds every discarded row into its targets by plan.rule, then deletes the discarded
// rows from `hidden` and `meta`. Survivors keep their order (or plan.order) and their
// own records (SizeWeighted also adds to the target's size); a kept row that receives
// nothing is left bit-for-bit unchanged. FuseIntoNew inserts its new tokens right after
// the last kept candidate (no original index or cell, the position id of the row before,
// size = the sizes absorbed). Validates the plan (indices
// in range, targets kept, weights finite, order a permutation) and throws Error.
void Compress(Matrix& hidden, std::vector<TokenMeta>& meta, const LayerPlan& plan);

}  // namespace ficoco
