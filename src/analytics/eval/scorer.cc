#include "analytics/eval/scorer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sw::analytics::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1 for y in [-1, 0] (y = -1 at the window's start,
// 0 at its end): 0.987 at the start, 0 at the end.
double sigmoid(double y) {
  return 2.0 / (1.0 + std::exp(5.0 * y)) - 1.0;
}

}  // namespace

Counts& Counts::operator+=(const Counts& o) {
  series += o.series;
  points += o.points;
  windows += o.windows;
  detected += o.detected;
  alarm_events += o.alarm_events;
  false_positives += o.false_positives;
  delay_ms_sum += o.delay_ms_sum;
  nab_raw += o.nab_raw;
  nab_null += o.nab_null;
  nab_perfect += o.nab_perfect;
  return *this;
}

double Counts::precision() const {
  const std::size_t flagged = detected + false_positives;
  return flagged == 0 ? kNaN : static_cast<double>(detected) / static_cast<double>(flagged);
}

double Counts::recall() const {
  return windows == 0 ? kNaN : static_cast<double>(detected) / static_cast<double>(windows);
}

double Counts::f1() const {
  if (windows == 0) return kNaN;
  if (detected == 0) return 0;
  const double p = precision(), r = recall();
  return 2 * p * r / (p + r);
}

double Counts::nab() const {
  if (windows == 0 || nab_perfect <= nab_null) return kNaN;
  return 100.0 * (nab_raw - nab_null) / (nab_perfect - nab_null);
}

double Counts::fpPer10k() const {
  return points == 0 ? kNaN : 1e4 * static_cast<double>(false_positives) / static_cast<double>(points);
}

double Counts::meanDelayMs() const {
  return detected == 0 ? kNaN : delay_ms_sum / static_cast<double>(detected);
}

double earlinessReward(std::int64_t t, std::int64_t start, std::int64_t end, std::int64_t tolerance) {
  const double hi = static_cast<double>(end) + static_cast<double>(std::max<std::int64_t>(tolerance, 0));
  const double span = std::max(hi - static_cast<double>(start), 1.0);
  const double y = std::clamp((static_cast<double>(t) - hi) / span, -1.0, 0.0);
  return sigmoid(y) / sigmoid(-1.0);
}

Counts score(std::span<const Scored> scores, std::span<const Window> windows, std::size_t points,
             const ScoreOptions& o) {
  Counts c;
  c.series = 1;
  c.points = points;
  c.windows = windows.size();
  const std::int64_t tol = std::max<std::int64_t>(o.tolerance_ms, 0);
  auto alarm = [&](const Scored& s) { return s.score >= o.threshold; };  // NaN is never an alarm

  // Windows: the first alarm inside each extended window.
  for (const Window& w : windows) {
    const std::int64_t lo = w.start_ms - tol, hi = w.end_ms + tol;
    auto it =
        std::lower_bound(scores.begin(), scores.end(), lo, [](const Scored& s, std::int64_t t) { return s.ts_ms < t; });
    for (; it != scores.end() && it->ts_ms <= hi; ++it) {
      if (!alarm(*it)) continue;
      ++c.detected;
      c.delay_ms_sum += static_cast<double>(it->ts_ms - w.start_ms);
      c.nab_raw += o.a_tp * earlinessReward(it->ts_ms, w.start_ms, w.end_ms, tol);
      break;
    }
    if (it == scores.end() || it->ts_ms > hi) c.nab_raw -= o.a_fn;
    c.nab_null -= o.a_fn;
    c.nab_perfect += o.a_tp;
  }

  // Alarm events: runs of consecutive alarm samples; false positive when the run overlaps no
  // extended window.
  auto overlapsWindow = [&](std::int64_t first, std::int64_t last) {
    auto w = std::lower_bound(windows.begin(), windows.end(), first,
                              [&](const Window& x, std::int64_t t) { return x.end_ms + tol < t; });
    return w != windows.end() && w->start_ms - tol <= last;
  };
  for (std::size_t i = 0; i < scores.size();) {
    if (!alarm(scores[i])) {
      ++i;
      continue;
    }
    const std::int64_t first = scores[i].ts_ms;
    std::int64_t last = first;
    while (i < scores.size() && alarm(scores[i])) last = scores[i++].ts_ms;
    ++c.alarm_events;
    if (!overlapsWindow(first, last)) {
      ++c.false_positives;
      c.nab_raw -= o.a_fp;
    }
  }
  return c;
}

std::vector<Scored> replay(Detector& detector, const LabelledSeries& series) {
  std::vector<Scored> out;
  const std::size_t n = series.size();
  if (n == 0) return out;
  out.reserve(n + n / 8);
  const std::size_t dims = detector.dims();
  const bool multi = dims > 1;
  const std::int64_t step = std::max<std::int64_t>(series.interval_ms, 1);
  std::int64_t next_tick = series.ts[0] + step / 2;
  std::vector<double> v(std::max<std::size_t>(dims, 1));
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t t = series.ts[i];
    // Ticks due before this point. Only a detector that scores on tick() (ready verdicts)
    // contributes them, so a 0-score tick never splits another kind's alarm in two.
    for (; next_tick < t; next_tick += step) {
      const Verdict tv = detector.tick(next_tick);
      if (tv.ready) out.push_back({next_tick, tv.score});
    }
    if (multi) {
      for (std::size_t k = 0; k < dims; ++k) v[k] = series.values[std::min(k, series.keys() - 1)][i];
    } else {
      v[0] = series.values[std::min(series.anomalous_key, series.keys() - 1)][i];
    }
    const Verdict pv = detector.update(t, std::span<const double>(v.data(), dims));
    out.push_back({t, pv.score});
  }
  return out;
}

Result<Counts> evaluate(DetectorKind kind, AnomalyType type, const GenOptions& options, std::uint64_t first_seed,
                        std::size_t seeds, const EvalSetup& setup) {
  auto params = resolveParams(kind, setup.params);
  if (!params) return std::unexpected(params.error());
  const KindInfo& info = kindInfo(kind);
  GenOptions gen = options;
  if (info.multivariate) gen.keys = std::max(gen.keys, std::max<std::size_t>(setup.mv_keys, 2));
  ScoreOptions so;
  so.threshold = setup.threshold < 0 ? info.default_threshold : setup.threshold;
  Counts total;
  for (std::size_t s = 0; s < seeds; ++s) {
    const LabelledSeries series = generate(type, gen, first_seed + s);
    so.tolerance_ms =
        static_cast<std::int64_t>(std::llround(setup.tolerance_intervals * static_cast<double>(series.interval_ms)));
    auto det = makeDetector(kind, *params, info.multivariate ? series.keys() : 1);
    if (!det) return std::unexpected(det.error());
    const std::vector<Scored> scores = replay(**det, series);
    total += score(scores, series.anomalies, series.size(), so);
  }
  return total;
}

}  // namespace sw::analytics::eval
