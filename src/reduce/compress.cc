#include "reduce/compress.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace ficoco {
namespace {

void ValidatePlan(const LayerPlan& plan, int64_t rows) {
  const FilterResult& f = plan.filter;
  const Routing& r = plan.routing;
  std::vector<char> state(static_cast<size_t>(rows), 0);  // 1 = discarded, 2 = kept candidate
  for (int32_t i : f.discard) {
    if (i < 0 || i >= rows) Fail("compress: discarded row ", i, " is outside the ", rows, "-row sequence");
    if (state[static_cast<size_t>(i)]) Fail("compress: row ", i, " is discarded twice");
    state[static_cast<size_t>(i)] = 1;
  }
  for (int32_t j : f.keep) {
    if (j < 0 || j >= rows) Fail("compress: kept row ", j, " is outside the ", rows, "-row sequence");
    if (state[static_cast<size_t>(j)]) Fail("compress: row ", j, " is both kept and discarded");
    state[static_cast<size_t>(j)] = 2;
  }
  if (plan.rule == CompressRule::Prune) return;
  if (r.sources.empty() && r.num_sources() != static_cast<int64_t>(f.discard.size()))
    Fail("compress: routing has ", r.num_sources(), " sources for ", f.discard.size(), " discarded tokens");
  if (!r.sources.empty() && r.num_sources() != static_cast<int64_t>(r.sources.size()))
    Fail("compress: routing has ", r.num_sources(), " source ranges for ", r.sources.size(), " source rows");
  for (int32_t i : r.sources)
    if (i < 0 || i >= rows || state[static_cast<size_t>(i)] == 0)
      Fail("compress: source row ", i, " is neither a discarded nor a kept candidate");
  if (r.dst.size() != r.alpha.size() || r.src_begin.front() != 0 || r.src_begin.back() != static_cast<int32_t>(r.dst.size()))
    Fail("compress: routing arrays are inconsistent");
  for (size_t s = 0; s + 1 < r.src_begin.size(); ++s)
    if (r.src_begin[s] > r.src_begin[s + 1]) Fail("compress: routing offsets decrease at source ", s);
  for (size_t p = 0; p < r.dst.size(); ++p) {
    const int32_t j = r.dst[p];
    if (plan.rule == CompressRule::FuseIntoNew) {
      if (j > kNewToken) Fail("compress: fusing into new tokens, but pair ", p, " targets row ", j);
    } else if (j < 0 || j >= rows || state[static_cast<size_t>(j)] != 2) {
      Fail("compress: target row ", j, " is not a kept token");
    }
    if (!r.sources.empty()) {
      const size_t s = static_cast<size_t>(std::upper_bound(r.src_begin.begin(), r.src_begin.end(), static_cast<int32_t>(p)) -
                                           r.src_begin.begin()) - 1;
      if (r.sources[s] == j) Fail("compress: row ", j, " is routed into itself");
    }
    if (!std::isfinite(r.alpha[p]) || r.alpha[p] < 0) Fail("compress: weight ", r.alpha[p], " of pair ", p, " is invalid");
  }
}

}  // namespace

