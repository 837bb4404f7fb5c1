// The alarm edge logic shared by the live engine and the backtest (analytics/stream_logic.h).
#include "analytics/stream_logic.h"

#include <gtest/gtest.h>

namespace sw::analytics {
namespace {

using Edge = EdgeTracker::Edge;

TEST(EdgeTracker, RaisesOnceRepeatsAfterADipAndClearsAfterClearAfterPointsBelow) {
  EdgeTracker e(3);
  EXPECT_EQ(e.update(0.2, 0.8), Edge::kNone);
  EXPECT_EQ(e.update(0.9, 0.8), Edge::kRaise);
  EXPECT_EQ(e.update(0.95, 0.8), Edge::kNone);  // still the same episode
  EXPECT_EQ(e.update(0.1, 0.8), Edge::kNone);
  EXPECT_EQ(e.update(0.85, 0.8), Edge::kRepeat);  // back above after a dip: counted as a repeat
  EXPECT_EQ(e.update(0.1, 0.8), Edge::kNone);
  EXPECT_EQ(e.update(0.1, 0.8), Edge::kNone);
  EXPECT_TRUE(e.open());
  EXPECT_EQ(e.update(0.1, 0.8), Edge::kClear);  // the third point below in a row
  EXPECT_FALSE(e.open());
  EXPECT_EQ(e.update(0.1, 0.8), Edge::kNone);
}

TEST(EdgeTracker, ClearAfterComesFromTheDefinitionWithTheDefaultForOlderOnes) {
  DetectorDef def;
  def.params = *resolveParams(DetectorKind::kZScore, {});
  EXPECT_EQ(def.params.at(std::string(kClearAfterParam)), EdgeTracker::kDefaultClearAfter);
  auto count = [](EdgeTracker e) {
    e.update(1, 0.5);
    int n = 1;
    while (e.update(0, 0.5) != Edge::kClear) ++n;
    return n;
  };
  EXPECT_EQ(count(EdgeTracker::forDefinition(def)), 5);
  def.params = *resolveParams(DetectorKind::kZScore, {{"clear_after", 1}});
  EXPECT_EQ(count(EdgeTracker::forDefinition(def)), 1);
  def.params = *resolveParams(DetectorKind::kMissing, {{"clear_after", 700}});
  EXPECT_EQ(count(EdgeTracker::forDefinition(def)), 700);
  def.params.clear();  // a definition stored before the parameter existed
  EXPECT_EQ(count(EdgeTracker::forDefinition(def)), 5);
  // Every kind takes it, validated like its other parameters.
  for (const KindInfo& info : kindInfos()) {
    EXPECT_TRUE(resolveParams(info.kind, {{"clear_after", 1000}})) << kindName(info.kind);
    auto bad = resolveParams(info.kind, {{"clear_after", 0}});
    ASSERT_FALSE(bad) << kindName(info.kind);
    EXPECT_EQ(bad.error().field, "params.clear_after");
    EXPECT_FALSE(resolveParams(info.kind, {{"clear_after", 2.5}}));
  }
}

TEST(EdgeTracker, CheckpointKeepsTheCountOfPointsBelow) {
  EdgeTracker a(500);
  a.update(1, 0.5);
  for (int i = 0; i < 300; ++i) a.update(0, 0.5);
  EdgeTracker b(500);
  b.unpack(a.packed());
  EXPECT_TRUE(b.open());
  for (int i = 0; i < 199; ++i) EXPECT_EQ(b.update(0, 0.5), Edge::kNone);
  EXPECT_EQ(b.update(0, 0.5), Edge::kClear);  // 300 + 200 = 500 points below
}

}  // namespace
}  // namespace sw::analytics
