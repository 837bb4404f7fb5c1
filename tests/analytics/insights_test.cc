// Insights: Holt-Winters forecast with a prediction band, least-squares trend, data quality.
#include "analytics/insights/insights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "analytics/eval/generator.h"

namespace sw::analytics {
namespace {

constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kHour = 3'600'000;
constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kStart = 1'704'067'200'000;  // 2024-01-01T00:00:00Z

double dailyTruth(std::int64_t ts) {
  const double phase = static_cast<double>(((ts % kDay) + kDay) % kDay) / kDay * 2 * std::numbers::pi;
  return 20 + 5 * std::sin(phase) + 1.5 * std::sin(2 * phase + 1);
}

// ---- forecast ------------------------------------------------------------------------------

TEST(Forecast, DailySineIsForecastWithinItsBand) {
  for (std::uint64_t seed : {1, 2, 3}) {
    eval::Rng rng(seed);
    const std::int64_t interval = 15 * kMin;
    std::vector<Sample> history;
    for (std::int64_t t = kStart; t < kStart + 7 * kDay; t += interval) {
      history.push_back({t, dailyTruth(t) + 0.5 * rng.gaussian()});
    }
    auto f = forecast(history, interval, kDay);
    ASSERT_TRUE(f.has_value()) << f.error().message;
    EXPECT_EQ(f->season_ms, kDay);
    EXPECT_EQ(f->interval_ms, interval);
    EXPECT_EQ(f->fitted_points, history.size());
    ASSERT_EQ(f->points.size(), 96u);
    EXPECT_EQ(f->points.front().ts, history.back().ts + interval);
    EXPECT_EQ(f->points.back().ts, history.back().ts + 96 * interval);
    double abs_err = 0;
    std::size_t inside = 0;
    double prev_width = 0;
    for (const Forecast::Point& p : f->points) {
      EXPECT_LE(p.lo, p.yhat);
      EXPECT_GE(p.hi, p.yhat);
      const double width = p.hi - p.lo;
      EXPECT_GE(width, prev_width - 1e-9);  // the band never narrows with the horizon
      prev_width = width;
      abs_err += std::abs(p.yhat - dailyTruth(p.ts));
      const double observed = dailyTruth(p.ts) + 0.5 * rng.gaussian();  // a fresh draw of the future
      inside += observed >= p.lo && observed <= p.hi;
    }
    EXPECT_LT(abs_err / 96, 0.35) << "seed " << seed;  // noise sd 0.5, amplitude ~6.5
    EXPECT_GE(inside, 86u) << "seed " << seed;         // ~95 % band: at least 90 % of 96
    // A band of about +-2 noise sd at the start, not wildly wider.
    EXPECT_LT(f->points.front().hi - f->points.front().lo, 4 * 0.5 * 1.5);
  }
}

TEST(Forecast, NoSeasonForATrendWithoutPattern) {
  eval::Rng rng(4);
  std::vector<Sample> history;
  for (int i = 0; i < 200; ++i) history.push_back({kStart + i * kHour, 100 + 0.5 * i + 0.2 * rng.gaussian()});
  auto f = forecast(history, kHour, 12 * kHour);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->season_ms, 0);  // a daily season is tried (8 days of history) but does not help
  ASSERT_EQ(f->points.size(), 12u);
  // Goes on rising (the damped trend continues over a horizon much shorter than the history).
  const double last = 100 + 0.5 * 199;
  EXPECT_NEAR(f->points[0].yhat, last + 0.5, 0.5);
  EXPECT_GT(f->points[11].yhat, f->points[0].yhat + 3);
}

TEST(Forecast, WeeklySeasonWhenTheWeekRepeats) {
  // Hourly data over four weeks: high on weekdays, low at weekends (no daily pattern).
  eval::Rng rng(6);
  std::vector<Sample> history;
  for (std::int64_t t = kStart; t < kStart + 28 * kDay; t += kHour) {
    const std::int64_t day = ((t - kStart) / kDay) % 7;  // 2024-01-01 is a Monday
    history.push_back({t, (day < 5 ? 50.0 : 10.0) + rng.gaussian()});
  }
  auto f = forecast(history, kHour, 7 * kDay);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->season_ms, 7 * kDay);
  // The next week: Monday high, Saturday low.
  EXPECT_NEAR(f->points[12].yhat, 50, 4);           // Monday noon
  EXPECT_NEAR(f->points[5 * 24 + 12].yhat, 10, 4);  // Saturday noon
}

