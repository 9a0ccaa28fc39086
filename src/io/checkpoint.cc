#include "io/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf_model.h"
#include "io/json_file.h"
#include "tensor/quant.h"

namespace ficoco {
namespace fs = std::filesystem;
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Buffers that some CLIP checkpoints carry but that are not weights.
bool IsIgnoredBuffer(const std::string& name) { return EndsWith(name, "embeddings.position_ids"); }

}  // namespace

std::string Checkpoint::CanonicalName(const std::string& name) {
  static const std::pair<const char*, const char*> kPrefixes[] = {
      {"model.language_model.", "language_model.model."},
      {"model.vision_tower.", "vision_tower."},
      {"model.multi_modal_projector.", "multi_modal_projector."},
  };
  for (const auto& [from, to] : kPrefixes) {
    const std::string f(from);
    if (StartsWith(name, f)) return std::string(to) + name.substr(f.size());
  }
  if (name == "lm_head.weight") return "language_model.lm_head.weight";
  return name;
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) Fail("checkpoint directory '", dir, "' does not exist");
  if (!fs::is_directory(dir, ec)) Fail("checkpoint path '", dir, "' is not a directory");

  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::string single_path = (fs::path(dir) / "model.safetensors").string();

  // Where each tensor came from, for the duplicate-name message.
  auto add_file = [&](std::unique_ptr<SafetensorsFile> file) {
    const SafetensorsFile* f = file.get();
    files_.push_back(std::move(file));
    for (const TensorView& t : f->tensors()) {
      if (IsIgnoredBuffer(t.name)) continue;
      std::string canon = CanonicalName(t.name);
      auto [it, inserted] = by_name_.emplace(canon, Entry{f, &t});
      if (!inserted)
        Fail("checkpoint ", dir, ": tensor '", canon, "' appears twice: as '", it->second.view->name, "' in ",
             it->second.file->path(), " and as '", t.name, "' in ", f->path());
    }
  };

  if (fs::exists(index_path, ec)) {
    const nlohmann::json index = ParseJsonObject(ReadTextFile(index_path), index_path);
    auto wm = index.find("weight_map");
    if (wm == index.end()) Fail(index_path, ": missing weight_map");
    if (!wm->is_object()) Fail(index_path, ": weight_map must be an object of tensor name -> shard file");
    if (wm->empty()) Fail(index_path, ": weight_map is empty");

    // Shards in order of first appearance, each opened once.
    std::map<std::string, const SafetensorsFile*> shards;
    std::vector<std::pair<std::string, std::string>> listed;  // tensor, shard
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) Fail(index_path, ": weight_map entry for tensor '", it.key(), "' must be a string");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        Fail(index_path, ": tensor '", it.key(), "' names an invalid shard file '", shard, "'");
      listed.emplace_back(it.key(), shard);
      if (shards.count(shard)) continue;
      const std::string shard_path = (fs::path(dir) / shard).string();
      if (!fs::exists(shard_path, ec))
        Fail(index_path, ": shard '", shard, "' (listed for tensor '", it.key(), "') does not exist in ", dir);
      std::unique_ptr<SafetensorsFile> file;
      try {
        file = std::make_unique<SafetensorsFile>(shard_path);
      } catch (const Error& e) {
        Fail(index_path, ": cannot open shard '", shard, "': ", e.what());
      }
      shards[shard] = file.get();
      add_file(std::move(file));
    }
    for (const auto& [tensor, shard] : listed) {
      if (shards.at(shard)->Find(tensor) == nullptr)
        Fail(index_path, ": tensor '", tensor, "' is listed in shard '", shard, "' but that shard does not contain it");
    }
  } else if (fs::exists(single_path, ec)) {
    add_file(std::make_unique<SafetensorsFile>(single_path));
  } else {
    Fail("no weights in ", dir, ": expected model.safetensors or model.safetensors.index.json");
  }
}

struct Checkpoint::Converted {
  std::vector<uint8_t> bytes;
  TensorView view;
};

struct Checkpoint::QuantizedSlot {
  QuantizedTensor tensor;
  std::vector<uint8_t> reordered;  // q/k rows in Hugging Face order, when needed
};

namespace {
// Tells the kernel the whole pages inside [p, p + n) of a mapping are not needed now.
void DropPages(const void* p, size_t n) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (addr + page - 1) / page * page, end = (addr + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}
}  // namespace

Checkpoint::~Checkpoint() = default;

