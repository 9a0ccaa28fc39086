#include "kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <dnnl.hpp>
#include <map>
#include <optional>
#include <tuple>

#include "base/error.h"
#include "kernels/gemv.h"
#include "kernels/quant_gemv.h"
#include "tensor/quant.h"

namespace ficoco {

ComputeType ParseComputeType(const std::string& name) {
  if (name == "f32") return ComputeType::F32;
  if (name == "bf16") return ComputeType::BF16;
  Fail("unknown compute type '", name, "' (expected f32 or bf16)");
}

const char* ComputeTypeName(ComputeType t) { return t == ComputeType::F32 ? "f32" : "bf16"; }

LinearWeight::LinearWeight(const TensorView& weight, const TensorView* bias, ComputeType compute)
    : LinearWeight(weight, bias, compute, weight.dtype) {}

LinearWeight::LinearWeight(const TensorView& weight, const TensorView* bias, ComputeType compute, DType store)
    : weight_(weight) {
  if (weight.shape.size() != 2) Fail("tensor '", weight.name, "': a linear weight must be 2-D, got ", weight.ShapeString());
  if (weight.dtype != DType::F32 && weight.dtype != DType::F16 && weight.dtype != DType::BF16)
    Fail("tensor '", weight.name, "': unsupported dtype ", DTypeName(weight.dtype), " for a linear weight");
  if (store != weight.dtype && store != DType::F16 && store != DType::BF16)
    Fail("tensor '", weight.name, "': cannot hold a linear weight as ", DTypeName(store), " (F16 or BF16)");
  if (compute == ComputeType::BF16) store = DType::BF16;
  if (store != weight.dtype) {
    // One conversion at load; same bytes as F16, half of F32.
    const int64_t n = weight.numel();
    owned_.resize(static_cast<size_t>(n));
    const int64_t rows = weight.shape[0], cols = weight.shape[1];
#pragma omp parallel
    {
      std::vector<float> tmp(static_cast<size_t>(cols));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const auto* src = static_cast<const uint8_t*>(weight.data) + r * cols * DTypeSize(weight.dtype);
        ConvertToF32(weight.dtype, src, tmp.data(), cols);
        ConvertFromF32(tmp.data(), store, owned_.data() + r * cols, cols);
      }
    }
    weight_.dtype = store;
    weight_.data = owned_.data();
  }
  SetBias(bias);
}

void LinearWeight::SetBias(const TensorView* bias) {
  if (bias == nullptr) return;
  if (bias->numel() != weight_.shape[0])
    Fail("tensor '", bias->name, "': bias has ", bias->numel(), " elements, expected ", weight_.shape[0]);
  bias_ = bias->ToF32();
}

bool LinearQuantSupports(GgmlType type) { return QuantGemmSupports(type); }

namespace {
// One row as ggml Q8_0 blocks (fp16 d, 32 int8) through the activation quantizer.
void QuantizeQ8Row(const float* x, int64_t k, int8_t* q, float* d, uint8_t* out) {
  QuantizeActivationRow(x, k, q, d);
  for (int64_t b = 0; b < k / 32; ++b) {
    const uint16_t h = F32ToF16(d[b]);
    std::memcpy(out + b * 34, &h, 2);
    std::memcpy(out + b * 34 + 2, q + b * 32, 32);
  }
}

void CheckQuantShape(GgmlType type, int64_t n_out, int64_t k, const std::string& name) {
  if (!LinearQuantSupports(type))
    Fail("tensor '", name, "': quantized linear weights must be ", QuantGemmSupportedNames(), ", got ",
         GgmlTypeName(type));
  const auto block = static_cast<int64_t>(QuantBlockElements(type));
  if (n_out < 1 || k <= 0 || k % block != 0)
    Fail("tensor '", name, "': cannot hold [", n_out, ", ", k, "] as ", GgmlTypeName(type),
         " (needs n_out >= 1 and k a positive multiple of ", block, ")");
}
}  // namespace

LinearWeight::LinearWeight(GgmlType type, const void* blocks, int64_t n_out, int64_t k, const TensorView* bias,
                           const std::string& name) {
  CheckQuantShape(type, n_out, k, name);
  if (blocks == nullptr) Fail("tensor '", name, "': null block data");
  weight_ = TensorView{name, DType::F32, {n_out, k}, nullptr};
  SetBias(bias);
  packed_ = PackQuantWeight(type, blocks, n_out, k);
}

