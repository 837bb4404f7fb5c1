// EWMA control chart: exponentially weighted mean and variance of the series; a point is scored
// by z = |x - mean| / sd against the baseline before it, score = 1 - 0.2^((z / k)^3) (0.8 at
// |z| = k). The baseline is learned exactly (Welford) over the first `warmup` points, then
// updated with weight `alpha` per point using the value winsorised to mean +- clamp * sd, so an
// outlier moves the baseline by at most alpha * clamp sd (a lasting level shift is still
// absorbed after a few dozen points: the variance grows, the clamp widens).
// Defaults alpha = 0.02, k = 5: ~2e-6 false alarms per point on white noise plus a slow wander
// (the EWMA variance is a noisy estimate; k = 4.5 gives ~2e-5).
#include <algorithm>
#include <cmath>

#include "analytics/detectors/kinds.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics::detail {

namespace {

constexpr std::uint16_t kVersion = 1;

class EwmaDetector final : public Detector {
 public:
  explicit EwmaDetector(const Params& p)
      : alpha_(p.at("alpha")),
        k_(p.at("k")),
        clamp_(p.at("clamp")),
        warmup_(static_cast<std::uint64_t>(p.at("warmup"))),
        min_scale_(p.at("min_scale")),
        fingerprint_(state_io::paramsFingerprint(p)) {}

  Verdict update(std::int64_t ts_ms, std::span<const double> values) override {
    double x = 0;
    if (!acceptPoint(st_.last_ts, ts_ms, values, x)) return {};
    st_.last_ts = ts_ms;
    if (st_.n < warmup_) {  // Welford
      ++st_.n;
      const double d = x - st_.mean;
      st_.mean += d / static_cast<double>(st_.n);
      st_.var += d * (x - st_.mean);  // sum of squares until warm-up ends
      if (st_.n == warmup_) st_.var = st_.n > 1 ? st_.var / static_cast<double>(st_.n - 1) : 0;
      if (!std::isfinite(st_.mean) || !std::isfinite(st_.var)) st_ = State{.last_ts = ts_ms};
      return {.score = 0, .ready = false, .expected_lo = kNaN, .expected_hi = kNaN};
    }
    const double sd =
        std::max({std::sqrt(st_.var), min_scale_, 1e-9 * std::abs(st_.mean), std::numeric_limits<double>::min()});
    Verdict v;
    v.ready = true;
    v.score = scoreFromRatio(std::abs(x - st_.mean) / sd / k_);
    v.expected_lo = st_.mean - k_ * sd;
    v.expected_hi = st_.mean + k_ * sd;
    const double diff = std::clamp(x - st_.mean, -clamp_ * sd, clamp_ * sd);
    st_.mean += alpha_ * diff;
    st_.var = (1 - alpha_) * (st_.var + alpha_ * diff * diff);
    // Absurd inputs (|x| ~ 1e300) can overflow the state: re-learn rather than stay broken.
    if (!std::isfinite(st_.mean) || !std::isfinite(st_.var)) st_ = State{.last_ts = ts_ms};
    return v;
  }

  DetectorKind kind() const override { return DetectorKind::kEwma; }
  std::size_t memoryBytes() const override { return sizeof(*this); }

  void save(std::string& out) const override {
    state_io::StateWriter w(out, kind(), kVersion, fingerprint_);
    w.i64(st_.last_ts);
    w.u64(st_.n);
    w.f64(st_.mean);
    w.f64(st_.var);
    w.finish();
  }

  bool load(std::string_view in) override {
    const std::uint64_t warmup = warmup_;
    return loadState(st_, State{}, in, kind(), kVersion, fingerprint_, [warmup](State& s, state_io::StateReader& r) {
      return r.i64(s.last_ts) && r.count(s.n, 0, warmup) && r.finite(s.mean) && r.finite(s.var) && s.var >= 0;
    });
  }

 private:
  struct State {
    std::int64_t last_ts = kNoTs;
    std::uint64_t n = 0;  // points learned, up to warmup
    double mean = 0;
    double var = 0;  // during warm-up: Welford's running sum of squares
  };

  double alpha_;
  double k_;
  double clamp_;
  std::uint64_t warmup_;
  double min_scale_;
  std::uint64_t fingerprint_;
  State st_;
};

}  // namespace

KindInfo ewmaInfo() {
  return KindInfo{
      .kind = DetectorKind::kEwma,
      .title = "EWMA control chart",
      .description =
          "Flags values far from an exponentially weighted moving mean, in units of the exponentially "
          "weighted standard deviation; outliers are winsorised before they update the baseline. Score "
          "0.8 when |value - mean| = k standard deviations (score = 1 - 0.2^((z/k)^3)).",
      .multivariate = false,
      .default_threshold = kDefaultThreshold,
      .params =
          {
              {"alpha", 0.02, 0.001, 0.5, false,
               "Weight of each new point in the mean and variance (memory ~ 2/alpha points)."},
              {"k", 5, 1, 50, false, "Deviation from the mean, in standard deviations, that scores 0.8."},
              {"clamp", 3, 1, 100, false,
               "Values are winsorised to mean +- clamp standard deviations before updating the baseline."},
              {"warmup", 30, 2, 100000, true, "Points learned before scoring starts."},
              {"min_scale", 0, 0, 1e12, false, "Floor for the standard deviation, in the series' unit; 0 = none."},
          },
  };
}

std::unique_ptr<Detector> makeEwma(const Params& p) {
  return std::make_unique<EwmaDetector>(p);
}

}  // namespace sw::analytics::detail
