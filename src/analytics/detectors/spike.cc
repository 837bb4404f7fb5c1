// Spike / rate of change. The change of a point is measured from the recent level (the median of
// the previous 3 points, so one earlier outlier does not count as the level) and expressed per
// typical interval: d = (x - level) / max(1, dt / typical_dt), where typical_dt is learned (EWMA
// of log dt). So a point after a long gap may have changed proportionally more, and irregular
// sampling does not inflate the rate. d is scored against the median and robust spread (MAD) of
// the recent changes: z = |d - median(d)| / sigma(d), score = 1 - 0.2^((z / k)^3), 0.8 at z = k.
// Spike-and-return: for a few points after a flagged change, a point that comes back to the level
// before it (a one or two point spike ending) is scored against that level instead, so the return
// is not reported as a second spike.
// The spread of changes is ~1.2 x the noise's (the level is itself noisy), so with the default
// k = 5 a spike needs ~6-7 noise sd to score 0.8 (the z-score kind is more sensitive to isolated
// outliers; this one is about abrupt change). ~1.4e-5 false alarms per point on white noise plus
// a slow wander.
#include <algorithm>
#include <cmath>

#include "analytics/detectors/kinds.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics::detail {

namespace {

constexpr std::uint16_t kVersion = 1;
constexpr std::uint32_t kReturnPoints = 4;  // how long after a flagged change a return is recognised
constexpr double kDtAlpha = 0.05;
constexpr double kLn4 = 1.3862943611198906;

double median3(const double* v, std::uint32_t n) {
  if (n == 1) return v[0];
  if (n == 2) return 0.5 * (v[0] + v[1]);
  return std::max(std::min(v[0], v[1]), std::min(std::max(v[0], v[1]), v[2]));
}

class SpikeDetector final : public Detector {
 public:
  explicit SpikeDetector(const Params& p)
      : window_(static_cast<std::size_t>(p.at("window"))),
        k_(p.at("k")),
        min_scale_(p.at("min_scale")),
        ready_after_(std::max<std::size_t>(8, window_ / 2)),
        fingerprint_(state_io::paramsFingerprint(p)),
        st_(window_) {}

  Verdict update(std::int64_t ts_ms, std::span<const double> values) override {
    double x = 0;
    if (!acceptPoint(st_.last_ts, ts_ms, values, x)) return {};
    Verdict v{.score = 0, .ready = false, .expected_lo = kNaN, .expected_hi = kNaN};
    if (st_.recent_n > 0) {
      // Typical interval (geometric mean, outliers limited to x4 per step).
      const double dt = static_cast<double>(ts_ms - st_.last_ts);
      const double ldt = std::log(dt);
      if (st_.dt_n == 0) {
        st_.log_dt = ldt;
      } else {
        st_.log_dt += kDtAlpha * std::clamp(ldt - st_.log_dt, -kLn4, kLn4);
      }
      if (st_.dt_n < 2) ++st_.dt_n;
      const double f = std::max(1.0, dt / std::exp(st_.log_dt));
      const double level = median3(st_.recent, st_.recent_n);
      // Clamped so absurd inputs (|x| ~ 1e300) cannot put an infinity into the window.
      const double d =
          std::clamp((x - level) / f, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max());
      if (st_.win.size() >= ready_after_ && st_.recent_n == 3) {
        const double m = st_.win.median();
        const double s = st_.win.sigma(min_scale_);
        double z = std::abs(d - m) / s;
        if (st_.base_left > 0) z = std::min(z, std::abs((x - st_.base_level) / f - m) / s);
        v.ready = true;
        v.score = scoreFromRatio(z / k_);
        v.expected_lo = level + f * (m - k_ * s);
        v.expected_hi = level + f * (m + k_ * s);
        if (z >= k_) {
          if (st_.base_left == 0) st_.base_level = level;
          st_.base_left = kReturnPoints;
        } else if (st_.base_left > 0) {
          --st_.base_left;
        }
      }
      st_.win.push(d);
    }
    // Remember the last 3 values (oldest first).
    if (st_.recent_n < 3) {
      st_.recent[st_.recent_n++] = x;
    } else {
      st_.recent[0] = st_.recent[1];
      st_.recent[1] = st_.recent[2];
      st_.recent[2] = x;
    }
    st_.last_ts = ts_ms;
    return v;
  }

  DetectorKind kind() const override { return DetectorKind::kSpike; }
  std::size_t memoryBytes() const override { return sizeof(*this) + st_.win.heapBytes(); }

  void save(std::string& out) const override {
    state_io::StateWriter w(out, kind(), kVersion, fingerprint_);
    w.i64(st_.last_ts);
    w.u32(st_.recent_n);
    for (double r : st_.recent) w.f64(r);
    w.u32(st_.dt_n);
    w.f64(st_.log_dt);
    w.f64(st_.base_level);
    w.u32(st_.base_left);
    st_.win.save(w);
    w.finish();
  }

  bool load(std::string_view in) override {
    return loadState(st_, State(window_), in, kind(), kVersion, fingerprint_, [](State& s, state_io::StateReader& r) {
      if (!r.i64(s.last_ts) || !r.u32(s.recent_n) || s.recent_n > 3) return false;
      for (double& v : s.recent)
        if (!r.f64(v)) return false;
      for (std::uint32_t i = 0; i < s.recent_n; ++i)
        if (!std::isfinite(s.recent[i])) return false;
      return r.u32(s.dt_n) && s.dt_n <= 2 && r.finite(s.log_dt) && r.finite(s.base_level) && r.u32(s.base_left) &&
             s.base_left <= kReturnPoints && s.win.load(r);
    });
  }

 private:
  struct State {
    explicit State(std::size_t window) : win(window) {}
    std::int64_t last_ts = kNoTs;
    double recent[3] = {0, 0, 0};  // last values, oldest first
    std::uint32_t recent_n = 0;
    std::uint32_t dt_n = 0;       // intervals seen (saturates at 2)
    double log_dt = 0;            // EWMA of log(interval ms)
    double base_level = 0;        // level before the last flagged change
    std::uint32_t base_left = 0;  // points for which a return to base_level is recognised
    RobustWindow win;             // recent changes d
  };

  std::size_t window_;
  double k_;
  double min_scale_;
  std::size_t ready_after_;
  std::uint64_t fingerprint_;
  State st_;
};

}  // namespace

KindInfo spikeInfo() {
  return KindInfo{
      .kind = DetectorKind::kSpike,
      .title = "Spike / rate of change",
      .description =
          "Flags sudden changes: the change from the recent level (median of the last 3 points) per "
          "typical sampling interval, compared with the median and spread (MAD) of recent changes; a "
          "spike's return to the previous level is not reported again. Score 0.8 when the change is k "
          "robust standard deviations from usual (score = 1 - 0.2^((z/k)^3)).",
      .multivariate = false,
      .default_threshold = kDefaultThreshold,
      .params =
          {
              {"window", 120, 8, 4096, true,
               "Recent changes kept for the median and spread; scoring starts after half."},
              {"k", 5, 1, 50, false, "Change, in robust standard deviations of the usual changes, that scores 0.8."},
              {"min_scale", 0, 0, 1e12, false,
               "Floor for the standard deviation of changes, in the series' unit; 0 = none."},
          },
  };
}

std::unique_ptr<Detector> makeSpike(const Params& p) {
  return std::make_unique<SpikeDetector>(p);
}

}  // namespace sw::analytics::detail