LinearWeight::LinearWeight(const TensorView& weight, const TensorView* bias, GgmlType type) {
  if (weight.shape.size() != 2) Fail("tensor '", weight.name, "': a linear weight must be 2-D, got ", weight.ShapeString());
  if (weight.dtype != DType::F32 && weight.dtype != DType::F16 && weight.dtype != DType::BF16)
    Fail("tensor '", weight.name, "': unsupported dtype ", DTypeName(weight.dtype), " for a linear weight");
  const int64_t n = weight.shape[0], k = weight.shape[1];
  CheckQuantShape(type, n, k, weight.name);
  weight_ = TensorView{weight.name, DType::F32, {n, k}, nullptr};
  SetBias(bias);
  // ggml blocks first (bit-exact with ggml's quantizers), then the kernel's layout.
  const size_t row_bytes = QuantRowBytes(type, k);
  std::vector<uint8_t> blocks(static_cast<size_t>(n) * row_bytes);
  const size_t esize = DTypeSize(weight.dtype);
#pragma omp parallel
  {
    std::vector<float> tmp(static_cast<size_t>(k)), dtmp(static_cast<size_t>(k / 32));
    std::vector<int8_t> qtmp(static_cast<size_t>(k));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      ConvertToF32(weight.dtype, static_cast<const uint8_t*>(weight.data) + r * k * esize, tmp.data(), k);
      if (type == GgmlType::Q8_0) {
        // ggml's Q8_0 rule is the activation rule (d = max|x|/127, q = round half away)
        // with d stored as fp16: the vectorized activation code gives the same bytes as
        // Quantize, several times faster (checked by the tests).
        QuantizeQ8Row(tmp.data(), k, qtmp.data(), dtmp.data(), blocks.data() + r * row_bytes);
      } else {
        Quantize(type, tmp.data(), blocks.data() + r * row_bytes, k);
      }
    }
  }
  packed_ = PackQuantWeight(type, blocks.data(), n, k);
}

struct GemmContext::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<uint16_t> x_bf16;  // activations rounded to bf16
  std::vector<uint16_t> panel16;  // weight panel converted to bf16
  std::vector<float> panel32;     // weight panel widened to f32

  using dt = dnnl::memory::data_type;

  // Building a oneDNN primitive descriptor costs about a millisecond (dispatch and
  // JIT); a transformer repeats a handful of shapes, so primitives are kept per shape.
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;
  std::map<Key, dnnl::matmul> primitives;
  std::optional<dnnl::matmul> any_shape;  // runtime-dimension f32 matmul (MatMulTransBAnyShape)

  dnnl::matmul& Primitive(const Key& key, const dnnl::memory::desc& ad, const dnnl::memory::desc& bd,
                          const dnnl::memory::desc& cd) {
    auto it = primitives.find(key);
    if (it == primitives.end()) {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), engine);
      it = primitives.emplace(key, dnnl::matmul(pd)).first;
    }
    return it->second;
  }

  // C[m, n] (row stride ldc) = A[m, k] · B where B is given as W[n, k] (row-major).
  void MatMulWT(int64_t m, int64_t n, int64_t k, dt type, const void* a, const void* w, float* c, int64_t ldc) {
    dnnl::memory::desc ad({m, k}, type, dnnl::memory::dims{k, 1});
    dnnl::memory::desc bd({k, n}, type, dnnl::memory::dims{1, k});
    dnnl::memory::desc cd({m, n}, dt::f32, dnnl::memory::dims{ldc, 1});
    dnnl::matmul& mm = Primitive(Key{static_cast<int>(type), 1, m, n, k, ldc, true}, ad, bd, cd);
    dnnl::memory am(ad, engine, const_cast<void*>(a)), bm(bd, engine, const_cast<void*>(w)), cm(cd, engine, c);
    mm.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    stream.wait();
  }
};

GemmContext::GemmContext(ComputeType compute) : compute_(compute), impl_(std::make_unique<Impl>()) {}
GemmContext::~GemmContext() = default;

namespace {
// Output rows of W converted per oneDNN call when W's dtype differs from the
// arithmetic: bounds the scratch (512 x 11008 x 4 B = 22 MB at most for 7B).
constexpr int64_t kPanelRows = 512;
}  // namespace

