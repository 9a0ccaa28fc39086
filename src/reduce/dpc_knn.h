// Density-peaks clustering with k nearest neighbours (DPC-KNN), as SparseVLM uses it
// to group the deleted tokens it recycles (baselines.md §4).
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ficoco {

// DPC-KNN on the rows of `points` [n, C] into `clusters` groups (baselines.md §4):
// d = Euclidean / √C; density ρ_i = exp(−mean of d² to the `clusters` nearest points,
// the point itself included, as the reference's top-k over the full matrix); parent
// distance δ_i = d to the nearest denser point (the densest: the largest d of all);
// centres = top `clusters` by ρ·δ; each point joins its nearest centre (a centre its own).
// Deterministic ties instead of the reference's 1e-6 random noise: equal densities rank
// the lower row as denser; equal ρ·δ rank the lower row first; a point equidistant from
// two centres joins the one ranked first.
struct DpcKnnResult {
  std::vector<double> density, parent_distance;
  std::vector<int32_t> centres;  // rows, in cluster order (descending ρ·δ)
  std::vector<int32_t> cluster;  // per row: its cluster g
};
DpcKnnResult DpcKnn(const Matrix& points, int64_t clusters);

}  // namespace ficoco
