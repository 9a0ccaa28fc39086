#include "model/token_meta.h"

namespace ficoco {

std::vector<TokenMeta> VisionTokenMeta(int grid) {
  std::vector<TokenMeta> meta(static_cast<size_t>(grid * grid + 1));
  meta[0] = {0, -1, -1, 0, TokenRole::Cls};
  for (int i = 0; i < grid * grid; ++i) meta[static_cast<size_t>(i + 1)] = {i + 1, i / grid, i % grid, i + 1, TokenRole::Visual};
  return meta;
}

}  // namespace ficoco
