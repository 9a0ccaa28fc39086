#include "tensor/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "tensor/dtype.h"

namespace ficoco {
namespace {

constexpr int kQK = 32;    // elements of a Q*_0 / Q*_1 block
constexpr int kQKK = 256;  // elements of a k-quant super-block

// Block geometry from the shared ggml table, for the types this file supports.
struct QuantInfo {
  const char* name;
  size_t block_elements;
  size_t block_bytes;
};

QuantInfo Info(GgmlType t) {
  if (!Quantizable(t)) Fail("unknown quantization type id ", static_cast<uint32_t>(t));
  const GgmlTypeTraits& traits = GgmlTraits(t);
  return {traits.name, static_cast<size_t>(traits.block_elems), static_cast<size_t>(traits.block_bytes)};
}

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float LoadF16(const uint8_t* p) { return F16ToF32(LoadU16(p)); }
void StoreU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xff);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void StoreF16(uint8_t* p, float v) { StoreU16(p, F32ToF16(v)); }
uint32_t LoadU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
void StoreU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Number of blocks in `n` elements, or Error naming the operation.
int64_t BlockCount(GgmlType t, int64_t n, const char* what) {
  const QuantInfo info = Info(t);
  const auto per = static_cast<int64_t>(info.block_elements);
  if (n < 0 || n % per != 0) {
    Fail(what, " ", info.name, ": element count ", n, " is not a multiple of the block size ",
         per);
  }
  return n / per;
}

// ---- Dequantization -------------------------------------------------------------------
// Every product below is exact in float (an 11-bit fp16 mantissa times codes and 6/8-bit
// scales stays within 24 bits), so the only rounding is the final add of Q4_1/Q5_1/K-quant
// mins: results are bit-identical to ggml's scalar code, with or without FMA contraction.

void DequantQ8_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  for (int i = 0; i < kQK; ++i) y[i] = static_cast<float>(static_cast<int8_t>(b[2 + i])) * d;
}

void DequantQ4_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void DequantQ4_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
    y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// Q5_0 / Q5_1 codes: nibble plus bit j of qh as bit 4.
void Unpack5(const uint8_t* qh_bytes, const uint8_t* qs, int* q) {
  const uint32_t qh = LoadU32(qh_bytes);
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    q[j + kQK / 2] = (qs[j] >> 4) | static_cast<int>(((qh >> (j + kQK / 2)) & 1u) << 4);
  }
}

void DequantQ5_0(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  int q[kQK];
  Unpack5(b + 2, b + 6, q);
  for (int i = 0; i < kQK; ++i) y[i] = static_cast<float>(q[i] - 16) * d;
}

void DequantQ5_1(const uint8_t* b, float* y) {
  const float d = LoadF16(b);
  const float m = LoadF16(b + 2);
  int q[kQK];
  Unpack5(b + 4, b + 8, q);
  for (int i = 0; i < kQK; ++i) y[i] = static_cast<float>(q[i]) * d + m;
}

// The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K.
void ScaleMinK4(int j, const uint8_t* s, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K (qh == nullptr) and Q5_K.
void DequantK45(const uint8_t* b, const uint8_t* qh, const uint8_t* qs, float* y) {
  const float d = LoadF16(b);
  const float dmin = LoadF16(b + 2);
  const uint8_t* scales = b + 4;
  for (int c = 0; c < 4; ++c) {
    int sc0, mn0, sc1, mn1;
    ScaleMinK4(2 * c, scales, &sc0, &mn0);
    ScaleMinK4(2 * c + 1, scales, &sc1, &mn1);
    const float d0 = d * static_cast<float>(sc0), m0 = dmin * static_cast<float>(mn0);
    const float d1 = d * static_cast<float>(sc1), m1 = dmin * static_cast<float>(mn1);
    const uint8_t* q = qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      const int hi0 = qh != nullptr && (qh[l] >> (2 * c)) & 1 ? 16 : 0;
      const int hi1 = qh != nullptr && (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0;
      y[64 * c + l] = d0 * static_cast<float>((q[l] & 0x0f) + hi0) - m0;
      y[64 * c + 32 + l] = d1 * static_cast<float>((q[l] >> 4) + hi1) - m1;
    }
  }
}

void DequantQ4_K(const uint8_t* b, float* y) { DequantK45(b, nullptr, b + 16, y); }
void DequantQ5_K(const uint8_t* b, float* y) { DequantK45(b, b + 16, b + 48, y); }

void DequantQ6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = LoadF16(b + 208);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* L = ql + 64 * h;
    const uint8_t* H = qh + 32 * h;
    const int8_t* S = sc + 8 * h;
    float* out = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q0 = ((L[l] & 0x0f) | ((H[l] & 3) << 4)) - 32;
      const int q1 = ((L[l + 32] & 0x0f) | (((H[l] >> 2) & 3) << 4)) - 32;
      const int q2 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32;
      const int q3 = ((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(S[is]) * static_cast<float>(q0);
      out[l + 32] = d * static_cast<float>(S[is + 2]) * static_cast<float>(q1);
      out[l + 64] = d * static_cast<float>(S[is + 4]) * static_cast<float>(q2);
      out[l + 96] = d * static_cast<float>(S[is + 6]) * static_cast<float>(q3);
    }
  }
}

