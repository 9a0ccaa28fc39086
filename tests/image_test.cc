// Image decoding (PNG/JPEG) and LLaVA-1.5 preprocessing against the llava-tiny
// golden tensors (computed with Pillow + transformers), plus hand-made cases and
// malformed files.
#include <gtest/gtest.h>
#include <png.h>
// jpeglib.h needs size_t and FILE declared first.
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace ficoco {
namespace {

using test::LlavaTinyDir;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

ImageU8 GoldenImage(const SafetensorsFile& f, const std::string& name) {
  const TensorView* t = f.Find(name);
  if (t == nullptr) throw Error("golden tensor missing: " + name + " in " + f.path());
  if (t->dtype != DType::U8 || t->shape.size() != 3 || t->shape[2] != 3) {
    throw Error("golden tensor " + name + " is not U8 [H,W,3]: " + t->ShapeString());
  }
  ImageU8 img;
  img.height = static_cast<int>(t->shape[0]);
  img.width = static_cast<int>(t->shape[1]);
  const auto* p = static_cast<const uint8_t*>(t->data);
  img.rgb.assign(p, p + t->numel());
  return img;
}

struct Diff {
  int max = 0;
  double mean = 0;
  size_t mismatches = 0;
};

Diff Compare(const ImageU8& a, const ImageU8& b) {
  Diff d;
  if (a.rgb.size() != b.rgb.size()) {
    d.max = 256;
    return d;
  }
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    const int v = std::abs(int{a.rgb[i]} - int{b.rgb[i]});
    sum += v;
    if (v > d.max) d.max = v;
    if (v != 0) ++d.mismatches;
  }
  d.mean = a.rgb.empty() ? 0.0 : sum / static_cast<double>(a.rgb.size());
  return d;
}

#define EXPECT_SAME_IMAGE(actual, expected)                                                         \
  do {                                                                                             \
    const ImageU8& a_ = (actual);                                                                  \
    const ImageU8& e_ = (expected);                                                                \
    ASSERT_EQ(a_.width, e_.width);                                                                 \
    ASSERT_EQ(a_.height, e_.height);                                                               \
    const Diff d_ = Compare(a_, e_);                                                               \
    EXPECT_EQ(d_.mismatches, 0u) << "max diff " << d_.max << ", mean diff " << d_.mean;            \
  } while (0)

ImageU8 MakeImage(int w, int h, uint32_t seed) {
  ImageU8 img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  std::mt19937 rng(seed);
  for (auto& v : img.rgb) v = static_cast<uint8_t>(rng() & 0xff);
  return img;
}

ImageU8 ConstantImage(int w, int h, std::array<uint8_t, 3> c) {
  ImageU8 img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = c[0];
    img.rgb[i + 1] = c[1];
    img.rgb[i + 2] = c[2];
  }
  return img;
}

PreprocessorConfig TinyConfig() {
  // llava-tiny/preprocessor_config.json: CLIP-336 values with size/crop 56.
  PreprocessorConfig cfg;
  cfg.shortest_edge = 56;
  cfg.crop_height = cfg.crop_width = 56;
  cfg.rescale_factor = 0.00392156862745098;
  return cfg;
}

std::string Bytes(const std::string& path) { return test::ReadFile(path); }

uint32_t Crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

void PutBE32(std::string& s, size_t at, uint32_t v) {
  s[at] = static_cast<char>(v >> 24);
  s[at + 1] = static_cast<char>(v >> 16);
  s[at + 2] = static_cast<char>(v >> 8);
  s[at + 3] = static_cast<char>(v);
}

// A real PNG whose IHDR claims another size (CRC recomputed, so only the size is wrong).
std::string PngWithHeaderSize(const std::string& png, uint32_t w, uint32_t h) {
  std::string s = png;
  PutBE32(s, 16, w);
  PutBE32(s, 20, h);
  PutBE32(s, 29, Crc32(reinterpret_cast<const uint8_t*>(s.data()) + 12, 17));
  return s;
}

ImageU8 DecodeString(const std::string& bytes, const std::string& origin) {
  return DecodeImageBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), origin);
}

// Expects DecodeImageFile(path) to throw an Error whose text names the file and
// contains every one of `needles`.
void ExpectDecodeError(const std::string& path, const std::vector<std::string>& needles) {
  try {
    DecodeImageFile(path);
    ADD_FAILURE() << "decoding " << path << " did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
    std::printf("  [error text] %s\n", msg.c_str());
  }
}

// Writes a PNG of any colour type / depth with libpng (test-side encoder) from
// packed rows, so the decoder's conversions can be checked on every layout.
struct PngSpec {
  int width = 0, height = 0, bit_depth = 8, color_type = PNG_COLOR_TYPE_RGB;
  bool interlaced = false;
  std::vector<png_color> palette;
  std::vector<uint8_t> trns;  // palette alpha entries
};

PngSpec Spec(int w, int h, int depth, int color_type) {
  PngSpec s;
  s.width = w;
  s.height = h;
  s.bit_depth = depth;
  s.color_type = color_type;
  return s;
}

struct EncodeCtx {
  std::string out;
  jmp_buf jump;
};

