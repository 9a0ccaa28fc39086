// PNG (libpng) and JPEG (libjpeg-turbo) decoding to 8-bit RGB, and PNG writing.
//
// Error handling: both libraries report fatal errors through a callback that must
// not return, so each one long-jumps back to a setjmp() taken in a small function
// whose frames (and the library callbacks in between) hold only trivially
// destructible data. C++ objects (the output vectors, the Error thrown at the end)
// live in the callers, outside the jumped-over frames. The library's message is
// copied into a fixed char buffer and turned into a ficoco::Error afterwards.
#include "image/image.h"

#include <png.h>
// jpeglib.h needs size_t and FILE declared first.
#include <cstddef>
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>

#include <cerrno>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace ficoco {
namespace {

constexpr size_t kMessageSize = 512;

void CopyMessage(char* dst, const char* src) {
  if (src == nullptr) src = "(no message)";
  std::strncpy(dst, src, kMessageSize - 1);
  dst[kMessageSize - 1] = '\0';
}

// Reasons a decode stopped, so the C++ side can word the message.
enum class Failure { None, Corrupt, TooLarge, ZeroSize, Unsupported };

std::string SizeProblem(Failure f, long long w, long long h) {
  std::ostringstream os;
  if (f == Failure::ZeroSize) {
    os << "image has zero size (" << w << "x" << h << ")";
  } else {
    os << "image is too large (" << w << "x" << h << "; at most " << kMaxImageSide
       << " pixels per side are accepted)";
  }
  return os.str();
}

// ---------------------------------------------------------------------------
// PNG decoding
// ---------------------------------------------------------------------------

const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

// Everything libpng's callbacks touch: plain data only.
struct PngReadState {
  const uint8_t* data;
  size_t size;
  size_t pos;
  jmp_buf jump;
  char message[kMessageSize];
};

void PngError(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngReadState*>(png_get_error_ptr(png));
  CopyMessage(st->message, msg);
  std::longjmp(st->jump, 1);
}

// Warnings that mean the pixel data is damaged or cut short (or a checksum is
// wrong, which Pillow also refuses) are fatal. Harmless ones (odd colour
// profiles, unknown chunks, extra data after the last row, which Pillow ignores
// too) are dropped silently.
void PngWarning(png_structp png, png_const_charp msg) {
  if (msg == nullptr) return;
  static const char* const kFatal[] = {"Not enough", "Truncated compressed", "Decompression error", "CRC error"};
  bool fatal = false;
  for (const char* f : kFatal) fatal = fatal || std::strstr(msg, f) != nullptr;
  if (std::strncmp(msg, "IDAT", 4) == 0 && std::strstr(msg, "Too much") == nullptr &&
      std::strstr(msg, "xtra compress") == nullptr) {
    fatal = true;  // damaged IDAT stream (bad zlib data, checksum mismatch, ...)
  }
  if (fatal) PngError(png, msg);
}

void PngRead(png_structp png, png_bytep out, png_size_t n) {
  auto* st = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) {
    png_error(png, "unexpected end of file (the file is truncated)");
  }
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

struct PngLayout {
  png_uint_32 width;
  png_uint_32 height;
  int channels;  // after the transforms: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  int bytes_per_sample;  // 1, or 2 for 16-bit grey (kept to clip as Pillow)
  size_t rowbytes;
};

// Phase 1: header, transforms. Returns false with st->message set on failure.
bool PngReadHeader(png_structp png, png_infop info, PngReadState* st, PngLayout* out) {
  if (setjmp(st->jump)) return false;
  png_set_read_fn(png, st, PngRead);
  png_set_user_limits(png, kMaxImageSide, kMaxImageSide);
  png_read_info(png, info);

  png_uint_32 w = 0, h = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, &interlace, nullptr, nullptr);

  int bytes_per_sample = 1;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    // Palette indices become RGB (plus alpha when there is a tRNS chunk; dropped later).
    png_set_palette_to_rgb(png);
  } else if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
    // 1/2/4-bit grey scales to 0..255 exactly like Pillow's "1"/"L;2"/"L;4" unpackers.
    png_set_expand_gray_1_2_4_to_8(png);
  }
  if (bit_depth == 16) {
    if (color_type == PNG_COLOR_TYPE_GRAY) {
      // Pillow opens 16-bit grey as mode "I" and convert("RGB") clips it to
      // 0..255 (it does not scale); keep both bytes so we can do the same.
      bytes_per_sample = 2;
    } else {
      // Pillow's "RGB;16B"/"RGBA;16B"/"LA;16B" unpackers keep the high byte.
      png_set_strip_16(png);
    }
  }
  // tRNS colour keys on grey/RGB images are ignored: convert("RGB") does not use them.
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->channels = png_get_channels(png, info);
  out->bytes_per_sample = bytes_per_sample;
  out->rowbytes = png_get_rowbytes(png, info);
  if (out->channels < 1 || out->channels > 4 ||
      out->rowbytes != static_cast<size_t>(out->width) * out->channels * bytes_per_sample) {
    CopyMessage(st->message, "unexpected pixel layout after conversion");
    return false;
  }
  return true;
}