// ---- Quantization ---------------------------------------------------------------------
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 follow ggml's reference quantizers step for step, so they
// produce the same bytes as llama.cpp's quantize_row_*_ref:
//   Q8_0: d = max|x| / 127, q = roundf(x / d) (half away from zero).
//   Q4_0: d = v / -8 with v the element of largest |x| (its sign kept), q = min(15,
//         trunc(x / d + 8.5)).  Q5_0 likewise with -16, 16.5 and 31.
//   Q4_1: d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5)).
//         Q5_1 likewise with 31.
// "x / d" is x * (1/d) with d the fp32 value before rounding to fp16 (as ggml does), and
// d == 0 gives all-zero codes.

float Inverse(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

void QuantQ8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = Inverse(d);
  StoreF16(b, d);
  for (int i = 0; i < kQK; ++i) {
    b[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[i] * id)));
  }
}

// The element of largest magnitude, sign kept (the first one on ties).
float SignedAbsMax(const float* x) {
  float amax = 0.0f, v = 0.0f;
  for (int i = 0; i < kQK; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      v = x[i];
    }
  }
  return v;
}

// Codes for Q4_0 (bits 4) and Q5_0 (bits 5).
void QuantSymmetric(const float* x, int bits, float* d_out, int* q) {
  const int half = 1 << (bits - 1);
  const int top = (1 << bits) - 1;
  const float d = SignedAbsMax(x) / static_cast<float>(-half);
  const float id = Inverse(d);
  *d_out = d;
  for (int i = 0; i < kQK; ++i) {
    q[i] = std::min(top, static_cast<int>(x[i] * id + (static_cast<float>(half) + 0.5f)));
  }
}

// Codes for Q4_1 (bits 4) and Q5_1 (bits 5).
void QuantAffine(const float* x, int bits, float* d_out, float* m_out, int* q) {
  const int top = (1 << bits) - 1;
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kQK; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float d = (hi - lo) / static_cast<float>(top);
  const float id = Inverse(d);
  *d_out = d;
  *m_out = lo;
  for (int i = 0; i < kQK; ++i) {
    q[i] = std::min(top, static_cast<int>((x[i] - lo) * id + 0.5f));
  }
}

void PackNibbles(const int* q, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + kQK / 2] & 0x0f) << 4));
  }
}

uint32_t HighBits5(const int* q) {
  uint32_t qh = 0;
  for (int i = 0; i < kQK; ++i) qh |= static_cast<uint32_t>((q[i] >> 4) & 1) << i;
  return qh;
}

void QuantQ4_0(const float* x, uint8_t* b) {
  float d;
  int q[kQK];
  QuantSymmetric(x, 4, &d, q);
  StoreF16(b, d);
  PackNibbles(q, b + 2);
}

void QuantQ5_0(const float* x, uint8_t* b) {
  float d;
  int q[kQK];
  QuantSymmetric(x, 5, &d, q);
  StoreF16(b, d);
  StoreU32(b + 2, HighBits5(q));
  PackNibbles(q, b + 6);
}

void QuantQ4_1(const float* x, uint8_t* b) {
  float d, m;
  int q[kQK];
  QuantAffine(x, 4, &d, &m, q);
  StoreF16(b, d);
  StoreF16(b + 2, m);
  PackNibbles(q, b + 4);
}

void QuantQ5_1(const float* x, uint8_t* b) {
  float d, m;
  int q[kQK];
  QuantAffine(x, 5, &d, &m, q);
  StoreF16(b, d);
  StoreF16(b + 2, m);
  StoreU32(b + 4, HighBits5(q));
  PackNibbles(q, b + 8);
}

int NearestInt(float v) { return static_cast<int>(std::lrintf(v)); }

