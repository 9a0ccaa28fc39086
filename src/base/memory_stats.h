#pragma once
#include <cstdint>

namespace ficoco {

// Peak resident set size of this process so far (VmHWM), in bytes; 0 if unknown.
int64_t PeakRssBytes();
// Current resident set size (VmRSS), in bytes; 0 if unknown.
int64_t CurrentRssBytes();

}  // namespace ficoco
