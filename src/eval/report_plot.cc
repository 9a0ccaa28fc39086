// The score-vs-TFLOPs chart of `ficoco eval-report`, drawn with cairo.
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "base/error.h"
#include "eval/report.h"

namespace ficoco::eval {
namespace {

constexpr int kWidth = 800, kHeight = 520;
constexpr double kLeft = 70, kRight = 190, kTop = 40, kBottom = 60;  // plot area margins (legend on the right)

struct Colour {
  double r, g, b;
};
// Distinct hues that stay readable on white.
constexpr Colour kPalette[] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17}, {1.00, 0.50, 0.05},
                               {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50},
                               {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81}};

// Tick step of about `target` ticks over `span`: 1, 2 or 5 times a power of ten.
double NiceStep(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

std::string TickLabel(double v, double step) {
  const int digits = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step)));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void Text(cairo_t* cr, double x, double y, const std::string& s, double align_x, double align_y) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align_x * e.x_advance, y + align_y * e.height);
  cairo_show_text(cr, s.c_str());
}

}  // namespace

void PlotScoreVsTflops(const std::string& png_path, const std::string& title, const std::string& y_label,
                       const std::vector<PlotSeries>& series) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const PlotSeries& s : series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!std::isfinite(x0) || !std::isfinite(y0)) Fail("plot '", png_path, "': no points to draw");
  // Pad the ranges (a single value gets a visible span around it).
  const double xs = x1 > x0 ? x1 - x0 : std::max(std::abs(x0), 1e-6);
  const double ys = y1 > y0 ? y1 - y0 : 10.0;  // scores are percentages
  const bool percent = y0 >= 0 && y1 <= 100;
  x0 -= 0.08 * xs, x1 += 0.08 * xs, y0 -= 0.1 * ys, y1 += 0.1 * ys;
  if (percent) y0 = std::max(y0, 0.0), y1 = std::min(y1, 100.0);  // no axis below 0 % or above 100 %

  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, kWidth, kHeight), cairo_surface_destroy);
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> ctx(cairo_create(surface.get()), cairo_destroy);
  cairo_t* cr = ctx.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);

  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return kTop + ph - (y - y0) / (y1 - y0) * ph; };

  // Grid and ticks.
  cairo_set_font_size(cr, 12);
  cairo_set_line_width(cr, 1);
  const double xstep = NiceStep(x1 - x0, 6), ystep = NiceStep(y1 - y0, 6);
  for (double x = std::ceil(x0 / xstep) * xstep; x <= x1; x += xstep) {
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, px(x), kTop), cairo_line_to(cr, px(x), kTop + ph), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    Text(cr, px(x), kTop + ph + 8, TickLabel(x, xstep), 0.5, 1.0);
  }
  for (double y = std::ceil(y0 / ystep) * ystep; y <= y1; y += ystep) {
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, kLeft, py(y)), cairo_line_to(cr, kLeft + pw, py(y)), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    Text(cr, kLeft - 6, py(y), TickLabel(y, ystep), 1.0, 0.5);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, kLeft, kTop, pw, ph);
  cairo_stroke(cr);

  // Labels.
  cairo_set_font_size(cr, 14);
  Text(cr, kLeft + pw / 2, kHeight - 18, "LLM prefill TFLOPs (mean per question)", 0.5, 0);
  Text(cr, kWidth / 2.0, 22, title, 0.5, 0);
  cairo_save(cr);
  cairo_translate(cr, 18, kTop + ph / 2);
  cairo_rotate(cr, -M_PI / 2);
  Text(cr, 0, 0, y_label, 0.5, 0.5);
  cairo_restore(cr);

  // Series: lines through the points in TFLOPs order, a marker at each point.
  cairo_set_font_size(cr, 13);
  for (size_t i = 0; i < series.size(); ++i) {
    const Colour& c = kPalette[i % std::size(kPalette)];
    // Past the palette's length, colours repeat with a dashed line and square markers, so
    // every series up to twice the palette stays distinguishable (a study has 16 methods).
    const bool second_style = (i / std::size(kPalette)) % 2 == 1;
    const double series_dash[] = {5.0, 3.0};
    auto marker = [&](double x, double y) {
      if (second_style)
        cairo_rectangle(cr, x - 4.0, y - 4.0, 8.0, 8.0);
      else
        cairo_arc(cr, x, y, 4.5, 0, 2 * M_PI);
      cairo_fill(cr);
    };
    std::vector<std::pair<double, double>> pts = series[i].points;
    std::sort(pts.begin(), pts.end());
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2);
    if (second_style) cairo_set_dash(cr, series_dash, 2, 0);
    for (size_t k = 0; k < pts.size(); ++k) {
      if (k == 0)
        cairo_move_to(cr, px(pts[k].first), py(pts[k].second));
      else
        cairo_line_to(cr, px(pts[k].first), py(pts[k].second));
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    if (series[i].name == "none" && pts.size() == 1) {
      // The unreduced model is the reference every method is read against: a dashed level.
      const double dash[] = {6.0, 4.0};
      cairo_set_dash(cr, dash, 2, 0);
      cairo_set_line_width(cr, 1);
      cairo_move_to(cr, kLeft, py(pts[0].second)), cairo_line_to(cr, kLeft + pw, py(pts[0].second)), cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      cairo_set_line_width(cr, 2);
    }
    for (auto [x, y] : pts) marker(px(x), py(y));
    // Legend entry.
    const double ly = kTop + 14 + 22.0 * i;
    marker(kLeft + pw + 22, ly);
    if (second_style) cairo_set_dash(cr, series_dash, 2, 0);
    cairo_move_to(cr, kLeft + pw + 12, ly), cairo_line_to(cr, kLeft + pw + 32, ly), cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    Text(cr, kLeft + pw + 40, ly, series[i].name, 0, 0.4);
  }

  cairo_surface_flush(surface.get());
  const cairo_status_t st = cairo_surface_write_to_png(surface.get(), png_path.c_str());
  if (st != CAIRO_STATUS_SUCCESS) Fail("cannot write '", png_path, "': ", cairo_status_to_string(st));
}

}  // namespace ficoco::eval
