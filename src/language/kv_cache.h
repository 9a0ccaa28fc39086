// Key/value cache whose length may differ from layer to layer: in-LLM token
// reduction shortens the caches of the layers after the one that reduces.
// Rows are in sequence order; the causal mask is built from that order.
// Rows are stored as fp32 or as IEEE half floats (KvType; half is the default for
// bf16 and quantized compute, see docs/quantized.md).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kv_rows.h"
#include "tensor/tensor.h"

namespace ficoco {

class KvCache {
 public:
  KvCache(int num_layers, int64_t kv_dim, KvType type = KvType::F32);

  int num_layers() const { return static_cast<int>(layers_.size()); }
  KvType type() const { return type_; }
  int64_t width() const { return kv_dim_; }
  int64_t length(int layer) const { return layers_[static_cast<size_t>(layer)].rows; }
  KvRows keys(int layer) const { return View(layer, /*values=*/false); }
  KvRows values(int layer) const { return View(layer, /*values=*/true); }
  // fp32 copy of one layer's keys (reduction signals work on fp32).
  Matrix WidenedKeys(int layer) const;

  void Append(int layer, const Matrix& k, const Matrix& v);
  // Keeps only the listed rows of one layer, in the given order (indices into its current rows).
  void KeepRows(int layer, const std::vector<int32_t>& rows);
  // Bytes held by keys and values (2 or 4 per element).
  int64_t Bytes() const;

 private:
  // One layer's keys and values, row-major [rows, kv_dim] each, in the cache's type
  // (half floats as raw uint16_t bits; fp32 as float).
  struct Layer {
    int64_t rows = 0;
    std::vector<float> k32, v32;
    std::vector<uint16_t> k16, v16;
  };
  KvRows View(int layer, bool values) const;

  KvType type_;
  int64_t kv_dim_;
  std::vector<Layer> layers_;
};

}  // namespace ficoco
