// Robust rolling z-score: z = |x - median| / sigma over the last `window` points, sigma =
// 1.4826 * MAD (with a fallback for MAD = 0, see RobustWindow::sigma). The point is scored
// against the window before it enters it. Score = 1 - 0.2^((z / k)^3): 0.8 at |z| = k.
// Default k = 5 rather than 4: with a 120-point window the median and MAD are themselves noisy
// (~11 %), which multiplies the Gaussian tail rate: at k = 4 a clean series alarms every ~3,000
// points, at k = 5 every ~100,000 (measured on white noise plus a slow wander), while spikes of
// 6+ noise sd still score >= 0.8.
#include <cmath>

#include "analytics/detectors/kinds.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics::detail {

namespace {

constexpr std::uint16_t kVersion = 1;

class ZScoreDetector final : public Detector {
 public:
  explicit ZScoreDetector(const Params& p)
      : window_(static_cast<std::size_t>(p.at("window"))),
        k_(p.at("k")),
        min_scale_(p.at("min_scale")),
        ready_after_(std::max<std::size_t>(8, window_ / 2)),
        fingerprint_(state_io::paramsFingerprint(p)),
        st_(window_) {}

  Verdict update(std::int64_t ts_ms, std::span<const double> values) override {
    double x = 0;
    if (!acceptPoint(st_.last_ts, ts_ms, values, x)) return {};
    st_.last_ts = ts_ms;
    Verdict v;
    if (st_.win.size() >= ready_after_) {
      const double m = st_.win.median();
      const double s = st_.win.sigma(min_scale_);
      v.ready = true;
      v.score = scoreFromRatio(std::abs(x - m) / s / k_);
      v.expected_lo = m - k_ * s;
      v.expected_hi = m + k_ * s;
    } else {
      v.expected_lo = v.expected_hi = kNaN;
    }
    st_.win.push(x);
    return v;
  }

  DetectorKind kind() const override { return DetectorKind::kZScore; }
  std::size_t memoryBytes() const override { return sizeof(*this) + st_.win.heapBytes(); }

  void save(std::string& out) const override {
    state_io::StateWriter w(out, kind(), kVersion, fingerprint_);
    w.i64(st_.last_ts);
    st_.win.save(w);
    w.finish();
  }

  bool load(std::string_view in) override {
    return loadState(st_, State(window_), in, kind(), kVersion, fingerprint_,
                     [](State& s, state_io::StateReader& r) { return r.i64(s.last_ts) && s.win.load(r); });
  }

 private:
  struct State {
    explicit State(std::size_t window) : win(window) {}
    std::int64_t last_ts = kNoTs;
    RobustWindow win;
  };

  std::size_t window_;
  double k_;
  double min_scale_;
  std::size_t ready_after_;
  std::uint64_t fingerprint_;
  State st_;
};

}  // namespace

KindInfo zscoreInfo() {
  return KindInfo{
      .kind = DetectorKind::kZScore,
      .title = "Robust z-score",
      .description =
          "Flags values far from the recent median, in units of the recent spread (median absolute "
          "deviation over a sliding window), so outliers do not distort the baseline. Score 0.8 when "
          "|value - median| = k robust standard deviations (score = 1 - 0.2^((z/k)^3)).",
      .multivariate = false,
      .default_threshold = kDefaultThreshold,
      .params =
          {
              {"window", 120, 8, 4096, true,
               "Points in the sliding window (median and MAD); scoring starts after half of it."},
              {"k", 5, 1, 50, false, "Robust z (deviations from the median in standard deviations) that scores 0.8."},
              {"min_scale", 0, 0, 1e12, false,
               "Floor for the standard deviation, in the series' unit (e.g. the sensor's resolution); 0 = none."},
          },
  };
}

std::unique_ptr<Detector> makeZScore(const Params& p) {
  return std::make_unique<ZScoreDetector>(p);
}

}  // namespace sw::analytics::detail
