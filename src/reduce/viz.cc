// The cairo drawing of a reduction trace's patch fates (fates: patch_fates.cc).
#include "reduce/viz.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numbers>
#include <sstream>

#include "base/error.h"
namespace ficoco {
namespace {


constexpr int kTargetSide = 672;  // twice the 336 px crop LLaVA-1.5 sees
constexpr double kFontSize = 14.0;
constexpr double kLineHeight = 20.0;
constexpr double kMargin = 10.0;

struct Colour {
  double r, g, b;
};
// Dark tints so a discarded patch reads as "gone" whatever its own colour.
constexpr Colour kVisionTint{0.05, 0.15, 0.50};
constexpr Colour kLlmTint{0.50, 0.22, 0.00};
constexpr double kTintAlpha = 0.6;
// Bright line colours of the same hues, visible over the tints and the image.
constexpr Colour kVisionLine{0.35, 0.85, 1.00};
constexpr Colour kLlmLine{1.00, 0.70, 0.20};
constexpr Colour kPrunedMark{1.00, 0.20, 0.20};
constexpr Colour kHolderOutline{1.00, 0.90, 0.20};
constexpr Colour kText{0.10, 0.10, 0.10};

using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using ContextPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

SurfacePtr MakeSurface(int width, int height) {
  return SurfacePtr(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height), cairo_surface_destroy);
}

void SetColour(cairo_t* cr, const Colour& c, double alpha = 1.0) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }

void SetFont(cairo_t* cr) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, kFontSize);
}

double TextWidth(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  return e.x_advance;
}