void EncodeWrite(png_structp png, png_bytep data, png_size_t n) {
  auto* ctx = static_cast<EncodeCtx*>(png_get_io_ptr(png));
  ctx->out.append(reinterpret_cast<const char*>(data), n);
}
void EncodeFlush(png_structp) {}
void EncodeError(png_structp png, png_const_charp msg) {
  std::fprintf(stderr, "test PNG encoder error: %s\n", msg);
  std::longjmp(static_cast<EncodeCtx*>(png_get_error_ptr(png))->jump, 1);
}

bool EncodeInner(png_structp png, png_infop info, EncodeCtx* ctx, const PngSpec* spec, png_bytepp rows) {
  if (setjmp(ctx->jump)) return false;
  png_set_write_fn(png, ctx, EncodeWrite, EncodeFlush);
  png_set_IHDR(png, info, spec->width, spec->height, spec->bit_depth, spec->color_type,
               spec->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!spec->palette.empty()) {
    png_set_PLTE(png, info, const_cast<png_colorp>(spec->palette.data()), static_cast<int>(spec->palette.size()));
  }
  if (!spec->trns.empty()) {
    png_set_tRNS(png, info, const_cast<png_bytep>(spec->trns.data()), static_cast<int>(spec->trns.size()), nullptr);
  }
  png_write_info(png, info);
  if (spec->interlaced) png_set_interlace_handling(png);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

std::string EncodePng(const PngSpec& spec, std::vector<std::vector<uint8_t>> rows) {
  EncodeCtx ctx;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, EncodeError, nullptr);
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> ptrs;
  for (auto& r : rows) ptrs.push_back(r.data());
  const bool ok = EncodeInner(png, info, &ctx, &spec, ptrs.data());
  png_destroy_write_struct(&png, &info);
  if (!ok) throw Error("test PNG encoder failed");
  return ctx.out;
}


// Encodes an 8-bit JPEG with libjpeg (test-side encoder): components 1 (grey),
// 3 (RGB, stored as YCbCr) or 4 (CMYK, stored as given with an Adobe marker).
struct JpegEncodeErr {
  jpeg_error_mgr pub;
  jmp_buf jump;
};
void JpegEncodeErrorExit(j_common_ptr cinfo) { std::longjmp(reinterpret_cast<JpegEncodeErr*>(cinfo->err)->jump, 1); }

bool JpegEncodeInner(jpeg_compress_struct* c, JpegEncodeErr* err, int w, int h, int comps, const uint8_t* px,
                     unsigned char** buf, unsigned long* size) {
  if (setjmp(err->jump)) return false;
  jpeg_create_compress(c);
  jpeg_mem_dest(c, buf, size);
  c->image_width = static_cast<JDIMENSION>(w);
  c->image_height = static_cast<JDIMENSION>(h);
  c->input_components = comps;
  c->in_color_space = comps == 1 ? JCS_GRAYSCALE : (comps == 3 ? JCS_RGB : JCS_CMYK);
  jpeg_set_defaults(c);
  jpeg_set_quality(c, 98, TRUE);
  jpeg_start_compress(c, TRUE);
  while (c->next_scanline < c->image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(px + static_cast<size_t>(c->next_scanline) * w * comps);
    jpeg_write_scanlines(c, &row, 1);
  }
  jpeg_finish_compress(c);
  return true;
}

std::string EncodeJpeg(int w, int h, int comps, const std::vector<uint8_t>& px) {
  jpeg_compress_struct c{};
  JpegEncodeErr err{};
  c.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = JpegEncodeErrorExit;
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const bool ok = JpegEncodeInner(&c, &err, w, h, comps, px.data(), &buf, &size);
  jpeg_destroy_compress(&c);
  std::string out = ok ? std::string(reinterpret_cast<const char*>(buf), size) : std::string();
  std::free(buf);
  if (!ok) throw Error("test JPEG encoder failed");
  return out;
}

// ---------------------------------------------------------------------------
// Golden cases
// ---------------------------------------------------------------------------

struct GoldenCase {
  const char* name;
  const char* golden;
  const char* png;
};

class ImageGolden : public ::testing::TestWithParam<GoldenCase> {
 protected:
  std::string Dir() { return LlavaTinyDir(); }
  SafetensorsFile Golden() { return SafetensorsFile(Dir() + "/" + GetParam().golden); }
};

TEST_P(ImageGolden, DecodedPngMatchesPillow) {
  SafetensorsFile g = Golden();
  const ImageU8 img = DecodeImageFile(Dir() + "/" + GetParam().png);
  EXPECT_SAME_IMAGE(img, GoldenImage(g, "image.rgb_u8"));
}

TEST_P(ImageGolden, PaddedMatches) {
  SafetensorsFile g = Golden();
  const ImageU8 rgb = GoldenImage(g, "image.rgb_u8");
  const ImageU8 padded = ExpandToSquare(rgb, MeanFillColour(TinyConfig()));
  EXPECT_SAME_IMAGE(padded, GoldenImage(g, "image.padded_u8"));
}

TEST_P(ImageGolden, ResizedMatchesPillowBicubic) {
  SafetensorsFile g = Golden();
  const PreprocessorConfig cfg = TinyConfig();
  const ImageU8 padded = GoldenImage(g, "image.padded_u8");
  int w = 0, h = 0;
  ShortestEdgeSize(padded.width, padded.height, cfg.shortest_edge, &w, &h);
  const ImageU8 resized = CenterCrop(ResizeBicubic(padded, w, h), cfg.crop_height, cfg.crop_width);
  const ImageU8 golden = GoldenImage(g, "image.resized_u8");
  const Diff d = Compare(resized, golden);
  std::printf("  [%s] resized vs Pillow: %zu mismatching bytes, max diff %d\n", GetParam().name, d.mismatches, d.max);
  EXPECT_SAME_IMAGE(resized, golden);
}

