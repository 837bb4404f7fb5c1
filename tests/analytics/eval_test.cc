// Evaluation harness (issue 5): the generator of labelled series, the scorer, and every detector
// kind on small generated series of its own anomaly types (finds >= 80 % of the windows) and on
// clean series (at most 1 false alarm per 10k points). The full matrix with numbers is
// bench/bench_detectors (make bench), reported in docs/analytics.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/eval/generator.h"
#include "analytics/eval/scorer.h"

namespace sw::analytics::eval {
namespace {

// ---------------------------------------------------------------------------------------------
// Scorer on hand-made scores.

std::vector<Scored> flat(std::int64_t from, std::int64_t to) {
  std::vector<Scored> s;
  for (std::int64_t t = from; t < to; ++t) s.push_back({t, 0.0});
  return s;
}

void raise(std::vector<Scored>& s, std::int64_t from, std::int64_t to, double v = 1.0) {
  for (auto& x : s)
    if (x.ts_ms >= from && x.ts_ms < to) x.score = v;
}

ScoreOptions opts(std::int64_t tol = 0) {
  ScoreOptions o;
  o.threshold = 0.5;
  o.tolerance_ms = tol;
  return o;
}

TEST(EvalScorer, PerfectDetectorScores100) {
  auto s = flat(0, 300);
  raise(s, 100, 101);
  raise(s, 200, 205);  // one event of 5 samples
  const std::vector<Window> w = {{100, 110}, {200, 210}};
  const Counts c = score(s, w, 300, opts());
  EXPECT_EQ(c.windows, 2u);
  EXPECT_EQ(c.detected, 2u);
  EXPECT_EQ(c.alarm_events, 2u);
  EXPECT_EQ(c.false_positives, 0u);
  EXPECT_DOUBLE_EQ(c.precision(), 1.0);
  EXPECT_DOUBLE_EQ(c.recall(), 1.0);
  EXPECT_DOUBLE_EQ(c.f1(), 1.0);
  EXPECT_NEAR(c.nab(), 100.0, 1e-9);
  EXPECT_DOUBLE_EQ(c.meanDelayMs(), 0.0);
}

TEST(EvalScorer, NullDetectorScoresZero) {
  const auto s = flat(0, 300);
  const std::vector<Window> w = {{100, 110}, {200, 210}};
  const Counts c = score(s, w, 300, opts());
  EXPECT_EQ(c.detected, 0u);
  EXPECT_EQ(c.alarm_events, 0u);
  EXPECT_TRUE(std::isnan(c.precision()));
  EXPECT_DOUBLE_EQ(c.recall(), 0.0);
  EXPECT_DOUBLE_EQ(c.f1(), 0.0);
  EXPECT_NEAR(c.nab(), 0.0, 1e-9);
  EXPECT_TRUE(std::isnan(c.meanDelayMs()));
}

TEST(EvalScorer, LateDetectionMissAndFalsePositives) {
  // Window A [100, 110) detected only at its extended end (110 + tol 5 = 115): reward 0.
  // Window B [200, 210) missed. Two false alarm events: [30, 33) (one run) and 250.
  auto s = flat(0, 300);
  raise(s, 115, 116);
  raise(s, 30, 33);
  raise(s, 250, 251);
  const std::vector<Window> w = {{100, 110}, {200, 210}};
  const Counts c = score(s, w, 300, opts(5));
  EXPECT_EQ(c.detected, 1u);
  EXPECT_EQ(c.alarm_events, 3u);
  EXPECT_EQ(c.false_positives, 2u);
  EXPECT_DOUBLE_EQ(c.precision(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(c.recall(), 0.5);
  EXPECT_NEAR(c.f1(), 0.4, 1e-12);
  // raw = 0 (late) - 1 (missed) - 2 * 0.11 = -1.22; null = -2; perfect = 2.
  EXPECT_NEAR(c.nab(), 100.0 * (-1.22 + 2) / 4, 1e-9);
  EXPECT_DOUBLE_EQ(c.meanDelayMs(), 15.0);
  EXPECT_NEAR(c.fpPer10k(), 1e4 * 2 / 300, 1e-9);
}

TEST(EvalScorer, ToleranceBoundsAreInclusive) {
  const std::vector<Window> w = {{100, 110}};
  {
    auto s = flat(0, 300);
    raise(s, 95, 96);  // start - tol: early detection, full reward
    const Counts c = score(s, w, 300, opts(5));
    EXPECT_EQ(c.detected, 1u);
    EXPECT_EQ(c.false_positives, 0u);
    EXPECT_NEAR(c.nab(), 100.0, 1e-9);
    EXPECT_DOUBLE_EQ(c.meanDelayMs(), -5.0);
  }
  {
    auto s = flat(0, 300);
    raise(s, 94, 95);    // one before: a false positive and a miss
    raise(s, 116, 117);  // one after end + tol: another false positive
    const Counts c = score(s, w, 300, opts(5));
    EXPECT_EQ(c.detected, 0u);
    EXPECT_EQ(c.false_positives, 2u);
    EXPECT_NEAR(c.nab(), 100.0 * (-1 - 0.22 + 1) / 2, 1e-9);
  }
}

TEST(EvalScorer, RunOverlappingAWindowIsNotAFalsePositive) {
  auto s = flat(0, 300);
  raise(s, 90, 150);  // starts before, ends long after the window: one true event
  const std::vector<Window> w = {{100, 110}};
  const Counts c = score(s, w, 300, opts(0));
  EXPECT_EQ(c.alarm_events, 1u);
  EXPECT_EQ(c.false_positives, 0u);
  EXPECT_EQ(c.detected, 1u);  // the samples in [100, 110] are alarms
}

TEST(EvalScorer, EarlinessRewardFollowsTheSigmoid) {
  EXPECT_DOUBLE_EQ(earlinessReward(100, 100, 200, 0), 1.0);
  EXPECT_DOUBLE_EQ(earlinessReward(50, 100, 200, 0), 1.0);  // before start: clamped
  EXPECT_NEAR(earlinessReward(200, 100, 200, 0), 0.0, 1e-12);
  const double mid = (2 / (1 + std::exp(-2.5)) - 1) / (2 / (1 + std::exp(-5.0)) - 1);
  EXPECT_NEAR(earlinessReward(150, 100, 200, 0), mid, 1e-12);
  EXPECT_NEAR(earlinessReward(160, 100, 200, 20), mid, 1e-12);  // span is [start, end + tol]
  // Monotone: earlier is never worse.
  double prev = 2;
  for (std::int64_t t = 100; t <= 220; t += 5) {
    const double r = earlinessReward(t, 100, 200, 20);
    EXPECT_LE(r, prev);
    prev = r;
  }
}

TEST(EvalScorer, NanScoresAreNotAlarmsAndCountsAddUp) {
  auto s = flat(0, 100);
  raise(s, 10, 20, std::nan(""));
  const Counts c = score(s, std::vector<Window>{}, 100, opts());
  EXPECT_EQ(c.alarm_events, 0u);
  EXPECT_TRUE(std::isnan(c.recall()));
  EXPECT_TRUE(std::isnan(c.nab()));
  EXPECT_DOUBLE_EQ(c.fpPer10k(), 0.0);

  auto s2 = flat(0, 300);
  raise(s2, 100, 101);
  Counts total = score(s2, std::vector<Window>{{100, 110}}, 300, opts());
  total += score(flat(0, 300), std::vector<Window>{{100, 110}}, 300, opts());
  EXPECT_EQ(total.series, 2u);
  EXPECT_EQ(total.windows, 2u);
  EXPECT_EQ(total.detected, 1u);
  EXPECT_EQ(total.points, 600u);
  EXPECT_NEAR(total.nab(), 50.0, 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Generator.

bool inWindow(const LabelledSeries& s, std::int64_t t) {
  return std::any_of(s.anomalies.begin(), s.anomalies.end(),
                     [&](const Window& w) { return t >= w.start_ms && t < w.end_ms; });
}

TEST(EvalGenerator, DeterministicPerSeedAndLabelled) {
  for (AnomalyType t : anomalyTypes()) {
    SCOPED_TRACE(std::string(anomalyName(t)));
    GenOptions o = standardOptions(t);
    const LabelledSeries a = generate(t, o, 7), b = generate(t, o, 7), c = generate(t, o, 8);
    EXPECT_EQ(a.ts, b.ts);
    EXPECT_EQ(a.values, b.values);
    EXPECT_NE(a.values, c.values);
    EXPECT_EQ(a.type, t);
    EXPECT_EQ(a.interval_ms, o.interval_ms);
    EXPECT_EQ(a.anomalies.size(), o.anomalies);
    EXPECT_TRUE(std::is_sorted(a.ts.begin(), a.ts.end()));
    EXPECT_EQ(std::adjacent_find(a.ts.begin(), a.ts.end()), a.ts.end());  // strictly increasing
    for (const auto& v : a.values) EXPECT_EQ(v.size(), a.size());
    for (std::size_t i = 0; i < a.anomalies.size(); ++i) {
      const Window& w = a.anomalies[i];
      EXPECT_LT(w.start_ms, w.end_ms);
      EXPECT_GE(w.start_ms, o.start_ms + static_cast<std::int64_t>(o.warmup_points - 1) * o.interval_ms);
      EXPECT_LE(w.end_ms, a.ts.back() + o.interval_ms);
      if (i > 0) {
        EXPECT_LT(a.anomalies[i - 1].end_ms, w.start_ms);
      }
    }
  }
  const LabelledSeries clean = generate(AnomalyType::kNone, standardOptions(AnomalyType::kNone), 7);
  EXPECT_TRUE(clean.anomalies.empty());
  EXPECT_EQ(clean.size(), standardOptions(AnomalyType::kNone).points);
}

TEST(EvalGenerator, ExtraKeysFollowKeyZeroAndDoNotChangeIt) {
  GenOptions o = standardOptions(AnomalyType::kSpike);
  const LabelledSeries one = generate(AnomalyType::kSpike, o, 3);
  o.keys = 3;
  const LabelledSeries three = generate(AnomalyType::kSpike, o, 3);
  ASSERT_EQ(three.keys(), 3u);
  EXPECT_EQ(one.values[0], three.values[0]);
  EXPECT_EQ(one.anomalies.size(), three.anomalies.size());
  // Key 1 = 1.5 * key 0 + 3 + noise outside the anomalies (a spike is in key 0 only).
  double worst = 0;
  for (std::size_t i = 0; i < three.size(); ++i) {
    if (inWindow(three, three.ts[i])) continue;
    worst = std::max(worst, std::abs(three.values[1][i] - (1.5 * three.values[0][i] + 3)));
  }
  EXPECT_LT(worst, 6 * o.noise_sd);
}

TEST(EvalGenerator, AnomaliesLookLikeTheirType) {
  const GenOptions o = standardOptions(AnomalyType::kStuck);
  {
    const LabelledSeries s = generate(AnomalyType::kStuck, o, 11);
    for (const Window& w : s.anomalies) {
      std::set<double> seen;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (s.ts[i] >= w.start_ms && s.ts[i] < w.end_ms) seen.insert(s.values[0][i]);
      EXPECT_EQ(seen.size(), 1u);
    }
  }
  {
    const LabelledSeries s = generate(AnomalyType::kMissingData, standardOptions(AnomalyType::kMissingData), 11);
    EXPECT_LT(s.size(), o.points);
    for (std::int64_t t : s.ts) EXPECT_FALSE(inWindow(s, t));
    for (const Window& w : s.anomalies) EXPECT_GE(w.end_ms - w.start_ms, 29 * o.interval_ms);
  }
  {
    // A spike is in key 0 only: key 1 (= 1.5 * key 0 + 3 + noise) shows it as a residual of at
    // least 1.5 * 6 noise sd.
    GenOptions so = standardOptions(AnomalyType::kSpike);
    so.keys = 2;
    const LabelledSeries s = generate(AnomalyType::kSpike, so, 11);
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (inWindow(s, s.ts[i])) {
        EXPECT_GT(std::abs(s.values[1][i] - (1.5 * s.values[0][i] + 3)), 2.0);
      }
    }
  }
  {
    // Broken relation: key 1 leaves its relation to key 0 but stays inside its normal range.
    const LabelledSeries s = generate(AnomalyType::kBrokenRelation, standardOptions(AnomalyType::kBrokenRelation), 11);
    ASSERT_EQ(s.keys(), 2u);
    EXPECT_EQ(s.anomalous_key, 1u);
    double lo = 1e9, hi = -1e9, in_lo = 1e9, in_hi = -1e9, max_resid = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const double v = s.values[1][i];
      if (inWindow(s, s.ts[i])) {
        in_lo = std::min(in_lo, v);
        in_hi = std::max(in_hi, v);
        max_resid = std::max(max_resid, std::abs(v - (1.5 * s.values[0][i] + 3)));
      } else {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
    EXPECT_GT(max_resid, 6.0);
    EXPECT_GE(in_lo, lo - 1.5);
    EXPECT_LE(in_hi, hi + 1.5);
  }
  {
    const LabelledSeries s =
        generate(AnomalyType::kBrokenSeasonality, standardOptions(AnomalyType::kBrokenSeasonality), 11);
    ASSERT_EQ(s.anomalies.size(), 2u);
    for (const Window& w : s.anomalies) {
      EXPECT_EQ(w.end_ms - w.start_ms, 86'400'000);
      EXPECT_EQ(w.start_ms % 86'400'000, 0);
    }
    EXPECT_GT(s.anomalies[1].start_ms - s.anomalies[0].start_ms, 86'400'000);
  }
}

// ---------------------------------------------------------------------------------------------
// Every detector kind on its own anomaly types, and quiet on clean series.

struct KindCase {
  DetectorKind kind;
  std::vector<AnomalyType> types;
  bool seasonal_clean;  // its clean series has a daily cycle
};

// Readable test names in ctest (instead of the struct's bytes).
void PrintTo(const KindCase& kc, std::ostream* os) {
  *os << kindName(kc.kind);
}

class EvalDetector : public ::testing::TestWithParam<KindCase> {};

constexpr std::uint64_t kFirstSeed = 1000;
constexpr std::size_t kSeeds = 8;  // 48k points per type (92k seasonal): enough to tell ~1 false alarm per 10k

TEST_P(EvalDetector, FindsItsAnomaliesAndStaysQuietOnCleanSeries) {
  const KindCase& kc = GetParam();
  for (AnomalyType t : kc.types) {
    SCOPED_TRACE(std::string(anomalyName(t)));
    auto c = evaluate(kc.kind, t, standardOptions(t), kFirstSeed, kSeeds);
    ASSERT_TRUE(c.has_value()) << c.error().message;
    std::printf("  %-12s %-18s windows %zu detected %zu false alarms %zu recall %.2f NAB %.1f\n",
                std::string(kindName(kc.kind)).c_str(), std::string(anomalyName(t)).c_str(), c->windows, c->detected,
                c->false_positives, c->recall(), c->nab());
    EXPECT_GE(c->recall(), 0.8);
  }
  auto clean =
      evaluate(kc.kind, AnomalyType::kNone, standardOptions(AnomalyType::kNone, kc.seasonal_clean), kFirstSeed, kSeeds);
  ASSERT_TRUE(clean.has_value()) << clean.error().message;
  std::printf("  %-12s %-18s points %zu false alarms %zu (%.2f per 10k points)\n",
              std::string(kindName(kc.kind)).c_str(), kc.seasonal_clean ? "clean (seasonal)" : "clean", clean->points,
              clean->false_positives, clean->fpPer10k());
  EXPECT_LE(clean->fpPer10k(), 1.0);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, EvalDetector,
    ::testing::Values(KindCase{DetectorKind::kZScore, {AnomalyType::kSpike}, false},
                      KindCase{DetectorKind::kEwma, {AnomalyType::kSpike, AnomalyType::kVarianceChange}, false},
                      KindCase{DetectorKind::kHoltWinters, {AnomalyType::kBrokenSeasonality}, true},
                      KindCase{DetectorKind::kCusum, {AnomalyType::kLevelShift, AnomalyType::kDrift}, false},
                      KindCase{DetectorKind::kSpike, {AnomalyType::kSpike}, false},
                      KindCase{DetectorKind::kFlatline, {AnomalyType::kStuck}, false},
                      KindCase{DetectorKind::kMissing, {AnomalyType::kMissingData}, false},
                      KindCase{DetectorKind::kMultivariate, {AnomalyType::kBrokenRelation}, false}),
    [](const ::testing::TestParamInfo<KindCase>& info) { return std::string(kindName(info.param.kind)); });

// Every kind exists and its defaults make a working detector (the evaluation above needs them).
TEST(EvalDetectorKinds, AllEightKindsAreAvailable) {
  EXPECT_EQ(kindInfos().size(), 8u);
  for (const KindInfo& ki : kindInfos()) {
    SCOPED_TRACE(std::string(kindName(ki.kind)));
    auto p = resolveParams(ki.kind, {});
    ASSERT_TRUE(p.has_value());
    auto d = makeDetector(ki.kind, *p, ki.multivariate ? 3 : 1);
    ASSERT_TRUE(d.has_value());
    EXPECT_GT(ki.default_threshold, 0.0);
    EXPECT_LE(ki.default_threshold, 1.0);
  }
}

}  // namespace
}  // namespace sw::analytics::eval