// Greedy word wrap to `width` pixels (a single over-long word keeps its own line).
std::vector<std::string> WrapText(cairo_t* cr, const std::string& text, double width) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string word, line;
  while (words >> word) {
    const std::string longer = line.empty() ? word : line + " " + word;
    if (!line.empty() && TextWidth(cr, longer) > width) {
      lines.push_back(line);
      line = word;
    } else {
      line = longer;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// One entry of the key row: a small symbol and its label.
enum class KeySymbol { VisionTint, LlmTint, PrunedMark, HolderOutline, Lines };
struct KeyItem {
  KeySymbol symbol;
  std::string label;
};
constexpr double kSymbolSize = 12.0;
constexpr double kKeySpacing = 16.0;

const std::vector<KeyItem>& KeyItems() {
  static const std::vector<KeyItem> items{
      {KeySymbol::VisionTint, "discarded in vision"}, {KeySymbol::LlmTint, "discarded in LLM"},
      {KeySymbol::PrunedMark, "pruned"},              {KeySymbol::HolderOutline, "kept, holds merged patches"},
      {KeySymbol::Lines, "to the final holder (opacity = share)"},
  };
  return items;
}

double KeyItemWidth(cairo_t* cr, const KeyItem& item) { return kSymbolSize + 6.0 + TextWidth(cr, item.label); }

// Row of each key item when flowed into `width` pixels.
std::vector<int> FlowKeyItems(cairo_t* cr, double width) {
  std::vector<int> rows;
  int row = 0;
  double x = 0.0;
  for (const KeyItem& item : KeyItems()) {
    const double w = KeyItemWidth(cr, item);
    if (x > 0.0 && x + w > width) {
      ++row;
      x = 0.0;
    }
    rows.push_back(row);
    x += w + kKeySpacing;
  }
  return rows;
}

struct Legend {
  std::vector<std::string> text_lines;
  std::vector<int> key_rows;
  int height = 0;
};

Legend LayoutLegend(const std::vector<PatchFate>& fates, const ReductionTrace& trace, int width) {
  SurfacePtr scratch = MakeSurface(1, 1);
  ContextPtr cr(cairo_create(scratch.get()), cairo_destroy);
  SetFont(cr.get());
  const double text_width = width - 2 * kMargin;
  Legend legend;
  for (const std::string& text : {FateCountsText(fates), ReducingLayersText(trace)}) {
    for (std::string& line : WrapText(cr.get(), text, text_width)) legend.text_lines.push_back(std::move(line));
  }
  legend.key_rows = FlowKeyItems(cr.get(), text_width);
  const int rows = static_cast<int>(legend.text_lines.size()) + legend.key_rows.back() + 1;
  legend.height = static_cast<int>(std::ceil(2 * kMargin + rows * kLineHeight));
  return legend;
}

void DrawImage(cairo_t* cr, const ImageU8& image, int side) {
  SurfacePtr src = MakeSurface(image.width, image.height);
  cairo_surface_flush(src.get());
  unsigned char* data = cairo_image_surface_get_data(src.get());
  const int stride = cairo_image_surface_get_stride(src.get());
  for (int y = 0; y < image.height; ++y) {
    auto* row = reinterpret_cast<uint32_t*>(data + static_cast<size_t>(y) * stride);
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = image.pixel(y, x);
      row[x] = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[2]};
    }
  }
  cairo_surface_mark_dirty(src.get());
  cairo_save(cr);
  cairo_scale(cr, static_cast<double>(side) / image.width, static_cast<double>(side) / image.height);
  cairo_set_source_surface(cr, src.get(), 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
  // PAD keeps the border cells their own colour instead of fading into black.
  cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
  cairo_rectangle(cr, 0, 0, image.width, image.height);
  cairo_fill(cr);
  cairo_restore(cr);
}

struct Geometry {
  int grid;
  double cell;
  double stroke;  // marks and outlines
  double line;    // fate lines

  double CentreX(int c) const { return (c % grid + 0.5) * cell; }
  double CentreY(int c) const { return (c / grid + 0.5) * cell; }
};

void DrawTints(cairo_t* cr, const std::vector<PatchFate>& fates, const Geometry& g) {
  for (size_t c = 0; c < fates.size(); ++c) {
    if (fates[c].kind == PatchFateKind::Kept) continue;
    SetColour(cr, fates[c].site == ReductionSite::Llm ? kLlmTint : kVisionTint, kTintAlpha);
    cairo_rectangle(cr, (c % g.grid) * g.cell, (c / g.grid) * g.cell, g.cell, g.cell);
    cairo_fill(cr);
  }
}

void DrawGrid(cairo_t* cr, const Geometry& g) {
  cairo_set_source_rgba(cr, 1.0, 1.0, 1.0, 0.35);
  cairo_set_line_width(cr, 1.0);
  const double side = g.grid * g.cell;
  for (int i = 0; i <= g.grid; ++i) {
    const double at = std::min(i * g.cell, side - 1.0) + 0.5;  // on pixel centres for a crisp line
    cairo_move_to(cr, at, 0);
    cairo_line_to(cr, at, side);
    cairo_move_to(cr, 0, at);
    cairo_line_to(cr, side, at);
  }
  cairo_stroke(cr);
}

void DrawHolderOutlines(cairo_t* cr, const std::vector<PatchFate>& fates, const Geometry& g) {
  std::vector<bool> holder(fates.size(), false);
  for (const PatchFate& f : fates) {
    if (f.kind == PatchFateKind::Merged && f.final_cell >= 0 && f.final_survives) holder[f.final_cell] = true;
  }
  SetColour(cr, kHolderOutline);
  cairo_set_line_width(cr, g.stroke);
  for (size_t c = 0; c < holder.size(); ++c) {
    if (!holder[c]) continue;
    const double inset = g.stroke / 2 + 1.0;
    cairo_rectangle(cr, (c % g.grid) * g.cell + inset, (c / g.grid) * g.cell + inset, g.cell - 2 * inset,
                    g.cell - 2 * inset);
  }
  cairo_stroke(cr);
}

void DrawCross(cairo_t* cr, double cx, double cy, double half) {
  cairo_move_to(cr, cx - half, cy - half);
  cairo_line_to(cr, cx + half, cy + half);
  cairo_move_to(cr, cx + half, cy - half);
  cairo_line_to(cr, cx - half, cy + half);
}

void DrawPrunedMarks(cairo_t* cr, const std::vector<PatchFate>& fates, const Geometry& g) {
  SetColour(cr, kPrunedMark);
  cairo_set_line_width(cr, g.stroke);
  for (size_t c = 0; c < fates.size(); ++c) {
    if (fates[c].kind == PatchFateKind::Pruned) DrawCross(cr, g.CentreX(c), g.CentreY(c), g.cell * 0.25);
  }
  cairo_stroke(cr);
}

void DrawArrow(cairo_t* cr, double x0, double y0, double x1, double y1, double width) {
  const double len = std::hypot(x1 - x0, y1 - y0);
  if (len < 1e-6) return;
  const double ux = (x1 - x0) / len, uy = (y1 - y0) / len;
  const double head = std::min(std::max(width * 3.5, 5.0), len * 0.5);
  cairo_set_line_width(cr, width);
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1 - ux * head * 0.8, y1 - uy * head * 0.8);
  cairo_stroke(cr);
  cairo_move_to(cr, x1, y1);
  cairo_line_to(cr, x1 - ux * head - uy * head * 0.45, y1 - uy * head + ux * head * 0.45);
  cairo_line_to(cr, x1 - ux * head + uy * head * 0.45, y1 - uy * head - ux * head * 0.45);
  cairo_close_path(cr);
  cairo_fill(cr);
  cairo_arc(cr, x0, y0, width * 1.2, 0, 2 * std::numbers::pi);  // marks which end is the source
  cairo_fill(cr);
}

