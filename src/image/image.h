// 8-bit RGB images and decoding from PNG / JPEG files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ficoco {

struct ImageU8 {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // row-major HWC, 3 channels, size = height * width * 3

  uint8_t* pixel(int y, int x) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* pixel(int y, int x) const { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

// Largest side accepted from a file; bigger images are refused before decoding
// (a decompression bomb must not exhaust memory).
constexpr int kMaxImageSide = 16384;

// Decodes a PNG or JPEG (chosen by the file's signature, not its name) to RGB.
// Grey, palette, alpha and 16-bit PNGs are converted as Pillow's convert("RGB")
// does (alpha dropped, 16-bit to 8-bit). Throws Error naming the file for a
// missing/unreadable/corrupt/truncated file, an unknown format, a zero-sized or
// an absurdly large image.
ImageU8 DecodeImageFile(const std::string& path);
ImageU8 DecodeImageBytes(const uint8_t* bytes, size_t size, const std::string& origin);

// Lossless PNG encoding (for --viz pictures and tests).
void WritePng(const ImageU8& image, const std::string& path);

}  // namespace ficoco
