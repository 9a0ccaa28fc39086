#include "io/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/json_file.h"

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

const TensorView* Checkpoint::Find(const std::string& canonical_name) const {
  auto it = by_name_.find(canonical_name);
  return it == by_name_.end() ? nullptr : it->second.view;
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
  it->second.file->ReleasePages(*it->second.view);
}

}  // namespace ficoco