// Phase 2: the pixels (all passes when interlaced) and the chunks after them.
bool PngReadPixels(png_structp png, png_infop info, PngReadState* st, png_bytepp rows) {
  if (setjmp(st->jump)) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

struct PngReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReadGuard() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

ImageU8 DecodePng(const uint8_t* bytes, size_t size, const std::string& origin) {
  const std::string what = "PNG '" + origin + "'";
  // Check the IHDR size ourselves first, for a clear message before any allocation.
  if (size < 8 + 8 + 13 + 4) Fail("corrupt or truncated ", what, ": the file is too short (", size, " bytes)");
  if (std::memcmp(bytes + 12, "IHDR", 4) != 0 || BigEndian32(bytes + 8) != 13) {
    Fail("corrupt ", what, ": the first chunk is not a valid IHDR");
  }
  const uint32_t hw = BigEndian32(bytes + 16), hh = BigEndian32(bytes + 20);
  if (hw == 0 || hh == 0) Fail("invalid ", what, ": ", SizeProblem(Failure::ZeroSize, hw, hh));
  if (hw > static_cast<uint32_t>(kMaxImageSide) || hh > static_cast<uint32_t>(kMaxImageSide)) {
    Fail("refusing ", what, ": ", SizeProblem(Failure::TooLarge, hw, hh));
  }

  PngReadState st{};
  st.data = bytes;
  st.size = size;
  st.pos = 0;
  PngReadGuard g;
  g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, PngError, PngWarning);
  if (g.png == nullptr) Fail("cannot decode ", what, ": png_create_read_struct failed");
  g.info = png_create_info_struct(g.png);
  if (g.info == nullptr) Fail("cannot decode ", what, ": png_create_info_struct failed");

  PngLayout layout{};
  if (!PngReadHeader(g.png, g.info, &st, &layout)) {
    Fail("corrupt or truncated ", what, ": ", st.message);
  }
  if (layout.width != hw || layout.height != hh) Fail("corrupt ", what, ": inconsistent image size");

  const size_t w = layout.width, h = layout.height;
  std::vector<uint8_t> raw(layout.rowbytes * h);
  std::vector<png_bytep> rows(h);
  for (size_t y = 0; y < h; ++y) rows[y] = raw.data() + y * layout.rowbytes;
  if (!PngReadPixels(g.png, g.info, &st, rows.data())) {
    Fail("corrupt or truncated ", what, ": ", st.message);
  }

  ImageU8 img;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.rgb.resize(w * h * 3);
  uint8_t* o = img.rgb.data();
  const int c = layout.channels;
  if (layout.bytes_per_sample == 2) {  // 16-bit grey (grey+alpha 16 was stripped to 8)
    for (size_t y = 0; y < h; ++y) {
      const uint8_t* r = rows[y];
      for (size_t x = 0; x < w; ++x, o += 3) {
        const uint8_t* p = r + x * c * 2;
        const unsigned v = (unsigned{p[0]} << 8) | p[1];
        o[0] = o[1] = o[2] = static_cast<uint8_t>(v > 255 ? 255 : v);
      }
    }
    return img;
  }
  for (size_t y = 0; y < h; ++y) {
    const uint8_t* p = rows[y];
    for (size_t x = 0; x < w; ++x, p += c, o += 3) {
      if (c <= 2) {
        o[0] = o[1] = o[2] = p[0];
      } else {
        o[0] = p[0];
        o[1] = p[1];
        o[2] = p[2];
      }
    }
  }
  return img;
}

// ---------------------------------------------------------------------------
// JPEG decoding
// ---------------------------------------------------------------------------

struct JpegErrorState {
  jpeg_error_mgr pub;  // first member: libjpeg hands us a pointer to it
  jmp_buf jump;
  char message[kMessageSize];
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* st = reinterpret_cast<JpegErrorState*>(cinfo->err);
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  CopyMessage(st->message, buf);
  std::longjmp(st->jump, 1);
}

