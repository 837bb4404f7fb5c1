// Multivariate detector (issue 5): Mahalanobis distance of each joint vector of several keys of
// one device (2 to 16) from the mean and covariance of a sliding window of the previous vectors.
//
// The window's sums (of x - ref and of its outer products, ref a recent mean to keep the sums
// small) are updated on every add / remove and recomputed from the ring every `window` points so
// rounding cannot accumulate. Per point: covariance from the sums, ridge (each variance times
// 1 + ridge, plus a tiny floor), Cholesky, one triangular solve: O(dims^3 / 6).
//
// The score is from the exact predictive distribution of a new Gaussian vector against a window
// of n: T^2 = n / (n + 1) * d^2 ~ (n - 1) p / (n - p) * F(p, n - p), so small windows and many
// keys do not inflate false alarms the way the chi-square approximation would. p-value -> score
// 1 - pv^c with c chosen so that pv = 1e-4 gives 0.8 (the default threshold); pv = 0.01 gives
// ~0.55, pv = 1e-6 ~0.91.
//
// A vector beyond the alarm distance does not enter the window, so an anomaly is not learnt
// while it lasts (and the return to normal does not look anomalous afterwards). When more than
// half of the recent vectors (EWMA over one window) are anomalous, the relation has changed for
// good: they enter again, winsorised to the alarm distance, and the window learns the new
// relation (a permanent change alarms for one to two windows).
//
// expected_lo / expected_hi are NaN: the anomaly is a joint one, no single key has "the"
// expected range.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "analytics/detectors/kinds.h"
#include "analytics/detectors/state_io.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics::detail {

namespace {

constexpr std::uint16_t kStateVersion = 1;
constexpr std::size_t kMaxDims = 16;
constexpr double kAlarmP = 1e-4;       // p-value that scores kDefaultThreshold
constexpr double kRelearnShare = 0.5;  // anomalous share of recent vectors that means "new normal"

double param(const Params& p, std::string_view name, double fallback) {
  const auto it = p.find(name);
  return it == p.end() ? fallback : it->second;
}

// log Gamma(k / 2) for an integer k >= 1, exactly from factorials (no lgamma: it writes the
// global signgam, a data race between workers).
double logGammaHalf(std::size_t k) {
  double s = 0;
  if (k % 2 == 0) {
    for (std::size_t i = 2; i < k / 2; ++i) s += std::log(static_cast<double>(i));  // (k/2 - 1)!
  } else {
    s = 0.5 * std::log(std::numbers::pi);  // Gamma(1/2)
    for (std::size_t i = 0; i < k / 2; ++i) s += std::log(static_cast<double>(i) + 0.5);
  }
  return s;
}

// Continued fraction of the incomplete beta function (modified Lentz).
double betaContinuedFraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-13;
  double c = 1;
  double d = 1 - (a + b) * x / (a + 1);
  if (std::abs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    const double md = m;
    double aa = md * (b - md) * x / ((a + 2 * md - 1) * (a + 2 * md));
    d = 1 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + md) * (a + b + md) * x / ((a + 2 * md) * (a + 2 * md + 1));
    d = 1 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < kEps) break;
  }
  return h;
}

// Regularised incomplete beta I_x(a, b); log_beta = log B(a, b).
double incompleteBeta(double a, double b, double log_beta, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(a * std::log(x) + b * std::log1p(-x) - log_beta);
  if (x < (a + 1) / (a + b + 2)) return front * betaContinuedFraction(a, b, x) / a;
  return 1 - front * betaContinuedFraction(b, a, 1 - x) / b;
}