TEST(Forecast, FillsMissingBucketsAndIgnoresNonFinite) {
  eval::Rng rng(8);
  const std::int64_t interval = 30 * kMin;
  std::vector<Sample> history;
  for (std::int64_t t = kStart; t < kStart + 5 * kDay; t += interval) {
    const std::int64_t off = t - kStart;
    if (off > 2 * kDay && off < 2 * kDay + 5 * kHour) continue;  // a 5-hour hole
    history.push_back({t, dailyTruth(t) + 0.3 * rng.gaussian()});
  }
  history.push_back({kStart + 5 * kDay, std::nan("")});
  auto f = forecast(history, interval, 6 * kHour);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->season_ms, kDay);
  EXPECT_EQ(f->fitted_points, 5u * 48u);  // the grid, hole included, NaN ignored
  for (const Forecast::Point& p : f->points) EXPECT_NEAR(p.yhat, dailyTruth(p.ts), 1.0);
}

TEST(Forecast, RejectsTooLittleHistoryAndBadArguments) {
  std::vector<Sample> few;
  for (int i = 0; i < 7; ++i) few.push_back({kStart + i * kMin, 1.0 * i});
  auto r = forecast(few, kMin, kHour);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
  EXPECT_EQ(r.error().field, "key");
  few.push_back({kStart + 7 * kMin, 7});
  EXPECT_TRUE(forecast(few, kMin, kHour).has_value());
  EXPECT_EQ(forecast(few, 0, kHour).error().field, "interval");
  EXPECT_EQ(forecast(few, kMin, 0).error().field, "horizon");
  EXPECT_EQ(forecast(few, 1, 365 * kDay).error().field, "horizon");  // too many points
  // Eight samples falling into fewer than eight buckets.
  std::vector<Sample> dense;
  for (int i = 0; i < 20; ++i) dense.push_back({kStart + i, 1.0});
  EXPECT_EQ(forecast(dense, kHour, kHour).error().field, "key");
  EXPECT_FALSE(forecast({}, kMin, kHour).has_value());
}

TEST(Forecast, ConstantHistoryGivesAFlatForecastAndZeroWidthBand) {
  std::vector<Sample> flat;
  for (int i = 0; i < 50; ++i) flat.push_back({kStart + i * kMin, 42});
  auto f = forecast(flat, kMin, 10 * kMin);
  ASSERT_TRUE(f.has_value());
  for (const Forecast::Point& p : f->points) {
    EXPECT_DOUBLE_EQ(p.yhat, 42);
    EXPECT_DOUBLE_EQ(p.lo, 42);
    EXPECT_DOUBLE_EQ(p.hi, 42);
  }
}

// ---- trend ---------------------------------------------------------------------------------

TEST(Trend, SlopeOfAKnownLine) {
  std::vector<Sample> line;
  for (int i = 0; i < 100; ++i) line.push_back({kStart + i * kHour, 7 + 2.4 * (i / 24.0)});
  const Trend t = trend(line);
  EXPECT_EQ(t.n, 100u);
  EXPECT_NEAR(t.slope_per_day, 2.4, 1e-9);
  EXPECT_NEAR(t.intercept, 7, 1e-9);
  EXPECT_NEAR(t.r2, 1, 1e-12);

  eval::Rng rng(3);
  std::vector<Sample> noisy;
  for (int i = 0; i < 2000; ++i) noisy.push_back({kStart + i * 10 * kMin, -3 - 0.5 * (i / 144.0) + rng.gaussian()});
  const Trend n = trend(noisy);
  EXPECT_NEAR(n.slope_per_day, -0.5, 0.05);
  EXPECT_NEAR(n.intercept, -3, 0.15);
  EXPECT_GT(n.r2, 0.5);
  EXPECT_LT(n.r2, 0.99);
}

