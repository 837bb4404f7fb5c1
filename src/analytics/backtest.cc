#include "analytics/backtest.h"

#include <algorithm>
#include <cmath>

namespace sw::analytics {
namespace {}  // namespace

Result<std::vector<Sample>> readNumericSeries(storage::TimeSeriesStore& store, const TenantId& tenant,
                                              const DeviceId& device, const std::string& key, std::int64_t from,
                                              std::int64_t to, std::size_t budget, bool& truncated) {
  std::vector<Sample> out;
  std::int64_t cursor = from;
  while (cursor < to && out.size() < budget) {
    auto page = store.readRaw(tenant, device, key,
                              storage::RawQuery{cursor, to, std::min<std::size_t>(100000, budget - out.size()), 0});
    if (!page) return std::unexpected(page.error());
    for (const auto& p : page->points) {
      double v;
      if (storage::numericValue(p.value, v) && std::isfinite(v)) out.push_back(Sample{p.ts, v});
    }
    if (!page->more || page->points.empty()) return out;
    cursor = page->points.back().ts + 1;
  }
  if (cursor < to) truncated = true;
  return out;
}

namespace {

// Collects plotted points (max score per bucket) and would-be alarms of one series.
class SeriesRecorder {
 public:
  SeriesRecorder(BacktestSeries& out, const DetectorDef& def, std::int64_t from, std::int64_t to)
      : out_(out),
        def_(def),
        from_(from),
        bucket_(std::max<std::int64_t>(1, (to - from) / kMaxPlotPoints + 1)),
        edge_(EdgeTracker::forDefinition(def)) {}

  void add(std::int64_t ts, double value, const Verdict& v) {
    const std::int64_t b = (ts - from_) / bucket_;
    if (b != bucket_index_ || out_.points.empty()) {
      out_.points.push_back({static_cast<double>(ts), value, v.score});
      bucket_index_ = b;
    } else if (v.score > out_.points.back()[2]) {
      out_.points.back() = {static_cast<double>(ts), value, v.score};
    }
    switch (edge_.update(v.score, def_.threshold)) {
      case EdgeTracker::Edge::kRaise: {
        BacktestAlarm a;
        a.start_ms = ts;
        a.peak_score = v.score;
        a.observed = value;
        a.expected_lo = v.expected_lo;
        a.expected_hi = v.expected_hi;
        a.message = explainDetector(def_, out_.key, value, v);
        out_.alarms.push_back(std::move(a));
        break;
      }
      case EdgeTracker::Edge::kRepeat:
      case EdgeTracker::Edge::kNone:
        if (edge_.open() && !out_.alarms.empty() && v.score > out_.alarms.back().peak_score) {
          auto& a = out_.alarms.back();
          a.peak_score = v.score;
          a.observed = value;
          a.expected_lo = v.expected_lo;
          a.expected_hi = v.expected_hi;
          a.message = explainDetector(def_, out_.key, value, v);
        }
        break;
      case EdgeTracker::Edge::kClear:
        if (!out_.alarms.empty()) out_.alarms.back().end_ms = ts;
        break;
    }
  }

 private:
  BacktestSeries& out_;
  const DetectorDef& def_;
  std::int64_t from_, bucket_;
  std::int64_t bucket_index_ = -1;
  EdgeTracker edge_;
};

// Inactivity ticks between two points, as the engine's periodic tick would see them.
void ticksBetween(Detector& det, SeriesRecorder& rec, std::int64_t a, std::int64_t b, std::int64_t step) {
  if (det.kind() != DetectorKind::kMissing || a == INT64_MIN) return;
  int n = 0;
  for (std::int64_t t = a + step; t < b && n < 1000; t += step, ++n) {
    Verdict v = det.tick(t);
    if (v.ready) rec.add(t, NAN, v);
  }
}

}  // namespace

Result<BacktestResult> backtest(const DetectorDef& def, const TenantId& tenant, const std::vector<DeviceInfo>& devices,
                                std::int64_t from, std::int64_t to, std::int64_t now_ms,
                                storage::TimeSeriesStore& store) {
  BacktestResult result;
  const bool multi = def.kind == DetectorKind::kMultivariate;
  const std::int64_t tick_step = std::max<std::int64_t>(1000, (to - from) / 5000);
  const std::int64_t tick_end = std::min(to, now_ms);
  for (const auto& dev : devices) {
    if (result.series.size() >= kMaxBacktestDevices * std::max<std::size_t>(1, def.keys.size())) break;
    const DeviceId device(dev.id);
    if (!multi) {
      for (const auto& key : def.keys) {
        const std::size_t budget = kMaxBacktestPoints - std::min(kMaxBacktestPoints, result.points_scanned);
        if (budget == 0) {
          result.truncated = true;
          break;
        }
        auto samples = readNumericSeries(store, tenant, device, key, from, to, budget, result.truncated);
        if (!samples) return std::unexpected(samples.error());
        result.points_scanned += samples->size();
        auto det = makeDetector(def.kind, def.params, 1);
        if (!det) return std::unexpected(det.error());
        BacktestSeries& s = result.series.emplace_back();
        s.device_id = dev.id;
        s.device_name = dev.name;
        s.key = key;
        SeriesRecorder rec(s, def, from, to);
        std::int64_t prev = INT64_MIN;
        for (const auto& p : *samples) {
          ticksBetween(**det, rec, prev, p.ts, tick_step);
          const double v = p.v;
          Verdict verdict = (*det)->update(p.ts, std::span<const double>(&v, 1));
          if (verdict.ready) rec.add(p.ts, p.v, verdict);
          prev = p.ts;
        }
        ticksBetween(**det, rec, prev, tick_end, tick_step);
      }
      continue;
    }
    // Multivariate: merge the keys' series in time order through the engine's row aligner.
    struct Tagged {
      std::int64_t ts;
      std::size_t index;
      double v;
    };
    std::vector<Tagged> merged;
    for (std::size_t i = 0; i < def.keys.size(); ++i) {
      const std::size_t budget = kMaxBacktestPoints - std::min(kMaxBacktestPoints, result.points_scanned);
      auto samples = readNumericSeries(store, tenant, device, def.keys[i], from, to, budget, result.truncated);
      if (!samples) return std::unexpected(samples.error());
      result.points_scanned += samples->size();
      for (const auto& p : *samples) merged.push_back(Tagged{p.ts, i, p.v});
    }
    std::stable_sort(merged.begin(), merged.end(), [](const Tagged& a, const Tagged& b) { return a.ts < b.ts; });
    auto det = makeDetector(def.kind, def.params, def.keys.size());
    if (!det) return std::unexpected(det.error());
    BacktestSeries& s = result.series.emplace_back();
    s.device_id = dev.id;
    s.device_name = dev.name;
    s.key = joinKeys(def.keys);
    SeriesRecorder rec(s, def, from, to);
    RowAligner aligner(def.keys.size());
    for (const auto& p : merged) {
      if (!aligner.add(p.index, p.ts, p.v)) continue;
      Verdict verdict = (*det)->update(aligner.rowTs(), aligner.row());
      if (verdict.ready) rec.add(aligner.rowTs(), p.v, verdict);
    }
  }
  return result;
}

}  // namespace sw::analytics
