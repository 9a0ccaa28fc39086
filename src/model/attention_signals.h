// What a token-reduction method may read about one layer's attention, computed
// only when asked for. The engine hands the layer's queries and keys (post-RoPE in
// the LLM) to this object; nothing is materialised unless a method calls it, so a
// plain forward pass pays nothing.
//
// Z̄[r, c]  head-averaged scaled logit = (q_r · k_c) / (H √d), one full-width dot
//           product (ficoco-spec §1.2); with GQA each key head serves its group.
// Ā[r, c]  mean over heads of the per-head softmax probabilities of row r.
// P[r, c]  softmax over the visible keys of the head-averaged logits Z̄[r, ·].
// Probabilities respect the causal mask and any key bias (proportional attention);
// logits are returned unmasked and unbiased.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "tensor/tensor.h"

namespace ficoco {

class AttentionSignals {
 public:
  // With `gemm`, logit blocks go through one matrix product (else a scalar loop).
  AttentionSignals(const Matrix& queries, const Matrix& keys, const AttentionShape& shape, const AttentionMask& mask,
                   GemmContext* gemm = nullptr)
      : q_(queries), k_(keys), shape_(shape), mask_(mask), gemm_(gemm) {}

  int64_t num_queries() const { return q_.rows(); }
  int64_t num_keys() const { return k_.rows(); }
  const Matrix& queries() const { return q_; }
  const Matrix& keys() const { return k_; }
  const AttentionShape& shape() const { return shape_; }

  // [rows.size(), cols.size()] blocks, fp32.
  Matrix MeanLogits(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const;
  // mean over `cols` of Z̄[r, c] for each r in `rows`, unmasked: q_r against the mean
  // key, O((rows + cols)·d) instead of a rows × cols block.
  std::vector<float> RowMeanLogits(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const;
  Matrix MeanOfProbs(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const;
  Matrix ProbsOfMeanLogits(const std::vector<int32_t>& rows, const std::vector<int32_t>& cols) const;
  // Keys averaged over key heads [Tk, d] (for no-CLS encoders and ToMe-style similarity).
  Matrix HeadMeanKeys() const;

  // Number of keys row r may see (all, or the causal prefix).
  int64_t Visible(int32_t row) const;

 private:
  // Per-head logits of one query row against all visible keys: [H, visible].
  std::vector<float> HeadLogitsRow(int32_t row, int64_t* visible) const;

  const Matrix& q_;
  const Matrix& k_;
  AttentionShape shape_;
  AttentionMask mask_;
  GemmContext* gemm_;
};

}  // namespace ficoco
