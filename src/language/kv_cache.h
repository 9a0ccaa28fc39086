// Key/value cache whose length may differ from layer to layer: in-LLM token
// reduction shortens the caches of the layers after the one that reduces.
// Rows are in sequence order; the causal mask is built from that order.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace ficoco {

class KvCache {
 public:
  KvCache(int num_layers, int64_t kv_dim) : keys_(static_cast<size_t>(num_layers)), values_(static_cast<size_t>(num_layers)) {
    for (auto& m : keys_) m.Resize(0, kv_dim);
    for (auto& m : values_) m.Resize(0, kv_dim);
  }

  int num_layers() const { return static_cast<int>(keys_.size()); }
  int64_t length(int layer) const { return keys_[static_cast<size_t>(layer)].rows(); }
  const Matrix& keys(int layer) const { return keys_[static_cast<size_t>(layer)]; }
  const Matrix& values(int layer) const { return values_[static_cast<size_t>(layer)]; }

  void Append(int layer, const Matrix& k, const Matrix& v);
  // Keeps only the listed rows of one layer (indices into its current rows, ascending).
  void KeepRows(int layer, const std::vector<int32_t>& rows);
  // Bytes held by keys and values (fp32).
  int64_t Bytes() const;

 private:
  std::vector<Matrix> keys_, values_;
};

}  // namespace ficoco
