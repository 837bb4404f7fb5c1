// Insights over stored history (issue 5): forecast, trend and data quality. See insights.h.
//
// forecast(): the history is laid on a regular grid of interval_ms (missing buckets linearly
// interpolated, at most kMaxBuckets of the most recent ones). Candidate models: Holt's linear
// method (no season) and additive Holt-Winters with a daily and a weekly season when the history
// covers at least two of them. Each candidate is initialised from its first season (level and
// seasonal pattern, trend 0; Holt's linear from the first value) and run over the history with a
// small grid of smoothing constants. All candidates are judged on the same steps by their
// in-sample forecast errors over the requested horizon (at 1, k/4, k/2, 3k/4 and k steps ahead,
// k the horizon capped at half the judged history; for a one-step horizon this is the usual
// one-step error); a season is kept only if it beats the no-season model by at least 2 %. The
// model recursion is the detector's (detectors/holt_winters_model.h). The 95 % band is
// yhat +- 1.96 sigma sqrt(1 + sum c_j^2) (sigma: the in-sample one-step error; the ETS(A,Ad,A)
// growth with the horizon), widened by the ratio of the errors seen in the history at the judged
// horizons to the model's when that is above 1.
#include "analytics/insights/insights.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "analytics/detectors/holt_winters_model.h"

