#pragma once
// Backtest: runs a detector definition over stored history exactly as the engine would (same
// detectors, alarm edges and multivariate alignment: stream_logic.h), without side effects.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analytics/insights/insights.h"
#include "analytics/store.h"
#include "analytics/stream_logic.h"
#include "storage/time_series_store.h"

namespace sw::analytics {

struct BacktestAlarm {
  std::int64_t start_ms = 0;
  std::optional<std::int64_t> end_ms;  // unset: still open at the end of the range
  double peak_score = 0, observed = 0, expected_lo = 0, expected_hi = 0;
  std::string message;
};

struct BacktestSeries {
  std::string device_id, device_name, key;
  std::vector<std::array<double, 3>> points;  // [ts, value, score], at most kMaxPlotPoints
  std::vector<BacktestAlarm> alarms;
};

struct BacktestResult {
  std::vector<BacktestSeries> series;
  std::size_t points_scanned = 0;
  bool truncated = false;  // the point budget cut the range short
};

constexpr std::size_t kMaxBacktestDevices = 20;
constexpr std::size_t kMaxBacktestPoints = 1'000'000;
constexpr std::size_t kMaxPlotPoints = 2000;

// The numeric points (numbers, booleans as 0/1) of one key in [from, to), in time order, at most
// `budget`; `truncated` is set when the budget cut the range short. Shared by backtests and insights.
Result<std::vector<Sample>> readNumericSeries(storage::TimeSeriesStore& store, const TenantId& tenant,
                                              const DeviceId& device, const std::string& key, std::int64_t from,
                                              std::int64_t to, std::size_t budget, bool& truncated);

// Runs `def` over [from, to) of each device (at most kMaxBacktestDevices). `now_ms` bounds the
// inactivity ticks of the missing-data kind.
Result<BacktestResult> backtest(const DetectorDef& def, const TenantId& tenant, const std::vector<DeviceInfo>& devices,
                                std::int64_t from, std::int64_t to, std::int64_t now_ms,
                                storage::TimeSeriesStore& store);

}  // namespace sw::analytics
