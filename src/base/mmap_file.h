// Read-only memory map of a whole file. Weights stay in the page cache and are
// paged in on first touch; nothing is copied wholesale.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ficoco {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Tells the kernel the pages in [offset, offset+len) will not be needed soon.
  void Release(size_t offset, size_t len) const;

 private:
  void Reset();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ficoco
