// Per-token bookkeeping that travels with the hidden states through every layer,
// so that a reduced sequence still knows where each token came from.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ficoco {

enum class TokenRole : uint8_t { Cls, Visual, Text, System };

struct TokenMeta {
  int32_t orig_index = 0;  // index in the original, unreduced sequence
  int32_t grid_row = -1;   // patch cell on the original grid (visual tokens only)
  int32_t grid_col = -1;
  int32_t pos_id = 0;      // RoPE position id used by the LLM
  TokenRole role = TokenRole::Text;
  float size = 1.0f;       // original tokens this one stands for (ToMe's size; fused tokens)
};

// [CLS, p_0 … p_{g²-1}] in raster order for a g×g patch grid.
std::vector<TokenMeta> VisionTokenMeta(int grid);

}  // namespace ficoco
