// Two kinds of tensors, in PyTorch dimension order everywhere:
//  * TensorView: a typed, shaped, non-owning view of stored bytes (weights in a
//    memory-mapped file, or a buffer made at load);
//  * Matrix: an owning row-major float32 [rows, cols] activation buffer; rows are
//    tokens, cols are channels. Token reduction changes `rows`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace ficoco {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;

  bool empty() const { return data == nullptr; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  int64_t dim(int i) const { return shape.at(static_cast<size_t>(i < 0 ? i + static_cast<int>(shape.size()) : i)); }
  std::string ShapeString() const;
  // Widened copy of the whole tensor (for small tensors: norms, biases, embeddings rows).
  std::vector<float> ToF32() const;
};

std::string ShapeToString(const std::vector<int64_t>& shape);

class Matrix {
 public:
  Matrix() = default;
  Matrix(int64_t rows, int64_t cols) : rows_(rows), cols_(cols), data_(static_cast<size_t>(rows * cols)) {}

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  float* row(int64_t r) { return data_.data() + r * cols_; }
  const float* row(int64_t r) const { return data_.data() + r * cols_; }
  float& at(int64_t r, int64_t c) { return data_[static_cast<size_t>(r * cols_ + c)]; }
  float at(int64_t r, int64_t c) const { return data_[static_cast<size_t>(r * cols_ + c)]; }

  // Changes the shape; contents are unspecified afterwards unless rows shrink with cols fixed.
  void Resize(int64_t rows, int64_t cols) {
    rows_ = rows;
    cols_ = cols;
    data_.resize(static_cast<size_t>(rows * cols));
  }
  // Keeps only the listed rows, in the given order (indices into the current rows).
  void KeepRows(const std::vector<int32_t>& rows);

 private:
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  std::vector<float> data_;
};

}  // namespace ficoco
