// Products with ggml-quantized weights (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) for any number of
// activation rows: prefill (hundreds of image tokens) and decode (one row) alike.
//
// The weight is repacked once at load from ggml's row-of-blocks layout into column groups
// of 16 output rows, so that one 512-bit vector holds 4 consecutive k-values of each of
// the 16 columns: exactly the operand shape of AVX512-VNNI's vpdpbusd, which then adds
// 16 columns x 4 products per instruction against 4 activation bytes broadcast from
// memory. Every type is cut into blocks of 32 k-values (a k-quant super-block of 256 is
// 8 of them). Per group and block of 32 the layout is one of four:
//   Q4   (Q4_0): 4 vectors of 64 bytes; byte 4c + t of vector v holds column c's stored
//         nibbles for elements 4v + t (low nibble) and 16 + 4v + t (high nibble) -- the
//         ggml Q4_0 nibble order, so repacking copies 4-byte pieces; then 16 float32
//         scales d (one per column). Weight = d * (nibble - 8).
//   Q8   (Q8_0): 8 vectors of 64 bytes; byte 4c + t of vector v is q(c, 4v + t) XOR 0x80,
//         i.e. the signed value plus 128 as an unsigned byte; then 16 float32 scales d.
//   Q4M  (Q4_1, Q4_K: "4-bit with min"): the Q4 nibble vectors (Q4_K's nibbles repacked
//         into that order), then 16 float32 scales s and 16 float32 mins m per column.
//         Weight = s * nibble + m (Q4_1: s = d, m = m; Q4_K: s = d*sc_j, m = -dmin*mn_j,
//         both exact in float).
//   Q6   (Q6_K): the Q8 vector layout holding the unsigned 6-bit code q (0..63) as is,
//         then 16 float32 scales for elements 0..15 and 16 for elements 16..31 (d * sc of
//         the two 16-element sub-blocks). Weight = scale_half * (q - 32).
// vpdpbusd multiplies unsigned by signed bytes, so weights are stored unsigned with an
// offset (8 for Q4, 128 for Q8, 32 for Q6) and the offset times the activation block's
// (or half-block's) sum is subtracted through the accumulator's starting value. Q4M needs
// no offset: its codes are the unsigned factor already, and the min adds
// m * d_x * (sum of the activation block) per block.
// Activations are quantized per row to blocks of 32 exactly as QuantGemv does
// (QuantizeActivationRow), so every path computes the same integer block sums.
// Without AVX512-VNNI, an AVX2 + FMA kernel reads the same layout as two 256-bit halves
// (8 columns x 4 k-values each) with vpmaddubsw + vpmaddwd; see QuantGemmAvx2.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/ggml_type.h"

namespace ficoco {

inline constexpr int64_t kQuantGroup = 16;  // output columns per packed group

class QuantPackedWeight {
 public:
  QuantPackedWeight() = default;
  GgmlType type() const { return type_; }
  int64_t n_out() const { return n_out_; }
  int64_t k() const { return k_; }
  int64_t groups() const { return (n_out_ + kQuantGroup - 1) / kQuantGroup; }
  int64_t blocks_per_row() const { return k_ / 32; }
  // Bytes of one group for one block of 32 k-values (weights then scales, mins).
  int64_t block_group_bytes() const;
  const uint8_t* data() const { return data_.get(); }
  size_t nbytes() const { return nbytes_; }
  bool empty() const { return !data_; }

 private:
  friend QuantPackedWeight PackQuantWeight(GgmlType, const void*, int64_t, int64_t);
  GgmlType type_ = GgmlType::F32;
  int64_t n_out_ = 0, k_ = 0;
  size_t nbytes_ = 0;
  std::shared_ptr<uint8_t> data_;  // 64-byte aligned, shared by copies (read-only)
};

// True for Q8_0, Q4_0, Q4_1, Q4_K and Q6_K.
bool QuantGemmSupports(GgmlType type);
// The types above, for messages: "Q8_0, Q4_0, Q4_1, Q4_K or Q6_K".
const char* QuantGemmSupportedNames();

// Repacks n_out rows of k ggml-quantized elements (rows of k / block-size blocks,
// contiguous) into the layout above; the missing columns of the last group are zero.
// Error for another type, k not a positive multiple of the type's block size (32, or
// 256 for Q4_K / Q6_K), or n_out < 1.
QuantPackedWeight PackQuantWeight(GgmlType type, const void* ggml_blocks, int64_t n_out, int64_t k);

// y[m, n_out] = x[m, k] * W^T (+ bias[n_out] when not null). Row tiles of up to 4
// activation rows against pairs of column groups, OpenMP over column panels sized to
// stay in L2. Chosen at compile time: AVX512-VNNI, else QuantGemmAvx2, else QuantGemmScalar.
void QuantGemm(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias = nullptr);

// The same product through portable scalar code on the packed layout (tests, fallback).
void QuantGemmScalar(const QuantPackedWeight& w, const float* x, int64_t m, float* y,
                     const float* bias = nullptr);

#if defined(__AVX2__) && defined(__FMA__)
// The same product through the AVX2 + FMA kernel (QuantGemm's path on x86 without
// AVX512-VNNI). Compiled whenever the compiler targets AVX2 and FMA, also on AVX-512
// builds, so tests and benchmarks can run it there. Integer block sums are exact (no
// int16 saturation, see quant_gemm.cc) and equal to the VNNI and scalar ones.
void QuantGemmAvx2(const QuantPackedWeight& w, const float* x, int64_t m, float* y, const float* bias = nullptr);
#endif

// "avx512-vnni", "avx2" or "scalar": the path QuantGemm was compiled with.
const char* QuantGemmPath();

}  // namespace ficoco