TEST_P(ImageGolden, PixelValuesMatchTransformers) {
  SafetensorsFile g = Golden();
  const PreprocessorConfig cfg = TinyConfig();
  const ImageU8 img = DecodeImageFile(Dir() + "/" + GetParam().png);
  const PreprocessedImage pre = PreprocessLlava15(img, cfg);
  EXPECT_SAME_IMAGE(pre.padded, GoldenImage(g, "image.padded_u8"));
  EXPECT_SAME_IMAGE(pre.resized, GoldenImage(g, "image.resized_u8"));
  const std::vector<float> golden = test::GoldenF32(g, "pixel_values");
  ASSERT_EQ(pre.pixels.height, 56);
  ASSERT_EQ(pre.pixels.width, 56);
  ASSERT_EQ(pre.pixels.chw.size(), golden.size());
  const float err = test::MaxAbsDiff(pre.pixels.chw.data(), golden.data(), static_cast<int64_t>(golden.size()));
  size_t differing = 0;
  for (size_t i = 0; i < golden.size(); ++i) differing += pre.pixels.chw[i] != golden[i];
  std::printf("  [%s] pixel_values max abs err %.9g (%zu of %zu values not bit-identical)\n", GetParam().name,
              static_cast<double>(err), differing, golden.size());
  EXPECT_LE(err, 1e-6f);
}

TEST_P(ImageGolden, NoPadRouteMatches) {
  SafetensorsFile g = Golden();
  const PreprocessorConfig cfg = TinyConfig();
  const ImageU8 rgb = GoldenImage(g, "image.rgb_u8");
  int w = 0, h = 0;
  ShortestEdgeSize(rgb.width, rgb.height, cfg.shortest_edge, &w, &h);
  const ImageU8 cropped = CenterCrop(ResizeBicubic(rgb, w, h), cfg.crop_height, cfg.crop_width);
  EXPECT_SAME_IMAGE(cropped, GoldenImage(g, "nopad.resized_cropped_u8"));
  const PixelValues pv = RescaleAndNormalize(cropped, cfg);
  const std::vector<float> golden = test::GoldenF32(g, "nopad.pixel_values");
  ASSERT_EQ(pv.chw.size(), golden.size());
  const float err = test::MaxAbsDiff(pv.chw.data(), golden.data(), static_cast<int64_t>(golden.size()));
  std::printf("  [%s] nopad.pixel_values max abs err %.9g\n", GetParam().name, static_cast<double>(err));
  EXPECT_LE(err, 1e-6f);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ImageGolden,
                         ::testing::Values(GoldenCase{"photo", "golden_photo.safetensors", "images/grace_hopper.png"},
                                           GoldenCase{"synthetic", "golden_synthetic.safetensors",
                                                      "images/synthetic_40x24.png"}),
                         [](const ::testing::TestParamInfo<GoldenCase>& i) { return std::string(i.param.name); });

TEST(ImageDecode, JpegCloseToPillowDecode) {
  const ImageU8 jpg = DecodeImageFile(LlavaTinyDir() + "/images/grace_hopper.jpg");
  const ImageU8 png = DecodeImageFile(LlavaTinyDir() + "/images/grace_hopper.png");
  ASSERT_EQ(jpg.width, 512);
  ASSERT_EQ(jpg.height, 600);
  ASSERT_EQ(png.width, jpg.width);
  ASSERT_EQ(png.height, jpg.height);
  const Diff d = Compare(jpg, png);
  std::printf("  grace_hopper.jpg (our libjpeg) vs Pillow's decode: %zu of %zu bytes differ, max %d, mean %.4f\n",
              d.mismatches, jpg.rgb.size(), d.max, d.mean);
  EXPECT_LT(d.mean, 1.0);
  EXPECT_LE(d.max, 8);
}

// ---------------------------------------------------------------------------
// PNG layouts (converted as Pillow's convert("RGB"))
// ---------------------------------------------------------------------------

TEST(ImageDecode, WritePngRoundTrip) {
  const std::string dir = test::MakeTempDir("image");
  const ImageU8 img = MakeImage(37, 23, 7);
  WritePng(img, dir + "/x.png");
  EXPECT_SAME_IMAGE(DecodeImageFile(dir + "/x.png"), img);
}

TEST(ImageDecode, GreyAndGreyAlpha) {
  const int w = 5, h = 3;
  std::vector<std::vector<uint8_t>> grey(h), ga(h);
  ImageU8 expected = ConstantImage(w, h, {0, 0, 0});
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const uint8_t v = static_cast<uint8_t>(y * 50 + x * 7);
      grey[y].push_back(v);
      ga[y].push_back(v);
      ga[y].push_back(static_cast<uint8_t>(x * 60));  // alpha: dropped, not premultiplied
      uint8_t* p = expected.pixel(y, x);
      p[0] = p[1] = p[2] = v;
    }
  }
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(Spec(w, h, 8, PNG_COLOR_TYPE_GRAY), grey), "grey.png"), expected);
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(Spec(w, h, 8, PNG_COLOR_TYPE_GRAY_ALPHA), ga), "ga.png"), expected);
}

