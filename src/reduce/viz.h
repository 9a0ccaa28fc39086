// A picture of one request's token reduction (in the manner of the FiCoCo paper's
// figure 3), for --viz: the image the encoder saw with its patch grid, discarded
// patches dimmed and tinted by where they were discarded, and a line from each
// merged patch to the patch that finally holds its information.
#pragma once
#include <string>
#include <vector>

#include "image/image.h"
#include "reduce/trace.h"

namespace ficoco {

enum class PatchFateKind { Kept, Merged, Pruned };

// What happened to one cell of the patch grid over the whole request.
struct PatchFate {
  PatchFateKind kind = PatchFateKind::Kept;
  ReductionSite site = ReductionSite::Vision;  // where it was discarded (not for Kept)
  int layer = -1;                              // the layer that discarded it (-1 for Kept)
  // Merged: the largest-alpha target at the discarding layer, then the end of the
  // chain got by following the largest-alpha target again whenever the holder is
  // itself discarded later. -1 if the information went to a token without a grid
  // cell (or was pruned). Kept: both are the cell itself.
  int first_cell = -1;
  int final_cell = -1;
  // Fraction of the patch's information that followed that chain: the product over
  // its hops of (largest alpha / the source's alpha sum). 1 for Kept, 0 for Pruned.
  float share = 0.0f;
  // The final holder survives to the end (false when a later layer pruned it).
  bool final_survives = false;
};

// One entry per grid cell (row * grid + col), following the plans in trace order.
// Throws Error for a grid of 0, a visual token outside the grid, or a patch that
// the trace discards twice.
std::vector<PatchFate> FinalFates(const ReductionTrace& trace);

// Legend lines, e.g. "576 patches: 64 kept, 400 merged in vision, 112 merged in LLM,
// 0 pruned" and "reduced at vision layers 12-23, LLM layer 2" (or "no reduction").
std::string FateCountsText(const std::vector<PatchFate>& fates);
std::string ReducingLayersText(const ReductionTrace& trace);

// Draws `image` (the square crop the encoder saw) scaled to about 672 px with the
// trace's grid and fates over it and a legend strip below, and writes a PNG.
// Throws Error naming the path if it cannot be written, and for an empty image or a
// trace with grid 0.
void WriteReductionViz(const std::string& png_path, const ImageU8& image, const ReductionTrace& trace);

}  // namespace ficoco
