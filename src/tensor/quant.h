// ggml-compatible block quantization formats (the tensor types of GGUF files), scalar
// reference code. Byte layouts match llama.cpp's blocks exactly, so a mapped GGUF tensor
// can be handed to Dequantize as is. All multi-byte fields are little-endian.
//
// Block layouts (d, m, dmin are IEEE half; q are the stored unsigned codes):
//   Q8_0  32 elems, 34 B:  d, int8 qs[32]                       x[i] = d*qs[i]
//   Q4_0  32 elems, 18 B:  d, qs[16]                             x[i] = d*(q[i] - 8)
//   Q4_1  32 elems, 20 B:  d, m, qs[16]                          x[i] = d*q[i] + m
//   Q5_0  32 elems, 22 B:  d, qh[4], qs[16]                      x[i] = d*(q[i] - 16)
//   Q5_1  32 elems, 24 B:  d, m, qh[4], qs[16]                   x[i] = d*q[i] + m
//     4-bit codes: element i < 16 is the low nibble of qs[i], element i + 16 the high
//     nibble of qs[i]. 5-bit codes add bit i of the little-endian uint32 qh as bit 4 of
//     element i (so bit j of qh belongs to element j, for j = 0..31).
//   Q4_K  256 elems, 144 B: d, dmin, scales[12], qs[128]
//     8 sub-blocks of 32 with 6-bit scale sc[j] and 6-bit min mn[j]:
//       j < 4: sc = scales[j] & 63,       mn = scales[j+4] & 63
//       j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4
//               mn = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
//     x = d*sc[j]*q - dmin*mn[j]. Each 64-element chunk c (0..3) uses qs[32c .. 32c+31]:
//     elements 64c + l take the low nibble of qs[32c + l] (sub-block 2c), elements
//     64c + 32 + l the high nibble (sub-block 2c + 1).
//   Q5_K  256 elems, 176 B: d, dmin, scales[12], qh[32], qs[128]
//     as Q4_K, plus bit 4 of the code: element 64c + l has bit (2c) of qh[l], element
//     64c + 32 + l has bit (2c + 1) of qh[l].
//   Q6_K  256 elems, 210 B: ql[128], qh[64], int8 scales[16], d
//     x = d*scales[i/16]*(q - 32), q a 6-bit code. Half h (0..1) covers elements
//     128h .. 128h+127 and uses ql[64h ..], qh[32h ..]; for l < 32, with L = ql + 64h,
//     H = qh + 32h, the element 128h + l      has low bits L[l] & 15,      high (H[l] >> 0) & 3
//                       128h + l + 32 has low bits L[l + 32] & 15, high (H[l] >> 2) & 3
//                       128h + l + 64 has low bits L[l] >> 4,      high (H[l] >> 4) & 3
//                       128h + l + 96 has low bits L[l + 32] >> 4, high (H[l] >> 6) & 3
//
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "tensor/ggml_type.h"

namespace ficoco {

// The ggml types whose blocks this file encodes and decodes: F32, F16, BF16, Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (sizes of every ggml type: tensor/ggml_type.h).
bool Quantizable(GgmlType t);
// The type for a GGUF type id, or nullopt if it is not one of those.
std::optional<GgmlType> GgmlTypeFromGgufId(uint32_t id);

// Elements per block (1 for F32/F16/BF16, 32 for Q*_0/Q*_1, 256 for the k-quants).
size_t QuantBlockElements(GgmlType t);
// Bytes per block.
size_t QuantBlockBytes(GgmlType t);
// Bytes of `n` elements; Error if n is negative or not a multiple of the block size.
size_t QuantRowBytes(GgmlType t, int64_t n);

// Decodes `n` elements (a multiple of the block size, else Error) from `src` blocks.
void Dequantize(GgmlType t, const void* src, float* dst, int64_t n);

// Encodes `n` elements (a multiple of the block size, else Error) into blocks at `dst`.
// Supported: F32, F16, BF16 (conversion), Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (bit-exact with
// ggml's reference quantizers, see quant.cc), Q4_K, Q5_K and Q6_K (simple max-based
// scales, not ggml's iterative search: valid blocks, not byte-identical to llama.cpp's).
void Quantize(GgmlType t, const float* src, void* dst, int64_t n);

// The codes and per-sub-block factors of one Q4_K super-block (144 bytes), for kernels
// that multiply the codes directly: element e (sub-block j = e / 32) is
// scale[j] * q[e] - min[j], with scale = d * sc and min = dmin * mn exact in float (an
// fp16 value times a 6-bit integer), the same products Dequantize forms. q in 0..15.
void UnpackQ4_K(const void* block, uint8_t q[256], float scale[8], float min[8]);
// The same for one Q6_K super-block (210 bytes): element e is scale[e / 16] * (q[e] - 32),
// q in 0..63, scale = d * sc (exact in float: fp16 times an int8).
void UnpackQ6_K(const void* block, uint8_t q[256], float scale[16]);

}  // namespace ficoco