class Multivariate final : public Detector {
 public:
  Multivariate(const Params& p, std::size_t dims)
      : dims_(dims),
        window_(static_cast<std::size_t>(std::max(param(p, "window", 200), static_cast<double>(dims + 8)))),
        ridge_(std::max(param(p, "ridge", 1e-3), 0.0)),
        fingerprint_(state_io::paramsFingerprint(p, dims)) {
    // F(d1, d2) survival = I_{d2 / (d2 + d1 f)}(d2 / 2, d1 / 2) with d1 = dims, d2 = n - dims.
    const std::size_t n = window_;
    f_a_ = static_cast<double>(n - dims_) / 2;
    f_b_ = static_cast<double>(dims_) / 2;
    log_beta_ = logGammaHalf(n - dims_) + logGammaHalf(dims_) - logGammaHalf(n);
    t2_to_f_ = static_cast<double>(n) / static_cast<double>(n + 1) * static_cast<double>(n - dims_) /
               (static_cast<double>(dims_) * static_cast<double>(n - 1));
    score_exp_ = std::log(1 - kDefaultThreshold) / std::log(kAlarmP);
    // The squared distance whose p-value is kAlarmP (bisection; p falls with d2).
    double lo = 0, hi = 1;
    while (pValue(hi) > kAlarmP && hi < 1e12) hi *= 2;
    for (int i = 0; i < 200 && hi - lo > 1e-9 * hi; ++i) {
      const double mid = 0.5 * (lo + hi);
      (pValue(mid) > kAlarmP ? lo : hi) = mid;
    }
    clip_d2_ = hi;
    ring_.assign(window_ * dims_, 0.0);
    ref_.assign(dims_, 0.0);
    s1_.assign(dims_, 0.0);
    s2_.assign(dims_ * dims_, 0.0);
    mean_.assign(dims_, 0.0);
    chol_.assign(dims_ * dims_, 0.0);
    diff_.assign(dims_, 0.0);
    y_.assign(dims_, 0.0);
  }

  DetectorKind kind() const override { return DetectorKind::kMultivariate; }
  std::size_t dims() const override { return dims_; }
  std::size_t memoryBytes() const override {
    return sizeof(*this) + (ring_.capacity() + ref_.capacity() + s1_.capacity() + s2_.capacity() + mean_.capacity() +
                            chol_.capacity() + diff_.capacity() + y_.capacity()) *
                               sizeof(double);
  }

  Verdict update(std::int64_t ts, std::span<const double> values) override {
    constexpr Verdict kNotReady{0, false, kNaN, kNaN};
    if (values.size() != dims_ || ts <= last_ts_) return kNotReady;
    for (double v : values) {
      if (!std::isfinite(v)) return kNotReady;
    }
    last_ts_ = ts;
    if (count_ < window_) {
      push(values.data());
      return kNotReady;
    }
    const double d2 = distance2(values.data());
    const double pv = pValue(d2);
    const double score = pv <= 0 ? 1.0 : std::clamp(1 - std::pow(pv, score_exp_), 0.0, 1.0);
    const bool anomalous = d2 > clip_d2_;
    anomalous_share_ += ((anomalous ? 1.0 : 0.0) - anomalous_share_) / static_cast<double>(window_);
    if (!anomalous) {
      push(values.data());
    } else if (anomalous_share_ > kRelearnShare) {
      // Most recent vectors are anomalous: the relation has changed for good, learn it (the
      // vector winsorised to the alarm distance, same direction from the mean).
      const double k = std::sqrt(clip_d2_ / d2);
      for (std::size_t i = 0; i < dims_; ++i) y_[i] = mean_[i] + diff_[i] * k;
      push(y_.data());
    }
    return Verdict{score, true, kNaN, kNaN};
  }

  void save(std::string& out) const override {
    state_io::StateWriter w(out, DetectorKind::kMultivariate, kStateVersion, fingerprint_);
    w.i64(last_ts_);
    w.u64(count_);
    w.u64(head_);
    w.u64(since_refresh_);
    w.f64(anomalous_share_);
    w.doubles(ring_);
    w.doubles(ref_);
    w.doubles(s1_);
    w.doubles(s2_);
    w.finish();
  }

