#include "language/kv_cache.h"

#include <algorithm>

#include "base/error.h"

namespace ficoco {

namespace {
void AppendRows(Matrix& dst, const Matrix& src) {
  if (src.cols() != dst.cols()) Fail("KvCache: appending rows of width ", src.cols(), " to a cache of width ", dst.cols());
  const int64_t old = dst.rows();
  // Matrix::Resize keeps the prefix when only rows grow (vector resize).
  dst.Resize(old + src.rows(), dst.cols());
  std::copy_n(src.data(), src.rows() * src.cols(), dst.row(old));
}
}  // namespace

void KvCache::Append(int layer, const Matrix& k, const Matrix& v) {
  AppendRows(keys_[static_cast<size_t>(layer)], k);
  AppendRows(values_[static_cast<size_t>(layer)], v);
}

void KvCache::KeepRows(int layer, const std::vector<int32_t>& rows) {
  keys_[static_cast<size_t>(layer)].KeepRows(rows);
  values_[static_cast<size_t>(layer)].KeepRows(rows);
}

int64_t KvCache::Bytes() const {
  int64_t b = 0;
  for (size_t i = 0; i < keys_.size(); ++i) b += (keys_[i].rows() * keys_[i].cols() + values_[i].rows() * values_[i].cols()) * 4;
  return b;
}

}  // namespace ficoco
