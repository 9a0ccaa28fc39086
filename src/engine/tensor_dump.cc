#include "engine/tensor_dump.h"

#include <cstring>

#include "base/error.h"
#include "io/safetensors.h"

namespace ficoco {

void TensorDump::AddF32(const std::string& name, std::vector<int64_t> shape, const float* data) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  Entry e{name, DType::F32, std::move(shape), std::vector<uint8_t>(static_cast<size_t>(n) * 4)};
  if (!e.bytes.empty()) std::memcpy(e.bytes.data(), data, e.bytes.size());
  entries_.push_back(std::move(e));
}

void TensorDump::AddI64(const std::string& name, std::vector<int64_t> shape, const std::vector<int64_t>& data) {
  Entry e{name, DType::I64, std::move(shape), std::vector<uint8_t>(data.size() * 8)};
  if (!e.bytes.empty()) std::memcpy(e.bytes.data(), data.data(), e.bytes.size());
  entries_.push_back(std::move(e));
}

void TensorDump::Write(const std::string& path) const {
  std::vector<TensorView> views;
  for (const Entry& e : entries_) views.push_back(TensorView{e.name, e.dtype, e.shape, e.bytes.data()});
  WriteSafetensors(path, views);
}

void AddEncodeTensors(const EncodedImage& e, TensorDump& dump) {
  const PixelValues& p = e.image.pixels;
  dump.AddF32("pixel_values", {1, 3, p.height, p.width}, p.chw.data());
  dump.AddF32("vision.selected", {1, e.vision.hidden.rows(), e.vision.hidden.cols()}, e.vision.hidden.data());
  dump.AddF32("projector.image_features", {1, e.image_features.rows(), e.image_features.cols()},
              e.image_features.data());
}

namespace {

std::vector<int64_t> OrigIndices(const std::vector<TokenMeta>& tokens) {
  std::vector<int64_t> out;
  out.reserve(tokens.size());
  for (const TokenMeta& t : tokens) out.push_back(t.orig_index);
  return out;
}

}  // namespace

void AddReductionTensors(const ReductionTrace& trace, TensorDump& dump) {
  for (const RecordedPlan& p : trace.plans) {
    const std::string prefix = std::string("reduce.") + ReductionSiteName(p.site) + "." + std::to_string(p.layer) + ".";
    auto add_ids = [&](const char* name, const std::vector<TokenMeta>& tokens) {
      dump.AddI64(prefix + name, {static_cast<int64_t>(tokens.size())}, OrigIndices(tokens));
    };
    add_ids("kept", p.kept);
    add_ids("discarded", p.discarded);
    add_ids("src", p.src);
    add_ids("dst", p.dst);
    dump.AddF32(prefix + "alpha", {static_cast<int64_t>(p.alpha.size())}, p.alpha.data());
    dump.AddF32(prefix + "scores", {static_cast<int64_t>(p.scores.size())}, p.scores.data());
  }
}

}  // namespace ficoco