TEST(ImageDecode, LowBitGreyScalesToFullRange) {
  // 1-bit: 0/255; 2-bit: x85; 4-bit: x17 (Pillow's "1", "L;2", "L;4").
  for (int depth : {1, 2, 4}) {
    const int w = 9, levels = 1 << depth;
    std::vector<std::vector<uint8_t>> rows(1, std::vector<uint8_t>(static_cast<size_t>((w * depth + 7) / 8), 0));
    ImageU8 expected = ConstantImage(w, 1, {0, 0, 0});
    int bitpos = 0;
    for (int x = 0; x < w; ++x) {
      const int v = x % levels;
      rows[0][static_cast<size_t>(bitpos / 8)] |= static_cast<uint8_t>(v << (8 - depth - bitpos % 8));
      bitpos += depth;
      uint8_t* p = expected.pixel(0, x);
      p[0] = p[1] = p[2] = static_cast<uint8_t>(v * 255 / (levels - 1));
    }
    SCOPED_TRACE("bit depth " + std::to_string(depth));
    EXPECT_SAME_IMAGE(DecodeString(EncodePng(Spec(w, 1, depth, PNG_COLOR_TYPE_GRAY), rows), "low.png"), expected);
  }
}

TEST(ImageDecode, PaletteWithTransparency) {
  PngSpec spec = Spec(4, 2, 8, PNG_COLOR_TYPE_PALETTE);
  spec.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  spec.trns = {0, 128};  // alpha is dropped by convert("RGB")
  std::vector<std::vector<uint8_t>> rows = {{0, 1, 2, 3}, {3, 2, 1, 0}};
  ImageU8 expected = ConstantImage(4, 2, {0, 0, 0});
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 4; ++x) {
      const png_color c = spec.palette[rows[y][x]];
      uint8_t* p = expected.pixel(y, x);
      p[0] = c.red;
      p[1] = c.green;
      p[2] = c.blue;
    }
  }
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(spec, rows), "pal.png"), expected);

  // 4-bit palette, no tRNS.
  PngSpec spec4 = Spec(4, 1, 4, PNG_COLOR_TYPE_PALETTE);
  spec4.palette = spec.palette;
  std::vector<std::vector<uint8_t>> rows4 = {{0x32, 0x10}};  // indices 3 2 1 0
  ImageU8 expected4 = ConstantImage(4, 1, {0, 0, 0});
  for (int x = 0; x < 4; ++x) {
    const png_color c = spec.palette[static_cast<size_t>(3 - x)];
    uint8_t* p = expected4.pixel(0, x);
    p[0] = c.red;
    p[1] = c.green;
    p[2] = c.blue;
  }
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(spec4, rows4), "pal4.png"), expected4);
}

TEST(ImageDecode, RgbaDropsAlpha) {
  const ImageU8 src = MakeImage(6, 4, 3);
  std::vector<std::vector<uint8_t>> rows(4);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 6; ++x) {
      const uint8_t* p = src.pixel(y, x);
      rows[y].insert(rows[y].end(), {p[0], p[1], p[2], static_cast<uint8_t>(x * 40)});
    }
  }
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(Spec(6, 4, 8, PNG_COLOR_TYPE_RGBA), rows), "rgba.png"), src);
}

TEST(ImageDecode, SixteenBit) {
  // Colour (and RGBA) 16-bit: Pillow keeps the high byte of each sample.
  const int w = 4, h = 2;
  std::vector<std::vector<uint8_t>> rgb16(h), rgba16(h), grey16(h);
  ImageU8 expected = ConstantImage(w, h, {0, 0, 0});
  ImageU8 expected_grey = ConstantImage(w, h, {0, 0, 0});
  const uint16_t grey_values[] = {0, 7, 255, 256, 1000, 65535, 128, 300};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = expected.pixel(y, x);
      for (int c = 0; c < 3; ++c) {
        const uint16_t v = static_cast<uint16_t>(x * 16000 + y * 3000 + c * 5000 + 0x80 + 1);
        rgb16[y].insert(rgb16[y].end(), {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v & 0xff)});
        rgba16[y].insert(rgba16[y].end(), {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v & 0xff)});
        p[c] = static_cast<uint8_t>(v >> 8);  // high byte, not rounded
      }
      rgba16[y].insert(rgba16[y].end(), {0x12, 0x34});
      // 16-bit grey: Pillow opens it as mode "I"; convert("RGB") clips to 255.
      const uint16_t g = grey_values[y * w + x];
      grey16[y].insert(grey16[y].end(), {static_cast<uint8_t>(g >> 8), static_cast<uint8_t>(g & 0xff)});
      uint8_t* q = expected_grey.pixel(y, x);
      q[0] = q[1] = q[2] = static_cast<uint8_t>(g > 255 ? 255 : g);
    }
  }
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(Spec(w, h, 16, PNG_COLOR_TYPE_RGB), rgb16), "rgb16.png"), expected);
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(Spec(w, h, 16, PNG_COLOR_TYPE_RGBA), rgba16), "rgba16.png"), expected);
  EXPECT_SAME_IMAGE(DecodeString(EncodePng(Spec(w, h, 16, PNG_COLOR_TYPE_GRAY), grey16), "grey16.png"), expected_grey);
}

