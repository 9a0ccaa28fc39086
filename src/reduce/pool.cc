// Spatial average pooling (baselines.md §11): between the encoder and the projector,
// average-pool the G×G patch grid to h'×w' = keep cells. The grid is cut into h' row
// bands and w' column bands, band i of an axis of G cells cut into n being
// [⌊i·G/n⌋, ⌊(i+1)·G/n⌋) (non-overlapping; exact 3×3 windows for 64 of 24×24).
// h' ≥ w', both ≤ G, as close to square as possible: 64 → 8×8, 128 → 16×8,
// 144 → 12×12, 192 → 16×12. Keeps with no such grid are refused.
// In the paradigm: filter keeps one token per window (its first patch in raster order),
// correlate sends every other patch of the window to it, compress averages (plain mean
// of the window). The outputs come in raster order of the windows.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "base/error.h"
#include "reduce/filter.h"
#include "reduce/baselines_prellm.h"

namespace ficoco {
namespace {

bool Factor(int64_t keep, int grid, PoolShape* shape) {
  for (auto w = static_cast<int64_t>(std::sqrt(static_cast<double>(keep))) + 1; w >= 1; --w) {
    if (w * w > keep || keep % w != 0) continue;  // w ≤ √keep, so h' = keep / w ≥ w
    if (keep / w > grid) return false;            // smaller w only makes h' larger
    *shape = {static_cast<int>(keep / w), static_cast<int>(w)};
    return true;
  }
  return false;
}

}  // namespace

int PoolBandStart(int i, int grid, int n) { return static_cast<int>(static_cast<int64_t>(i) * grid / n); }

PoolShape PoolGridFor(int64_t keep, int grid) {
  PoolShape shape;
  const int64_t cells = static_cast<int64_t>(grid) * grid;
  if (keep >= 1 && keep <= cells && Factor(keep, grid, &shape)) return shape;
  std::ostringstream near;
  PoolShape s;
  for (int64_t k = std::min(keep - 1, cells); k >= 1; --k)
    if (Factor(k, grid, &s)) {
      near << k << " (" << s.rows << "×" << s.cols << ")";
      break;
    }
  for (int64_t k = std::max<int64_t>(keep + 1, 1); k <= cells; ++k)
    if (Factor(k, grid, &s)) {
      near << (near.tellp() > 0 ? " or " : "") << k << " (" << s.rows << "×" << s.cols << ")";
      break;
    }
  Fail("--keep ", keep, " cannot be pooled: no h'×w' grid with h', w' <= ", grid, " has ", keep,
       " cells; nearest reachable keeps: ", near.str());
}

ReductionSchedule PoolSchedule(const LlavaConfig& cfg, const ReductionParams& p, int64_t keep) {
  PoolGridFor(keep, cfg.vision.grid());
  return PreLlmSchedule(cfg, p, keep);
}

LayerPlan PoolPlan(const VisionHookContext& out, int64_t n_remove, const ReductionParams&) {
  const PreLlmTokens tokens = SplitPreLlmTokens(out);
  const int64_t keep = PreLlmKeep(tokens, n_remove, "pool");
  const int g = out.grid;
  const PoolShape shape = PoolGridFor(keep, g);
  // Row of each grid cell: pooling needs the whole grid.
  std::vector<int32_t> row_of(static_cast<size_t>(g) * g, -1);
  for (int32_t r : tokens.patches) {
    const TokenMeta& m = out.meta[static_cast<size_t>(r)];
    if (m.grid_row < 0 || m.grid_row >= g || m.grid_col < 0 || m.grid_col >= g)
      Fail("pool: patch row ", r, " has no cell on the ", g, "×", g, " grid");
    row_of[static_cast<size_t>(m.grid_row * g + m.grid_col)] = r;
  }
  for (int32_t r : row_of)
    if (r < 0) Fail("pool: the encoder output lacks patches of the ", g, "×", g, " grid (pooling needs all of them)");

  // Filter + correlate: each window's first patch stays and receives the others.
  std::vector<int32_t> target(out.meta.size(), -1);  // row → its window's kept row
  std::vector<int32_t> kept;
  for (int wr = 0; wr < shape.rows; ++wr)
    for (int wc = 0; wc < shape.cols; ++wc) {
      const int r0 = PoolBandStart(wr, g, shape.rows), c0 = PoolBandStart(wc, g, shape.cols);
      const int32_t first = row_of[static_cast<size_t>(r0 * g + c0)];
      kept.push_back(first);
      for (int r = r0; r < PoolBandStart(wr + 1, g, shape.rows); ++r)
        for (int c = c0; c < PoolBandStart(wc + 1, g, shape.cols); ++c)
          target[static_cast<size_t>(row_of[static_cast<size_t>(r * g + c)])] = first;
    }
  std::vector<float> scores;  // 0 = kept (window representative), 1 = merged away
  for (int32_t r : tokens.patches) scores.push_back(target[static_cast<size_t>(r)] == r ? 0.0f : 1.0f);
  FilterResult filter = KeepExactly(tokens.patches, std::move(scores), std::move(kept));
  Routing routing;
  for (int32_t r : filter.discard) {
    routing.dst.push_back(target[static_cast<size_t>(r)]);
    routing.alpha.push_back(1.0f);
    routing.src_begin.push_back(static_cast<int32_t>(routing.dst.size()));
  }
  // Compress: the window mean. Window representatives ascend in raster order of the
  // windows (band starts increase along both axes), so the order needs no change.
  return LayerPlan{std::move(filter), std::move(routing), CompressRule::Average, {}};
}

MethodInfo PoolMethod() {
  return {.name = "pool",
          .site = MethodSite::PreLlm,
          .summary = "Spatial pooling (baselines §11): between encoder and projector, average the patch grid over h'×w' = "
                     "--keep non-overlapping windows (h' >= w', nearest to square; keeps without such a grid are refused).",
          .params = {"--keep"},
          .pre_llm_plan = PoolPlan,
          .schedule = PoolSchedule};
}

}  // namespace ficoco