  bool load(std::string_view in) override {
    state_io::StateReader r(in, DetectorKind::kMultivariate, kStateVersion, fingerprint_);
    std::int64_t last_ts = kNoTs;
    std::uint64_t count = 0, head = 0, since = 0;
    double share = 0;
    std::vector<double> ring, ref, s1, s2;
    const std::size_t rn = window_ * dims_, dd = dims_ * dims_;
    bool ok = r.ok() && r.i64(last_ts) && r.count(count, 0, window_) && r.count(head, 0, window_ - 1) &&
              r.count(since, 0, window_) && r.f64(share) && share >= 0 && share <= 1 && r.doubles(ring, rn, rn) &&
              r.doubles(ref, dims_, dims_) && r.doubles(s1, dims_, dims_) && r.doubles(s2, dd, dd) && r.finish();
    if (ok && count < window_ && head != 0) ok = false;
    if (ok) {
      for (const auto* v : {&ring, &ref, &s1, &s2}) {
        for (double x : *v) ok = ok && std::isfinite(x);
      }
    }
    if (!ok) {
      reset();
      return false;
    }
    last_ts_ = last_ts;
    count_ = static_cast<std::size_t>(count);
    head_ = static_cast<std::size_t>(head);
    since_refresh_ = static_cast<std::size_t>(since);
    anomalous_share_ = share;
    std::copy(ring.begin(), ring.end(), ring_.begin());
    std::copy(ref.begin(), ref.end(), ref_.begin());
    std::copy(s1.begin(), s1.end(), s1_.begin());
    std::copy(s2.begin(), s2.end(), s2_.begin());
    return true;
  }

 private:
  void reset() {
    last_ts_ = kNoTs;
    count_ = head_ = since_refresh_ = 0;
    anomalous_share_ = 0;
    std::fill(ring_.begin(), ring_.end(), 0.0);
    std::fill(ref_.begin(), ref_.end(), 0.0);
    std::fill(s1_.begin(), s1_.end(), 0.0);
    std::fill(s2_.begin(), s2_.end(), 0.0);
  }

  // Survival of the distance: P(D2 >= d2) for a new vector from the window's distribution.
  double pValue(double d2) const {
    if (!(d2 > 0)) return 1;
    const double f = d2 * t2_to_f_;
    const double d1 = static_cast<double>(dims_), dn = 2 * f_a_;
    return incompleteBeta(f_a_, f_b_, log_beta_, dn / (dn + d1 * f));
  }

  void accumulate(const double* x, double sign) {
    for (std::size_t i = 0; i < dims_; ++i) diff_[i] = x[i] - ref_[i];
    for (std::size_t i = 0; i < dims_; ++i) {
      s1_[i] += sign * diff_[i];
      double* row = &s2_[i * dims_];
      const double di = sign * diff_[i];
      for (std::size_t j = 0; j <= i; ++j) row[j] += di * diff_[j];
    }
  }

  void push(const double* x) {
    double* slot = nullptr;
    if (count_ < window_) {
      slot = &ring_[count_ * dims_];
      ++count_;
    } else {
      slot = &ring_[head_ * dims_];
      accumulate(slot, -1);
      head_ = head_ + 1 == window_ ? 0 : head_ + 1;
    }
    std::copy(x, x + dims_, slot);
    accumulate(x, 1);
    if (count_ == window_ && ++since_refresh_ >= window_) refresh();
  }

  // Recomputes the sums from the ring around its current mean (no drift from add / remove).
  void refresh() {
    since_refresh_ = 0;
    std::fill(mean_.begin(), mean_.end(), 0.0);
    for (std::size_t k = 0; k < count_; ++k) {
      for (std::size_t i = 0; i < dims_; ++i) mean_[i] += ring_[k * dims_ + i];
    }
    for (std::size_t i = 0; i < dims_; ++i) ref_[i] = mean_[i] / static_cast<double>(count_);
    std::fill(s1_.begin(), s1_.end(), 0.0);
    std::fill(s2_.begin(), s2_.end(), 0.0);
    for (std::size_t k = 0; k < count_; ++k) accumulate(&ring_[k * dims_], 1);
  }

