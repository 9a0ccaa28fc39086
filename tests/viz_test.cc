// ReductionTrace::Record on hand-made plans, the patch-fate chain following, the
// legend text, and the --viz picture read back as pixels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/image.h"
#include "model/token_meta.h"
#include "reduce/trace.h"
#include "reduce/viz.h"
#include "test_support.h"

namespace ficoco {
namespace {

using test::ExpectError;
using test::MakeTempDir;

constexpr int kGrid = 4;

// Row of the visual token for `cell` in a sequence's records.
int32_t RowOfCell(const std::vector<TokenMeta>& meta, int cell) {
  for (size_t row = 0; row < meta.size(); ++row) {
    if (meta[row].grid_row * kGrid + meta[row].grid_col == cell) return static_cast<int32_t>(row);
  }
  ADD_FAILURE() << "no token for cell " << cell;
  return -1;
}

// Candidates are the visual rows; S is `discard`, T the rest.
FilterResult FilterDiscarding(const std::vector<TokenMeta>& meta, const std::vector<int32_t>& discard) {
  FilterResult f;
  for (size_t row = 0; row < meta.size(); ++row) {
    if (meta[row].role != TokenRole::Visual) continue;
    const auto r = static_cast<int32_t>(row);
    f.candidates.push_back(r);
    f.scores.push_back(0.1f * static_cast<float>(row));
    (std::find(discard.begin(), discard.end(), r) != discard.end() ? f.discard : f.keep).push_back(r);
  }
  return f;
}

// LLM prompt records: 3 system tokens, the patches still alive after the vision
// layer in raster order, 2 text tokens.
std::vector<TokenMeta> LlmMeta(const std::vector<int>& gone_cells) {
  std::vector<TokenMeta> meta;
  for (int i = 0; i < 3; ++i) meta.push_back({i, -1, -1, i, TokenRole::System});
  for (int cell = 0; cell < kGrid * kGrid; ++cell) {
    if (std::find(gone_cells.begin(), gone_cells.end(), cell) != gone_cells.end()) continue;
    const int i = static_cast<int>(meta.size());
    meta.push_back({i, cell / kGrid, cell % kGrid, i, TokenRole::Visual});
  }
  for (int i = 0; i < 2; ++i) {
    const int at = static_cast<int>(meta.size());
    meta.push_back({at, -1, -1, at, TokenRole::Text});
  }
  return meta;
}

// The story every test below draws on:
//   vision layer 1: cell 0 → cells 4 (0.7) and 8 (0.3); cell 1 → cell 2; cell 5 pruned;
//   LLM layer 2:    cell 4 → cell 12.
// So cell 0's information ends in cell 12 (via 4), cell 1's in cell 2.
ReductionTrace StoryTrace() {
  ReductionTrace trace;
  trace.grid = kGrid;
  const std::vector<TokenMeta> vision = VisionTokenMeta(kGrid);
  LayerPlan v;
  v.filter = FilterDiscarding(vision, {RowOfCell(vision, 0), RowOfCell(vision, 1), RowOfCell(vision, 5)});
  v.routing.src_begin = {0, 2, 3, 3};
  v.routing.dst = {RowOfCell(vision, 4), RowOfCell(vision, 8), RowOfCell(vision, 2)};
  v.routing.alpha = {0.7f, 0.3f, 1.0f};
  trace.Record(ReductionSite::Vision, 1, v, vision, 14);

  const std::vector<TokenMeta> llm = LlmMeta({0, 1, 5});
  LayerPlan l;
  l.filter = FilterDiscarding(llm, {RowOfCell(llm, 4)});
  l.routing.src_begin = {0, 1};
  l.routing.dst = {RowOfCell(llm, 12)};
  l.routing.alpha = {1.0f};
  trace.Record(ReductionSite::Llm, 2, l, llm, static_cast<int64_t>(llm.size()) - 1);
  return trace;
}

int CellOf(const TokenMeta& m) { return m.grid_row * kGrid + m.grid_col; }

// ---------------------------------------------------------------------------
// Record
// ---------------------------------------------------------------------------

TEST(TraceRecord, CopiesRecordsOfKeptDiscardedAndRoutedRows) {
  const ReductionTrace trace = StoryTrace();
  ASSERT_EQ(trace.plans.size(), 2u);
  const RecordedPlan& v = trace.plans[0];
  EXPECT_EQ(v.site, ReductionSite::Vision);
  EXPECT_EQ(v.layer, 1);
  EXPECT_EQ(v.rule, CompressRule::SelfPreserving);
  EXPECT_EQ(v.tokens_before, 17);
  EXPECT_EQ(v.tokens_after, 14);
  EXPECT_EQ(v.scores.size(), 16u);
  EXPECT_FLOAT_EQ(v.scores[0], 0.1f);
  ASSERT_EQ(v.discarded.size(), 3u);
  EXPECT_EQ(CellOf(v.discarded[0]), 0);
  EXPECT_EQ(CellOf(v.discarded[1]), 1);
  EXPECT_EQ(CellOf(v.discarded[2]), 5);
  EXPECT_EQ(v.discarded[0].orig_index, 1);  // patch p is orig index p + 1 in the encoder
  EXPECT_EQ(v.kept.size(), 13u);
  ASSERT_EQ(v.src.size(), 3u);
  ASSERT_EQ(v.dst.size(), 3u);
  ASSERT_EQ(v.alpha.size(), 3u);
  EXPECT_EQ(CellOf(v.src[0]), 0);
  EXPECT_EQ(CellOf(v.dst[0]), 4);
  EXPECT_EQ(CellOf(v.src[1]), 0);
  EXPECT_EQ(CellOf(v.dst[1]), 8);
  EXPECT_EQ(CellOf(v.src[2]), 1);
  EXPECT_EQ(CellOf(v.dst[2]), 2);
  EXPECT_FLOAT_EQ(v.alpha[1], 0.3f);

  const RecordedPlan& l = trace.plans[1];
  EXPECT_EQ(l.site, ReductionSite::Llm);
  EXPECT_EQ(l.tokens_before, 18);  // 3 system + 13 patches + 2 text
  ASSERT_EQ(l.discarded.size(), 1u);
  EXPECT_EQ(l.discarded[0].orig_index, 5);  // prompt position, not the patch index
  EXPECT_EQ(CellOf(l.discarded[0]), 4);
  EXPECT_EQ(CellOf(l.dst[0]), 12);
}

TEST(TraceRecord, EmptyRoutingMeansEverySourcePruned) {
  const std::vector<TokenMeta> vision = VisionTokenMeta(kGrid);
  LayerPlan plan;
  plan.rule = CompressRule::Prune;
  plan.filter = FilterDiscarding(vision, {3, 4});
  ReductionTrace trace;
  trace.grid = kGrid;
  trace.Record(ReductionSite::Vision, 0, plan, vision, 15);
  ASSERT_EQ(trace.plans.size(), 1u);
  EXPECT_EQ(trace.plans[0].discarded.size(), 2u);
  EXPECT_TRUE(trace.plans[0].src.empty());
  EXPECT_EQ(trace.plans[0].rule, CompressRule::Prune);
}

TEST(TraceRecord, RejectsRowsOutsideTheSequenceAndMisshapenRouting) {
  const std::vector<TokenMeta> vision = VisionTokenMeta(kGrid);
  ReductionTrace trace;
  LayerPlan bad_row;
  bad_row.filter = FilterDiscarding(vision, {2});
  bad_row.filter.discard.push_back(99);
  bad_row.routing = Routing::PruneAll(2);
  ExpectError([&] { trace.Record(ReductionSite::Vision, 3, bad_row, vision, 15); },
              {"layer 3", "discarded row 99", "17 tokens"});

  LayerPlan bad_target;
  bad_target.filter = FilterDiscarding(vision, {2});
  bad_target.routing.src_begin = {0, 1};
  bad_target.routing.dst = {40};
  bad_target.routing.alpha = {1.0f};
  ExpectError([&] { trace.Record(ReductionSite::Vision, 3, bad_target, vision, 16); }, {"routing target row 40"});

  LayerPlan bad_sources;
  bad_sources.filter = FilterDiscarding(vision, {2, 3});
  bad_sources.routing = Routing::PruneAll(1);
  ExpectError([&] { trace.Record(ReductionSite::Vision, 3, bad_sources, vision, 15); },
              {"1 sources", "2 discarded"});
  EXPECT_TRUE(trace.plans.empty());
}

TEST(TraceRecord, SiteNames) {
  EXPECT_STREQ(ReductionSiteName(ReductionSite::Vision), "vision");
  EXPECT_STREQ(ReductionSiteName(ReductionSite::Llm), "llm");
}

// ---------------------------------------------------------------------------
// FinalFates and legend text
// ---------------------------------------------------------------------------

TEST(FinalFates, FollowsTheLargestAlphaTargetToASurvivor) {
  const std::vector<PatchFate> fates = FinalFates(StoryTrace());
  ASSERT_EQ(fates.size(), 16u);

  const PatchFate& f0 = fates[0];  // → 4 (0.7), and 4 → 12 in the LLM
  EXPECT_EQ(f0.kind, PatchFateKind::Merged);
  EXPECT_EQ(f0.site, ReductionSite::Vision);
  EXPECT_EQ(f0.layer, 1);
  EXPECT_EQ(f0.first_cell, 4);
  EXPECT_EQ(f0.final_cell, 12);
  EXPECT_FLOAT_EQ(f0.share, 0.7f);
  EXPECT_TRUE(f0.final_survives);

  EXPECT_EQ(fates[1].kind, PatchFateKind::Merged);
  EXPECT_EQ(fates[1].final_cell, 2);
  EXPECT_FLOAT_EQ(fates[1].share, 1.0f);

  EXPECT_EQ(fates[5].kind, PatchFateKind::Pruned);
  EXPECT_EQ(fates[5].site, ReductionSite::Vision);
  EXPECT_EQ(fates[5].final_cell, -1);
  EXPECT_FLOAT_EQ(fates[5].share, 0.0f);

  EXPECT_EQ(fates[4].kind, PatchFateKind::Merged);
  EXPECT_EQ(fates[4].site, ReductionSite::Llm);
  EXPECT_EQ(fates[4].layer, 2);
  EXPECT_EQ(fates[4].final_cell, 12);

  for (int c : {2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
    EXPECT_EQ(fates[c].kind, PatchFateKind::Kept) << c;
    EXPECT_EQ(fates[c].final_cell, c) << c;
    EXPECT_TRUE(fates[c].final_survives) << c;
  }
}

TEST(FinalFates, ChainEndingInAPrunedHolderDoesNotSurvive) {
  ReductionTrace trace;
  trace.grid = 2;
  RecordedPlan first;  // cell 0 → cell 1
  first.layer = 4;
  first.discarded = {{1, 0, 0, 1, TokenRole::Visual}};
  first.src = first.discarded;
  first.dst = {{2, 0, 1, 2, TokenRole::Visual}};
  first.alpha = {0.5f};
  RecordedPlan second;  // cell 1 pruned
  second.site = ReductionSite::Llm;
  second.layer = 2;
  second.discarded = {{9, 0, 1, 9, TokenRole::Visual}};
  trace.plans = {first, second};
  const std::vector<PatchFate> fates = FinalFates(trace);
  EXPECT_EQ(fates[0].kind, PatchFateKind::Merged);
  EXPECT_EQ(fates[0].final_cell, 1);
  EXPECT_FALSE(fates[0].final_survives);
  EXPECT_FLOAT_EQ(fates[0].share, 1.0f);  // its only target, whatever the raw alpha
  EXPECT_EQ(fates[1].kind, PatchFateKind::Pruned);
  EXPECT_EQ(fates[1].site, ReductionSite::Llm);
}

TEST(FinalFates, PruneRuleIgnoresTheRouting) {
  ReductionTrace trace;
  trace.grid = 2;
  RecordedPlan plan;
  plan.rule = CompressRule::Prune;
  plan.discarded = {{1, 0, 0, 1, TokenRole::Visual}};
  plan.src = plan.discarded;
  plan.dst = {{2, 0, 1, 2, TokenRole::Visual}};
  plan.alpha = {1.0f};
  trace.plans = {plan};
  EXPECT_EQ(FinalFates(trace)[0].kind, PatchFateKind::Pruned);
}

TEST(FinalFates, RejectsMalformedTraces) {
  ReductionTrace no_grid;
  ExpectError([&] { FinalFates(no_grid); }, {"grid"});

  ReductionTrace outside;
  outside.grid = 2;
  outside.plans.resize(1);
  outside.plans[0].discarded = {{1, 0, 5, 1, TokenRole::Visual}};
  ExpectError([&] { FinalFates(outside); }, {"(0, 5)", "2x2"});

  ReductionTrace twice;
  twice.grid = 2;
  twice.plans.resize(2);
  twice.plans[0].layer = 3;
  twice.plans[1].layer = 7;
  twice.plans[0].discarded = twice.plans[1].discarded = {{1, 1, 1, 1, TokenRole::Visual}};
  ExpectError([&] { FinalFates(twice); }, {"twice", "layer 3", "layer 7"});
}

TEST(LegendText, CountsAndLayers) {
  const ReductionTrace trace = StoryTrace();
  EXPECT_EQ(FateCountsText(FinalFates(trace)), "16 patches: 12 kept, 2 merged in vision, 1 merged in LLM, 1 pruned");
  EXPECT_EQ(ReducingLayersText(trace), "reduced at vision layer 1, LLM layer 2");

  ReductionTrace ranges;
  ranges.grid = kGrid;
  for (int layer : {8, 3, 4, 5}) {
    RecordedPlan p;
    p.layer = layer;
    p.discarded = {{layer, layer / kGrid, layer % kGrid, layer, TokenRole::Visual}};
    ranges.plans.push_back(p);
  }
  ranges.plans.push_back(RecordedPlan{});  // a layer that discarded nothing is not listed
  ranges.plans.back().layer = 20;
  EXPECT_EQ(ReducingLayersText(ranges), "reduced at vision layers 3-5, 8");

  ReductionTrace none;
  none.grid = kGrid;
  EXPECT_EQ(ReducingLayersText(none), "no reduction");
  EXPECT_EQ(FateCountsText(FinalFates(none)), "16 patches: 16 kept, 0 merged in vision, 0 merged in LLM, 0 pruned");
}

// ---------------------------------------------------------------------------
// The picture
// ---------------------------------------------------------------------------

constexpr uint8_t kGrey = 190;

// 56x56, 14 px per patch, each patch one flat colour; cells 1 and 4 share a grey
// so their two tints can be compared.
ImageU8 PatchImage() {
  ImageU8 image;
  image.width = image.height = 56;
  image.rgb.resize(56 * 56 * 3);
  for (int y = 0; y < 56; ++y) {
    for (int x = 0; x < 56; ++x) {
      const int row = y / 14, col = x / 14, cell = row * kGrid + col;
      uint8_t* p = image.pixel(y, x);
      if (cell == 1 || cell == 4) {
        p[0] = p[1] = p[2] = kGrey;
      } else {
        p[0] = static_cast<uint8_t>(60 + 50 * col);
        p[1] = static_cast<uint8_t>(60 + 50 * row);
        p[2] = 200;
      }
    }
  }
  return image;
}

int Brightness(const uint8_t* p) { return p[0] + p[1] + p[2]; }

TEST(ReductionViz, DimsDiscardedPatchesAndKeepsTheOthers) {
  const std::string path = MakeTempDir("viz") + "/story.png";
  const ImageU8 source = PatchImage();
  WriteReductionViz(path, source, StoryTrace());
  const ImageU8 out = DecodeImageFile(path);
  constexpr int kCell = 168;  // 672 / 4
  ASSERT_EQ(out.width, 4 * kCell);
  ASSERT_GT(out.height, 4 * kCell);  // legend strip below

  // Cell 15: kept, not a holder, far from every line.
  const uint8_t* kept = out.pixel(3 * kCell + kCell / 2, 3 * kCell + kCell / 2);
  const uint8_t* kept_src = source.pixel(3 * 14 + 7, 3 * 14 + 7);
  for (int ch = 0; ch < 3; ++ch) EXPECT_NEAR(kept[ch], kept_src[ch], 2) << ch;

  // Cell 1 (vision, grey source), sampled away from its line along y = 84.
  const uint8_t* vision = out.pixel(kCell * 4 / 5, kCell + kCell / 2);
  // Cell 4 (LLM, same grey), sampled away from its line along x = 84.
  const uint8_t* llm = out.pixel(kCell + kCell / 2, kCell / 5);
  EXPECT_LT(Brightness(vision), 0.7 * 3 * kGrey);
  EXPECT_LT(Brightness(llm), 0.7 * 3 * kGrey);
  EXPECT_GT(vision[2], vision[0]);  // blue-ish tint
  EXPECT_GT(llm[0], llm[2]);        // orange-ish tint

  // Cell 5 (pruned), off its cross.
  const uint8_t* pruned = out.pixel(kCell + kCell / 5, kCell + kCell / 2);
  const uint8_t* pruned_src = source.pixel(14 + 7, 14 + 7);
  EXPECT_LT(Brightness(pruned), 0.7 * Brightness(pruned_src));
}

TEST(ReductionViz, EmptyTraceDrawsImageAndGridOnly) {
  const std::string path = MakeTempDir("viz") + "/none.png";
  const ImageU8 source = PatchImage();
  ReductionTrace trace;
  trace.grid = kGrid;
  WriteReductionViz(path, source, trace);
  const ImageU8 out = DecodeImageFile(path);
  ASSERT_EQ(out.width, 672);
  for (int cell = 0; cell < 16; ++cell) {
    const int row = cell / kGrid, col = cell % kGrid;
    const uint8_t* p = out.pixel(row * 168 + 84, col * 168 + 84);
    const uint8_t* s = source.pixel(row * 14 + 7, col * 14 + 7);
    for (int ch = 0; ch < 3; ++ch) EXPECT_NEAR(p[ch], s[ch], 2) << "cell " << cell;
  }
}

TEST(ReductionViz, AnyGridSizeAndNonSquareImage) {
  const std::string dir = MakeTempDir("viz");
  ImageU8 image;
  image.width = 30;
  image.height = 20;
  image.rgb.assign(30 * 20 * 3, 128);
  for (int grid : {1, 3, 24, 200}) {
    ReductionTrace trace;
    trace.grid = grid;
    RecordedPlan plan;
    plan.discarded = {{1, 0, 0, 1, TokenRole::Visual}};
    if (grid > 1) {
      plan.src = plan.discarded;
      plan.dst = {{2, grid - 1, grid - 1, 2, TokenRole::Visual}};
      plan.alpha = {1.0f};
    }
    trace.plans = {plan};
    const std::string path = dir + "/grid" + std::to_string(grid) + ".png";
    WriteReductionViz(path, image, trace);
    const ImageU8 out = DecodeImageFile(path);
    EXPECT_EQ(out.width % grid, 0) << grid;
    EXPECT_GE(out.width, 600) << grid;
  }
}

TEST(ReductionViz, Errors) {
  const std::string dir = MakeTempDir("viz");
  const ReductionTrace trace = StoryTrace();
  ReductionTrace no_grid = trace;
  no_grid.grid = 0;
  ExpectError([&] { WriteReductionViz(dir + "/a.png", PatchImage(), no_grid); }, {dir + "/a.png", "grid"});
  ExpectError([&] { WriteReductionViz(dir + "/b.png", ImageU8{}, trace); }, {dir + "/b.png", "image"});
  const std::string unwritable = dir + "/no/such/folder/c.png";
  ExpectError([&] { WriteReductionViz(unwritable, PatchImage(), trace); }, {unwritable});
}

}  // namespace
}  // namespace ficoco
