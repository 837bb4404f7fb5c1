#pragma once
// Internal helpers shared by the univariate detectors (zscore, ewma, cusum, spike, flatline,
// missing): the score mapping, a sliding window with O(1) median and O(log w) MAD, and the
// input guard (time order, finite values).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/detectors/state_io.h"

namespace sw::analytics::detail {

// The common score mapping: score = 1 - 0.2^(r^3), r = statistic / statistic-at-threshold.
// Smooth and monotone, 0 at r = 0, exactly 0.8 (every univariate kind's default threshold) at
// r = 1, ~0.18 at r = 0.5, ~0.49 at r = 0.75, ~0.96 at r = 1.25, ~0.9986 at r = 1.6.
// So a user's threshold t corresponds to r = (ln(1 - t) / ln 0.2)^(1/3): 0.5 -> 0.76, 0.9 ->
// 1.13, 0.95 -> 1.23, 0.99 -> 1.42.
inline constexpr double kDefaultThreshold = 0.8;
inline double scoreFromRatio(double r) {
  if (!(r > 0)) return 0;  // also NaN
  if (r >= 4) return 1;
  constexpr double kLn5 = 1.6094379124341003;
  return 1 - std::exp(-kLn5 * r * r * r);
}

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr std::int64_t kNoTs = std::numeric_limits<std::int64_t>::min();

// Accepts a point only when its timestamp is strictly after the last accepted one and the value
// is finite; returns the value through `x`.
inline bool acceptPoint(std::int64_t last_ts, std::int64_t ts, std::span<const double> values, double& x) {
  if (values.size() != 1 || ts <= last_ts) return false;
  x = values[0];
  return std::isfinite(x);
}

// Sliding window of the last `capacity` finite values with the values kept sorted as well, so
// the median is O(1) and the MAD O(log w) (k-th smallest of two sorted deviation sequences);
// push() is O(w) memmove at worst (~100 doubles: tens of ns). No allocation after construction.
class RobustWindow {
 public:
  explicit RobustWindow(std::size_t capacity) : cap_(std::max<std::size_t>(capacity, 1)) {
    ring_.reserve(cap_);
    sorted_.reserve(cap_);
  }
  // Copies keep the full reservation (a copied vector would only reserve its current size).
  RobustWindow(const RobustWindow& o) : RobustWindow(o.cap_) { *this = o; }
  RobustWindow& operator=(const RobustWindow& o) {
    if (this == &o) return *this;
    cap_ = o.cap_;
    ring_.reserve(cap_);
    sorted_.reserve(cap_);
    ring_.assign(o.ring_.begin(), o.ring_.end());
    sorted_.assign(o.sorted_.begin(), o.sorted_.end());
    head_ = o.head_;
    return *this;
  }

  std::size_t size() const { return sorted_.size(); }
  std::size_t capacity() const { return cap_; }
  bool full() const { return sorted_.size() == cap_; }
  std::size_t heapBytes() const { return (ring_.capacity() + sorted_.capacity()) * sizeof(double); }

  void push(double x) {
    if (ring_.size() < cap_) {
      ring_.push_back(x);
      sorted_.insert(std::upper_bound(sorted_.begin(), sorted_.end(), x), x);
      return;
    }
    const double old = ring_[head_];
    ring_[head_] = x;
    head_ = head_ + 1 == cap_ ? 0 : head_ + 1;
    double* s = sorted_.data();
    const std::size_t n = sorted_.size();
    std::size_t i, j;
    bounds(s, n, old, x, i, j);
    if (i >= n) i = n - 1;  // cannot happen (old is in the window); keeps memory safe anyway
    if (j > i) {            // shift (i, j) left by one, x goes to j - 1
      std::memmove(s + i, s + i + 1, (j - 1 - i) * sizeof(double));
      s[j - 1] = x;
    } else {  // shift [j, i) right by one, x goes to j
      std::memmove(s + j + 1, s + j, (i - j) * sizeof(double));
      s[j] = x;
    }
  }

  double median() const {
    const std::size_t n = sorted_.size();
    if (n == 0) return kNaN;
    return n % 2 ? sorted_[n / 2] : 0.5 * sorted_[n / 2 - 1] + 0.5 * sorted_[n / 2];  // no overflow
  }

  // Median absolute deviation from the median (raw, not scaled to sigma).
  double mad() const {
    const std::size_t n = sorted_.size();
    if (n < 2) return 0;
    const double m = median();
    double next = 0;
    if (n % 2) return kthDeviation(n / 2, m, next);
    const double lo = kthDeviation(n / 2 - 1, m, next);
    return 0.5 * (lo + next);
  }

