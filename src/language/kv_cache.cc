#include "language/kv_cache.h"

#include <algorithm>

#include "base/error.h"
#include "tensor/dtype.h"

namespace ficoco {

namespace {
template <typename T>
void KeepRowsOf(std::vector<T>& data, int64_t width, const std::vector<int32_t>& rows) {
  std::vector<T> kept(rows.size() * static_cast<size_t>(width));
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(data.begin() + rows[i] * width, width, kept.begin() + static_cast<int64_t>(i) * width);
  data = std::move(kept);
}
}  // namespace

KvCache::KvCache(int num_layers, int64_t kv_dim, KvType type)
    : type_(type), kv_dim_(kv_dim), layers_(static_cast<size_t>(num_layers)) {}

KvRows KvCache::View(int layer, bool values) const {
  const Layer& l = layers_[static_cast<size_t>(layer)];
  const void* data = type_ == KvType::F16 ? static_cast<const void*>((values ? l.v16 : l.k16).data())
                                          : static_cast<const void*>((values ? l.v32 : l.k32).data());
  return KvRows{type_, data, l.rows, kv_dim_};
}

Matrix KvCache::WidenedKeys(int layer) const {
  const KvRows k = keys(layer);
  Matrix out(k.rows, k.cols);
  for (int64_t r = 0; r < k.rows; ++r) k.Read(r, 0, k.cols, out.row(r));
  return out;
}

void KvCache::Append(int layer, const Matrix& k, const Matrix& v) {
  if (k.cols() != kv_dim_ || v.cols() != kv_dim_ || k.rows() != v.rows())
    Fail("KvCache: appending keys ", k.rows(), "x", k.cols(), " and values ", v.rows(), "x", v.cols(),
         " to a cache of width ", kv_dim_);
  Layer& l = layers_[static_cast<size_t>(layer)];
  const size_t old = static_cast<size_t>(l.rows * kv_dim_), n = static_cast<size_t>(k.rows() * kv_dim_);
  if (type_ == KvType::F16) {
    l.k16.resize(old + n);
    l.v16.resize(old + n);
    ConvertFromF32(k.data(), DType::F16, l.k16.data() + old, static_cast<int64_t>(n));
    ConvertFromF32(v.data(), DType::F16, l.v16.data() + old, static_cast<int64_t>(n));
  } else {
    l.k32.insert(l.k32.end(), k.data(), k.data() + n);
    l.v32.insert(l.v32.end(), v.data(), v.data() + n);
  }
  l.rows += k.rows();
}

void KvCache::KeepRows(int layer, const std::vector<int32_t>& rows) {
  Layer& l = layers_[static_cast<size_t>(layer)];
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i] < 0 || rows[i] >= l.rows)
      Fail("KvCache::KeepRows: layer ", layer, ": row ", rows[i], " out of range ", l.rows);
  if (type_ == KvType::F16) {
    KeepRowsOf(l.k16, kv_dim_, rows);
    KeepRowsOf(l.v16, kv_dim_, rows);
  } else {
    KeepRowsOf(l.k32, kv_dim_, rows);
    KeepRowsOf(l.v32, kv_dim_, rows);
  }
  l.rows = static_cast<int64_t>(rows.size());
}

int64_t KvCache::Bytes() const {
  int64_t elements = 0;
  for (const Layer& l : layers_) elements += 2 * l.rows * kv_dim_;
  return elements * KvTypeSize(type_);
}

}  // namespace ficoco
