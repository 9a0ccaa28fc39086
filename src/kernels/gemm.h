// Matrix products with weights in their stored dtype.
//
// y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias): activations are float32, W is the PyTorch
// [out, in] weight. Large M (prefill, image tokens) goes to oneDNN's matmul
// (JIT brgemm kernels for this CPU); M <= kGemvMaxRows (decode) goes to our own
// memory-bound GEMV, which streams 16-bit weights without widening them in memory.
// Quantized weights (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) go to the int8 kernel of kernels/quant_gemm.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/quant_gemm.h"
#include "tensor/ggml_type.h"
#include "tensor/tensor.h"

namespace ficoco {

// Arithmetic used for the large products.
//  F32:  weights widened panel by panel, fp32 multiply-add (reference parity).
//  BF16: weights kept/converted to bfloat16 at load, activations rounded to bf16,
//        fp32 accumulation (AVX512_BF16 dot products; about 2x fp32 throughput).
enum class ComputeType { F32, BF16 };
ComputeType ParseComputeType(const std::string& name);  // "f32" | "bf16"
const char* ComputeTypeName(ComputeType t);

inline constexpr int64_t kGemvMaxRows = 4;

// The ggml block types a LinearWeight can hold and GemmContext::Linear multiplies
// without widening (QuantGemm, for every row count): Q8_0, Q4_0, Q4_1, Q4_K and Q6_K.
bool LinearQuantSupports(GgmlType type);

// A linear layer ready to run: the weight as stored (mmapped) or as converted at load,
// either 16/32-bit floats or ggml-quantized blocks (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K).
class LinearWeight {
 public:
  LinearWeight() = default;
  // `bias` may be null. With ComputeType::BF16, non-BF16 weights are converted once
  // here (same size as F16; the mapped pages can then be released by the caller).
  LinearWeight(const TensorView& weight, const TensorView* bias, ComputeType compute);
  // The same, holding the weight as `store` (F16 or BF16; converted once here when it
  // differs from weight.dtype). With ComputeType::BF16 the weight ends up BF16 either way.
  LinearWeight(const TensorView& weight, const TensorView* bias, ComputeType compute, DType store);

  // Quantized weight from ggml blocks as stored (e.g. a mapped GGUF tensor): n_out rows of
  // k / block-size blocks of `type` (see LinearQuantSupports), rows contiguous. The blocks
  // are read once here and repacked into an owned layout (kernels/quant_gemm.h), so the
  // caller may release the mapped pages afterwards (converted() is true). `name` is used in
  // error messages; `bias` (any float dtype, n_out elements) may be null. Error for another
  // type, k not a positive multiple of the type's block size (32; 256 for Q4_K / Q6_K),
  // n_out < 1, a null pointer or a bias of the wrong size.
  LinearWeight(GgmlType type, const void* blocks, int64_t n_out, int64_t k, const TensorView* bias,
               const std::string& name);
  // Quantizes a float weight [n_out, k] (F32/F16/BF16) to `type` (any LinearQuantSupports
  // type) at load with tensor/quant.h's quantizers, then repacks as above. Error as above,
  // naming weight.name.
  LinearWeight(const TensorView& weight, const TensorView* bias, GgmlType type);

  int64_t out_features() const { return weight_.shape[0]; }
  int64_t in_features() const { return weight_.shape[1]; }
  // Float forms only: the weight view (dtype F32/F16/BF16). For a quantized weight it
  // carries the name and shape [n_out, k] but no data (see packed()).
  const TensorView& weight() const { return weight_; }
  const std::vector<float>& bias() const { return bias_; }
  bool converted() const { return !owned_.empty() || quantized(); }
  bool quantized() const { return !packed_.empty(); }
  GgmlType quant_type() const { return packed_.type(); }  // meaningful when quantized()
  const QuantPackedWeight& packed() const { return packed_; }

 private:
  void SetBias(const TensorView* bias);

  TensorView weight_;
  std::vector<uint16_t> owned_;  // converted weight storage, when converted()
  QuantPackedWeight packed_;     // the quantized form, when quantized()
  std::vector<float> bias_;
};

// Owns the oneDNN engine and stream. Thread count is OpenMP's (set once by the front end).
class GemmContext {
 public:
  explicit GemmContext(ComputeType compute);
  ~GemmContext();
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;

  ComputeType compute() const { return compute_; }
  // y = x · Wᵀ + b. y is resized to [x.rows, W.out].
  void Linear(const Matrix& x, const LinearWeight& w, Matrix& y);
  // Raw row-major product for attention: C[b] = A[b] · B[b] (B transposed when trans_b),
  // batch of `batch` independent products, float32 throughout.
  void BatchedMatMulF32(int64_t batch, int64_t m, int64_t n, int64_t k, const float* a, const float* b, bool trans_b,
                        float* c);

  // C[m, n] = A[m, k] · B[n, k]ᵀ, float32, through one primitive built for any shape:
  // for small products whose shapes change with every call (token-reduction scores),
  // where building a shape-specific primitive (~1 ms) would cost more than the product.
  void MatMulTransBAnyShape(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c);

  // Buffers reused by attention across layers and calls: allocating them per call
  // costs a page fault per 4 KiB (about a quarter of a 636-token LLaMA layer's attention).
  struct AttentionScratch {
    std::vector<float> q, k, v, scores, out;
    std::vector<float> part_out, part_max, part_sum;  // decode: one part per thread and query
  };
  AttentionScratch& attention_scratch() { return attention_scratch_; }

  struct Impl;

 private:
  AttentionScratch attention_scratch_;
  ComputeType compute_;
  std::unique_ptr<Impl> impl_;
};

// Scalar reference for tests: y = x · Wᵀ + b with W widened element by element.
void LinearReference(const Matrix& x, const TensorView& w, const std::vector<float>& bias, Matrix& y);
// The decode path on its own (exposed for tests and benchmarks).
void GemvRows(const float* x, int64_t m, const TensorView& w, const float* bias, float* y);

}  // namespace ficoco
