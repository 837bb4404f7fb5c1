#pragma once
// Evaluation of the detectors (issue 5): labelled synthetic series. A series is a base signal
// (level + optional daily seasonality + slow wander + Gaussian noise) sampled at a regular or
// jittered interval, with anomalies of one type injected into labelled windows [start, end).
// Seeded and deterministic: the same (type, options, seed) always gives the same series (own PRNG
// and Gaussian sampler, no <random> distributions, whose output differs between standard
// libraries).
//
// Used by tests/analytics/eval_test.cc (make test) and bench/bench_detectors.cc (make bench);
// the method is described in docs/analytics.md.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sw::analytics::eval {

enum class AnomalyType {
  kNone,               // clean series (false-positive rate); no windows
  kSpike,              // one or two points far off the level
  kLevelShift,         // the level jumps for a few hours, then returns
  kDrift,              // slow ramp away from the level and back (hours)
  kBrokenSeasonality,  // one day's pattern missing (flat) or shifted by a quarter day (needs a season)
  kStuck,              // the sensor repeats its last value exactly
  kVarianceChange,     // the noise becomes several times larger
  kBrokenRelation,     // key 1 = f(key 0) + noise stops holding while both stay in range
  kMissingData,        // no points at all for a while (every key)
};

// Stable names: "clean", "spike", "level_shift", "drift", "broken_seasonality", "stuck",
// "variance_change", "broken_relation", "missing_data".
std::string_view anomalyName(AnomalyType type);
// Every type with anomalies, in enum order (without kNone).
const std::vector<AnomalyType>& anomalyTypes();

struct Window {
  std::int64_t start_ms = 0;  // first anomalous instant
  std::int64_t end_ms = 0;    // exclusive
};

struct GenOptions {
  std::size_t points = 6000;                  // nominal samples (missing_data removes some)
  std::int64_t start_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z (a day boundary)
  std::int64_t interval_ms = 60'000;          // nominal sampling interval
  double jitter = 0.1;                        // each timestamp moves by up to +-jitter * interval (< 0.5)
  double level = 20;
  double noise_sd = 0.5;        // white Gaussian noise
  double wander_sd = 0.25;      // slow AR(1) wander (stationary sd), time constant ~200 points
  double season_amplitude = 0;  // daily sine (+ a 2nd harmonic at 30 %); 0 = none
  std::int64_t season_ms = 86'400'000;
  std::size_t anomalies = 3;         // labelled windows per series (broken_seasonality: whole days)
  std::size_t warmup_points = 1500;  // no anomaly before this sample (lets detectors learn)
  std::size_t keys = 1;              // >= 2: extra keys related to key 0 (forced >= 2 for broken_relation)
  double magnitude = 1;              // scales every anomaly's size (1 = the standard profile)
};

// The standard evaluation profile for a type: longer series with a daily season for
// broken_seasonality (and kNone when `seasonal`), a wide slow signal for broken_relation.
GenOptions standardOptions(AnomalyType type, bool seasonal = false);

struct LabelledSeries {
  AnomalyType type = AnomalyType::kNone;
  std::int64_t interval_ms = 0;
  std::vector<std::int64_t> ts;             // increasing
  std::vector<std::vector<double>> values;  // values[key][i], every key has ts.size() values
  std::vector<Window> anomalies;            // sorted, non-overlapping
  std::size_t anomalous_key = 0;            // the key the anomaly is injected into
  std::size_t size() const { return ts.size(); }
  std::size_t keys() const { return values.size(); }
};

LabelledSeries generate(AnomalyType type, const GenOptions& options, std::uint64_t seed);

// Small deterministic PRNG (splitmix64 seeding + xoshiro256**), with uniform and Gaussian
// samplers whose output is the same everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  double uniform();                      // [0, 1)
  double uniform(double lo, double hi);  // [lo, hi)
  std::size_t below(std::size_t n);      // [0, n), n > 0
  double gaussian();                     // N(0, 1), Box-Muller

 private:
  std::uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace sw::analytics::eval
