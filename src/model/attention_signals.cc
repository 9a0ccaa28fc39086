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
  const int64_t width = static_cast<int64_t>(h) * d;
  const float scale = 1.0f / (static_cast<float>(h) * std::sqrt(static_cast<float>(d)));
  const auto nr = static_cast<int64_t>(rows.size()), nc = static_cast<int64_t>(cols.size());
  Matrix out(nr, nc);
  if (nr == 0 || nc == 0) return out;
  for (int32_t r : rows)
    if (r < 0 || r >= q_.rows()) Fail("attention signals: query row ", r, " out of range (", q_.rows(), " queries)");
  for (int32_t c : cols)
    if (c < 0 || c >= k_.rows()) Fail("attention signals: key column ", c, " out of range (", k_.rows(), " keys)");
  // Z̄ = Q_rows · K_colsᵀ / (H√d) with each key head repeated for its query group.
  std::vector<float> qg(static_cast<size_t>(nr * width)), kg;
  for (int64_t i = 0; i < nr; ++i) std::copy_n(q_.row(rows[static_cast<size_t>(i)]), width, qg.data() + i * width);
  if (gemm_ != nullptr && group == 1 && 2 * nc >= k_.rows()) {
    // Most keys wanted, no key sharing: multiply by all keys in place (no gather of
    // a cache-sized copy) and pick the columns.
    std::vector<float> all(static_cast<size_t>(nr * k_.rows()));
    gemm_->MatMulTransBAnyShape(nr, k_.rows(), width, qg.data(), k_.data(), all.data());
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = 0; j < nc; ++j) out.at(i, j) = all[static_cast<size_t>(i * k_.rows() + cols[static_cast<size_t>(j)])] * scale;
    return out;
  }
  kg.resize(static_cast<size_t>(nc * width));
  for (int64_t j = 0; j < nc; ++j)
    for (int hi = 0; hi < h; ++hi)
      std::copy_n(k_.row(cols[static_cast<size_t>(j)]) + (hi / group) * d, d, kg.data() + j * width + hi * d);
  if (gemm_ != nullptr) {
    gemm_->MatMulTransBAnyShape(nr, nc, width, qg.data(), kg.data(), out.data());
  } else {
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = 0; j < nc; ++j) {
        float acc = 0;
        for (int64_t t = 0; t < width; ++t) acc += qg[static_cast<size_t>(i * width + t)] * kg[static_cast<size_t>(j * width + t)];
        out.at(i, j) = acc;
      }
  }
  for (int64_t i = 0; i < nr * nc; ++i) out.data()[i] *= scale;
  return out;
}

std::vector<float> AttentionSignals::RowMeanLogits(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const {
  const int h = shape_.num_heads, d = shape_.head_dim, group = shape_.num_heads / shape_.num_kv_heads;
  const int64_t kv_width = k_.cols();
  std::vector<double> mean_key(static_cast<size_t>(kv_width), 0.0);
  for (int32_t c : cols) {
    if (c < 0 || c >= k_.rows()) Fail("attention signals: key column ", c, " out of range (", k_.rows(), " keys)");
    const float* k = k_.row(c);
    for (int64_t t = 0; t < kv_width; ++t) mean_key[static_cast<size_t>(t)] += k[t];
  }
  const double scale = 1.0 / (static_cast<double>(h) * std::sqrt(static_cast<double>(d)) * std::max<size_t>(1, cols.size()));
  std::vector<float> out(rows.size(), 0.0f);
  if (cols.empty()) return out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= q_.rows()) Fail("attention signals: query row ", rows[i], " out of range (", q_.rows(), " queries)");
    const float* q = q_.row(rows[i]);
    double acc = 0;
    for (int hi = 0; hi < h; ++hi)
      for (int t = 0; t < d; ++t) acc += static_cast<double>(q[hi * d + t]) * mean_key[static_cast<size_t>((hi / group) * d + t)];
    out[i] = static_cast<float>(acc * scale);
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
      z[static_cast<size_t>(hi * *visible + c)] =
          acc * scale + (mask_.key_bias != nullptr ? (*mask_.key_bias)[static_cast<size_t>(c)] : 0.0f);
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
    if (mask_.key_bias != nullptr)
      for (int64_t c = 0; c < vis; ++c) z.at(0, c) += (*mask_.key_bias)[static_cast<size_t>(c)];
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