namespace sw::analytics {

namespace {

constexpr std::size_t kMinBuckets = 8;
constexpr std::size_t kMaxBuckets = 100'000;          // history grid bound (most recent kept)
constexpr std::int64_t kMaxForecastPoints = 100'000;  // horizon / interval bound
constexpr double kZ95 = 1.959963984540054;
constexpr double kSeasonGain = 0.98;  // a season must cut the judged SSE by 2 %
constexpr std::size_t kMaxListed = 1000;

struct Fit {
  double sse_k = std::numeric_limits<double>::infinity();  // squared errors at the judged horizons
  std::size_t n_k = 0;
  double sse_1 = 0;  // squared one-step errors (the band's sigma)
  std::size_t n_1 = 0;
  hw::Model model;
  std::int64_t season_ms = 0;
};

// The horizons a candidate is judged at: 1 and k/4, k/2, 3k/4, k (distinct), a cheap stand-in
// for the mean error over the whole horizon (k alone would be degenerate when it is a whole
// number of seasons: "the same as now" is then a perfect forecast of a pure season).
std::vector<std::size_t> judgedHorizons(std::size_t k) {
  std::vector<std::size_t> h = {1};
  for (std::size_t q = 1; q <= 4; ++q) h.push_back(std::max<std::size_t>(1, (k * q + 2) / 4));
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  return h;
}

// Runs one candidate over y (m = 0: no season) and sums, over the steps at index >= eval_from,
// the squared one-step errors and the squared errors of the forecasts made `h` steps earlier for
// each judged horizon h. `rings` is scratch.
Fit runCandidate(const std::vector<double>& y, std::size_t m, const hw::Smoothing& s, std::size_t eval_from,
                 const std::vector<std::size_t>& horizons, std::vector<std::vector<double>>& rings) {
  Fit f;
  f.model.s = s;
  std::size_t first = 0;
  if (m > 0) {
    f.model.initFromSeason(std::span<const double>(y.data(), m), 0);
    first = m;
  } else {
    f.model.initLinear(y[0]);
    first = 1;
  }
  rings.resize(horizons.size());
  std::vector<double> damped(horizons.size());
  for (std::size_t r = 0; r < horizons.size(); ++r) {
    rings[r].assign(horizons[r], 0.0);
    damped[r] = f.model.dampedSum(horizons[r]);
  }
  double sse_k = 0, sse_1 = 0;
  std::size_t n_k = 0, n_1 = 0;
  hw::Model& md = f.model;
  for (std::size_t j = first; j < y.size(); ++j) {
    // For each horizon h: the forecast for step j + h - 1 made now goes into the ring, the one
    // for step j made h - 1 steps ago comes out after the update.
    for (std::size_t r = 0; r < horizons.size(); ++r) {
      const std::size_t h = horizons[r];
      const std::size_t slot = md.m() == 0 ? 0 : (md.pos + h - 1) % md.m();
      rings[r][(j + h - 1) % h] = md.level + md.trend * damped[r] + md.seasonal(slot);
    }
    const double e = md.update(y[j]);
    if (j >= eval_from) {
      for (std::size_t r = 0; r < horizons.size(); ++r) {
        const double ek = y[j] - rings[r][j % horizons[r]];
        sse_k += ek * ek;
        ++n_k;
      }
      sse_1 += e * e;
      ++n_1;
    }
  }
  f.sse_k = sse_k;
  f.n_k = n_k;
  f.sse_1 = sse_1;
  f.n_1 = n_1;
  return f;
}

Fit bestFit(const std::vector<double>& y, std::size_t m, double phi, std::size_t eval_from,
            const std::vector<std::size_t>& horizons) {
  // Smoothing constants tried; a coarser grid for long histories bounds the work (~40 runs of
  // up to 20k steps, or ~16 of up to kMaxBuckets).
  static constexpr double kAlphas[] = {0.02, 0.05, 0.1, 0.2, 0.4, 0.7};
  static constexpr double kAlphasCoarse[] = {0.03, 0.15, 0.5};
  static constexpr double kBetaShares[] = {0, 0.1};  // beta = alpha * share
  static constexpr double kGammas[] = {0.05, 0.15, 0.35};
  static constexpr double kGammasCoarse[] = {0.08, 0.3};
  const bool coarse = y.size() > 20'000;
  const std::span<const double> alphas = coarse ? std::span<const double>(kAlphasCoarse) : kAlphas;
  const std::span<const double> gammas = coarse ? std::span<const double>(kGammasCoarse) : kGammas;
  Fit best;
  std::vector<std::vector<double>> rings;
  for (double a : alphas) {
    for (double bs : kBetaShares) {
      for (double g : gammas) {
        if (m > 0 && g > 1 - a) continue;
        const hw::Smoothing s{a, a * bs, m > 0 ? g : 0, phi};
        Fit f = runCandidate(y, m, s, eval_from, horizons, rings);
        if (std::isfinite(f.sse_k) && f.sse_k < best.sse_k) best = std::move(f);
        if (m == 0) break;  // gamma is not used
      }
    }
  }
  return best;
}

// b - a for b >= a without overflow (timestamps and ranges come from users).
std::uint64_t udiff(std::int64_t a, std::int64_t b) {
  return static_cast<std::uint64_t>(b) - static_cast<std::uint64_t>(a);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2) return hi;
  return 0.5 * (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid)) + hi);
}

}  // namespace

