#include "base/weight_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "base/error.h"

namespace ficoco {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::shared_ptr<uint8_t> AllocateWeightBuffer(size_t bytes) {
  if (bytes < kHugePage) {
    // Small tensors: the heap, zeroed like the mapped case.
    auto* p = new (std::align_val_t(64)) uint8_t[bytes == 0 ? 1 : bytes]();
    return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { ::operator delete[](q, std::align_val_t(64)); });
  }
  // Over-map by one huge page and trim, so the kept range starts on a 2 MiB boundary
  // (mmap only promises 4 KiB alignment) and can be backed by huge pages.
  const size_t length = RoundUp(bytes, kHugePage);
  const size_t mapped = length + kHugePage;
  void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) Fail("cannot allocate ", bytes, " bytes for weights: ", std::strerror(errno));
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = RoundUp(base, kHugePage);
  if (aligned > base) ::munmap(raw, aligned - base);
  const uintptr_t end = base + mapped, kept_end = aligned + length;
  if (end > kept_end) ::munmap(reinterpret_cast<void*>(kept_end), end - kept_end);
#ifdef MADV_HUGEPAGE
  ::madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);  // advice only; failure is harmless
#endif
  return std::shared_ptr<uint8_t>(reinterpret_cast<uint8_t*>(aligned),
                                  [length](uint8_t* p) { ::munmap(p, length); });
}

}  // namespace ficoco