void DrawFateLines(cairo_t* cr, const std::vector<PatchFate>& fates, const Geometry& g) {
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (size_t c = 0; c < fates.size(); ++c) {
    const PatchFate& f = fates[c];
    if (f.kind != PatchFateKind::Merged || f.final_cell < 0) continue;
    // A floor keeps low-share lines visible; the rest of the opacity follows the share.
    const double opacity = 0.2 + 0.8 * std::clamp(static_cast<double>(f.share), 0.0, 1.0);
    SetColour(cr, f.site == ReductionSite::Llm ? kLlmLine : kVisionLine, opacity);
    DrawArrow(cr, g.CentreX(c), g.CentreY(c), g.CentreX(f.final_cell), g.CentreY(f.final_cell), g.line);
  }
}

void DrawKeySymbol(cairo_t* cr, KeySymbol symbol, double x, double y) {
  const double s = kSymbolSize;
  switch (symbol) {
    case KeySymbol::VisionTint:
    case KeySymbol::LlmTint:
      cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);  // a mid-grey "patch" under the tint
      cairo_rectangle(cr, x, y, s, s);
      cairo_fill(cr);
      SetColour(cr, symbol == KeySymbol::VisionTint ? kVisionTint : kLlmTint, kTintAlpha);
      cairo_rectangle(cr, x, y, s, s);
      cairo_fill(cr);
      break;
    case KeySymbol::PrunedMark:
      SetColour(cr, kPrunedMark);
      cairo_set_line_width(cr, 2.0);
      DrawCross(cr, x + s / 2, y + s / 2, s / 2 - 1);
      cairo_stroke(cr);
      break;
    case KeySymbol::HolderOutline:
      SetColour(cr, kHolderOutline);
      cairo_set_line_width(cr, 2.0);
      cairo_rectangle(cr, x + 1, y + 1, s - 2, s - 2);
      cairo_stroke(cr);
      break;
    case KeySymbol::Lines:
      SetColour(cr, kVisionLine);
      DrawArrow(cr, x + 1, y + s * 0.25, x + s, y + s * 0.25, 1.5);
      SetColour(cr, kLlmLine);
      DrawArrow(cr, x + 1, y + s * 0.75, x + s, y + s * 0.75, 1.5);
      break;
  }
}

