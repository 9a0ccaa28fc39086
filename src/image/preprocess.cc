// LLaVA-1.5 image preprocessing: expand2square, Pillow-exact bicubic resize,
// transformers' centre crop, rescale and normalise.
//
// The resize follows the algorithm Pillow documents for its resampling filters
// (a convolution whose support widens with the downscale factor, computed as two
// separable 8-bit passes with fixed-point weights), so that the uint8 result is
// bit-identical to Image.resize(size, Image.BICUBIC).
#include "image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/error.h"

namespace ficoco {
namespace {

// Fixed-point fraction bits of the weights: 32 bits minus 8 for the pixel value
// minus 2 of headroom for the negative lobes / rounding.
constexpr int kPrecisionBits = 32 - 8 - 2;

// Keys' cubic convolution kernel with a = -0.5 (support 2).
double BicubicKernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}
constexpr double kBicubicSupport = 2.0;

// Weights of one 1-D pass: output sample i reads inputs [first[i], first[i] + count[i])
// with the fixed-point weights weights[i * ksize + j].
struct PassWeights {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;
};

// Mapping of the output range onto the input interval [in0, in1] (the whole
// image here), as Pillow's coefficient precomputation does.
PassWeights ComputeWeights(int in_size, double in0, double in1, int out_size) {
  PassWeights p;
  const double scale = (in1 - in0) / out_size;
  const double filter_scale = std::max(scale, 1.0);  // widen only when shrinking (antialias)
  const double support = kBicubicSupport * filter_scale;
  p.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  p.first.resize(static_cast<size_t>(out_size));
  p.count.resize(static_cast<size_t>(out_size));
  p.weights.assign(static_cast<size_t>(out_size) * p.ksize, 0);
  std::vector<double> w(static_cast<size_t>(p.ksize));
  const double inv_filter_scale = 1.0 / filter_scale;
  for (int i = 0; i < out_size; ++i) {
    const double center = in0 + (i + 0.5) * scale;
    // Window bounds rounded half-up (C truncation of x + 0.5), then clamped.
    int lo = static_cast<int>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double total = 0.0;
    for (int j = 0; j < n; ++j) {
      const double v = BicubicKernel((j + lo - center + 0.5) * inv_filter_scale);
      w[static_cast<size_t>(j)] = v;
      total += v;
    }
    int32_t* k = p.weights.data() + static_cast<size_t>(i) * p.ksize;
    for (int j = 0; j < n; ++j) {
      double v = w[static_cast<size_t>(j)];
      if (total != 0.0) v /= total;
      // Round half away from zero to the fixed-point grid.
      const double f = v * static_cast<double>(1 << kPrecisionBits);
      k[j] = static_cast<int32_t>(v < 0 ? f - 0.5 : f + 0.5);
    }
    p.first[static_cast<size_t>(i)] = lo;
    p.count[static_cast<size_t>(i)] = n;
  }
  return p;
}

// Fixed-point accumulator to uint8: floor division by 2^bits, clamped.
inline uint8_t ClipToU8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

constexpr int64_t kRoundHalf = int64_t{1} << (kPrecisionBits - 1);

// Horizontal pass over input rows [row0, row0 + rows).
ImageU8 HorizontalPass(const ImageU8& in, int out_width, int row0, int rows, const PassWeights& p) {
  ImageU8 out;
  out.width = out_width;
  out.height = rows;
  out.rgb.resize(static_cast<size_t>(out_width) * rows * 3);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.pixel(row0 + y, 0);
    uint8_t* dst = out.pixel(y, 0);
    for (int x = 0; x < out_width; ++x) {
      const int lo = p.first[static_cast<size_t>(x)];
      const int n = p.count[static_cast<size_t>(x)];
      const int32_t* k = p.weights.data() + static_cast<size_t>(x) * p.ksize;
      int64_t s0 = kRoundHalf, s1 = kRoundHalf, s2 = kRoundHalf;
      const uint8_t* s = src + static_cast<size_t>(lo) * 3;
      for (int j = 0; j < n; ++j, s += 3) {
        s0 += int64_t{s[0]} * k[j];
        s1 += int64_t{s[1]} * k[j];
        s2 += int64_t{s[2]} * k[j];
      }
      dst[x * 3 + 0] = ClipToU8(s0);
      dst[x * 3 + 1] = ClipToU8(s1);
      dst[x * 3 + 2] = ClipToU8(s2);
    }
  }
  return out;
}