Result<Forecast> forecast(std::span<const Sample> history, std::int64_t interval_ms, std::int64_t horizon_ms) {
  if (interval_ms <= 0) return fail(Code::kInvalidArgument, "the forecast interval must be positive", "interval");
  if (horizon_ms <= 0) return fail(Code::kInvalidArgument, "the forecast horizon must be positive", "horizon");
  const std::int64_t steps = horizon_ms / interval_ms + (horizon_ms % interval_ms != 0 ? 1 : 0);
  if (steps > kMaxForecastPoints) {
    return fail(
        Code::kInvalidArgument,
        "the horizon is too long for the interval (at most " + std::to_string(kMaxForecastPoints) + " forecast points)",
        "horizon");
  }

  // The grid: bucket index of each finite sample, relative to the first one kept.
  std::int64_t t_first = 0, t_last = 0;
  std::size_t finite = 0;
  for (const Sample& s : history) {
    if (!std::isfinite(s.v)) continue;
    if (finite == 0) t_first = t_last = s.ts;
    t_last = std::max(t_last, s.ts);
    t_first = std::min(t_first, s.ts);
    ++finite;
  }
  if (finite < kMinBuckets) {
    return fail(Code::kInvalidArgument,
                "not enough history to forecast (need at least " + std::to_string(kMinBuckets) + " buckets)", "key");
  }
  const auto udiff = static_cast<std::uint64_t>(t_last) - static_cast<std::uint64_t>(t_first);
  const std::uint64_t span_buckets = udiff / static_cast<std::uint64_t>(interval_ms) + 1;
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(span_buckets, kMaxBuckets));
  const std::int64_t t0 = t_last - static_cast<std::int64_t>(n - 1) * interval_ms;
  if (static_cast<__int128>(t_last) + static_cast<__int128>(steps) * interval_ms >
      std::numeric_limits<std::int64_t>::max()) {
    return fail(Code::kInvalidArgument, "the horizon goes past the end of time", "horizon");
  }
  std::vector<double> sum(n, 0.0), cnt(n, 0.0);
  for (const Sample& s : history) {
    if (!std::isfinite(s.v) || s.ts < t0) continue;
    // Nearest bucket counted back from the last one (samples are bucket starts, so this is exact
    // for them and robust to a stray offset).
    const auto back = (static_cast<std::uint64_t>(t_last) - static_cast<std::uint64_t>(s.ts) +
                       static_cast<std::uint64_t>(interval_ms) / 2) /
                      static_cast<std::uint64_t>(interval_ms);
    if (back >= n) continue;
    const std::size_t i = n - 1 - static_cast<std::size_t>(back);
    sum[i] += s.v;
    cnt[i] += 1;
  }
  std::vector<double> y(n, 0.0);
  std::size_t filled = 0;
  std::size_t prev = n;  // last filled index
  for (std::size_t i = 0; i < n; ++i) {
    if (cnt[i] == 0) continue;
    y[i] = sum[i] / cnt[i];
    ++filled;
    if (prev == n) {
      for (std::size_t j = 0; j < i; ++j) y[j] = y[i];  // before the first filled bucket
    } else {
      for (std::size_t j = prev + 1; j < i; ++j) {
        const double w = static_cast<double>(j - prev) / static_cast<double>(i - prev);
        y[j] = (1 - w) * y[prev] + w * y[i];
      }
    }
    prev = i;
  }
  if (filled < kMinBuckets) {
    return fail(Code::kInvalidArgument,
                "not enough history to forecast (need at least " + std::to_string(kMinBuckets) + " buckets)", "key");
  }

  // Candidates.
  struct Candidate {
    std::int64_t season_ms;
    std::size_t m;
  };
  std::vector<Candidate> seasons;
  for (std::int64_t season : {std::int64_t{86'400'000}, std::int64_t{604'800'000}}) {
    const std::int64_t m = (season + interval_ms / 2) / interval_ms;
    // Whole steps per season (a rounding of at most 0.5 % keeps the phase over many seasons).
    if (m < 2 || std::llabs(m * interval_ms - season) * 200 > season) continue;
    if (static_cast<std::size_t>(m) * 2 > n) continue;
    seasons.push_back({season, static_cast<std::size_t>(m)});
  }
  // Every candidate is judged on the same steps: after the longest first season plus the k - 1
  // steps that its first k-step forecast needs. k is the horizon (in steps), capped so that at
  // least half the history after initialisation is judged. Judging by the one-step error alone
  // cannot tell a smooth daily pattern sampled finely from a local level; the horizon's can.
  std::size_t init = 1;
  for (const Candidate& c : seasons) init = std::max(init, c.m);
  const std::size_t k =
      std::clamp<std::size_t>(static_cast<std::size_t>(steps), 1, std::max<std::size_t>(1, (n - init) / 2));
  const std::vector<std::size_t> horizons = judgedHorizons(k);
  const std::size_t eval_from = init + k - 1;
  // The trend is damped over half the history, so it is not extrapolated further than it was seen.
  const double phi = std::exp(-1 / std::max(10.0, static_cast<double>(n) / 2));

  Fit best = bestFit(y, 0, phi, eval_from, horizons);
  for (const Candidate& c : seasons) {
    Fit f = bestFit(y, c.m, phi, eval_from, horizons);
    if (f.n_k > 0 && f.sse_k < best.sse_k * kSeasonGain) {
      f.season_ms = c.season_ms;
      best = std::move(f);
    }
  }
  // Band: the one-step sigma grown with the horizon as the model's error variance does, widened
  // when the errors seen in the history at the judged horizons were larger than the model says.
  const double sigma = best.n_1 > 0 ? std::sqrt(best.sse_1 / static_cast<double>(best.n_1)) : 0.0;
  double widen = 1;
  if (sigma > 0 && best.n_k > 0) {
    double model_var = 0;  // mean over the judged horizons of the model's error variance factor
    for (std::size_t h : horizons) {
      double v = 1;
      for (std::size_t j = 1; j < h; ++j) {
        const double c = best.model.errorWeight(j);
        v += c * c;
      }
      model_var += v;
    }
    model_var /= static_cast<double>(horizons.size());
    const double seen = std::sqrt(best.sse_k / static_cast<double>(best.n_k));
    widen = std::max(1.0, seen / (sigma * std::sqrt(model_var)));
  }

  Forecast out;
  out.interval_ms = interval_ms;
  out.season_ms = best.season_ms;
  out.fitted_points = n;
  out.points.reserve(static_cast<std::size_t>(steps));
  double var_factor = 1;  // 1 + sum_{j < h} c_j^2
  for (std::int64_t h = 1; h <= steps; ++h) {
    if (h > 1) {
      const double c = best.model.errorWeight(static_cast<std::uint64_t>(h - 1));
      var_factor += c * c;
    }
    const double yhat = best.model.forecast(static_cast<std::size_t>(h));
    const double half = kZ95 * sigma * widen * std::sqrt(var_factor);
    out.points.push_back({t_last + h * interval_ms, yhat, yhat - half, yhat + half});
  }
  return out;
}

