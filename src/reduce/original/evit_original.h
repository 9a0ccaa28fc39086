// EViT's token reorganisation written directly from the algorithm (Liang et al., "Not
// All Patches are What You Need", ICLR 2022; baselines.md §2), on the encoder's hook
// context and without the library's filter / correlate / compress stages. It is the
// reference the composed form (reduce/evit.cc) is tested against.
#pragma once
#include <cstdint>
#include <vector>

#include "vision/clip_vision.h"

namespace ficoco::original {

// Keeps the `left_tokens` tokens (besides [CLS], at row 0) with the highest head-mean
// [CLS] attention, in descending order (ties: lower row first); with `fuse` the others
// become one appended token Σ a_j x_j. The [CLS] row is computed here from the layer's
// queries and keys; `proportional_attention` adds log(size) of each key to the logits,
// as the encoder does when it runs with ToMe's proportional attention. EViT asserts
// left_tokens >= 1; here 0 is allowed with fusion (the fused token alone remains).
void EvitReorganize(VisionHookContext& ctx, int64_t left_tokens, bool fuse, bool proportional_attention);

// A layer hook removing removals_per_layer[layer] tokens net in each layer: it keeps
// left = (t − 1) − n − (fuse ? 1 : 0) tokens besides [CLS] (0 or missing: none).
VisionLayerHook EvitHook(std::vector<int> removals_per_layer, bool fuse, bool proportional_attention);

}  // namespace ficoco::original