// Warnings (msg_level < 0): a premature end of data means the file is truncated
// and is fatal; other corrupt-data warnings are tolerated silently like Pillow.
// Trace messages (msg_level >= 0) are ignored. Nothing is printed to stderr.
void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) JpegErrorExit(cinfo);
}

struct JpegLayout {
  JDIMENSION width;
  JDIMENSION height;
  int components;  // 1 grey, 3 RGB, 4 CMYK
  bool zero_size;
  bool too_large;
};

bool JpegReadHeader(jpeg_decompress_struct* cinfo, JpegErrorState* st, const uint8_t* bytes,
                    size_t size, JpegLayout* out) {
  if (setjmp(st->jump)) return false;
  jpeg_mem_src(cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  out->width = cinfo->image_width;
  out->height = cinfo->image_height;
  out->zero_size = cinfo->image_width == 0 || cinfo->image_height == 0;
  out->too_large = cinfo->image_width > static_cast<JDIMENSION>(kMaxImageSide) ||
                   cinfo->image_height > static_cast<JDIMENSION>(kMaxImageSide);
  if (out->zero_size || out->too_large) return true;  // refused before any pixel buffer exists

  // Defaults as Pillow leaves them: JDCT_ISLOW, fancy upsampling, full scale.
  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo->out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo->out_color_space = JCS_CMYK;
      break;
    default:
      cinfo->out_color_space = JCS_RGB;
      break;
  }
  jpeg_start_decompress(cinfo);
  out->width = cinfo->output_width;
  out->height = cinfo->output_height;
  out->components = cinfo->output_components;
  return true;
}