Checkpoint::Checkpoint(std::shared_ptr<const GgufModel> gguf) : dir_(gguf->origin()), gguf_(std::move(gguf)) {
  for (const GgufModelTensor& t : gguf_->tensors()) {
    Entry e;
    e.gguf = &t;
    if (t.is_float() && t.rope_heads == 0) {  // usable in place
      auto v = std::make_unique<TensorView>();
      v->name = t.name;
      v->dtype = t.type() == GgmlType::F32 ? DType::F32 : t.type() == GgmlType::F16 ? DType::F16 : DType::BF16;
      v->shape = t.shape;
      v->data = t.stored->data;
      e.view = v.get();
      gguf_views_.push_back(std::move(v));
    }
    by_name_.emplace(t.name, e);
  }
}

const TensorView* Checkpoint::Find(const std::string& canonical_name) const {
  auto it = by_name_.find(canonical_name);
  if (it == by_name_.end()) return nullptr;
  const Entry& e = it->second;
  if (e.view != nullptr || e.gguf == nullptr) return e.view;
  // A GGUF tensor that needs converting: reordered rows in its float type, or widened blocks.
  auto& slot = converted_[canonical_name];
  if (!slot) {
    auto c = std::make_unique<Converted>();
    const GgufModelTensor& t = *e.gguf;
    c->view.name = t.name;
    c->view.shape = t.shape;
    if (t.is_float()) {
      c->bytes = ReadRowsHfOrder(t);
      c->view.dtype = t.type() == GgmlType::F32 ? DType::F32 : t.type() == GgmlType::F16 ? DType::F16 : DType::BF16;
    } else {
      std::vector<float> f = ReadAsF32(t);
      c->bytes.resize(f.size() * sizeof(float));
      std::memcpy(c->bytes.data(), f.data(), c->bytes.size());
      c->view.dtype = DType::F32;
    }
    c->view.data = c->bytes.data();
    slot = std::move(c);
  }
  return &slot->view;
}

const Checkpoint::QuantizedTensor* Checkpoint::FindQuantized(const std::string& canonical_name) const {
  auto it = by_name_.find(canonical_name);
  if (it == by_name_.end() || it->second.gguf == nullptr || it->second.gguf->is_float()) return nullptr;
  auto& slot = quantized_[canonical_name];
  if (!slot) {
    const GgufModelTensor& t = *it->second.gguf;
    auto q = std::make_unique<QuantizedSlot>();
    q->tensor.name = t.name;
    q->tensor.type = t.type();
    q->tensor.shape = t.shape;
    q->tensor.nbytes = static_cast<size_t>(t.stored->nbytes);
    q->tensor.blocks = t.stored->data;
    if (t.rope_heads > 0) {  // q/k rows back in Hugging Face order: a reordered copy
      q->reordered = ReadRowsHfOrder(t);
      q->tensor.blocks = q->reordered.data();
    }
    slot = std::move(q);
  }
  return &slot->tensor;
}

const TensorView& Checkpoint::Get(const std::string& canonical_name) const {
  const TensorView* t = Find(canonical_name);
  if (t == nullptr) Fail("checkpoint ", dir_, ": missing tensor '", canonical_name, "'");
  return *t;
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, entry] : by_name_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

void Checkpoint::ReleasePages(const std::string& canonical_name) const {
  auto it = by_name_.find(canonical_name);
  if (it == by_name_.end()) Fail("checkpoint ", dir_, ": missing tensor '", canonical_name, "'");
  const Entry& e = it->second;
  if (e.file != nullptr) {
    e.file->ReleasePages(*e.view);
  } else if (e.gguf != nullptr) {  // GGUF: the mapped bytes and any copy made from them
    DropPages(e.gguf->stored->data, static_cast<size_t>(e.gguf->stored->nbytes));
    // Both copies go: a caller that looked for blocks (FindQuantized) and then widened the
    // tensor (Get) because the kernels do not take its type holds its own converted
    // weights by now; keeping the F32 copy cost a 7B Q4_K_M model about 26 GB.
    quantized_.erase(canonical_name);
    converted_.erase(canonical_name);
  }
}

size_t Checkpoint::HeldCopyBytes() const {
  size_t n = 0;
  for (const auto& [name, c] : converted_) n += c->bytes.size();
  for (const auto& [name, q] : quantized_) n += q->reordered.size();
  return n;
}

}  // namespace ficoco