  // Squared Mahalanobis distance of x from the window; leaves x - mean in diff_ and the mean in
  // mean_.
  double distance2(const double* x) {
    const std::size_t d = dims_;
    const double n = static_cast<double>(count_);
    for (std::size_t i = 0; i < d; ++i) mean_[i] = s1_[i] / n;  // mean of x - ref
    // Covariance (lower triangle) into chol_, regularised, then factorised in place.
    for (std::size_t i = 0; i < d; ++i) {
      for (std::size_t j = 0; j <= i; ++j) {
        chol_[i * d + j] = (s2_[i * d + j] - n * mean_[i] * mean_[j]) / (n - 1);
      }
    }
    for (std::size_t i = 0; i < d; ++i) {
      const double m = ref_[i] + mean_[i];
      double& v = chol_[i * d + i];
      v = std::max(v, 0.0) * (1 + ridge_) + 1e-12 * (1 + m * m);
    }
    for (std::size_t j = 0; j < d; ++j) {
      double diag = chol_[j * d + j];
      for (std::size_t k = 0; k < j; ++k) diag -= chol_[j * d + k] * chol_[j * d + k];
      // Rounding can leave a (numerically) singular pivot with ridge 0: keep it positive.
      diag = std::sqrt(std::max(diag, 1e-12 * chol_[j * d + j] + 1e-300));
      chol_[j * d + j] = diag;
      for (std::size_t i = j + 1; i < d; ++i) {
        double v = chol_[i * d + j];
        for (std::size_t k = 0; k < j; ++k) v -= chol_[i * d + k] * chol_[j * d + k];
        chol_[i * d + j] = v / diag;
      }
    }
    for (std::size_t i = 0; i < d; ++i) {
      mean_[i] += ref_[i];
      diff_[i] = x[i] - mean_[i];
    }
    double d2 = 0;
    for (std::size_t i = 0; i < d; ++i) {
      double v = diff_[i];
      for (std::size_t k = 0; k < i; ++k) v -= chol_[i * d + k] * y_[k];
      y_[i] = v / chol_[i * d + i];
      d2 += y_[i] * y_[i];
    }
    return d2;
  }

  std::size_t dims_;
  std::size_t window_;
  double ridge_;
  std::uint64_t fingerprint_;
  // Constants of the score.
  double f_a_ = 1, f_b_ = 1, log_beta_ = 0, t2_to_f_ = 1, score_exp_ = 1, clip_d2_ = 1;
  // Learned state (saved).
  std::int64_t last_ts_ = kNoTs;
  std::size_t count_ = 0;          // vectors in the window
  std::size_t head_ = 0;           // oldest vector once full
  std::size_t since_refresh_ = 0;  // pushes since the sums were recomputed
  double anomalous_share_ = 0;     // EWMA (over one window) of "beyond the alarm distance"
  std::vector<double> ring_;       // window_ x dims_
  std::vector<double> ref_;        // centre of the sums
  std::vector<double> s1_;         // sum of (x - ref)
  std::vector<double> s2_;         // sum of (x - ref)(x - ref)^T, lower triangle, dims_ x dims_
  // Scratch (not state).
  std::vector<double> mean_, chol_, diff_, y_;
};

}  // namespace

KindInfo multivariateInfo() {
  return KindInfo{
      DetectorKind::kMultivariate,
      "Multivariate (Mahalanobis)",
      "Scores the joint values of several keys of a device (2 to 16) by their Mahalanobis distance from a "
      "sliding window: catches a broken relation between keys even when each key stays in its normal range.",
      true,
      // 0.9 (p about 2e-6 per joint point) rather than the univariate 0.8: a test per point at
      // p = 1e-4 raised 1-2 false alarms per 10k clean points in the evaluation.
      0.9,
      {
          {"window", 200, 32, 2000, true,
           "Number of recent joint points the mean and covariance are estimated from (the warm-up too)."},
          {"ridge", 0.001, 0, 1, false,
           "Regularisation: each variance is inflated by this fraction before inversion (stability with "
           "nearly collinear keys; larger is less sensitive)."},
      },
  };
}

std::unique_ptr<Detector> makeMultivariate(const Params& p, std::size_t dims) {
  if (dims < 2 || dims > kMaxDims) return nullptr;
  return std::make_unique<Multivariate>(p, dims);
}

}  // namespace sw::analytics::detail
