#include "eval/progress.h"

#include <cmath>

namespace ficoco::eval {

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = std::llround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

std::string FormatProgress(long long done, long long total, long long resumed, double elapsed_s) {
  const long long fresh = done - resumed;
  const double rate = elapsed_s > 0 && fresh > 0 ? fresh / elapsed_s : 0.0;
  const int percent = total > 0 ? static_cast<int>(100 * done / total) : 100;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%lld/%lld (%d%%) %.2f q/s, ETA %s", done, total, percent, rate,
                rate > 0 ? FormatDuration((total - done) / rate).c_str() : "?");
  return buf;
}

ProgressMeter::ProgressMeter(long long total, long long resumed, std::FILE* out, bool tty, double interval_s)
    : total_(total), resumed_(resumed), done_(resumed), out_(out), tty_(tty), interval_s_(interval_s) {
  if (resumed_ > 0) std::fprintf(out_, "resuming: %lld of %lld questions already answered\n", resumed_, total_);
  Print(true);
}

void ProgressMeter::Step() {
  ++done_;
  Print(done_ == total_ || done_ == resumed_ + 1);
}

void ProgressMeter::Finish() {
  if (tty_) std::fputc('\n', out_);
  std::fflush(out_);
}

void ProgressMeter::Print(bool force) {
  const double now = clock_.Seconds();
  const std::string text = FormatProgress(done_, total_, resumed_, now);
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * done_ / total_) : kWidth;
    // \r + "erase to end of line" redraws in place.
    std::fprintf(out_, "\r[%s%s] %s\x1b[K", std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                 text.c_str());
  } else {
    if (!force && last_print_s_ >= 0 && now - last_print_s_ < interval_s_) return;
    std::fprintf(out_, "progress: %s\n", text.c_str());
  }
  last_print_s_ = now;
  std::fflush(out_);
}

}  // namespace ficoco::eval