TEST(ImageDecode, Interlaced) {
  const ImageU8 src = MakeImage(13, 11, 5);
  std::vector<std::vector<uint8_t>> rows(11);
  for (int y = 0; y < 11; ++y) rows[y].assign(src.pixel(y, 0), src.pixel(y, 0) + 13 * 3);
  PngSpec spec = Spec(13, 11, 8, PNG_COLOR_TYPE_RGB);
  spec.interlaced = true;
  const std::string bytes = EncodePng(spec, rows);
  ASSERT_EQ(static_cast<uint8_t>(bytes[28]), 1) << "IHDR interlace byte";
  EXPECT_SAME_IMAGE(DecodeString(bytes, "adam7.png"), src);
}

TEST(ImageDecode, GreyJpegBecomesRgb) {
  const int w = 16, h = 8;
  std::vector<uint8_t> px(static_cast<size_t>(w) * h);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 2);
  const ImageU8 img = DecodeString(EncodeJpeg(w, h, 1, px), "grey.jpg");
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  int worst = 0;
  for (size_t i = 0; i < px.size(); ++i) {
    EXPECT_EQ(img.rgb[i * 3], img.rgb[i * 3 + 1]);
    EXPECT_EQ(img.rgb[i * 3], img.rgb[i * 3 + 2]);
    worst = std::max(worst, std::abs(int{img.rgb[i * 3]} - int{px[i]}));
  }
  EXPECT_LE(worst, 3);
}

TEST(ImageDecode, CmykJpegConvertedAsPillow) {
  // Stored (Adobe, inverted) CMYK values S: Pillow reads C = 255 - S and gives
  // R = (255 - K) * (255 - C) / 255 = S_k * S_c / 255 (rounded).
  const int w = 16, h = 16;
  const std::array<uint8_t, 4> stored{200, 100, 50, 255};
  const std::array<uint8_t, 4> stored2{255, 255, 255, 128};
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const auto& s = y < 8 ? stored : stored2;
      px.insert(px.end(), s.begin(), s.end());
    }
  }
  const ImageU8 img = DecodeString(EncodeJpeg(w, h, 4, px), "cmyk.jpg");
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  const uint8_t* a = img.pixel(2, 3);
  EXPECT_NEAR(a[0], 200, 2);
  EXPECT_NEAR(a[1], 100, 2);
  EXPECT_NEAR(a[2], 50, 2);
  const uint8_t* b = img.pixel(12, 3);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(b[c], 128, 2);
}

TEST(ImageDecode, BytesAfterIendAreIgnored) {
  const std::string png = Bytes(LlavaTinyDir() + "/images/synthetic_40x24.png");
  const ImageU8 ref = DecodeString(png, "synthetic.png");
  EXPECT_SAME_IMAGE(DecodeString(png + std::string(100, 'z'), "trailing.png"), ref);
}

