// Progress of a long evaluation on stderr: a redrawn bar with rate and ETA on a
// terminal, plain periodic lines otherwise (log files of batch jobs stay readable).
#pragma once
#include <cstdio>
#include <string>

#include "base/timer.h"

namespace ficoco::eval {

// "1:02:03" / "4:05" (h:mm:ss or m:ss); "?" for negative or non-finite seconds.
std::string FormatDuration(double seconds);

// "12/100 (12%) 3.40 q/s, ETA 0:26": `done` of `total` after `elapsed_s` of this run
// (the rate counts only questions answered in this run: `done - resumed`).
std::string FormatProgress(long long done, long long total, long long resumed, double elapsed_s);

class ProgressMeter {
 public:
  // `total` questions of which `resumed` were answered by an earlier run. `tty`
  // chooses the redrawn bar; otherwise a line at most every `interval_s` seconds
  // (and always for the first and the last question).
  ProgressMeter(long long total, long long resumed, std::FILE* out, bool tty, double interval_s = 30.0);
  // One more question answered.
  void Step();
  // Ends the bar's line (tty) so later output starts on a fresh line.
  void Finish();

 private:
  void Print(bool force);
  long long total_, resumed_, done_;
  std::FILE* out_;
  bool tty_;
  double interval_s_, last_print_s_ = -1;
  Stopwatch clock_;
};

}  // namespace ficoco::eval
