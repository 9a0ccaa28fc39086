// Next-token choice: greedy (temperature 0) or sampling with temperature, top-k,
// top-p and a repetition penalty (CTRL-style, as transformers applies it), seeded.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace ficoco {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  float repetition_penalty = 1.0f;  // 1 = off
  uint64_t seed = 0;
};

// Checks ranges; throws Error naming the option.
void ValidateSamplingParams(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
  // `logits` is modified (penalty, temperature). `history` = ids already in the context.
  int Next(std::vector<float>& logits, const std::vector<int>& history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

// Index of the largest value (lowest index on ties).
int ArgMax(const std::vector<float>& v);

}  // namespace ficoco
