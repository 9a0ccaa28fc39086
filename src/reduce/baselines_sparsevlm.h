// SparseVLM v1.5 (baselines.md §4; Zhang et al., ICML 2025, branch v1.5 of
// Gumpest/SparseVLMs): text-guided pruning inside the LLM with recycling. At the
// sparse layers (2, 6, 15 of 32) the image tokens the "rater" text tokens attend to
// least are deleted; the most relevant 30 % of the deleted ones are clustered with
// DPC-KNN and each cluster's mean comes back as a new token after the kept image tokens.
#pragma once
#include <cstdint>
#include <vector>

#include "language/llama_decoder.h"
#include "reduce/methods.h"
#include "reduce/params.h"
#include "reduce/dpc_knn.h"
#include "reduce/plan.h"
#include "reduce/schedule.h"
#include "tensor/tensor.h"

namespace ficoco {

// The layers whose hook prunes (their output), for a decoder of `depth` layers:
// {2, 6, 15} at 32, else round(ℓ·depth/32) clamped to 0..depth − 2, duplicates merged.
std::vector<int> SparseVlmLayers(int depth);

// Text raters, as rows of `input_meta` (ascending): with E_V the image rows and E_T the
// rows after the image, relevance = mean over image rows of softmax_T(E_V E_Tᵀ); raters
// are the text tokens whose relevance exceeds the mean relevance. When none does (a
// single text token, or all equal) every text token rates. Throws Error without an image
// or without text after it.
std::vector<int32_t> SparseVlmRaters(const Matrix& input_embeds, const std::vector<TokenMeta>& input_meta);

// Recycling sizes for |D| deleted tokens: n_sel = ⌊0.3·|D|⌋ + 1 are clustered into
// c = ⌊n_sel/10⌋ + 1 new tokens (0 and 0 when nothing is deleted).
int64_t SparseVlmSelected(int64_t deleted);
int64_t SparseVlmClusters(int64_t deleted);
// The smallest |D| ≤ visual − 1 whose net removal |D| − c(|D|) is n_remove, or −1 when
// there is none (the net removal grows by 0 or 1 per deleted token, so every n_remove up
// to the net of visual − 1 deletions has one).
int64_t SparseVlmDeletions(int64_t n_remove, int64_t visual);


// The sparse layer's plan removing `n_remove` net tokens: |D| = SparseVlmDeletions(n_remove)
// image tokens with the lowest rater attention are deleted, and c(|D|) cluster means are
// routed to NewToken(g) (CompressRule::FuseIntoNew, α = 1/|cluster|).
LayerPlan SparseVlmPlan(const TextHookContext& layer, int64_t n_remove, const ReductionParams& params);
// keep 192 / 128 / 64 on 32 layers and 576 patches: v1.5's top-k counts (nominal budgets,
// see sparsevlm.cc); other keeps and depths: geometric stages whose layer mean is keep.
ReductionSchedule SparseVlmSchedule(const LlavaConfig& cfg, const ReductionParams& params, int64_t keep);
MethodInfo SparseVlmMethod();

}  // namespace ficoco
