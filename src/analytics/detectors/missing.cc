// Missing data / device inactivity. Learns the typical interval between points (median of the
// last `window` gaps: robust to the odd outage, and follows a lasting change of rate within
// window/2 points). The limit is max(factor x typical, min_gap_ms). A silence of length g scores
// 1 - 0.2^(r^3) with r = (g - typical) / (limit - typical): 0 up to the typical interval, 0.8 at
// the limit, ~1 at twice the limit (with min_gap_ms 0). tick(now) scores the ongoing silence
// (now - last point); update() scores the gap that just ended, so a point arriving after an
// outage reports it too. expected_lo/hi are NaN (no value is expected).
#include <algorithm>
#include <cmath>

#include "analytics/detectors/kinds.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics::detail {

namespace {

constexpr std::uint16_t kVersion = 1;

class MissingDetector final : public Detector {
 public:
  explicit MissingDetector(const Params& p)
      : factor_(p.at("factor")),
        min_gap_ms_(p.at("min_gap_ms")),
        window_(static_cast<std::size_t>(p.at("window"))),
        ready_after_(std::max<std::size_t>(4, window_ / 4)),
        fingerprint_(state_io::paramsFingerprint(p)),
        st_(window_) {}

  Verdict update(std::int64_t ts_ms, std::span<const double> values) override {
    double x = 0;
    if (!acceptPoint(st_.last_ts, ts_ms, values, x)) return {};
    Verdict v{.score = 0, .ready = false, .expected_lo = kNaN, .expected_hi = kNaN};
    if (st_.last_ts != kNoTs) {
      const double gap = static_cast<double>(ts_ms) - static_cast<double>(st_.last_ts);
      if (ready()) v = score(gap);
      st_.gaps.push(gap);
    }
    st_.last_ts = ts_ms;
    return v;
  }

  Verdict tick(std::int64_t now_ms) override {
    if (st_.last_ts == kNoTs || !ready()) return {};
    return score(static_cast<double>(now_ms) - static_cast<double>(st_.last_ts));
  }

  DetectorKind kind() const override { return DetectorKind::kMissing; }
  std::size_t memoryBytes() const override { return sizeof(*this) + st_.gaps.heapBytes(); }

  void save(std::string& out) const override {
    state_io::StateWriter w(out, kind(), kVersion, fingerprint_);
    w.i64(st_.last_ts);
    st_.gaps.save(w);
    w.finish();
  }

  bool load(std::string_view in) override {
    return loadState(st_, State(window_), in, kind(), kVersion, fingerprint_,
                     [](State& s, state_io::StateReader& r) { return r.i64(s.last_ts) && s.gaps.load(r); });
  }

 private:
  struct State {
    explicit State(std::size_t window) : gaps(window) {}
    std::int64_t last_ts = kNoTs;
    RobustWindow gaps;  // recent intervals between points, ms
  };

  bool ready() const { return st_.gaps.size() >= ready_after_; }

  Verdict score(double gap) const {
    const double typical = st_.gaps.median();
    const double limit = std::max(factor_ * typical, min_gap_ms_);
    Verdict v{.score = 0, .ready = true, .expected_lo = kNaN, .expected_hi = kNaN};
    if (limit > typical && gap > typical) v.score = scoreFromRatio((gap - typical) / (limit - typical));
    return v;
  }

  double factor_;
  double min_gap_ms_;
  std::size_t window_;
  std::size_t ready_after_;
  std::uint64_t fingerprint_;
  State st_;
};

}  // namespace

KindInfo missingInfo() {
  return KindInfo{
      .kind = DetectorKind::kMissing,
      .title = "Missing data",
      .description =
          "Flags a series (device) that stops reporting: the time since the last point compared with the "
          "typical interval between points (median of recent intervals). Score 0.8 at factor times the "
          "typical interval (or min_gap_ms if larger), about 1 at twice that; checked on every point "
          "and periodically while no data arrives.",
      .multivariate = false,
      .default_threshold = kDefaultThreshold,
      .params =
          {
              {"factor", 3, 1.1, 1000, false, "Silence, in typical intervals, that scores 0.8."},
              {"min_gap_ms", 0, 0, 1e12, false,
               "Lower bound for the silence that scores 0.8, in ms (for fast or bursty series); 0 = the factor alone."},
              {"window", 32, 4, 1024, true, "Recent intervals whose median is the typical interval."},
          },
  };
}

std::unique_ptr<Detector> makeMissing(const Params& p) {
  return std::make_unique<MissingDetector>(p);
}

}  // namespace sw::analytics::detail