TEST(Trend, DegenerateInputs) {
  EXPECT_EQ(trend({}).n, 0u);
  const std::vector<Sample> one = {{kStart, 5}};
  const Trend t1 = trend(one);
  EXPECT_EQ(t1.n, 1u);
  EXPECT_EQ(t1.slope_per_day, 0);
  EXPECT_EQ(t1.intercept, 5);
  const std::vector<Sample> flat = {{kStart, 5}, {kStart + kDay, 5}, {kStart + 2 * kDay, 5}};
  const Trend t2 = trend(flat);
  EXPECT_EQ(t2.slope_per_day, 0);
  EXPECT_EQ(t2.r2, 0);
  const std::vector<Sample> with_nan = {{kStart, 1}, {kStart + kDay, std::nan("")}, {kStart + 2 * kDay, 3}};
  const Trend t3 = trend(with_nan);
  EXPECT_EQ(t3.n, 2u);
  EXPECT_NEAR(t3.slope_per_day, 1, 1e-12);
}

// ---- data quality --------------------------------------------------------------------------

TEST(DataQuality, FindsGapStuckRunAndOutOfRangePoints) {
  eval::Rng rng(12);
  std::vector<Sample> s;
  const std::int64_t from = kStart, to = kStart + kDay;
  for (std::int64_t t = from; t < to; t += kMin) {
    const std::int64_t m = (t - from) / kMin;
    if (m >= 300 && m < 360) continue;  // gap: 60 missing minutes after 04:59
    double v = 20 + rng.gaussian();
    if (m >= 600 && m < 630) v = 21.25;              // stuck for 30 points
    if (m == 900 || m == 1000 || m == 1100) v = 95;  // out of range
    s.push_back({t, v});
  }
  QualityOptions opt;
  opt.from = from;
  opt.to = to;
  const Quality q = dataQuality(s, opt);
  EXPECT_EQ(q.points, 1440u - 60u);
  EXPECT_EQ(q.expected_interval_ms, kMin);
  ASSERT_EQ(q.gap_count, 1u);
  ASSERT_EQ(q.gaps.size(), 1u);
  EXPECT_EQ(q.gaps[0].from, from + 299 * kMin);
  EXPECT_EQ(q.gaps[0].to, from + 360 * kMin);
  EXPECT_NEAR(q.missing_share, 60.0 / 1440.0, 1e-9);
  ASSERT_EQ(q.stuck.size(), 1u);
  EXPECT_EQ(q.stuck[0].from, from + 600 * kMin);
  EXPECT_EQ(q.stuck[0].to, from + 629 * kMin);
  EXPECT_EQ(q.stuck[0].value, 21.25);
  EXPECT_NEAR(q.stuck_share, 29.0 / 1440.0, 1e-9);
  // Robust band: median ~20 +- 6 sigma (~6): catches the three 95s and nothing else.
  EXPECT_FALSE(q.range_given);
  EXPECT_NEAR(q.range_lo, 14, 1);
  EXPECT_NEAR(q.range_hi, 26, 1);
  EXPECT_NEAR(q.out_of_range_share, 3.0 / 1380.0, 1e-12);

  // A given range.
  opt.lo = 19;
  opt.hi = 100;
  const Quality g = dataQuality(s, opt);
  EXPECT_TRUE(g.range_given);
  EXPECT_EQ(g.range_lo, 19);
  EXPECT_EQ(g.range_hi, 100);
  EXPECT_GT(g.out_of_range_share, 0.1);  // about 16 % of N(20, 1) lies below 19
  EXPECT_LT(g.out_of_range_share, 0.22);
}

