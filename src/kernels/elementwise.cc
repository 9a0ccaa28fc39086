#include "kernels/elementwise.h"

#include "base/error.h"

namespace ficoco {

void AddInPlace(Matrix& x, const Matrix& y) {
  if (x.rows() != y.rows() || x.cols() != y.cols())
    Fail("AddInPlace: shapes ", x.rows(), "x", x.cols(), " and ", y.rows(), "x", y.cols(), " differ");
  const int64_t n = x.rows() * x.cols();
  float* a = x.data();
  const float* b = y.data();
  // A decode row (4096 adds) takes less time than waking the other threads.
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace ficoco
