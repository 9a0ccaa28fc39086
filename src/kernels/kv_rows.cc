#include "kernels/kv_rows.h"

#include <algorithm>

#include "base/error.h"
#include "tensor/dtype.h"

namespace ficoco {

KvType ParseKvType(const std::string& name) {
  if (name == "f32") return KvType::F32;
  if (name == "f16") return KvType::F16;
  Fail("unknown KV cache type '", name, "' (expected f16 or f32)");
}

const char* KvTypeName(KvType t) { return t == KvType::F16 ? "f16" : "f32"; }

std::optional<KvType> ParseKvCacheChoice(const std::string& name) {
  if (name == "auto") return std::nullopt;
  if (name == "f32" || name == "f16") return ParseKvType(name);
  Fail("unknown --kv-cache '", name, "' (expected auto, f16 or f32)");
}

void KvRows::Read(int64_t r, int64_t c0, int64_t n, float* out) const {
  if (type == KvType::F32)
    std::copy_n(f32_row(r) + c0, n, out);
  else
    ConvertToF32(DType::F16, f16_row(r) + c0, out, n);
}

}  // namespace ficoco
