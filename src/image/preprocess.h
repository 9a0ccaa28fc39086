// LLaVA-1.5's image preprocessing, reproducing Pillow + CLIPImageProcessor bit for bit:
// expand2square with the CLIP-mean colour, Pillow bicubic resize of the shortest
// edge, centre crop, rescale and normalise to CHW float32.
#pragma once
#include <array>
#include <vector>

#include "image/image.h"
#include "model/config.h"

namespace ficoco {

// Pastes `image` centred on a square canvas of side max(w, h) filled with `fill`
// (offsets (side - w) / 2, (side - h) / 2, as LLaVA's expand2square).
ImageU8 ExpandToSquare(const ImageU8& image, std::array<uint8_t, 3> fill);
// LLaVA-1.5's fill colour: int(mean * 255) per channel = (122, 116, 104) for CLIP.
std::array<uint8_t, 3> MeanFillColour(const PreprocessorConfig& cfg);

// Pillow's Image.resize(..., BICUBIC) exactly: antialiased separable convolution
// (support widened by the downscale factor, a = -0.5), horizontal pass then
// vertical pass, fixed-point coefficients, uint8 rounding and clipping between.
ImageU8 ResizeBicubic(const ImageU8& image, int out_width, int out_height);
// Output size of CLIPImageProcessor's shortest-edge resize.
void ShortestEdgeSize(int width, int height, int shortest_edge, int* out_width, int* out_height);
// Crop offsets (h - ch) / 2, (w - cw) / 2; pads with zeros if the image is smaller (as transformers).
ImageU8 CenterCrop(const ImageU8& image, int crop_height, int crop_width);

struct PixelValues {
  int height = 0;
  int width = 0;
  std::vector<float> chw;  // [3, height, width]
};
// x * rescale_factor (in double, then float), then (x - mean) / std in float.
PixelValues RescaleAndNormalize(const ImageU8& image, const PreprocessorConfig& cfg);

struct PreprocessedImage {
  ImageU8 padded;   // after ExpandToSquare
  ImageU8 resized;  // after resize and centre crop
  PixelValues pixels;
};
// The whole LLaVA-1.5 route (pad to square, resize, crop, normalise).
PreprocessedImage PreprocessLlava15(const ImageU8& image, const PreprocessorConfig& cfg);

}  // namespace ficoco
