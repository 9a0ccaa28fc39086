// Yes/no benchmarks: how POPE and MME turn a free-form reply into yes or no, and the
// binary-classification counts POPE reports.
#pragma once
#include <string>

namespace ficoco::eval {

// LLaVA's POPE rule: keep the text before the first '.', delete commas, split on
// single spaces; a word "No", "no" or "not" makes the reply "no", anything else
// (including an empty reply) "yes". Returns true for yes.
bool PopeSaysYes(const std::string& reply);

enum class MmeReply { Yes, No, Other };
// MME's rule: lowercase; "yes"/"no" exactly, else "yes" or "no" inside the first four
// characters (checked in that order), else Other (never correct).
MmeReply ParseMmeReply(const std::string& reply);

// Positive class = "yes".
struct BinaryCounts {
  long long tp = 0, fp = 0, tn = 0, fn = 0;
  long long total() const { return tp + fp + tn + fn; }
  void Add(bool predicted_yes, bool label_yes);
  // Ratios in [0, 1]; a zero denominator gives 0 (the Python scripts would raise).
  double accuracy() const;
  double precision() const;
  double recall() const;
  double f1() const;
  double yes_ratio() const;  // share of "yes" predictions
};

}  // namespace ficoco::eval