void Compress(Matrix& hidden, std::vector<TokenMeta>& meta, const LayerPlan& plan) {
  const int64_t rows = hidden.rows(), d = hidden.cols();
  if (static_cast<int64_t>(meta.size()) != rows) Fail("compress: ", meta.size(), " token records for ", rows, " rows");
  ValidatePlan(plan, rows);
  const FilterResult& f = plan.filter;
  const Routing& r = plan.routing;
  // FuseIntoNew: new token g = Σ α X over the pairs routed to NewToken(g) (not renormalised).
  std::vector<std::vector<float>> fused;
  std::vector<float> fused_size;
  if (plan.rule == CompressRule::FuseIntoNew) {
    for (int64_t s = 0; s < r.num_sources(); ++s) {
      const int32_t src = r.source_row(f.discard, static_cast<size_t>(s));
      const float* x = hidden.row(src);
      for (int32_t p = r.src_begin[s]; p < r.src_begin[s + 1]; ++p) {
        const auto g = static_cast<size_t>(kNewToken - r.dst[static_cast<size_t>(p)]);
        if (g >= fused.size()) {
          fused.resize(g + 1, std::vector<float>(static_cast<size_t>(d), 0.0f));
          fused_size.resize(g + 1, 0.0f);
        }
        const float w = r.alpha[static_cast<size_t>(p)];
        for (int64_t c = 0; c < d; ++c) fused[g][static_cast<size_t>(c)] += w * x[c];
        fused_size[g] += meta[static_cast<size_t>(src)].size;
      }
    }
  } else if (plan.rule != CompressRule::Prune && r.num_pairs() > 0) {
    // Accumulate every contribution first, then normalise
    // each target once, so the result does not depend on the order of sources.
    // Only rows that receive something get an accumulator (a few per source).
    std::vector<int32_t> slot(static_cast<size_t>(rows), -1);
    int32_t slots = 0;
    for (int32_t j : r.dst)
      if (slot[static_cast<size_t>(j)] < 0) slot[static_cast<size_t>(j)] = slots++;
    std::vector<double> received(static_cast<size_t>(slots), 0.0);  // Σ weights
    std::vector<float> acc(static_cast<size_t>(slots) * static_cast<size_t>(d), 0.0f);
    // Every source is read before any target is written, so a kept source contributes
    // its value from before this layer's merge.
    for (int64_t s = 0; s < r.num_sources(); ++s) {
      const int32_t src = r.source_row(f.discard, static_cast<size_t>(s));
      const float* x = hidden.row(src);
      const float size = meta[static_cast<size_t>(src)].size;
      for (int32_t p = r.src_begin[s]; p < r.src_begin[s + 1]; ++p) {
        const int32_t k = slot[static_cast<size_t>(r.dst[static_cast<size_t>(p)])];
        const float alpha = r.alpha[static_cast<size_t>(p)];
        const float w = plan.rule == CompressRule::Average ? 1.0f
                        : plan.rule == CompressRule::SizeWeighted ? alpha * size
                                                                  : alpha;
        float* a = acc.data() + static_cast<int64_t>(k) * d;
        for (int64_t c = 0; c < d; ++c) a[c] += w * x[c];
        received[static_cast<size_t>(k)] += w;
      }
    }
    for (int32_t j : f.keep) {
      const int32_t k = slot[static_cast<size_t>(j)];
      if (k < 0) continue;  // untouched rows stay bit-for-bit the same
      const double got = received[static_cast<size_t>(k)];
      float* y = hidden.row(j);
      const float* a = acc.data() + static_cast<int64_t>(k) * d;
      if (plan.rule == CompressRule::SizeWeighted) {
        float& own = meta[static_cast<size_t>(j)].size;
        const float inv = static_cast<float>(1.0 / (own + got));
        for (int64_t c = 0; c < d; ++c) y[c] = (own * y[c] + a[c]) * inv;
        own = static_cast<float>(own + got);
        continue;
      }
      const float norm = plan.rule == CompressRule::Additive ? 1.0f : static_cast<float>(1.0 / (1.0 + got));
      for (int64_t c = 0; c < d; ++c) y[c] = (y[c] + a[c]) * norm;
    }
  }
  std::vector<char> gone(static_cast<size_t>(rows), 0);
  for (int32_t i : f.discard) gone[static_cast<size_t>(i)] = 1;
  std::vector<int32_t> survivors;
  survivors.reserve(static_cast<size_t>(rows) - f.discard.size());
  for (int64_t i = 0; i < rows; ++i)
    if (!gone[static_cast<size_t>(i)]) survivors.push_back(static_cast<int32_t>(i));
  if (!plan.order.empty()) {
    std::vector<int32_t> sorted = plan.order;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != survivors) Fail("compress: the new order is not a permutation of the ", survivors.size(), " surviving rows");
    survivors = plan.order;
  }
  if (fused.empty()) {
    hidden.KeepRows(survivors);
    std::vector<TokenMeta> kept;
    kept.reserve(survivors.size());
    for (int32_t i : survivors) kept.push_back(meta[static_cast<size_t>(i)]);
    meta = std::move(kept);
    return;
  }
  // New tokens go right after the last kept candidate (the end of the image span).
  std::vector<char> is_kept(static_cast<size_t>(rows), 0);
  for (int32_t j : f.keep) is_kept[static_cast<size_t>(j)] = 1;
  size_t insert_at = survivors.size();
  for (size_t i = survivors.size(); i-- > 0;)
    if (is_kept[static_cast<size_t>(survivors[i])]) {
      insert_at = i + 1;
      break;
    }
  Matrix out(static_cast<int64_t>(survivors.size() + fused.size()), d);
  std::vector<TokenMeta> out_meta;
  out_meta.reserve(survivors.size() + fused.size());
  auto put = [&](const float* x, const TokenMeta& m) {
    std::copy_n(x, d, out.row(static_cast<int64_t>(out_meta.size())));
    out_meta.push_back(m);
  };
  for (size_t i = 0; i < insert_at; ++i) put(hidden.row(survivors[i]), meta[static_cast<size_t>(survivors[i])]);
  // A new token has no original index or cell; it takes the position of the row before it.
  const int32_t pos = insert_at > 0 ? meta[static_cast<size_t>(survivors[insert_at - 1])].pos_id : 0;
  for (size_t g = 0; g < fused.size(); ++g) put(fused[g].data(), TokenMeta{-1, -1, -1, pos, TokenRole::Visual, fused_size[g]});
  for (size_t i = insert_at; i < survivors.size(); ++i) put(hidden.row(survivors[i]), meta[static_cast<size_t>(survivors[i])]);
  hidden = std::move(out);
  meta = std::move(out_meta);
}

}  // namespace ficoco