// Vertical pass; `shift` is subtracted from the row bounds (rows already dropped).
ImageU8 VerticalPass(const ImageU8& in, int out_height, int shift, const PassWeights& p) {
  ImageU8 out;
  out.width = in.width;
  out.height = out_height;
  out.rgb.resize(static_cast<size_t>(in.width) * out_height * 3);
  const size_t row_stride = static_cast<size_t>(in.width) * 3;
  std::vector<int64_t> acc(row_stride);
  for (int y = 0; y < out_height; ++y) {
    const int lo = p.first[static_cast<size_t>(y)] - shift;
    const int n = p.count[static_cast<size_t>(y)];
    const int32_t* k = p.weights.data() + static_cast<size_t>(y) * p.ksize;
    std::fill(acc.begin(), acc.end(), kRoundHalf);
    for (int j = 0; j < n; ++j) {
      const uint8_t* src = in.pixel(lo + j, 0);
      const int64_t kj = k[j];
      for (size_t i = 0; i < row_stride; ++i) acc[i] += int64_t{src[i]} * kj;
    }
    uint8_t* dst = out.pixel(y, 0);
    for (size_t i = 0; i < row_stride; ++i) dst[i] = ClipToU8(acc[i]);
  }
  return out;
}

void CheckImage(const ImageU8& image, const char* where) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    Fail(where, ": invalid image ", image.width, "x", image.height, " with ", image.rgb.size(), " bytes");
  }
}

// Python's floor division for possibly negative numerators (positive divisor).
int FloorDiv(int a, int b) {
  int q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}

}  // namespace

ImageU8 ExpandToSquare(const ImageU8& image, std::array<uint8_t, 3> fill) {
  CheckImage(image, "ExpandToSquare");
  if (image.width == image.height) return image;
  const int side = std::max(image.width, image.height);
  ImageU8 out;
  out.width = out.height = side;
  out.rgb.resize(static_cast<size_t>(side) * side * 3);
  for (size_t i = 0; i < out.rgb.size(); i += 3) {
    out.rgb[i] = fill[0];
    out.rgb[i + 1] = fill[1];
    out.rgb[i + 2] = fill[2];
  }
  const int ox = (side - image.width) / 2, oy = (side - image.height) / 2;
  const size_t row_bytes = static_cast<size_t>(image.width) * 3;
  for (int y = 0; y < image.height; ++y) {
    std::copy_n(image.pixel(y, 0), row_bytes, out.pixel(oy + y, ox));
  }
  return out;
}

std::array<uint8_t, 3> MeanFillColour(const PreprocessorConfig& cfg) {
  std::array<uint8_t, 3> c{};
  for (int i = 0; i < 3; ++i) {
    // Python's int(x * 255) truncates toward zero.
    const double v = std::trunc(static_cast<double>(cfg.image_mean[static_cast<size_t>(i)]) * 255.0);
    c[static_cast<size_t>(i)] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
  }
  return c;
}

ImageU8 ResizeBicubic(const ImageU8& image, int out_width, int out_height) {
  CheckImage(image, "ResizeBicubic");
  if (out_width <= 0 || out_height <= 0) {
    Fail("ResizeBicubic: invalid output size ", out_width, "x", out_height);
  }
  // The source box is the whole image [0, w] x [0, h]; a pass whose size does not
  // change is skipped (an unchanged size in both directions is a plain copy).
  const bool need_h = out_width != image.width;
  const bool need_v = out_height != image.height;
  if (!need_h && !need_v) return image;

  const PassWeights ph = ComputeWeights(image.width, 0.0, image.width, out_width);
  const PassWeights pv = ComputeWeights(image.height, 0.0, image.height, out_height);
  // Only the input rows the vertical pass reads need the horizontal pass.
  const int row_first = pv.first.front();
  const int row_last = pv.first.back() + pv.count.back();

  if (!need_v) return HorizontalPass(image, out_width, 0, image.height, ph);
  if (need_h) {
    ImageU8 tmp = HorizontalPass(image, out_width, row_first, row_last - row_first, ph);
    return VerticalPass(tmp, out_height, row_first, pv);
  }
  return VerticalPass(image, out_height, 0, pv);
}

void ShortestEdgeSize(int width, int height, int shortest_edge, int* out_width, int* out_height) {
  if (width <= 0 || height <= 0 || shortest_edge <= 0) {
    Fail("ShortestEdgeSize: invalid sizes ", width, "x", height, " -> shortest edge ", shortest_edge);
  }
  const int short_side = std::min(width, height), long_side = std::max(width, height);
  // int(size * long / short): Python true division (correctly rounded), truncated.
  const double q = static_cast<double>(int64_t{shortest_edge} * long_side) / static_cast<double>(short_side);
  const int new_long = static_cast<int>(q);
  if (width <= height) {
    *out_width = shortest_edge;
    *out_height = new_long;
  } else {
    *out_width = new_long;
    *out_height = shortest_edge;
  }
}

