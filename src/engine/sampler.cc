#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"

namespace ficoco {

void ValidateSamplingParams(const SamplingParams& p) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature)) Fail("--temperature must be >= 0, got ", p.temperature);
  if (p.top_k < 0) Fail("--top-k must be >= 0, got ", p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1)) Fail("--top-p must be in (0, 1], got ", p.top_p);
  if (!(p.repetition_penalty > 0) || !std::isfinite(p.repetition_penalty))
    Fail("--repeat-penalty must be > 0, got ", p.repetition_penalty);
}

int ArgMax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

int Sampler::Next(std::vector<float>& logits, const std::vector<int>& history) {
  if (p_.repetition_penalty != 1.0f) {
    std::vector<int> seen(history);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int id : seen) {
      if (id < 0 || id >= static_cast<int>(logits.size())) continue;
      float& l = logits[static_cast<size_t>(id)];
      l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
    }
  }
  if (p_.temperature == 0.0f) return ArgMax(logits);
  std::vector<int> idx(logits.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  size_t keep = idx.size();
  if (p_.top_k > 0) keep = std::min(keep, static_cast<size_t>(p_.top_k));
  std::vector<double> prob(keep);
  const double mx = logits[static_cast<size_t>(idx[0])];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp((logits[static_cast<size_t>(idx[i])] - mx) / p_.temperature);
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += prob[i] / sum;
      if (cum >= p_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    prob.resize(keep);
    sum = std::accumulate(prob.begin(), prob.end(), 0.0);
  }
  std::uniform_real_distribution<double> u(0.0, sum);
  double r = u(rng_);
  for (size_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace ficoco
