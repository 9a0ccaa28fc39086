#include <omp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "commands.h"

namespace ficoco::cli {

int SetThreads(int requested) {
  if (requested < 0) Fail("--threads must be >= 0 (0 = all cores), got ", requested);
  const int n = requested == 0 ? omp_get_num_procs() : requested;
  omp_set_num_threads(n);  // oneDNN's OpenMP runtime follows this too
  return n;
}

// Two settings that only take effect when the process starts, so the process starts again
// with them (once: afterwards both variables are set). A value the user set is left alone.
//
// OMP_WAIT_POLICY=PASSIVE. libgomp's default lets idle threads spin for a while before
// sleeping. On a host whose cores are shared with other work (CI machines, two test
// binaries at once, a training job) a spinning thread waits for a descheduled partner and
// every parallel region pays a time slice: decode measured 0.2 tok/s instead of 5.0 on the
// Q4_0 7B with the other core busy. Passive waiting costs a futex wake per region
// (microseconds; decode runs a few hundred regions per token). On a machine of one's own,
// GOMP_SPINCOUNT=20000 (a short spin) is faster; see docs/quantized.md.
//
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1. Activations and the KV cache are ordinary heap
// memory; with 4 KiB pages a decode step's pass over a long KV cache evicts the TLB entries
// of the weights' huge pages (base/weight_buffer.h), and the weight stream then walks page
// tables. With this tunable glibc marks its large allocations MADV_HUGEPAGE too: Q4_0 7B
// decode at a 724-token context measured 5.0-5.4 tok/s with it and 4.0-4.3 without
// (interleaved, docs/quantized.md).
void PreferProcessSettings(char** argv) {
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) changed |= setenv("OMP_WAIT_POLICY", "PASSIVE", 0) == 0;
  if (std::getenv("GLIBC_TUNABLES") == nullptr) changed |= setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 0) == 0;
  if (!changed) return;
  execv("/proc/self/exe", argv);
  // Not fatal: without /proc the process simply keeps the defaults.
  std::fprintf(stderr, "ficoco: note: could not restart with OMP_WAIT_POLICY/GLIBC_TUNABLES set (%s)\n",
               std::strerror(errno));
}

}  // namespace ficoco::cli