bool JpegReadPixels(jpeg_decompress_struct* cinfo, JpegErrorState* st, uint8_t* dst, size_t stride) {
  if (setjmp(st->jump)) return false;
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = dst + static_cast<size_t>(cinfo->output_scanline) * stride;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      CopyMessage(st->message, "decoder returned no scanline");
      return false;
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

struct JpegGuard {
  jpeg_decompress_struct cinfo{};
  bool created = false;
  ~JpegGuard() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

bool JpegCreate(jpeg_decompress_struct* cinfo, JpegErrorState* st) {
  if (setjmp(st->jump)) return false;
  jpeg_create_decompress(cinfo);
  return true;
}

// a * b / 255 with rounding (0 <= a, b <= 255).
inline int MulDiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

ImageU8 DecodeJpeg(const uint8_t* bytes, size_t size, const std::string& origin) {
  const std::string what = "JPEG '" + origin + "'";
  JpegErrorState st{};
  JpegGuard g;
  g.cinfo.err = jpeg_std_error(&st.pub);
  st.pub.error_exit = JpegErrorExit;
  st.pub.emit_message = JpegEmitMessage;
  if (!JpegCreate(&g.cinfo, &st)) Fail("cannot decode ", what, ": ", st.message);
  g.created = true;

  JpegLayout layout{};
  if (!JpegReadHeader(&g.cinfo, &st, bytes, size, &layout)) {
    Fail("corrupt or truncated ", what, ": ", st.message);
  }
  if (layout.zero_size) Fail("invalid ", what, ": ", SizeProblem(Failure::ZeroSize, layout.width, layout.height));
  if (layout.too_large) Fail("refusing ", what, ": ", SizeProblem(Failure::TooLarge, layout.width, layout.height));
  const int c = layout.components;
  if (c != 1 && c != 3 && c != 4) Fail("unsupported ", what, ": ", c, " colour components");

  const size_t w = layout.width, h = layout.height;
  const size_t stride = w * static_cast<size_t>(c);
  std::vector<uint8_t> raw(stride * h);
  if (!JpegReadPixels(&g.cinfo, &st, raw.data(), stride)) {
    Fail("corrupt or truncated ", what, ": ", st.message);
  }

  ImageU8 img;
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  if (c == 3) {
    img.rgb = std::move(raw);
    return img;
  }
  img.rgb.resize(w * h * 3);
  uint8_t* o = img.rgb.data();
  const uint8_t* p = raw.data();
  if (c == 1) {
    for (size_t i = 0; i < w * h; ++i, ++p, o += 3) o[0] = o[1] = o[2] = p[0];
    return img;
  }
  // CMYK/YCCK: Pillow reads JPEG CMYK as inverted ("CMYK;I", the Adobe convention
  // Photoshop writes), then convert("RGB") computes R = (255 - K) - C * (255 - K) / 255
  // per channel, with C = 255 - stored value.
  for (size_t i = 0; i < w * h; ++i, p += 4, o += 3) {
    const int nk = p[3];  // 255 - K where K = 255 - stored
    for (int ch = 0; ch < 3; ++ch) {
      const int cc = 255 - p[ch];
      int v = nk - MulDiv255(cc, nk);
      o[ch] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
  }
  return img;
}

std::string DescribeSignature(const uint8_t* b, size_t n) {
  auto starts = [&](const char* s) { return n >= std::strlen(s) && std::memcmp(b, s, std::strlen(s)) == 0; };
  if (starts("GIF87a") || starts("GIF89a")) return "a GIF file";
  if (starts("BM")) return "a BMP file";
  if (n >= 12 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0) return "a WebP file";
  if (starts("II*") || starts("MM\0*")) return "a TIFF file";
  if (n >= 12 && std::memcmp(b + 4, "ftyp", 4) == 0) return "an ISO media (HEIC/AVIF) file";
  std::ostringstream os;
  os << "first bytes";
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n && i < 8; ++i) os << ' ' << kHex[b[i] >> 4] << kHex[b[i] & 15];
  return os.str();
}

// ---------------------------------------------------------------------------
// PNG writing
// ---------------------------------------------------------------------------

struct PngWriteState {
  FILE* file;
  jmp_buf jump;
  char message[kMessageSize];
};

void PngWriteError(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngWriteState*>(png_get_error_ptr(png));
  CopyMessage(st->message, msg);
  std::longjmp(st->jump, 1);
}

void PngWriteWarning(png_structp, png_const_charp) {}

bool PngWriteAll(png_structp png, png_infop info, PngWriteState* st, const ImageU8* image,
                 png_bytepp rows) {
  if (setjmp(st->jump)) return false;
  png_init_io(png, st->file);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image->width), static_cast<png_uint_32>(image->height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

struct PngWriteGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  FILE* file = nullptr;
  ~PngWriteGuard() {
    if (png != nullptr) png_destroy_write_struct(&png, info != nullptr ? &info : nullptr);
    if (file != nullptr) std::fclose(file);
  }
};

}  // namespace

ImageU8 DecodeImageBytes(const uint8_t* bytes, size_t size, const std::string& origin) {
  if (size == 0) Fail("image file '", origin, "' is empty");
  if (size >= 8 && std::memcmp(bytes, kPngSignature, 8) == 0) return DecodePng(bytes, size, origin);
  if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return DecodeJpeg(bytes, size, origin);
  Fail("unknown image format in '", origin, "': not a PNG or JPEG (", DescribeSignature(bytes, size),
       "); only PNG and JPEG are supported");
}

ImageU8 DecodeImageFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) Fail("cannot read image file '", path, "': it is a directory");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Fail("cannot open image file '", path, "': ", errno != 0 ? std::strerror(errno) : "open failed");
  }
  in.seekg(0, std::ios::end);
  const std::streamoff n = in.tellg();
  if (n < 0) Fail("cannot read image file '", path, "'");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  if (n > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), n)) {
    Fail("cannot read image file '", path, "': short read");
  }
  return DecodeImageBytes(bytes.data(), bytes.size(), path);
}

void WritePng(const ImageU8& image, const std::string& path) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    Fail("cannot write PNG '", path, "': invalid image ", image.width, "x", image.height, " with ",
         image.rgb.size(), " bytes");
  }
  PngWriteGuard g;
  g.file = std::fopen(path.c_str(), "wb");
  if (g.file == nullptr) Fail("cannot create PNG '", path, "': ", std::strerror(errno));
  PngWriteState st{};
  st.file = g.file;
  g.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, PngWriteError, PngWriteWarning);
  if (g.png == nullptr) Fail("cannot write PNG '", path, "': png_create_write_struct failed");
  g.info = png_create_info_struct(g.png);
  if (g.info == nullptr) Fail("cannot write PNG '", path, "': png_create_info_struct failed");
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int y = 0; y < image.height; ++y) rows[static_cast<size_t>(y)] = const_cast<png_bytep>(image.pixel(y, 0));
  if (!PngWriteAll(g.png, g.info, &st, &image, rows.data())) Fail("cannot write PNG '", path, "': ", st.message);
  FILE* f = g.file;
  g.file = nullptr;
  if (std::fflush(f) != 0 || std::ferror(f) != 0) {
    std::fclose(f);
    Fail("cannot write PNG '", path, "': ", std::strerror(errno));
  }
  if (std::fclose(f) != 0) Fail("cannot write PNG '", path, "': ", std::strerror(errno));
}

}  // namespace ficoco