TEST(ImageDecode, SignatureNotExtensionDecides) {
  const std::string dir = test::MakeTempDir("image");
  test::WriteFile(dir + "/really_a_jpeg.png", Bytes(LlavaTinyDir() + "/images/grace_hopper.jpg"));
  const ImageU8 img = DecodeImageFile(dir + "/really_a_jpeg.png");
  EXPECT_EQ(img.width, 512);
  EXPECT_EQ(img.height, 600);
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

TEST(ImageDecodeErrors, MissingFile) {
  const std::string dir = test::MakeTempDir("image");
  ExpectDecodeError(dir + "/no_such_image.png", {"cannot open", "No such file"});
}

TEST(ImageDecodeErrors, Directory) {
  const std::string dir = test::MakeTempDir("image");
  ExpectDecodeError(dir, {"directory"});
}

TEST(ImageDecodeErrors, EmptyFile) {
  const std::string dir = test::MakeTempDir("image");
  test::WriteFile(dir + "/empty.png", "");
  ExpectDecodeError(dir + "/empty.png", {"empty"});
}

TEST(ImageDecodeErrors, TruncatedPng) {
  const std::string dir = test::MakeTempDir("image");
  const std::string full = Bytes(LlavaTinyDir() + "/images/grace_hopper.png");
  test::WriteFile(dir + "/half.png", full.substr(0, full.size() / 2));
  ExpectDecodeError(dir + "/half.png", {"corrupt or truncated PNG", "truncated"});
  // Cut just before IEND: pixels complete, end chunk missing.
  test::WriteFile(dir + "/no_iend.png", full.substr(0, full.size() - 12));
  ExpectDecodeError(dir + "/no_iend.png", {"truncated PNG"});
  // Cut inside the header.
  test::WriteFile(dir + "/tiny.png", full.substr(0, 20));
  ExpectDecodeError(dir + "/tiny.png", {"PNG", "short"});
}

TEST(ImageDecodeErrors, TruncatedJpeg) {
  const std::string dir = test::MakeTempDir("image");
  const std::string full = Bytes(LlavaTinyDir() + "/images/grace_hopper.jpg");
  test::WriteFile(dir + "/half.jpg", full.substr(0, full.size() / 2));
  ExpectDecodeError(dir + "/half.jpg", {"corrupt or truncated JPEG", "Premature end"});
  test::WriteFile(dir + "/head.jpg", full.substr(0, 100));
  ExpectDecodeError(dir + "/head.jpg", {"corrupt or truncated JPEG"});
}

TEST(ImageDecodeErrors, CorruptPngData) {
  const std::string dir = test::MakeTempDir("image");
  std::string png = Bytes(LlavaTinyDir() + "/images/synthetic_40x24.png");
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  const uint32_t len = (uint32_t{static_cast<uint8_t>(png[idat - 4])} << 24) |
                       (uint32_t{static_cast<uint8_t>(png[idat - 3])} << 16) |
                       (uint32_t{static_cast<uint8_t>(png[idat - 2])} << 8) | static_cast<uint8_t>(png[idat - 1]);
  // Intact data, wrong IDAT checksum.
  std::string badcrc = png;
  badcrc[idat + 4 + len] = static_cast<char>(badcrc[idat + 4 + len] ^ 0x55);
  test::WriteFile(dir + "/badcrc.png", badcrc);
  ExpectDecodeError(dir + "/badcrc.png", {"corrupt or truncated PNG", "CRC"});
  // Damaged compressed data with a recomputed CRC: zlib must notice.
  for (size_t i = idat + 4; i < idat + 4 + len; i += 7) png[i] = static_cast<char>(png[i] ^ 0xa5);
  PutBE32(png, idat + 4 + len, Crc32(reinterpret_cast<const uint8_t*>(png.data()) + idat, 4 + len));
  test::WriteFile(dir + "/badzlib.png", png);
  ExpectDecodeError(dir + "/badzlib.png", {"corrupt or truncated PNG"});
}

TEST(ImageDecodeErrors, GarbageBytes) {
  const std::string dir = test::MakeTempDir("image");
  std::mt19937 rng(42);
  std::string junk(4096, '\0');
  for (auto& c : junk) c = static_cast<char>(rng() & 0xff);
  junk[0] = 'x';  // not a signature byte of any format
  test::WriteFile(dir + "/junk.png", junk);
  ExpectDecodeError(dir + "/junk.png", {"unknown image format"});
  // Right signatures followed by garbage.
  const std::string png_sig("\x89PNG\r\n\x1a\n", 8);
  test::WriteFile(dir + "/junk_after_sig.png", png_sig + junk);
  ExpectDecodeError(dir + "/junk_after_sig.png", {"corrupt", "PNG"});
  test::WriteFile(dir + "/junk_after_soi.jpg", std::string("\xff\xd8\xff", 3) + junk);
  ExpectDecodeError(dir + "/junk_after_soi.jpg", {"corrupt or truncated JPEG"});
}

TEST(ImageDecodeErrors, ZeroAndHugeSizes) {
  const std::string dir = test::MakeTempDir("image");
  WritePng(MakeImage(4, 4, 1), dir + "/small.png");
  const std::string png = Bytes(dir + "/small.png");
  test::WriteFile(dir + "/zero.png", PngWithHeaderSize(png, 0, 0));
  ExpectDecodeError(dir + "/zero.png", {"zero size", "0x0"});
  test::WriteFile(dir + "/zero_w.png", PngWithHeaderSize(png, 0, 4));
  ExpectDecodeError(dir + "/zero_w.png", {"zero size"});
  test::WriteFile(dir + "/huge.png", PngWithHeaderSize(png, 100000, 100000));
  ExpectDecodeError(dir + "/huge.png", {"too large", "100000x100000", "16384"});
  test::WriteFile(dir + "/just_over.png", PngWithHeaderSize(png, 16385, 1));
  ExpectDecodeError(dir + "/just_over.png", {"too large"});
  // A header claiming a bigger (allowed) size than the data holds is a truncation.
  test::WriteFile(dir + "/lying.png", PngWithHeaderSize(png, 400, 300));
  ExpectDecodeError(dir + "/lying.png", {"corrupt or truncated PNG"});

  // JPEG: patch the SOF0 frame size (no checksum in JPEG).
  std::string jpg = Bytes(LlavaTinyDir() + "/images/grace_hopper.jpg");
  size_t sof = std::string::npos;
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (static_cast<uint8_t>(jpg[i]) == 0xff && (static_cast<uint8_t>(jpg[i + 1]) & 0xfc) == 0xc0 &&
        static_cast<uint8_t>(jpg[i + 1]) != 0xc4) {
      sof = i;
      break;
    }
  }
  ASSERT_NE(sof, std::string::npos);
  std::string big = jpg;
  big[sof + 5] = static_cast<char>(0xc3);  // height 50000
  big[sof + 6] = static_cast<char>(0x50);
  test::WriteFile(dir + "/huge.jpg", big);
  ExpectDecodeError(dir + "/huge.jpg", {"too large", "JPEG"});
  std::string zero = jpg;
  zero[sof + 7] = 0;  // width 0
  zero[sof + 8] = 0;
  test::WriteFile(dir + "/zero.jpg", zero);
  ExpectDecodeError(dir + "/zero.jpg", {"JPEG"});
}

TEST(ImageDecodeErrors, UnknownFormat) {
  const std::string dir = test::MakeTempDir("image");
  std::string gif("GIF89a\x01\x00\x01\x00\x80\x00\x00", 13);
  gif += std::string(20, '\0');
  test::WriteFile(dir + "/pic.png", gif);
  ExpectDecodeError(dir + "/pic.png", {"unknown image format", "GIF"});
  test::WriteFile(dir + "/text.jpg", "hello, this is not an image\n");
  ExpectDecodeError(dir + "/text.jpg", {"unknown image format", "68 65 6c 6c"});
}