// Q4_K (bits 4) and Q5_K (bits 5), simple rule (not ggml's search): each sub-block of 32
// gets scale (max - min')/top and min -min' with min' = min(0, min x); the super-block
// stores d = max scale / 63 and dmin = max min / 63, each sub-block its 6-bit multiples
// (rounded to nearest), and every code is the nearest level under the stored values.
void QuantK45(const float* x, int bits, uint8_t* b) {
  const int top = (1 << bits) - 1;
  float scale[8], mins[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    const float* s = x + 32 * j;
    float lo = 0.0f, hi = s[0];
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, s[l]);
      hi = std::max(hi, s[l]);
    }
    scale[j] = std::max(0.0f, hi - lo) / static_cast<float>(top);
    mins[j] = -lo;
    max_scale = std::max(max_scale, scale[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  uint8_t* packed = b + 4;
  std::memset(packed, 0, 12);
  int ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = std::min(63, NearestInt(inv_scale * scale[j]));
    lm[j] = std::min(63, NearestInt(inv_min * mins[j]));
    if (j < 4) {
      packed[j] = static_cast<uint8_t>(ls[j]);
      packed[j + 4] = static_cast<uint8_t>(lm[j]);
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
  StoreF16(b, max_scale / 63.0f);
  StoreF16(b + 2, max_min / 63.0f);
  const float d = LoadF16(b);
  const float dmin = LoadF16(b + 2);
  int q[kQKK];
  for (int j = 0; j < 8; ++j) {
    const float dj = d * static_cast<float>(ls[j]);
    const float mj = dmin * static_cast<float>(lm[j]);
    for (int l = 0; l < 32; ++l) {
      const int v = dj != 0.0f ? NearestInt((x[32 * j + l] + mj) / dj) : 0;
      q[32 * j + l] = std::clamp(v, 0, top);
    }
  }
  uint8_t* qh = bits == 5 ? b + 16 : nullptr;
  uint8_t* qs = bits == 5 ? b + 48 : b + 16;
  if (qh != nullptr) std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int a = q[64 * c + l], z = q[64 * c + 32 + l];
      qs[32 * c + l] = static_cast<uint8_t>((a & 0x0f) | ((z & 0x0f) << 4));
      if (qh != nullptr) {
        qh[l] |= static_cast<uint8_t>(((a >> 4) & 1) << (2 * c));
        qh[l] |= static_cast<uint8_t>(((z >> 4) & 1) << (2 * c + 1));
      }
    }
  }
}

// Q6_K, simple rule (not ggml's search): each sub-block of 16 gets scale v/-32 (v its
// signed absolute maximum); the super-block stores d = s/-128 with s the signed largest
// of those scales, each sub-block round(scale/d) clamped to [-128, 127], and every code
// is the nearest level in [-32, 31] under the stored values.
void QuantQ6_K(const float* x, uint8_t* b) {
  float scale[16];
  float max_scale = 0.0f, max_abs_scale = 0.0f;
  for (int i = 0; i < 16; ++i) {
    float amax = 0.0f, v = 0.0f;
    for (int l = 0; l < 16; ++l) {
      const float a = std::fabs(x[16 * i + l]);
      if (a > amax) {
        amax = a;
        v = x[16 * i + l];
      }
    }
    scale[i] = v / -32.0f;
    if (std::fabs(scale[i]) > max_abs_scale) {
      max_abs_scale = std::fabs(scale[i]);
      max_scale = scale[i];
    }
  }
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  std::memset(b, 0, 210);
  if (max_abs_scale == 0.0f) return;
  const float iscale = -128.0f / max_scale;
  StoreF16(b + 208, 1.0f / iscale);
  const float d = LoadF16(b + 208);
  int q[kQKK];
  for (int i = 0; i < 16; ++i) {
    sc[i] = static_cast<int8_t>(std::clamp(NearestInt(iscale * scale[i]), -128, 127));
    const float di = d * static_cast<float>(sc[i]);
    for (int l = 0; l < 16; ++l) {
      const int v = di != 0.0f ? NearestInt(x[16 * i + l] / di) : 0;
      q[16 * i + l] = std::clamp(v, -32, 31) + 32;
    }
  }
  for (int h = 0; h < 2; ++h) {
    uint8_t* L = ql + 64 * h;
    uint8_t* H = qh + 32 * h;
    const int* Q = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      L[l] = static_cast<uint8_t>((Q[l] & 0x0f) | ((Q[l + 64] & 0x0f) << 4));
      L[l + 32] = static_cast<uint8_t>((Q[l + 32] & 0x0f) | ((Q[l + 96] & 0x0f) << 4));
      H[l] = static_cast<uint8_t>((Q[l] >> 4) | ((Q[l + 32] >> 4) << 2) | ((Q[l + 64] >> 4) << 4) |
                                  ((Q[l + 96] >> 4) << 6));
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);
using QuantFn = void (*)(const float*, uint8_t*);

void QuantQ4_K(const float* x, uint8_t* b) { QuantK45(x, 4, b); }
void QuantQ5_K(const float* x, uint8_t* b) { QuantK45(x, 5, b); }

}  // namespace

