#include <omp.h>

#include "base/error.h"
#include "commands.h"

namespace ficoco::cli {

int SetThreads(int requested) {
  if (requested < 0) Fail("--threads must be >= 0 (0 = all cores), got ", requested);
  const int n = requested == 0 ? omp_get_num_procs() : requested;
  omp_set_num_threads(n);  // oneDNN's OpenMP runtime follows this too
  return n;
}

}  // namespace ficoco::cli
