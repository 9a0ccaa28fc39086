#include "eval/metrics/yes_no.h"

#include <algorithm>

namespace ficoco::eval {
namespace {
double Ratio(long long a, long long b) { return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b); }
}  // namespace

bool PopeSaysYes(const std::string& reply) {
  std::string text = reply.substr(0, reply.find('.'));  // npos keeps everything
  text.erase(std::remove(text.begin(), text.end(), ','), text.end());
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (word == "No" || word == "no" || word == "not") return false;
    start = end + 1;
  }
  return true;
}

MmeReply ParseMmeReply(const std::string& reply) {
  std::string lower = reply;
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (lower == "yes") return MmeReply::Yes;
  if (lower == "no") return MmeReply::No;
  const std::string prefix = lower.substr(0, 4);
  if (prefix.find("yes") != std::string::npos) return MmeReply::Yes;
  if (prefix.find("no") != std::string::npos) return MmeReply::No;
  return MmeReply::Other;
}

void BinaryCounts::Add(bool predicted_yes, bool label_yes) {
  if (predicted_yes && label_yes) ++tp;
  else if (predicted_yes) ++fp;
  else if (!label_yes) ++tn;
  else ++fn;
}

double BinaryCounts::accuracy() const { return Ratio(tp + tn, total()); }
double BinaryCounts::precision() const { return Ratio(tp, tp + fp); }
double BinaryCounts::recall() const { return Ratio(tp, tp + fn); }
double BinaryCounts::f1() const {
  const double p = precision(), r = recall();
  return p + r == 0 ? 0.0 : 2 * p * r / (p + r);
}
double BinaryCounts::yes_ratio() const { return Ratio(tp + fp, total()); }

}  // namespace ficoco::eval