void DrawLegend(cairo_t* cr, const Legend& legend, int top, int width) {
  cairo_set_source_rgb(cr, 1.0, 1.0, 1.0);
  cairo_rectangle(cr, 0, top, width, legend.height);
  cairo_fill(cr);
  SetFont(cr);
  double baseline = top + kMargin + kFontSize;
  for (const std::string& line : legend.text_lines) {
    SetColour(cr, kText);
    cairo_move_to(cr, kMargin, baseline);
    cairo_show_text(cr, line.c_str());
    baseline += kLineHeight;
  }
  // The key sits on a dark band so the bright symbols read as they do over the image.
  const int key_rows = legend.key_rows.back() + 1;
  cairo_set_source_rgb(cr, 0.22, 0.22, 0.22);
  cairo_rectangle(cr, 0, baseline - kFontSize - 3, width, key_rows * kLineHeight + 2);
  cairo_fill(cr);
  const std::vector<KeyItem>& items = KeyItems();
  double x = kMargin;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0 && legend.key_rows[i] != legend.key_rows[i - 1]) {
      x = kMargin;
      baseline += kLineHeight;
    }
    DrawKeySymbol(cr, items[i].symbol, x, baseline - kSymbolSize + 1);
    cairo_set_source_rgb(cr, 0.95, 0.95, 0.95);
    cairo_move_to(cr, x + kSymbolSize + 6.0, baseline);
    cairo_show_text(cr, items[i].label.c_str());
    x += KeyItemWidth(cr, items[i]) + kKeySpacing;
  }
}

ImageU8 SurfaceToImage(cairo_surface_t* surface) {
  cairo_surface_flush(surface);
  ImageU8 out;
  out.width = cairo_image_surface_get_width(surface);
  out.height = cairo_image_surface_get_height(surface);
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  const unsigned char* data = cairo_image_surface_get_data(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  for (int y = 0; y < out.height; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride);
    for (int x = 0; x < out.width; ++x) {
      uint8_t* p = out.pixel(y, x);
      p[0] = static_cast<uint8_t>(row[x] >> 16);
      p[1] = static_cast<uint8_t>(row[x] >> 8);
      p[2] = static_cast<uint8_t>(row[x]);
    }
  }
  return out;
}

}  // namespace

void WriteReductionViz(const std::string& png_path, const ImageU8& image, const ReductionTrace& trace) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    Fail("cannot draw reduction picture '", png_path, "': the image is empty or malformed (", image.width, "x",
         image.height, " with ", image.rgb.size(), " bytes)");
  }
  if (trace.grid <= 0) Fail("cannot draw reduction picture '", png_path, "': the trace has no patch grid");
  const std::vector<PatchFate> fates = FinalFates(trace);

  const int grid = trace.grid;
  const int cell = std::max(4, (kTargetSide + grid / 2) / grid);
  const int side = grid * cell;
  const Geometry geometry{grid, static_cast<double>(cell), std::clamp(cell * 0.07, 1.5, 3.0),
                          std::clamp(cell * 0.06, 1.0, 4.0)};
  const Legend legend = LayoutLegend(fates, trace, side);

  SurfacePtr surface = MakeSurface(side, side + legend.height);
  ContextPtr cr(cairo_create(surface.get()), cairo_destroy);
  DrawImage(cr.get(), image, side);
  DrawTints(cr.get(), fates, geometry);
  DrawGrid(cr.get(), geometry);
  DrawHolderOutlines(cr.get(), fates, geometry);
  DrawPrunedMarks(cr.get(), fates, geometry);
  DrawFateLines(cr.get(), fates, geometry);
  DrawLegend(cr.get(), legend, side, side);
  if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) {
    Fail("cannot draw reduction picture '", png_path, "': ", cairo_status_to_string(cairo_status(cr.get())));
  }
  WritePng(SurfaceToImage(surface.get()), png_path);
}

}  // namespace ficoco
