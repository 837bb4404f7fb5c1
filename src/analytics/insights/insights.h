#pragma once
// Insights over stored history (issue 5): Holt-Winters forecast with a prediction band, trend
// (slope per day) and a data-quality summary (gaps, stuck periods, out-of-range share).
// Pure functions over samples in time order; bounded work (the caller bounds the input).
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/status.h"

namespace sw::analytics {

struct Sample {
  std::int64_t ts = 0;
  double v = 0;
};

struct Forecast {
  std::int64_t interval_ms = 0;
  std::int64_t season_ms = 0;  // 0: no season found (trend-only, Holt's linear method)
  std::size_t fitted_points = 0;
  struct Point {
    std::int64_t ts;
    double yhat, lo, hi;  // lo/hi: the 95 % prediction band
  };
  std::vector<Point> points;  // from the bucket after the last history bucket, every interval_ms
};

// history: averages of buckets of interval_ms (bucket start times), time order, possibly with
// missing buckets (filled by interpolation). Seasons tried: one day and one week, when the history
// covers at least two of them. invalid_argument ("key") when there is too little history (fewer
// than 8 buckets).
Result<Forecast> forecast(std::span<const Sample> history, std::int64_t interval_ms, std::int64_t horizon_ms);

struct Trend {
  double slope_per_day = 0;  // least squares over the samples
  double intercept = 0;      // value at the first sample's time
  double r2 = 0;
  std::size_t n = 0;
};
Trend trend(std::span<const Sample> samples);

struct TimeRange {
  std::int64_t from = 0, to = 0;
};
struct StuckPeriod {
  std::int64_t from = 0, to = 0;
  double value = 0;
};
struct QualityOptions {
  std::int64_t from = 0, to = 0;  // the range asked about (gaps at its ends count)
  std::optional<double> lo, hi;   // the valid range; unset: a robust band (median +- 6 MAD-sigma)
};
struct Quality {
  std::size_t points = 0;
  std::int64_t expected_interval_ms = 0;  // median spacing
  std::vector<TimeRange> gaps;            // spacing > 3x expected (at most 1000 listed)
  std::size_t gap_count = 0;
  double missing_share = 0;        // share of [from,to) inside gaps
  std::vector<StuckPeriod> stuck;  // same value for >= 10 consecutive points and >= 10x expected
  double stuck_share = 0;
  double out_of_range_share = 0;
  double range_lo = 0, range_hi = 0;
  bool range_given = false;
};
Quality dataQuality(std::span<const Sample> samples, const QualityOptions& options);

}  // namespace sw::analytics