TEST(ImageDecodeErrors, WritePngToBadPath) {
  try {
    WritePng(MakeImage(2, 2, 1), "/nonexistent-dir/x.png");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.png"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------
// Preprocessing by hand
// ---------------------------------------------------------------------------

TEST(ImagePreprocess, MeanFillColour) {
  const auto c = MeanFillColour(PreprocessorConfig{});
  EXPECT_EQ(c, (std::array<uint8_t, 3>{122, 116, 104}));
}

TEST(ImagePreprocess, ExpandToSquareOffsets) {
  const ImageU8 tall = MakeImage(3, 6, 9);  // side 6, x offset (6-3)/2 = 1
  const ImageU8 sq = ExpandToSquare(tall, {1, 2, 3});
  ASSERT_EQ(sq.width, 6);
  ASSERT_EQ(sq.height, 6);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 6; ++x) {
      const uint8_t* p = sq.pixel(y, x);
      if (x >= 1 && x < 4) {
        EXPECT_EQ(std::memcmp(p, tall.pixel(y, x - 1), 3), 0);
      } else {
        EXPECT_EQ(p[0], 1);
        EXPECT_EQ(p[1], 2);
        EXPECT_EQ(p[2], 3);
      }
    }
  }
  const ImageU8 wide = MakeImage(5, 2, 9);  // side 5, y offset (5-2)/2 = 1
  const ImageU8 sq2 = ExpandToSquare(wide, {0, 0, 0});
  EXPECT_EQ(std::memcmp(sq2.pixel(1, 0), wide.pixel(0, 0), 15), 0);
  EXPECT_EQ(std::memcmp(sq2.pixel(2, 0), wide.pixel(1, 0), 15), 0);
  const ImageU8 square = MakeImage(4, 4, 2);
  EXPECT_SAME_IMAGE(ExpandToSquare(square, {9, 9, 9}), square);
}

TEST(ImagePreprocess, ShortestEdgeSize) {
  int w = 0, h = 0;
  ShortestEdgeSize(40, 24, 56, &w, &h);
  EXPECT_EQ(w, 93);  // int(56 * 40 / 24) = int(93.33)
  EXPECT_EQ(h, 56);
  ShortestEdgeSize(512, 600, 56, &w, &h);
  EXPECT_EQ(w, 56);
  EXPECT_EQ(h, 65);  // int(65.625)
  ShortestEdgeSize(640, 480, 336, &w, &h);
  EXPECT_EQ(w, 448);
  EXPECT_EQ(h, 336);
  ShortestEdgeSize(600, 600, 336, &w, &h);
  EXPECT_EQ(w, 336);
  EXPECT_EQ(h, 336);
  ShortestEdgeSize(3, 1000, 336, &w, &h);
  EXPECT_EQ(w, 336);
  EXPECT_EQ(h, 112000);
}

TEST(ImagePreprocess, CenterCropLargerAndSmaller) {
  const ImageU8 img = MakeImage(7, 5, 11);
  const ImageU8 c = CenterCrop(img, 2, 3);  // top (5-2)//2 = 1, left (7-3)//2 = 2
  ASSERT_EQ(c.width, 3);
  ASSERT_EQ(c.height, 2);
  EXPECT_EQ(std::memcmp(c.pixel(0, 0), img.pixel(1, 2), 9), 0);
  EXPECT_EQ(std::memcmp(c.pixel(1, 0), img.pixel(2, 2), 9), 0);

  // Smaller than the crop: zero padding, image at ceil((new - old) / 2).
  const ImageU8 small = MakeImage(3, 2, 12);
  const ImageU8 p = CenterCrop(small, 5, 6);  // pads: top ceil(3/2)=2, left ceil(3/2)=2
  ASSERT_EQ(p.width, 6);
  ASSERT_EQ(p.height, 5);
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 6; ++x) {
      const bool inside = y >= 2 && y < 4 && x >= 2 && x < 5;
      const uint8_t* q = p.pixel(y, x);
      if (inside) {
        EXPECT_EQ(std::memcmp(q, small.pixel(y - 2, x - 2), 3), 0) << y << "," << x;
      } else {
        EXPECT_EQ(q[0] | q[1] | q[2], 0) << y << "," << x;
      }
    }
  }
  // Mixed: taller than the crop, narrower than it.
  const ImageU8 m = CenterCrop(MakeImage(2, 9, 13), 4, 4);
  EXPECT_EQ(m.width, 4);
  EXPECT_EQ(m.height, 4);
}

TEST(ImagePreprocess, ResizeConstantStaysConstant) {
  const std::array<uint8_t, 3> colour{200, 17, 255};
  const ImageU8 img = ConstantImage(37, 29, colour);
  for (auto [w, h] : std::vector<std::pair<int, int>>{{10, 10}, {100, 3}, {1, 1}, {37, 80}, {5, 29}, {336, 336}}) {
    EXPECT_SAME_IMAGE(ResizeBicubic(img, w, h), ConstantImage(w, h, colour));
  }
}

TEST(ImagePreprocess, ResizeIdentityIsExactCopy) {
  const ImageU8 img = MakeImage(31, 17, 21);
  EXPECT_SAME_IMAGE(ResizeBicubic(img, 31, 17), img);
}