ImageU8 CenterCrop(const ImageU8& image, int crop_height, int crop_width) {
  CheckImage(image, "CenterCrop");
  if (crop_height <= 0 || crop_width <= 0) Fail("CenterCrop: invalid crop size ", crop_height, "x", crop_width);
  const int h = image.height, w = image.width;
  int top = FloorDiv(h - crop_height, 2), left = FloorDiv(w - crop_width, 2);
  if (top >= 0 && left >= 0 && top + crop_height <= h && left + crop_width <= w) {
    ImageU8 out;
    out.width = crop_width;
    out.height = crop_height;
    out.rgb.resize(static_cast<size_t>(crop_width) * crop_height * 3);
    for (int y = 0; y < crop_height; ++y) {
      std::copy_n(image.pixel(top + y, left), static_cast<size_t>(crop_width) * 3, out.pixel(y, 0));
    }
    return out;
  }
  // Too small in some direction: transformers pastes the image on a zero canvas of
  // max(crop, size) per side at offset ceil((new - old) / 2), then crops there.
  const int nh = std::max(crop_height, h), nw = std::max(crop_width, w);
  const int top_pad = (nh - h + 1) / 2, left_pad = (nw - w + 1) / 2;
  top += top_pad;
  left += left_pad;
  const int y0 = std::max(0, top), y1 = std::min(nh, top + crop_height);
  const int x0 = std::max(0, left), x1 = std::min(nw, left + crop_width);
  ImageU8 out;
  out.width = x1 - x0;
  out.height = y1 - y0;
  out.rgb.assign(static_cast<size_t>(out.width) * out.height * 3, 0);
  for (int y = y0; y < y1; ++y) {
    const int sy = y - top_pad;
    if (sy < 0 || sy >= h) continue;
    for (int x = x0; x < x1; ++x) {
      const int sx = x - left_pad;
      if (sx < 0 || sx >= w) continue;
      std::copy_n(image.pixel(sy, sx), 3, out.pixel(y - y0, x - x0));
    }
  }
  return out;
}

PixelValues RescaleAndNormalize(const ImageU8& image, const PreprocessorConfig& cfg) {
  CheckImage(image, "RescaleAndNormalize");
  PixelValues pv;
  pv.height = image.height;
  pv.width = image.width;
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  pv.chw.resize(plane * 3);
  // 256 possible inputs per channel: tabulate (identical arithmetic per value).
  for (int c = 0; c < 3; ++c) {
    float table[256];
    const float mean = cfg.image_mean[static_cast<size_t>(c)];
    const float std_dev = cfg.image_std[static_cast<size_t>(c)];
    for (int v = 0; v < 256; ++v) {
      // numpy: uint8 -> float64, * rescale_factor (float64), -> float32.
      float x = cfg.do_rescale ? static_cast<float>(static_cast<double>(v) * cfg.rescale_factor)
                               : static_cast<float>(v);
      // numpy: (x - mean) / std with float32 operands.
      if (cfg.do_normalize) {
        volatile float d = x - mean;  // keep the two float32 roundings separate
        x = d / std_dev;
      }
      table[v] = x;
    }
    float* dst = pv.chw.data() + c * plane;
    for (size_t i = 0; i < plane; ++i) dst[i] = table[image.rgb[i * 3 + static_cast<size_t>(c)]];
  }
  return pv;
}

PreprocessedImage PreprocessLlava15(const ImageU8& image, const PreprocessorConfig& cfg) {
  CheckImage(image, "PreprocessLlava15");
  if (cfg.resample != 3) Fail("preprocessor: resample ", cfg.resample, " is not supported (only 3 = bicubic)");
  PreprocessedImage out;
  out.padded = ExpandToSquare(image, MeanFillColour(cfg));
  ImageU8 cur = out.padded;
  if (cfg.do_resize) {
    int w = 0, h = 0;
    ShortestEdgeSize(cur.width, cur.height, cfg.shortest_edge, &w, &h);
    cur = ResizeBicubic(cur, w, h);
  }
  if (cfg.do_center_crop) cur = CenterCrop(cur, cfg.crop_height, cfg.crop_width);
  out.pixels = RescaleAndNormalize(cur, cfg);
  out.resized = std::move(cur);
  return out;
}

}  // namespace ficoco
