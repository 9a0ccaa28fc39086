#include "tensor/tensor.h"

#include <cstring>
#include <sstream>

#include "base/error.h"

namespace ficoco {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << "]";
  return os.str();
}

std::string TensorView::ShapeString() const { return ShapeToString(shape); }

std::vector<float> TensorView::ToF32() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  ConvertToF32(dtype, data, out.data(), numel());
  return out;
}

void Matrix::KeepRows(const std::vector<int32_t>& rows) {
  std::vector<float> kept(rows.size() * static_cast<size_t>(cols_));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= rows_) Fail("Matrix::KeepRows: row ", rows[i], " out of range ", rows_);
    std::memcpy(kept.data() + i * cols_, row(rows[i]), static_cast<size_t>(cols_) * sizeof(float));
  }
  data_ = std::move(kept);
  rows_ = static_cast<int64_t>(rows.size());
}

}  // namespace ficoco
