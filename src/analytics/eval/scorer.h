#pragma once
// Evaluation of the detectors (issue 5): scoring a detector's output against labelled windows,
// and replaying a generated series through a detector. The formulas are in docs/analytics.md
// ("Evaluation").
//
// Event-based counts: an alarm is a score >= threshold; consecutive alarm samples (points and
// ticks in time order) form one alarm event. A labelled window is detected when an alarm sample
// lies in [start - tolerance, end + tolerance]; an alarm event that overlaps no such extended
// window is a false positive. precision = detected / (detected + false positives),
// recall = detected / windows. The NAB-style score rewards the first alarm in each extended
// window with a sigmoid of how early it came, penalises each false positive by a_fp, and is
// normalised so that a perfect detector scores 100 and one that never alarms scores 0.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/eval/generator.h"

namespace sw::analytics::eval {

// One score of a detector, for a point (update) or a tick, in time order.
struct Scored {
  std::int64_t ts_ms = 0;
  double score = 0;
};

struct ScoreOptions {
  double threshold = 0.8;
  std::int64_t tolerance_ms = 0;  // a window [start, end) is searched in [start - tol, end + tol]
  // NAB "standard" application profile weights.
  double a_tp = 1.0;
  double a_fp = 0.11;
  double a_fn = 1.0;
};

// Sums that can be added up over series (several seeds) before the ratios are taken.
struct Counts {
  std::size_t series = 0;
  std::size_t points = 0;           // data points (not ticks)
  std::size_t windows = 0;          // labelled anomalies
  std::size_t detected = 0;         // windows with an alarm in their extended window
  std::size_t alarm_events = 0;     // runs of consecutive alarm samples
  std::size_t false_positives = 0;  // alarm events outside every extended window
  double delay_ms_sum = 0;          // over detected windows: first alarm - start (negative = early)
  double nab_raw = 0;               // sum of rewards and penalties
  double nab_null = 0;              // what a detector that never alarms scores (-a_fn per window)
  double nab_perfect = 0;           // what a perfect detector scores (a_tp per window)

  Counts& operator+=(const Counts& o);
  // NaN when undefined: precision without any alarm, recall/NAB without windows.
  double precision() const;
  double recall() const;
  double f1() const;   // 0 when there are windows but nothing was detected
  double nab() const;  // 100 * (raw - null) / (perfect - null); can be negative
  double fpPer10k() const;
  double meanDelayMs() const;  // NaN when nothing was detected
};

// scores sorted by time; windows sorted and non-overlapping; points = number of data points.
Counts score(std::span<const Scored> scores, std::span<const Window> windows, std::size_t points,
             const ScoreOptions& options);

// NAB-style reward in [0, 1] for a first alarm at `t` in a window [start, end) extended by
// tolerance: 1 for an alarm no later than start, falling along a sigmoid to 0 at end + tolerance.
double earlinessReward(std::int64_t t, std::int64_t start, std::int64_t end, std::int64_t tolerance);

// Feeds a series to a detector in time order, as the engine would: every point through update()
// (the anomalous key, or the first dims() keys for a multivariate detector) and, between points,
// a tick() at each interval (on the grid start + k * interval + interval / 2), so that missing
// data is seen. Returns the point and tick scores merged in time order.
std::vector<Scored> replay(Detector& detector, const LabelledSeries& series);

// Runs one detector kind over `seeds` generated series of a type (seeds first_seed,
// first_seed + 1, ...) and adds up the counts. params/threshold: empty params = the kind's
// defaults; threshold < 0 = the kind's default threshold. Tolerance is tolerance_intervals
// sampling intervals. A multivariate detector gets max(options.keys, mv_keys) keys.
struct EvalSetup {
  Params params;
  double threshold = -1;
  double tolerance_intervals = 10;
  std::size_t mv_keys = 3;
};
Result<Counts> evaluate(DetectorKind kind, AnomalyType type, const GenOptions& options, std::uint64_t first_seed,
                        std::size_t seeds, const EvalSetup& setup = {});

}  // namespace sw::analytics::eval
