// Kernel throughput on LLaVA-1.5-7B shapes. Reports GFLOP/s (prefill products) and
// GB/s of weight streamed (decode products) as counters; compare with the machine's
// measured peaks in docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <random>

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/quant_gemm.h"
#include "kernels/quant_gemv.h"
#include "language/kv_cache.h"
#include "tensor/quant.h"

namespace ficoco {
namespace {

struct Weight {
  std::vector<uint16_t> bits;
  TensorView view;
};

Weight RandomWeight(int64_t n, int64_t k, DType t) {
  Weight w;
  w.bits.resize(static_cast<size_t>(n * k));
  std::mt19937 g(1);
  std::normal_distribution<float> d(0, 0.02f);
  for (auto& b : w.bits) {
    float v = d(g);
    b = t == DType::F16 ? F32ToF16(v) : F32ToBF16(v);
  }
  w.view = TensorView{"w", t, {n, k}, w.bits.data()};
  return w;
}

Matrix RandomActivations(int64_t m, int64_t k) {
  Matrix x(m, k);
  std::mt19937 g(2);
  std::normal_distribution<float> d(0, 1);
  for (int64_t i = 0; i < m * k; ++i) x.data()[i] = d(g);
  return x;
}

// args: M, K, N, compute (0 = f32, 1 = bf16). Weights stored F16 as in llava-hf files.
void BM_Linear(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const ComputeType ct = state.range(3) ? ComputeType::BF16 : ComputeType::F32;
  Weight w = RandomWeight(n, k, DType::F16);
  LinearWeight lw(w.view, nullptr, ct);
  GemmContext gemm(ct);
  Matrix x = RandomActivations(m, k), y;
  for (auto _ : state) {
    gemm.Linear(x, lw, y);
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * m * k * n;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GB/s"] =
      benchmark::Counter(static_cast<double>(n * k * 2) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(ComputeTypeName(ct));
}
BENCHMARK(BM_Linear)
    ->Args({577, 1024, 4096, 1})   // CLIP fc1
    ->Args({577, 1024, 4096, 0})
    ->Args({577, 1024, 1024, 1})   // CLIP q/k/v/out
    ->Args({636, 4096, 11008, 1})  // LLaMA gate/up at LLaVA prompt length
    ->Args({636, 4096, 11008, 0})
    ->Args({1, 4096, 11008, 1})    // decode: memory-bound GEMV on bf16 weights
    ->Args({1, 4096, 11008, 0})    // decode on F16 weights
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// args: query rows, key rows, heads, causal (query rows are the last of the keys).
void BM_Attention(benchmark::State& state) {
  const int64_t tq = state.range(0), tk = state.range(1);
  const int h = static_cast<int>(state.range(2)), d = 64;
  Matrix q = RandomActivations(tq, h * d), k = RandomActivations(tk, h * d), v = RandomActivations(tk, h * d), out;
  GemmContext gemm(ComputeType::F32);
  for (auto _ : state) {
    MultiHeadAttention(gemm, q, k, v, {h, h, d}, {state.range(3) != 0, tk - tq}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * tq * tk * h * d * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Attention)
    ->Args({577, 577, 16, 0})  // CLIP ViT-L/14-336 layer
    ->Args({636, 636, 32, 1})  // LLaMA-7B layer, LLaVA prompt prefill
    ->Args({1, 640, 32, 1})    // LLaMA-7B layer, one decode step at prompt depth
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// args: cached positions, KV element bytes (2 = f16, 4 = f32). One decode step's attention
// over every layer of a LLaMA-7B's cache (32 layers, 32 heads of 128): the whole cache
// (0.33 GB in f16 at 636 positions) is far larger than the CPU's caches, as in a real
// decode step, where one layer's slice alone would stay in L3 between iterations.
// KV_GB/s counts the keys and values read.
void BM_DecodeAttentionAllLayers(benchmark::State& state) {
  const int64_t tk = state.range(0);
  const KvType type = state.range(1) == 2 ? KvType::F16 : KvType::F32;
  const int layers = 32, h = 32, d = 128;
  const int64_t width = static_cast<int64_t>(h) * d;
  Matrix q = RandomActivations(1, width), out;
  KvCache cache(layers, width, type);
  const Matrix rows = RandomActivations(tk, width);
  for (int l = 0; l < layers; ++l) cache.Append(l, rows, rows);
  GemmContext gemm(ComputeType::F32);
  for (auto _ : state) {
    for (int l = 0; l < layers; ++l) {
      MultiHeadAttention(gemm, q, cache.keys(l), cache.values(l), {h, h, d}, {true, tk - 1}, out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.counters["KV_GB/s"] = benchmark::Counter(static_cast<double>(cache.Bytes()) * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(KvTypeName(type));
}
BENCHMARK(BM_DecodeAttentionAllLayers)
    ->Args({636, 2})  // LLaVA prompt depth, f16 cache (the default)
    ->Args({636, 4})  // fp32 cache (--compute f32)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace ficoco

namespace ficoco {
namespace {

// n rows of k normal(0, 0.02) weights quantized to ggml blocks of `type`.
std::vector<uint8_t> RandomQuantWeight(GgmlType type, int64_t n, int64_t k) {
  std::vector<float> wf(static_cast<size_t>(n * k));
  std::mt19937 g(1);
  std::normal_distribution<float> d(0, 0.02f);
  for (float& v : wf) v = d(g);
  std::vector<uint8_t> w(QuantRowBytes(type, k) * static_cast<size_t>(n));
  Quantize(type, wf.data(), w.data(), n * k);
  return w;
}

// args: M, K, N, ggml type id (8 = Q8_0, 2 = Q4_0). Decode products on ggml-quantized
// weights (QuantGemv); weight_GB/s counts the stored blocks read (34 or 18 bytes per 32
// weights), comparable with the bf16 decode rows of BM_Linear.
void BM_QuantGemv(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const auto type = static_cast<GgmlType>(state.range(3));
  const std::vector<uint8_t> w = RandomQuantWeight(type, n, k);
  const size_t bytes = w.size();
  Matrix x = RandomActivations(m, k);
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    QuantGemv(type, w.data(), n, k, x.data(), m, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.counters["weight_GB/s"] =
      benchmark::Counter(static_cast<double>(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(GgmlTypeName(type)) + " " + QuantGemvPath());
}
BENCHMARK(BM_QuantGemv)
    ->Args({1, 4096, 11008, 8})  // LLaMA gate/up, one decode row, Q8_0
    ->Args({1, 4096, 11008, 2})  // Q4_0
    ->Args({4, 4096, 11008, 8})  // four rows (one weight pass)
    ->Args({4, 4096, 11008, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace ficoco

namespace ficoco {
namespace {

// args: M, K, N, ggml type id (8 = Q8_0, 2 = Q4_0, 3 = Q4_1, 12 = Q4_K, 14 = Q6_K). The
// packed int8 kernel behind
// GemmContext::Linear for quantized weights, at prefill (GOP/s: 2*M*K*N integer
// multiply-adds counted as two operations, comparable with the ~590 GOP/s VNNI peak) and
// decode (weight_GB/s of packed bytes streamed, comparable with BM_QuantGemv).
using QuantGemmFn = void (*)(const QuantPackedWeight&, const float*, int64_t, float*, const float*);

void RunQuantGemm(benchmark::State& state, QuantGemmFn fn, const char* path) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const auto type = static_cast<GgmlType>(state.range(3));
  const QuantPackedWeight pw = PackQuantWeight(type, RandomQuantWeight(type, n, k).data(), n, k);
  Matrix x = RandomActivations(m, k);
  std::vector<float> y(static_cast<size_t>(m * n));
  for (auto _ : state) {
    fn(pw, x.data(), m, y.data(), nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * m * k * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GB/s"] =
      benchmark::Counter(static_cast<double>(pw.nbytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(GgmlTypeName(type)) + " " + path);
}

// The three kernels on the same shapes: decode (M = 1) and a 128-row prefill chunk for
// q/k/v/o (4096 x 4096) and gate/up (N = 11008, K = 4096), every packed type: Q4_0, Q8_0,
// then the "4-bit with min" layout (Q4_1, Q4_K) and Q6_K (the types of a Q4_K_M file).
void QuantGemmCompareShapes(benchmark::internal::Benchmark* b) {
  for (int64_t m : {1, 128})
    for (int64_t n : {4096, 11008})
      for (int64_t type : {2, 8, 3, 12, 14}) b->Args({m, 4096, n, type});
}

void BM_QuantGemm(benchmark::State& state) { RunQuantGemm(state, QuantGemm, QuantGemmPath()); }
BENCHMARK(BM_QuantGemm)
    ->Args({576, 4096, 11008, 2})  // LLaMA gate/up over the image tokens, Q4_0
    ->Args({576, 4096, 11008, 8})  // Q8_0
    ->Args({576, 11008, 4096, 2})  // down_proj (long k)
    ->Args({576, 4096, 4096, 8})   // q/k/v/o
    ->Args({4, 4096, 11008, 2})
    ->Apply(QuantGemmCompareShapes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

#if defined(__AVX2__) && defined(__FMA__)
// The AVX2 + FMA kernel (QuantGemm's path on x86 without AVX512-VNNI), callable on any
// AVX2 build. On an AVX-512 build the compiler may give it the EVEX encodings and 32
// vector registers; a build with -march=x86-64-v3 shows the code AVX2-only CPUs run
// (docs/quantized.md).
void BM_QuantGemmAvx2(benchmark::State& state) { RunQuantGemm(state, QuantGemmAvx2, "avx2"); }
BENCHMARK(BM_QuantGemmAvx2)
    ->Args({576, 4096, 11008, 2})
    ->Args({576, 4096, 11008, 8})
    ->Apply(QuantGemmCompareShapes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

// The portable scalar kernel (non-x86 builds), for scale: the 128-row runs take seconds.
void BM_QuantGemmScalar(benchmark::State& state) { RunQuantGemm(state, QuantGemmScalar, "scalar"); }
BENCHMARK(BM_QuantGemmScalar)->Apply(QuantGemmCompareShapes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace ficoco

BENCHMARK_MAIN();
