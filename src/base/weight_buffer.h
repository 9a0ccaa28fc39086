// Memory for weights the engine repacks at load (the int8 kernels' layout), which every
// decode step then streams whole: gigabytes read once per token.
//
// With 4 KiB pages a 7B model's 3.8 GB of Q4_0 weights span about a million pages, far
// more than the TLB holds, so each token's pass over them also walks page tables. Buffers
// of 2 MiB or more are therefore mapped 2 MiB-aligned and marked MADV_HUGEPAGE, so that
// Linux's transparent huge pages (default mode "madvise" on Debian) can back them with
// 2 MiB pages. Where the kernel refuses, the memory is ordinary pages: correct, just slower.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ficoco {

// Zero-filled, 64-byte aligned (2 MiB aligned when bytes >= 2 MiB), freed when the last
// copy of the pointer goes. Throws Error when the memory cannot be had.
std::shared_ptr<uint8_t> AllocateWeightBuffer(size_t bytes);

}  // namespace ficoco