TEST(ImagePreprocess, ResizeOnePixelWide) {
  const ImageU8 col = MakeImage(1, 9, 4);
  // Width unchanged: only the vertical pass runs; each output is a convolution of the column.
  const ImageU8 taller = ResizeBicubic(col, 1, 20);
  EXPECT_EQ(taller.width, 1);
  EXPECT_EQ(taller.height, 20);
  // Widening a single column: every output column equals the (only) input column.
  const ImageU8 wide = ResizeBicubic(col, 6, 9);
  for (int y = 0; y < 9; ++y) {
    for (int x = 0; x < 6; ++x) EXPECT_EQ(std::memcmp(wide.pixel(y, x), col.pixel(y, 0), 3), 0);
  }
  // 1x1 -> anything is constant.
  const ImageU8 dot = ConstantImage(1, 1, {9, 99, 199});
  EXPECT_SAME_IMAGE(ResizeBicubic(dot, 7, 3), ConstantImage(7, 3, {9, 99, 199}));
  // Row down to one pixel.
  const ImageU8 row = MakeImage(50, 1, 8);
  const ImageU8 one = ResizeBicubic(row, 1, 1);
  EXPECT_EQ(one.rgb.size(), 3u);
}

// Independent floating-point reference: antialiased Keys cubic (a = -0.5), the
// kernel stretched by the downscale factor, normalised weights, horizontal then
// vertical with rounding to uint8 between. Pillow's fixed-point result must be
// within one level of it.
std::vector<double> FloatPass1D(const std::vector<double>& in, int out_n) {
  const int n = static_cast<int>(in.size());
  const double scale = static_cast<double>(n) / out_n, fs = std::max(1.0, scale);
  std::vector<double> out(static_cast<size_t>(out_n));
  for (int i = 0; i < out_n; ++i) {
    const double center = (i + 0.5) * scale;
    double acc = 0, norm = 0;
    for (int j = 0; j < n; ++j) {
      double t = std::fabs((j + 0.5 - center) / fs);
      double k = t < 1 ? (1.5 * t - 2.5) * t * t + 1 : (t < 2 ? ((-0.5 * t + 2.5) * t - 4) * t + 2 : 0);
      acc += k * in[static_cast<size_t>(j)];
      norm += k;
    }
    out[static_cast<size_t>(i)] = acc / norm;
  }
  return out;
}

TEST(ImagePreprocess, ResizeCloseToFloatReference) {
  const ImageU8 img = MakeImage(23, 19, 77);
  for (auto [w, h] : std::vector<std::pair<int, int>>{{7, 5}, {50, 41}, {23, 8}, {11, 19}, {40, 10}}) {
    const ImageU8 out = ResizeBicubic(img, w, h);
    ImageU8 tmp = ConstantImage(w, img.height, {0, 0, 0});
    for (int c = 0; c < 3; ++c) {
      for (int y = 0; y < img.height; ++y) {
        std::vector<double> line(static_cast<size_t>(img.width));
        for (int x = 0; x < img.width; ++x) line[static_cast<size_t>(x)] = img.pixel(y, x)[c];
        const auto r = w == img.width ? line : FloatPass1D(line, w);
        for (int x = 0; x < w; ++x) {
          tmp.pixel(y, x)[c] = static_cast<uint8_t>(std::clamp(std::floor(r[static_cast<size_t>(x)] + 0.5), 0.0, 255.0));
        }
      }
    }
    int worst = 0;
    for (int c = 0; c < 3; ++c) {
      for (int x = 0; x < w; ++x) {
        std::vector<double> line(static_cast<size_t>(img.height));
        for (int y = 0; y < img.height; ++y) line[static_cast<size_t>(y)] = tmp.pixel(y, x)[c];
        const auto r = h == img.height ? line : FloatPass1D(line, h);
        for (int y = 0; y < h; ++y) {
          const int ref = static_cast<int>(std::clamp(std::floor(r[static_cast<size_t>(y)] + 0.5), 0.0, 255.0));
          worst = std::max(worst, std::abs(ref - int{out.pixel(y, x)[c]}));
        }
      }
    }
    EXPECT_LE(worst, 1) << w << "x" << h;
  }
}

TEST(ImagePreprocess, RescaleAndNormalizeValues) {
  const PreprocessorConfig cfg;
  const ImageU8 img = ConstantImage(2, 1, {0, 255, 128});
  const PixelValues pv = RescaleAndNormalize(img, cfg);
  ASSERT_EQ(pv.chw.size(), 6u);
  EXPECT_FLOAT_EQ(pv.chw[0], (0.0f - 0.48145466f) / 0.26862954f);
  EXPECT_FLOAT_EQ(pv.chw[2], (1.0f - 0.4578275f) / 0.26130258f);
  EXPECT_FLOAT_EQ(pv.chw[4], (static_cast<float>(128.0 / 255.0) - 0.40821073f) / 0.27577711f);
}

TEST(ImagePreprocess, BadSizesThrow) {
  const ImageU8 img = MakeImage(4, 4, 1);
  EXPECT_THROW(ResizeBicubic(img, 0, 4), Error);
  EXPECT_THROW(ResizeBicubic(ImageU8{}, 4, 4), Error);
  EXPECT_THROW(CenterCrop(img, 0, 2), Error);
}

}  // namespace
}  // namespace ficoco
