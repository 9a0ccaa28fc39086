#include "base/memory_stats.h"

#include <fstream>
#include <string>

namespace ficoco {
namespace {

int64_t ReadStatusKb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size())) * 1024;
  }
  return 0;
}

}  // namespace

int64_t PeakRssBytes() { return ReadStatusKb("VmHWM:"); }
int64_t CurrentRssBytes() { return ReadStatusKb("VmRSS:"); }

}  // namespace ficoco