void GemmContext::Linear(const Matrix& x, const LinearWeight& lw, Matrix& y) {
  const TensorView& w = lw.weight();
  const int64_t m = x.rows(), k = x.cols(), n = lw.out_features();
  if (k != lw.in_features())
    Fail("tensor '", w.name, "': input has ", k, " features, weight expects ", lw.in_features());
  y.Resize(m, n);
  if (m == 0) return;
  if (lw.quantized()) {  // every row count: the packed int8 kernel (decode included)
    QuantGemm(lw.packed(), x.data(), m, y.data(), lw.bias().empty() ? nullptr : lw.bias().data());
    return;
  }
  if (m <= kGemvMaxRows) {
    GemvRows(x.data(), m, w, lw.bias().empty() ? nullptr : lw.bias().data(), y.data());
    return;
  }
  const size_t wsize = DTypeSize(w.dtype);
  if (compute_ == ComputeType::BF16) {
    impl_->x_bf16.resize(static_cast<size_t>(m * k));
    const float* xs = x.data();
    uint16_t* xb = impl_->x_bf16.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m * k; ++i) xb[i] = F32ToBF16(xs[i]);
    if (w.dtype == DType::BF16) {
      impl_->MatMulWT(m, n, k, Impl::dt::bf16, xb, w.data, y.data(), n);
    } else {
      for (int64_t n0 = 0; n0 < n; n0 += kPanelRows) {
        const int64_t nb = std::min(kPanelRows, n - n0);
        impl_->panel32.resize(static_cast<size_t>(nb * k));
        impl_->panel16.resize(static_cast<size_t>(nb * k));
        ConvertToF32(w.dtype, static_cast<const uint8_t*>(w.data) + n0 * k * wsize, impl_->panel32.data(), nb * k);
        ConvertFromF32(impl_->panel32.data(), DType::BF16, impl_->panel16.data(), nb * k);
        impl_->MatMulWT(m, nb, k, Impl::dt::bf16, xb, impl_->panel16.data(), y.data() + n0, n);
      }
    }
  } else {
    if (w.dtype == DType::F32) {
      impl_->MatMulWT(m, n, k, Impl::dt::f32, x.data(), w.data, y.data(), n);
    } else {
      for (int64_t n0 = 0; n0 < n; n0 += kPanelRows) {
        const int64_t nb = std::min(kPanelRows, n - n0);
        impl_->panel32.resize(static_cast<size_t>(nb * k));
        const uint8_t* src = static_cast<const uint8_t*>(w.data) + n0 * k * wsize;
        float* dst = impl_->panel32.data();
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < nb; ++r) ConvertToF32(w.dtype, src + r * k * wsize, dst + r * k, k);
        impl_->MatMulWT(m, nb, k, Impl::dt::f32, x.data(), impl_->panel32.data(), y.data() + n0, n);
      }
    }
  }
  if (!lw.bias().empty()) {
    const float* b = lw.bias().data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      float* yr = y.row(i);
      for (int64_t j = 0; j < n; ++j) yr[j] += b[j];
    }
  }
}

void GemmContext::BatchedMatMulF32(int64_t batch, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                                   bool trans_b, float* c) {
  using dt = dnnl::memory::data_type;
  dnnl::memory::desc ad({batch, m, k}, dt::f32, dnnl::memory::dims{m * k, k, 1});
  dnnl::memory::desc bd = trans_b ? dnnl::memory::desc({batch, k, n}, dt::f32, dnnl::memory::dims{n * k, 1, k})
                                  : dnnl::memory::desc({batch, k, n}, dt::f32, dnnl::memory::dims{k * n, n, 1});
  dnnl::memory::desc cd({batch, m, n}, dt::f32, dnnl::memory::dims{m * n, n, 1});
  dnnl::matmul& mm = impl_->Primitive(Impl::Key{static_cast<int>(dt::f32), batch, m, n, k, 0, trans_b}, ad, bd, cd);
  dnnl::memory am(ad, impl_->engine, const_cast<float*>(a)), bm(bd, impl_->engine, const_cast<float*>(b)),
      cm(cd, impl_->engine, c);
  mm.execute(impl_->stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  impl_->stream.wait();
}

void GemmContext::MatMulTransBAnyShape(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  using dt = dnnl::memory::data_type;
  if (m == 0 || n == 0) return;
  if (!impl_->any_shape) {
    constexpr auto rt = DNNL_RUNTIME_DIM_VAL;
    dnnl::memory::desc ad({rt, rt}, dt::f32, dnnl::memory::dims{rt, 1});
    dnnl::memory::desc bd({rt, rt}, dt::f32, dnnl::memory::dims{1, rt});
    dnnl::memory::desc cd({rt, rt}, dt::f32, dnnl::memory::dims{rt, 1});
    impl_->any_shape = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, cd), impl_->engine));
  }
  dnnl::memory::desc ad({m, k}, dt::f32, dnnl::memory::dims{k, 1});
  dnnl::memory::desc bd({k, n}, dt::f32, dnnl::memory::dims{1, k});
  dnnl::memory::desc cd({m, n}, dt::f32, dnnl::memory::dims{n, 1});
  dnnl::memory am(ad, impl_->engine, const_cast<float*>(a)), bm(bd, impl_->engine, const_cast<float*>(b)),
      cm(cd, impl_->engine, c);
  impl_->any_shape->execute(impl_->stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  impl_->stream.wait();
}

void LinearReference(const Matrix& x, const TensorView& w, const std::vector<float>& bias, Matrix& y) {
  const int64_t m = x.rows(), k = x.cols(), n = w.shape[0];
  y.Resize(m, n);
  std::vector<float> wrow(static_cast<size_t>(k));
  for (int64_t j = 0; j < n; ++j) {
    ConvertToF32(w.dtype, static_cast<const uint8_t*>(w.data) + j * k * DTypeSize(w.dtype), wrow.data(), k);
    for (int64_t i = 0; i < m; ++i) {
      double acc = bias.empty() ? 0.0 : bias[static_cast<size_t>(j)];
      for (int64_t t = 0; t < k; ++t) acc += static_cast<double>(x.at(i, t)) * wrow[static_cast<size_t>(t)];
      y.at(i, j) = static_cast<float>(acc);
    }
  }
}

}  // namespace ficoco