Trend trend(std::span<const Sample> samples) {
  Trend t;
  std::int64_t t0 = 0;
  bool have = false;
  double sx = 0, sy = 0;
  for (const Sample& s : samples) {
    if (!std::isfinite(s.v)) continue;
    if (!have) {
      t0 = s.ts;
      have = true;
    }
    sx += (static_cast<double>(s.ts) - static_cast<double>(t0)) / 86'400'000.0;
    sy += s.v;
    ++t.n;
  }
  if (t.n == 0) return t;
  const double n = static_cast<double>(t.n);
  const double mx = sx / n, my = sy / n;
  double sxx = 0, sxy = 0, syy = 0;
  for (const Sample& s : samples) {
    if (!std::isfinite(s.v)) continue;
    const double dx = (static_cast<double>(s.ts) - static_cast<double>(t0)) / 86'400'000.0 - mx;
    const double dy = s.v - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (t.n < 2 || sxx <= 0) {
    t.intercept = my;
    return t;
  }
  t.slope_per_day = sxy / sxx;
  t.intercept = my - t.slope_per_day * mx;
  t.r2 = syy > 0 ? std::clamp(sxy * sxy / (sxx * syy), 0.0, 1.0) : 0.0;
  return t;
}

Quality dataQuality(std::span<const Sample> samples, const QualityOptions& options) {
  Quality q;
  const bool ranged = options.to > options.from;
  std::vector<Sample> s;
  s.reserve(samples.size());
  for (const Sample& x : samples) {
    if (!std::isfinite(x.v)) continue;
    if (ranged && (x.ts < options.from || x.ts >= options.to)) continue;
    if (!s.empty() && x.ts < s.back().ts) continue;  // not in time order: skip
    s.push_back(x);
  }
  q.points = s.size();
  q.range_given = options.lo.has_value() || options.hi.has_value();
  q.range_lo = options.lo.value_or(0);
  q.range_hi = options.hi.value_or(0);
  if (s.empty()) {
    if (ranged) {
      q.gaps.push_back({options.from, options.to});
      q.gap_count = 1;
      q.missing_share = 1;
    }
    return q;
  }

  // Expected interval: the median positive spacing.
  std::vector<double> spacing;
  spacing.reserve(s.size());
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i].ts > s[i - 1].ts) spacing.push_back(static_cast<double>(udiff(s[i - 1].ts, s[i].ts)));
  }
  const std::int64_t expected =
      static_cast<std::int64_t>(std::min(median(spacing), static_cast<double>(std::int64_t{1} << 62)));
  q.expected_interval_ms = expected;
  const std::int64_t from = ranged ? options.from : s.front().ts;
  const std::int64_t to =
      ranged
          ? options.to
          : (s.back().ts > std::numeric_limits<std::int64_t>::max() - expected ? s.back().ts : s.back().ts + expected);
  const double range_ms = std::max(static_cast<double>(udiff(from, to)), 1.0);

  // Gaps: spacing > 3x expected (also from `from` to the first point and from the last to `to`).
  // Missing time: what the points should have covered (each covers one expected interval).
  if (expected > 0) {
    const auto limit = static_cast<std::uint64_t>(3) * static_cast<std::uint64_t>(expected);
    const auto exp_d = static_cast<double>(expected);
    double missing = 0;
    auto addGap = [&](std::int64_t a, std::int64_t b, double missing_ms) {
      ++q.gap_count;
      if (q.gaps.size() < kMaxListed) q.gaps.push_back({a, b});
      missing += std::max(missing_ms, 0.0);
    };
    if (ranged && udiff(from, s.front().ts) > limit) {
      addGap(from, s.front().ts, static_cast<double>(udiff(from, s.front().ts)));
    }
    for (std::size_t i = 1; i < s.size(); ++i) {
      const std::uint64_t d = udiff(s[i - 1].ts, s[i].ts);
      if (d > limit) addGap(s[i - 1].ts, s[i].ts, static_cast<double>(d) - exp_d);
    }
    if (ranged && udiff(s.back().ts, to) > limit) {
      addGap(s.back().ts, to, static_cast<double>(udiff(s.back().ts, to)) - exp_d);
    }
    q.missing_share = std::clamp(missing / range_ms, 0.0, 1.0);
  }

  // Stuck: the same value for >= 10 consecutive points spanning >= 10 expected intervals (each
  // point covering one interval, so 10 regular points qualify).
  double stuck_ms = 0;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t j = i + 1;
    while (j < s.size() && s[j].v == s[i].v) ++j;
    const std::size_t len = j - i;
    const auto span = static_cast<double>(udiff(s[i].ts, s[j - 1].ts));
    if (len >= 10 && span + static_cast<double>(expected) >= 10 * static_cast<double>(expected)) {
      if (q.stuck.size() < kMaxListed) q.stuck.push_back({s[i].ts, s[j - 1].ts, s[i].v});
      stuck_ms += span;
    }
    i = j;
  }
  q.stuck_share = std::clamp(stuck_ms / range_ms, 0.0, 1.0);

  // Out of range: the given bounds, or median +- 6 robust sigmas (MAD; the mean absolute
  // deviation when more than half the points share one value).
  if (!options.lo || !options.hi) {
    std::vector<double> v;
    v.reserve(s.size());
    for (const Sample& x : s) v.push_back(x.v);
    const double med = median(v);
    for (double& x : v) x = std::abs(x - med);
    double sigma = 1.4826 * median(v);
    if (sigma <= 0) {
      double sum = 0;
      for (double x : v) sum += x;
      sigma = 1.2533 * sum / static_cast<double>(v.size());
    }
    if (!options.lo) q.range_lo = med - 6 * sigma;
    if (!options.hi) q.range_hi = med + 6 * sigma;
  }
  std::size_t out = 0;
  for (const Sample& x : s) {
    if (x.v < q.range_lo || x.v > q.range_hi) ++out;
  }
  q.out_of_range_share = static_cast<double>(out) / static_cast<double>(s.size());
  return q;
}

}  // namespace sw::analytics
