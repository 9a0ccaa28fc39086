// ToMe's merge step written directly from the algorithm (Bolya et al., "Token Merging:
// Your ViT but Faster", ICLR 2023; baselines.md §1 steps 1–8), on the encoder's hook
// context and without the library's filter / correlate / compress stages. It is the
// reference the composed form (reduce/tome.cc) is tested against.
#pragma once
#include <cstdint>
#include <vector>

#include "vision/clip_vision.h"

namespace ficoco::original {

// One bipartite soft matching in the layer of `ctx` ([CLS] at row 0): merges r tokens
// (clamped to ⌊(t − 1)/2⌋ as ToMe does) by size-weighted average into their best match,
// updates the sizes in ctx.meta and reorders to [unmerged A, B].
void TomeMerge(VisionHookContext& ctx, int64_t r);

// A layer hook merging merges_per_layer[layer] tokens in each layer (0 or missing: none).
VisionLayerHook TomeHook(std::vector<int> merges_per_layer);

}  // namespace ficoco::original
