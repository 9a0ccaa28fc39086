#include "reduce/dpc_knn.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "kernels/gemv.h"

namespace ficoco {

DpcKnnResult DpcKnn(const Matrix& x, int64_t k) {
  const int64_t n = x.rows(), width = x.cols();
  if (k < 1 || k > n) Fail("DPC-KNN: cannot form ", k, " clusters from ", n, " points");
  std::vector<double> dist(static_cast<size_t>(n * n), 0.0);
  auto d = [&](int64_t i, int64_t j) -> double& { return dist[static_cast<size_t>(i * n + j)]; };
  std::vector<float> diff(static_cast<size_t>(width));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      for (int64_t c = 0; c < width; ++c) diff[static_cast<size_t>(c)] = x.at(i, c) - x.at(j, c);
      d(i, j) = d(j, i) = std::sqrt(DotF32Row(diff.data(), diff.data(), DType::F32, width) / static_cast<double>(width));
    }
  const double farthest = *std::max_element(dist.begin(), dist.end());
  DpcKnnResult r;
  std::vector<double> near(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {  // density over the k nearest, the point itself (d = 0) included
    std::copy_n(&d(i, 0), n, near.begin());
    std::partial_sort(near.begin(), near.begin() + k, near.end());
    double sq = 0;
    for (int64_t j = 0; j < k; ++j) sq += near[static_cast<size_t>(j)] * near[static_cast<size_t>(j)];
    r.density.push_back(std::exp(-sq / static_cast<double>(k)));
  }
  std::vector<double> gamma;
  for (int64_t i = 0; i < n; ++i) {  // parent distance: to the nearest denser point (equal density: lower row)
    double delta = farthest;
    for (int64_t j = 0; j < n; ++j) {
      const double rj = r.density[static_cast<size_t>(j)], ri = r.density[static_cast<size_t>(i)];
      if (rj > ri || (rj == ri && j < i)) delta = std::min(delta, d(i, j));
    }
    r.parent_distance.push_back(delta);
    gamma.push_back(delta * r.density[static_cast<size_t>(i)]);
  }
  std::vector<int32_t> rank(static_cast<size_t>(n));
  std::iota(rank.begin(), rank.end(), 0);
  std::stable_sort(rank.begin(), rank.end(),
                   [&](int32_t a, int32_t b) { return gamma[static_cast<size_t>(a)] > gamma[static_cast<size_t>(b)]; });
  r.centres.assign(rank.begin(), rank.begin() + k);
  for (int64_t i = 0; i < n; ++i) {  // nearest centre; equidistant: the one ranked first
    int32_t best = 0;
    for (int32_t g = 1; g < k; ++g)
      if (d(r.centres[static_cast<size_t>(g)], i) < d(r.centres[static_cast<size_t>(best)], i)) best = g;
    r.cluster.push_back(best);
  }
  for (int32_t g = 0; g < k; ++g) r.cluster[static_cast<size_t>(r.centres[static_cast<size_t>(g)])] = g;
  return r;
}

}  // namespace ficoco
