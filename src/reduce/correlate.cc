#include "reduce/correlate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "kernels/softmax.h"

namespace ficoco {

float Quantile(std::vector<float> values, float q) {
  if (values.empty()) Fail("quantile of an empty row");
  std::sort(values.begin(), values.end());
  // The position is computed in float, as torch.quantile does on float32 input: in
  // double, 0.998f·500 is 499.0000129, which would move τ off the 499th value.
  const double pos = static_cast<double>(q * static_cast<float>(values.size() - 1));
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return static_cast<float>(values[lo] + frac * (static_cast<double>(values[hi]) - values[lo]));
}

int64_t QuantileCount(int64_t n, float eps) {
  return n - static_cast<int64_t>(std::ceil(eps * static_cast<float>(n - 1)));  // float, as in Quantile
}

void SoftmaxRows(Matrix& m) {
  for (int64_t r = 0; r < m.rows(); ++r) SoftmaxRow(m.row(r), m.cols());
}

namespace {

// Columns of `row` at or above its eps-quantile.
int64_t CountAtOrAboveQuantile(const float* row, int64_t n, float eps) {
  const float tau = Quantile(std::vector<float>(row, row + n), eps);
  return std::count_if(row, row + n, [&](float v) { return v >= tau; });
}

}  // namespace

Routing QuantileTargets(const Matrix& c, const std::vector<int32_t>& keep, float eps, TargetCount count) {
  if (c.cols() != static_cast<int64_t>(keep.size()))
    Fail("correlate: correlation has ", c.cols(), " columns for ", keep.size(), " kept tokens");
  Routing r;
  if (c.rows() == 0) return r;
  if (keep.empty()) Fail("correlate: discarded tokens but no kept token to receive them");
  std::vector<int64_t> k(static_cast<size_t>(c.rows()));
  for (int64_t i = 0; i < c.rows(); ++i) k[static_cast<size_t>(i)] = CountAtOrAboveQuantile(c.row(i), c.cols(), eps);
  if (count == TargetCount::LayerMax) std::fill(k.begin(), k.end(), *std::max_element(k.begin(), k.end()));
  std::vector<int32_t> cols(static_cast<size_t>(c.cols()));
  for (int64_t i = 0; i < c.rows(); ++i) {
    const float* row = c.row(i);
    std::iota(cols.begin(), cols.end(), 0);
    // Top-k columns; equal values: the lower column first.
    const auto kk = static_cast<std::ptrdiff_t>(k[static_cast<size_t>(i)]);
    std::partial_sort(cols.begin(), cols.begin() + kk, cols.end(), [&](int32_t a, int32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    double sum = 0;
    for (std::ptrdiff_t j = 0; j < kk; ++j) sum += row[cols[static_cast<size_t>(j)]];
    for (std::ptrdiff_t j = 0; j < kk; ++j) {
      const int32_t col = cols[static_cast<size_t>(j)];
      if (row[col] < 0) Fail("correlate: negative correlation ", row[col], " (weights need non-negative values)");
      r.dst.push_back(keep[static_cast<size_t>(col)]);
      r.alpha.push_back(sum > 0 ? static_cast<float>(row[col] / sum) : 1.0f / static_cast<float>(kk));
    }
    r.src_begin.push_back(static_cast<int32_t>(r.dst.size()));
  }
  return r;
}

}  // namespace ficoco
