#include "model/attention_signals.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "kernels/softmax.h"

namespace ficoco {

int64_t AttentionSignals::Visible(int32_t row) const {
  return mask_.causal ? std::min<int64_t>(k_.rows(), mask_.query_offset + row + 1) : k_.rows();
}

Matrix AttentionSignals::MeanLogits(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const {
  const int h = shape_.num_heads, d = shape_.head_dim, group = shape_.num_heads / shape_.num_kv_heads;
  const float scale = 1.0f / (static_cast<float>(h) * std::sqrt(static_cast<float>(d)));
  Matrix out(static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols.size()));
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* q = q_.row(rows[i]);
    for (size_t j = 0; j < cols.size(); ++j) {
      const float* k = k_.row(cols[j]);
      float acc = 0;
      for (int hi = 0; hi < h; ++hi) {
        const float* qh = q + hi * d;
        const float* kh = k + (hi / group) * d;
        for (int t = 0; t < d; ++t) acc += qh[t] * kh[t];
      }
      out.at(static_cast<int64_t>(i), static_cast<int64_t>(j)) = acc * scale;
    }
  }
  return out;
}

std::vector<float> AttentionSignals::HeadLogitsRow(int32_t row, int64_t* visible) const {
  const int h = shape_.num_heads, d = shape_.head_dim, group = shape_.num_heads / shape_.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  *visible = Visible(row);
  std::vector<float> z(static_cast<size_t>(h * *visible));
  const float* q = q_.row(row);
  for (int hi = 0; hi < h; ++hi)
    for (int64_t c = 0; c < *visible; ++c) {
      const float* k = k_.row(c) + (hi / group) * d;
      float acc = 0;
      for (int t = 0; t < d; ++t) acc += q[hi * d + t] * k[t];
      z[static_cast<size_t>(hi * *visible + c)] = acc * scale;
    }
  return z;
}


Matrix AttentionSignals::MeanOfProbs(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const {
  const int h = shape_.num_heads;
  Matrix out(static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols.size()));
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < rows.size(); ++i) {
    int64_t vis = 0;
    std::vector<float> z = HeadLogitsRow(rows[i], &vis);
    for (int hi = 0; hi < h; ++hi) SoftmaxRow(z.data() + hi * vis, vis);
    for (size_t j = 0; j < cols.size(); ++j) {
      float acc = 0;
      if (cols[j] < vis)
        for (int hi = 0; hi < h; ++hi) acc += z[static_cast<size_t>(hi * vis + cols[j])];
      out.at(static_cast<int64_t>(i), static_cast<int64_t>(j)) = acc / static_cast<float>(h);
    }
  }
  return out;
}

Matrix AttentionSignals::ProbsOfMeanLogits(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const {
  Matrix out(static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols.size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t vis = Visible(rows[i]);
    std::vector<int32_t> all(static_cast<size_t>(vis));
    for (int64_t c = 0; c < vis; ++c) all[static_cast<size_t>(c)] = static_cast<int32_t>(c);
    Matrix z = MeanLogits({rows[i]}, all);
    SoftmaxRow(z.data(), vis);
    for (size_t j = 0; j < cols.size(); ++j)
      out.at(static_cast<int64_t>(i), static_cast<int64_t>(j)) = cols[j] < vis ? z.at(0, cols[j]) : 0.0f;
  }
  return out;
}

Matrix AttentionSignals::HeadMeanKeys() const {
  const int hkv = shape_.num_kv_heads, d = shape_.head_dim;
  Matrix out(k_.rows(), d);
  for (int64_t r = 0; r < k_.rows(); ++r)
    for (int t = 0; t < d; ++t) {
      float acc = 0;
      for (int hi = 0; hi < hkv; ++hi) acc += k_.at(r, hi * d + t);
      out.at(r, t) = acc / static_cast<float>(hkv);
    }
  return out;
}

}  // namespace ficoco
