// Flatline (stuck sensor). A run is a stretch of points within `epsilon` of the run's first value
// (epsilon 0: exactly equal). The current run is stuck when it has lasted for more than
// `min_points` repeats AND longer than `min_duration_ms`, or when that is 0, longer than `factor`
// times the typical duration of a run (learned: EWMA of completed runs, each capped at the limit
// so a stuck period does not teach that stuck is normal). For a noisy series a run is one point,
// so that is factor x the sampling interval; for a quantised, slowly moving one it is its usual
// hold time. Score = 1 - 0.2^(r^3) with r = min(repeats / min_points, duration / limit): 0.8 at
// the limit, > 0.99 at 1.5 x the limit.
// A series that has not varied yet (fewer than 5 value changes: e.g. a status flag) is still
// learning (ready = false): a value that never changes is not a stuck sensor.
#include <algorithm>
#include <cmath>

#include "analytics/detectors/kinds.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics::detail {

namespace {

constexpr std::uint16_t kVersion = 1;
constexpr std::uint64_t kMinChanges = 5;
constexpr double kRunAlpha = 0.05;

class FlatlineDetector final : public Detector {
 public:
  explicit FlatlineDetector(const Params& p)
      : epsilon_(p.at("epsilon")),
        min_points_(p.at("min_points")),
        factor_(p.at("factor")),
        min_duration_ms_(p.at("min_duration_ms")),
        fingerprint_(state_io::paramsFingerprint(p)) {}

  Verdict update(std::int64_t ts_ms, std::span<const double> values) override {
    double x = 0;
    if (!acceptPoint(st_.last_ts, ts_ms, values, x)) return {};
    st_.last_ts = ts_ms;
    Verdict v{.score = 0, .ready = false, .expected_lo = kNaN, .expected_hi = kNaN};
    if (st_.run_ts == kNoTs) {  // first point
      st_.anchor = x;
      st_.run_ts = ts_ms;
      st_.repeats = 0;
      return v;
    }
    const double limit_ms = limitMs();
    if (std::abs(x - st_.anchor) <= epsilon_) {
      ++st_.repeats;
      if (st_.changes >= kMinChanges) {
        const double dur = static_cast<double>(ts_ms - st_.run_ts);
        const double r = std::min(static_cast<double>(st_.repeats) / min_points_, dur / limit_ms);
        v.ready = true;
        v.score = scoreFromRatio(r);
      }
      return v;
    }
    // The value changed: the run that ended lasted until now.
    const double dur = std::min(static_cast<double>(ts_ms - st_.run_ts), limit_ms);
    st_.typical_run_ms = st_.changes == 0 ? dur : st_.typical_run_ms + kRunAlpha * (dur - st_.typical_run_ms);
    if (st_.changes < kMinChanges) ++st_.changes;
    st_.anchor = x;
    st_.run_ts = ts_ms;
    st_.repeats = 0;
    v.ready = st_.changes >= kMinChanges;
    return v;
  }

  DetectorKind kind() const override { return DetectorKind::kFlatline; }
  std::size_t memoryBytes() const override { return sizeof(*this); }

  void save(std::string& out) const override {
    state_io::StateWriter w(out, kind(), kVersion, fingerprint_);
    w.i64(st_.last_ts);
    w.i64(st_.run_ts);
    w.f64(st_.anchor);
    w.u64(st_.repeats);
    w.u64(st_.changes);
    w.f64(st_.typical_run_ms);
    w.finish();
  }

  bool load(std::string_view in) override {
    return loadState(st_, State{}, in, kind(), kVersion, fingerprint_, [](State& s, state_io::StateReader& r) {
      return r.i64(s.last_ts) && r.i64(s.run_ts) && r.finite(s.anchor) && r.u64(s.repeats) &&
             r.count(s.changes, 0, kMinChanges) && r.finite(s.typical_run_ms) && s.typical_run_ms >= 0 &&
             s.run_ts <= s.last_ts;
    });
  }

 private:
  struct State {
    std::int64_t last_ts = kNoTs;
    std::int64_t run_ts = kNoTs;  // first point of the current run
    double anchor = 0;            // its value
    std::uint64_t repeats = 0;    // points after it within epsilon
    std::uint64_t changes = 0;    // completed runs (saturates at kMinChanges)
    double typical_run_ms = 0;    // EWMA of completed run durations (capped at the limit)
  };

  double limitMs() const {
    if (min_duration_ms_ > 0) return min_duration_ms_;
    return std::max(factor_ * st_.typical_run_ms, 1.0);
  }

  double epsilon_;
  double min_points_;
  double factor_;
  double min_duration_ms_;
  std::uint64_t fingerprint_;
  State st_;
};

}  // namespace

KindInfo flatlineInfo() {
  return KindInfo{
      .kind = DetectorKind::kFlatline,
      .title = "Flatline (stuck sensor)",
      .description =
          "Flags a value that stops changing: more than min_points repeats within epsilon, lasting "
          "longer than min_duration_ms or (when 0) factor times the usual time the value holds. Only "
          "after the series has varied, so naturally constant values are not flagged. Score 0.8 at the "
          "limit, rising to 1 at 1.5 times it.",
      .multivariate = false,
      .default_threshold = kDefaultThreshold,
      .params =
          {
              {"epsilon", 0, 0, 1e12, false, "Largest change still counted as 'unchanged' (0 = exactly equal)."},
              {"min_points", 10, 2, 1e6, true, "Repeated points needed (score 0.8 at this many)."},
              {"factor", 10, 1, 1000, false,
               "The run must also last this many times the usual duration of a value (learned); unused when "
               "min_duration_ms > 0."},
              {"min_duration_ms", 0, 0, 1e12, false, "Fixed duration limit instead of the learned one; 0 = learned."},
          },
  };
}

std::unique_ptr<Detector> makeFlatline(const Params& p) {
  return std::make_unique<FlatlineDetector>(p);
}

}  // namespace sw::analytics::detail