TEST(DataQuality, GapsAtTheEndsOfTheRangeCount) {
  std::vector<Sample> s;
  for (int m = 120; m < 300; ++m) s.push_back({kStart + m * kMin, static_cast<double>(m % 7)});
  QualityOptions opt;
  opt.from = kStart;
  opt.to = kStart + 6 * kHour;
  const Quality q = dataQuality(s, opt);
  ASSERT_EQ(q.gap_count, 2u);
  EXPECT_EQ(q.gaps[0].from, kStart);
  EXPECT_EQ(q.gaps[0].to, kStart + 120 * kMin);
  EXPECT_EQ(q.gaps[1].from, kStart + 299 * kMin);
  EXPECT_EQ(q.gaps[1].to, kStart + 6 * kHour);
  EXPECT_NEAR(q.missing_share, 180.0 / 360.0, 1e-9);  // 120 min before, 60 after
  EXPECT_TRUE(q.stuck.empty());
}

TEST(DataQuality, EmptyAndTinyInputs) {
  QualityOptions opt;
  opt.from = kStart;
  opt.to = kStart + kHour;
  const Quality e = dataQuality({}, opt);
  EXPECT_EQ(e.points, 0u);
  EXPECT_EQ(e.gap_count, 1u);
  EXPECT_EQ(e.missing_share, 1);
  const std::vector<Sample> one = {{kStart + kMin, 3}};
  const Quality o = dataQuality(one, opt);
  EXPECT_EQ(o.points, 1u);
  EXPECT_EQ(o.expected_interval_ms, 0);
  EXPECT_EQ(o.out_of_range_share, 0);
  // Points outside [from, to) are not counted.
  const std::vector<Sample> outside = {{kStart - 1, 1}, {kStart + 2 * kHour, 1}};
  EXPECT_EQ(dataQuality(outside, opt).points, 0u);
}

TEST(DataQuality, ListsAreBounded) {
  // 3000 bursts of 10 points a minute apart, 6 minutes between bursts: 2999 gaps, 1000 listed.
  std::vector<Sample> s;
  std::int64_t t = kStart;
  for (int burst = 0; burst < 3000; ++burst) {
    for (int i = 0; i < 10; ++i, t += kMin) s.push_back({t, static_cast<double>(i)});
    t += 5 * kMin;
  }
  const Quality q = dataQuality(s, QualityOptions{});
  EXPECT_EQ(q.expected_interval_ms, kMin);
  EXPECT_EQ(q.gap_count, 2999u);
  EXPECT_EQ(q.gaps.size(), 1000u);
}

TEST(Insights, ExtremeTimestampsDoNotOverflow) {
  constexpr std::int64_t kMinTs = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMaxTs = std::numeric_limits<std::int64_t>::max();
  const std::vector<Sample> s = {{kMinTs, 1}, {kMinTs + 1, 1}, {0, 2}, {kMaxTs - 1, 3}, {kMaxTs, 3}};
  QualityOptions opt;
  opt.from = kMinTs;
  opt.to = kMaxTs;
  const Quality q = dataQuality(s, opt);
  EXPECT_EQ(q.points, 4u);  // [from, to): the point at kMaxTs is outside
  EXPECT_GE(q.missing_share, 0);
  EXPECT_LE(q.missing_share, 1);
  EXPECT_EQ(dataQuality(s, QualityOptions{}).points, 5u);
  EXPECT_TRUE(std::isfinite(trend(s).slope_per_day));
  std::vector<Sample> late;
  for (int i = 0; i < 10; ++i) late.push_back({kMaxTs - 10'000 + i * 1000, 1.0 * i});
  auto f = forecast(late, 1000, 1'000'000);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().field, "horizon");
  EXPECT_FALSE(forecast(s, 1, kMaxTs).has_value());
}

}  // namespace
}  // namespace sw::analytics