  // Robust estimate of the noise sigma: 1.4826 * MAD. When the MAD is 0 (more than half the
  // window on one value, e.g. a quantised, mostly flat signal) it falls back to the larger of
  // 1.2533 * mean absolute deviation and the smallest non-zero step between values (the
  // resolution: a one-step change is not an anomaly). Never below `floor` nor below 1e-9 of the
  // median's magnitude (rounding noise of a constant). O(w) only in the fallback case.
  double sigma(double floor) const {
    const double m = median();
    const double guard = std::max({floor, 1e-9 * std::abs(m), std::numeric_limits<double>::min()});
    double s = 1.4826 * mad();
    if (s <= 1e-9 * std::abs(m) && sorted_.size() >= 2) {
      // More than half the values equal the median: only the others contribute, so scan around
      // that block (cheap when the signal is mostly flat).
      const double* b = sorted_.data();
      const double* e = b + sorted_.size();
      const auto [lo, hi] = std::equal_range(b, e, m);
      double sum = 0;
      double min_step = std::numeric_limits<double>::infinity();
      for (const double* p = b; p < lo; ++p) {
        sum += m - *p;
        if (p > b && *p > p[-1]) min_step = std::min(min_step, *p - p[-1]);
      }
      for (const double* p = hi; p < e; ++p) {
        sum += *p - m;
        if (p > b && *p > p[-1]) min_step = std::min(min_step, *p - p[-1]);
      }
      if (lo > b && lo<e&& * lo> lo[-1]) min_step = std::min(min_step, *lo - lo[-1]);
      s = 1.2533 * sum / static_cast<double>(sorted_.size());
      if (std::isfinite(min_step)) s = std::max(s, min_step);
    }
    return std::max(s, guard);
  }

  void save(state_io::StateWriter& w) const {
    // Arrival order, oldest first; the sorted copy is rebuilt on load.
    w.u32(static_cast<std::uint32_t>(ring_.size()));
    for (std::size_t k = 0; k < ring_.size(); ++k) w.f64(ring_[(head_ + k) % ring_.size()]);
  }
  bool load(state_io::StateReader& r) {
    std::uint32_t n = 0;
    if (!r.u32(n) || n > cap_) return false;
    ring_.clear();
    sorted_.clear();
    head_ = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
      double x = 0;
      if (!r.finite(x)) return false;
      push(x);
    }
    return true;
  }

 private:
  // k-th smallest (0-based) of |s_i - m| where s is sorted and m its median: the deviations are
  // two sorted sequences, a(i) = m - s[c-1-i] (left half, growing) and b(j) = s[c+j] - m. Binary
  // search for how many of the k+1 smallest come from a. Also sets `next` to the (k+1)-th
  // smallest (or +inf when k is the last), for the even-size median.
  double kthDeviation(std::size_t k, double m, double& next) const {
    const double* s = sorted_.data();
    const std::size_t n = sorted_.size();
    const std::size_t c = n / 2;
    const std::size_t na = c, nb = n - c;
    auto a = [&](std::size_t i) { return m - s[c - 1 - i]; };
    auto b = [&](std::size_t j) { return s[c + j] - m; };
    std::size_t lo = k + 1 > nb ? k + 1 - nb : 0;
    std::size_t hi = std::min(k + 1, na);
    while (lo < hi) {  // smallest i (taken from a) with not(b(j-1) > a(i))
      const std::size_t i = (lo + hi) / 2;
      const std::size_t j = k + 1 - i;
      if (i < na && j > 0 && b(j - 1) > a(i)) {
        lo = i + 1;
      } else {
        hi = i;
      }
    }
    const std::size_t i = lo, j = k + 1 - lo;
    constexpr double kInf = std::numeric_limits<double>::infinity();
    double v = -kInf;
    if (i > 0) v = std::max(v, a(i - 1));
    if (j > 0) v = std::max(v, b(j - 1));
    next = kInf;
    if (i < na) next = std::min(next, a(i));
    if (j < nb) next = std::min(next, b(j));
    return v;
  }

  // std::lower_bound of `old` (i) and std::upper_bound of `x` (j) in one loop, without branches
  // on the data: on noisy values each comparison is a coin toss, so conditional moves beat
  // branches, and the two searches take the same number of steps, so interleaved their dependent
  // loads overlap (bench_detectors, window 120: zscore 131 -> 104 ns per point, spike 134 -> 109).
  static void bounds(const double* s, std::size_t n, double old, double x, std::size_t& i, std::size_t& j) {
    if (n == 0) {
      i = j = 0;
      return;
    }
    const double* a = s;
    const double* b = s;
    while (n > 1) {
      const std::size_t half = n / 2;
      a += a[half - 1] < old ? half : 0;
      b += !(x < b[half - 1]) ? half : 0;
      n -= half;
    }
    i = static_cast<std::size_t>(a - s) + (*a < old ? 1 : 0);
    j = static_cast<std::size_t>(b - s) + (!(x < *b) ? 1 : 0);
  }

  std::size_t cap_;
  std::vector<double> ring_;    // arrival order; ring_[head_] is the oldest once full
  std::vector<double> sorted_;  // same values, ascending
  std::size_t head_ = 0;
};

// Detector::load semantics for a detector whose learned state is one copyable struct: parse
// into a copy of `fresh` and commit only when every read succeeded and the bytes were consumed
// exactly; otherwise reset to `fresh` and return false.
template <typename State, typename ReadFn>
bool loadState(State& state, const State& fresh, std::string_view in, DetectorKind kind, std::uint16_t version,
               std::uint64_t fingerprint, ReadFn read) {
  state_io::StateReader r(in, kind, version, fingerprint);
  State tmp = fresh;
  if (r.ok() && read(tmp, r) && r.finish()) {
    state = tmp;
    return true;
  }
  state = fresh;
  return false;
}

}  // namespace sw::analytics::detail