bool Quantizable(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

std::optional<GgmlType> GgmlTypeFromGgufId(uint32_t id) {
  const GgmlTypeTraits* t = FindGgmlType(id);
  if (t == nullptr || !Quantizable(t->type)) return std::nullopt;
  return t->type;
}

size_t QuantBlockElements(GgmlType t) { return Info(t).block_elements; }
size_t QuantBlockBytes(GgmlType t) { return Info(t).block_bytes; }

size_t QuantRowBytes(GgmlType t, int64_t n) {
  return static_cast<size_t>(BlockCount(t, n, "size of")) * Info(t).block_bytes;
}

void Dequantize(GgmlType t, const void* src, float* dst, int64_t n) {
  const int64_t blocks = BlockCount(t, n, "dequantize");
  BlockFn fn = nullptr;
  switch (t) {
    case GgmlType::F32: ConvertToF32(DType::F32, src, dst, n); return;
    case GgmlType::F16: ConvertToF32(DType::F16, src, dst, n); return;
    case GgmlType::BF16: ConvertToF32(DType::BF16, src, dst, n); return;
    case GgmlType::Q8_0: fn = DequantQ8_0; break;
    case GgmlType::Q4_0: fn = DequantQ4_0; break;
    case GgmlType::Q4_1: fn = DequantQ4_1; break;
    case GgmlType::Q5_0: fn = DequantQ5_0; break;
    case GgmlType::Q5_1: fn = DequantQ5_1; break;
    case GgmlType::Q4_K: fn = DequantQ4_K; break;
    case GgmlType::Q5_K: fn = DequantQ5_K; break;
    case GgmlType::Q6_K: fn = DequantQ6_K; break;
    default: break;
  }
  if (fn == nullptr) Fail("dequantize: unknown quantization type id ", GgufTypeId(t));
  const auto* s = static_cast<const uint8_t*>(src);
  const size_t bytes = Info(t).block_bytes;
  const auto per = static_cast<int64_t>(Info(t).block_elements);
  for (int64_t i = 0; i < blocks; ++i) fn(s + static_cast<size_t>(i) * bytes, dst + i * per);
}

void UnpackQ4_K(const void* block, uint8_t q[256], float scale[8], float min[8]) {
  const auto* b = static_cast<const uint8_t*>(block);
  const float d = LoadF16(b), dmin = LoadF16(b + 2);
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    ScaleMinK4(j, b + 4, &sc, &mn);
    scale[j] = d * static_cast<float>(sc);
    min[j] = dmin * static_cast<float>(mn);
  }
  const uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      q[64 * c + l] = qs[32 * c + l] & 0x0f;
      q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
    }
}

void UnpackQ6_K(const void* block, uint8_t q[256], float scale[16]) {
  const auto* b = static_cast<const uint8_t*>(block);
  const float d = LoadF16(b + 208);
  for (int i = 0; i < 16; ++i) scale[i] = d * static_cast<float>(static_cast<int8_t>(b[192 + i]));
  for (int h = 0; h < 2; ++h) {
    const uint8_t* L = b + 64 * h;
    const uint8_t* H = b + 128 + 32 * h;
    uint8_t* out = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      out[l] = static_cast<uint8_t>((L[l] & 0x0f) | ((H[l] & 3) << 4));
      out[l + 32] = static_cast<uint8_t>((L[l + 32] & 0x0f) | (((H[l] >> 2) & 3) << 4));
      out[l + 64] = static_cast<uint8_t>((L[l] >> 4) | (((H[l] >> 4) & 3) << 4));
      out[l + 96] = static_cast<uint8_t>((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4));
    }
  }
}

void Quantize(GgmlType t, const float* src, void* dst, int64_t n) {
  const int64_t blocks = BlockCount(t, n, "quantize");
  QuantFn fn = nullptr;
  switch (t) {
    case GgmlType::F32: ConvertFromF32(src, DType::F32, dst, n); return;
    case GgmlType::F16: ConvertFromF32(src, DType::F16, dst, n); return;
    case GgmlType::BF16: ConvertFromF32(src, DType::BF16, dst, n); return;
    case GgmlType::Q8_0: fn = QuantQ8_0; break;
    case GgmlType::Q4_0: fn = QuantQ4_0; break;
    case GgmlType::Q4_1: fn = QuantQ4_1; break;
    case GgmlType::Q5_0: fn = QuantQ5_0; break;
    case GgmlType::Q5_1: fn = QuantQ5_1; break;
    case GgmlType::Q4_K: fn = QuantQ4_K; break;
    case GgmlType::Q5_K: fn = QuantQ5_K; break;
    case GgmlType::Q6_K: fn = QuantQ6_K; break;
    default: break;
  }
  if (fn == nullptr) Fail("quantize: unknown quantization type id ", GgufTypeId(t));
  auto* d = static_cast<uint8_t*>(dst);
  const size_t bytes = Info(t).block_bytes;
  const auto per = static_cast<int64_t>(Info(t).block_elements);
  for (int64_t i = 0; i < blocks; ++i) fn(src + i * per, d + static_cast<size_t>(i) * bytes);
}

}  // namespace ficoco
