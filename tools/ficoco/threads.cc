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

// libgomp's default lets idle threads spin for a while before sleeping. On a host whose
// cores are shared with other work (CI machines, two test binaries at once, a training
// job) a spinning thread waits for a descheduled partner and every parallel region pays
// a time slice: decode measured 0.2 tok/s instead of 5.0 on the Q4_0 7B with the other
// core busy. Passive waiting costs a futex wake per region (microseconds; decode runs a
// few hundred regions per token). libgomp reads the variable once when it loads, so the
// only way to change it for this process is to start it again with the variable set.
// An explicit OMP_WAIT_POLICY from the user is left alone.
void PreferPassiveOmpWaiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0) return;
  execv("/proc/self/exe", argv);
  // Not fatal: without /proc the process simply keeps libgomp's default.
  std::fprintf(stderr, "ficoco: note: could not restart with OMP_WAIT_POLICY=PASSIVE (%s)\n", std::strerror(errno));
}

}  // namespace ficoco::cli
