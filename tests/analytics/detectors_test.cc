// Univariate streaming detectors (issue 5): registry and parameter validation, each kind finding
// its own anomaly type in small generated series and staying quiet on clean ones, input guards,
// checkpoint round trips and damaged checkpoints. No timing assertions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics {
namespace {

constexpr std::int64_t kT0 = 1'704'067'200'000;
constexpr std::int64_t kInterval = 60'000;
constexpr double kThreshold = 0.8;

const DetectorKind kUnivariate[] = {DetectorKind::kZScore, DetectorKind::kEwma,     DetectorKind::kCusum,
                                    DetectorKind::kSpike,  DetectorKind::kFlatline, DetectorKind::kMissing};

struct Series {
  std::vector<std::int64_t> ts;
  std::vector<double> x;
  std::size_t size() const { return ts.size(); }
};

// Level 20 + Gaussian noise (sd 1) + a slow AR(1) wander (sd `wander`), sampled every minute with
// +-`jitter` of an interval of timing noise.
Series noise(std::size_t n, std::uint32_t seed, double wander = 0.5, double jitter = 0.1) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::uniform_real_distribution<double> u(-jitter, jitter);
  Series s;
  double w = 0;
  constexpr double kPhi = 0.995;
  for (std::size_t i = 0; i < n; ++i) {
    w = kPhi * w + wander * std::sqrt(1 - kPhi * kPhi) * g(rng);
    s.ts.push_back(kT0 + static_cast<std::int64_t>(i) * kInterval + static_cast<std::int64_t>(u(rng) * kInterval));
    s.x.push_back(20 + w + g(rng));
  }
  return s;
}

std::unique_ptr<Detector> make(DetectorKind kind, const Params& given = {}) {
  auto p = resolveParams(kind, given);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message);
  auto d = makeDetector(kind, p.value_or(Params{}));
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message);
  return d ? std::move(*d) : nullptr;
}

Verdict feed(Detector& d, std::int64_t ts, double x) {
  const double v[1] = {x};
  return d.update(ts, v);
}

std::vector<Verdict> run(Detector& d, const Series& s, std::size_t from = 0, std::size_t to = SIZE_MAX) {
  std::vector<Verdict> out;
  to = std::min(to, s.size());
  for (std::size_t i = from; i < to; ++i) out.push_back(feed(d, s.ts[i], s.x[i]));
  return out;
}

// Max score over verdicts [from, to) that are ready.
double maxScore(const std::vector<Verdict>& v, std::size_t from, std::size_t to) {
  double m = 0;
  for (std::size_t i = from; i < std::min(to, v.size()); ++i) {
    if (v[i].ready) m = std::max(m, v[i].score);
  }
  return m;
}

std::size_t firstReady(const std::vector<Verdict>& v) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].ready) return i;
  }
  return v.size();
}

bool sameVerdict(const Verdict& a, const Verdict& b) {
  auto same = [](double x, double y) { return (std::isnan(x) && std::isnan(y)) || x == y; };
  return a.ready == b.ready && same(a.score, b.score) && same(a.expected_lo, b.expected_lo) &&
         same(a.expected_hi, b.expected_hi);
}

// ---------------------------------------------------------------------------------------------
// Registry and parameters

TEST(DetectorRegistry, NamesRoundTrip) {
  const char* names[] = {"zscore", "ewma", "holt_winters", "cusum", "spike", "flatline", "missing", "multivariate"};
  for (int i = 0; i < 8; ++i) {
    const auto kind = static_cast<DetectorKind>(i);
    EXPECT_EQ(kindName(kind), names[i]);
    auto parsed = parseKind(names[i]);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, kind);
  }
  auto bad = parseKind("median");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Code::kInvalidArgument);
  EXPECT_EQ(bad.error().field, "kind");
  EXPECT_FALSE(parseKind("").has_value());
  EXPECT_FALSE(parseKind("ZSCORE").has_value());
}

TEST(DetectorRegistry, KindInfosAreConsistent) {
  const auto& infos = kindInfos();
  ASSERT_EQ(infos.size(), 8u);
  for (std::size_t i = 0; i < infos.size(); ++i) {
    const KindInfo& info = infos[i];
    EXPECT_EQ(info.kind, static_cast<DetectorKind>(i));
    EXPECT_EQ(&kindInfo(info.kind), &info);
    EXPECT_FALSE(info.title.empty()) << kindName(info.kind);
    EXPECT_GT(info.default_threshold, 0) << kindName(info.kind);
    EXPECT_LE(info.default_threshold, 1) << kindName(info.kind);
    EXPECT_EQ(info.multivariate, info.kind == DetectorKind::kMultivariate);
    const Params defaults = defaultParams(info.kind);
    EXPECT_EQ(defaults.size(), info.params.size());
    for (const ParamSpec& p : info.params) {
      EXPECT_LE(p.min, p.default_value) << kindName(info.kind) << "." << p.name;
      EXPECT_LE(p.default_value, p.max) << kindName(info.kind) << "." << p.name;
      if (p.integer) {
        EXPECT_EQ(p.default_value, std::floor(p.default_value)) << p.name;
      }
      EXPECT_FALSE(p.description.empty()) << p.name;
      EXPECT_EQ(defaults.at(std::string(p.name)), p.default_value);
    }
    auto resolved = resolveParams(info.kind, {});
    ASSERT_TRUE(resolved.has_value()) << kindName(info.kind);
    EXPECT_EQ(*resolved, defaults);
  }
  for (DetectorKind k : kUnivariate) {
    EXPECT_EQ(kindInfo(k).default_threshold, kThreshold) << kindName(k);
    EXPECT_FALSE(kindInfo(k).description.empty());
  }
}

TEST(DetectorParams, ResolveOverlaysAndValidates) {
  auto p = resolveParams(DetectorKind::kZScore, {{"window", 60}});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->at("window"), 60);
  EXPECT_EQ(p->at("k"), defaultParams(DetectorKind::kZScore).at("k"));

  auto unknown = resolveParams(DetectorKind::kZScore, {{"windw", 60}});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, Code::kInvalidArgument);
  EXPECT_EQ(unknown.error().field, "params.windw");
  EXPECT_NE(unknown.error().message.find("window"), std::string::npos);  // lists the known ones

  auto nan = resolveParams(DetectorKind::kEwma, {{"alpha", std::numeric_limits<double>::quiet_NaN()}});
  ASSERT_FALSE(nan.has_value());
  EXPECT_EQ(nan.error().field, "params.alpha");
  auto inf = resolveParams(DetectorKind::kEwma, {{"k", std::numeric_limits<double>::infinity()}});
  ASSERT_FALSE(inf.has_value());
  EXPECT_EQ(inf.error().field, "params.k");

  auto low = resolveParams(DetectorKind::kZScore, {{"window", 2}});
  ASSERT_FALSE(low.has_value());
  EXPECT_EQ(low.error().field, "params.window");
  EXPECT_NE(low.error().message.find("between 8 and 4096"), std::string::npos) << low.error().message;
  auto high = resolveParams(DetectorKind::kZScore, {{"window", 1e9}});
  ASSERT_FALSE(high.has_value());
  EXPECT_EQ(high.error().field, "params.window");

  auto frac = resolveParams(DetectorKind::kZScore, {{"window", 100.5}});
  ASSERT_FALSE(frac.has_value());
  EXPECT_EQ(frac.error().field, "params.window");
  EXPECT_NE(frac.error().message.find("whole number"), std::string::npos) << frac.error().message;

  // Bounds are inclusive; non-integer params accept fractions.
  EXPECT_TRUE(resolveParams(DetectorKind::kZScore, {{"window", 8}}).has_value());
  EXPECT_TRUE(resolveParams(DetectorKind::kZScore, {{"window", 4096}}).has_value());
  EXPECT_TRUE(resolveParams(DetectorKind::kCusum, {{"k", 0.25}, {"h", 7.5}}).has_value());
  EXPECT_FALSE(resolveParams(DetectorKind::kMissing, {{"factor", 1}}).has_value());
  EXPECT_FALSE(resolveParams(DetectorKind::kFlatline, {{"min_points", -1}}).has_value());
}

TEST(DetectorParams, MakeDetectorChecksDims) {
  for (DetectorKind k : kUnivariate) {
    auto one = makeDetector(k, defaultParams(k), 1);
    ASSERT_TRUE(one.has_value()) << kindName(k);
    EXPECT_EQ((*one)->kind(), k);
    EXPECT_EQ((*one)->dims(), 1u);
    auto two = makeDetector(k, defaultParams(k), 2);
    ASSERT_FALSE(two.has_value());
    EXPECT_EQ(two.error().code, Code::kInvalidArgument);
    EXPECT_EQ(two.error().field, "keys");
    EXPECT_FALSE(makeDetector(k, defaultParams(k), 0).has_value());
  }
  const auto mv = DetectorKind::kMultivariate;
  for (std::size_t dims : {std::size_t{0}, std::size_t{1}, std::size_t{17}}) {
    auto r = makeDetector(mv, defaultParams(mv), dims);
    ASSERT_FALSE(r.has_value()) << dims;
    EXPECT_EQ(r.error().field, "keys");
  }
  // Params missing from the map are filled; bad ones are rejected even without resolveParams.
  EXPECT_TRUE(makeDetector(DetectorKind::kZScore, {}, 1).has_value());
  auto bad = makeDetector(DetectorKind::kZScore, {{"window", 3}}, 1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().field, "params.window");
}

// ---------------------------------------------------------------------------------------------
// The shared sliding window (median / MAD) against a brute-force computation.

TEST(RobustWindow, MedianAndMadMatchBruteForce) {
  std::mt19937 rng(7);
  std::normal_distribution<double> g(0, 3);
  std::uniform_int_distribution<int> q(-3, 3);
  for (std::size_t cap : {1, 2, 3, 8, 9, 64, 101}) {
    detail::RobustWindow w(cap);
    std::vector<double> all;
    for (int i = 0; i < 600; ++i) {
      // Mix continuous values with heavy ties.
      const double x = i % 3 == 0 ? static_cast<double>(q(rng)) : g(rng);
      w.push(x);
      all.push_back(x);
      std::vector<double> win(all.end() - static_cast<std::ptrdiff_t>(std::min(all.size(), cap)), all.end());
      std::sort(win.begin(), win.end());
      const std::size_t n = win.size();
      const double med = n % 2 ? win[n / 2] : 0.5 * (win[n / 2 - 1] + win[n / 2]);
      std::vector<double> dev;
      for (double v : win) dev.push_back(std::abs(v - med));
      std::sort(dev.begin(), dev.end());
      const double mad = n < 2 ? 0 : (n % 2 ? dev[n / 2] : 0.5 * (dev[n / 2 - 1] + dev[n / 2]));
      ASSERT_EQ(w.size(), n);
      ASSERT_DOUBLE_EQ(w.median(), med) << "cap " << cap << " i " << i;
      ASSERT_NEAR(w.mad(), mad, 1e-12) << "cap " << cap << " i " << i;
    }
  }
}

TEST(RobustWindow, SigmaFallsBackWhenMostValuesAreEqual) {
  // Brute force of RobustWindow::sigma's documented fallback.
  auto expected = [](std::vector<double> v, double floor) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    const double m = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    std::vector<double> dev;
    for (double x : v) dev.push_back(std::abs(x - m));
    std::sort(dev.begin(), dev.end());
    double s = 1.4826 * (n % 2 ? dev[n / 2] : 0.5 * (dev[n / 2 - 1] + dev[n / 2]));
    if (s <= 1e-9 * std::abs(m)) {
      double sum = 0, step = std::numeric_limits<double>::infinity();
      for (std::size_t i = 0; i < n; ++i) {
        sum += std::abs(v[i] - m);
        if (i > 0 && v[i] > v[i - 1]) step = std::min(step, v[i] - v[i - 1]);
      }
      s = 1.2533 * sum / static_cast<double>(n);
      if (std::isfinite(step)) s = std::max(s, step);
    }
    return std::max({s, floor, 1e-9 * std::abs(m)});
  };
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> u(0, 1);
  for (std::size_t cap : {2, 7, 40, 41}) {
    for (double p_other : {0.0, 0.05, 0.3, 0.6}) {
      detail::RobustWindow w(cap);
      std::vector<double> all;
      for (int i = 0; i < 300; ++i) {
        const double r = u(rng);
        const double x = r < p_other / 2 ? 21.4 - std::floor(u(rng) * 3) * 0.1
                                         : (r < p_other ? 21.6 + std::floor(u(rng) * 3) * 0.1 : 21.5);
        w.push(x);
        all.push_back(x);
        std::vector<double> win(all.end() - static_cast<std::ptrdiff_t>(std::min(all.size(), cap)), all.end());
        if (win.size() < 2) continue;
        ASSERT_NEAR(w.sigma(0), expected(win, 0), 1e-12) << cap << " " << p_other << " " << i;
        ASSERT_NEAR(w.sigma(0.5), expected(win, 0.5), 1e-12);
      }
    }
  }
}

TEST(ScoreMapping, SmoothMonotoneAndCalibrated) {
  EXPECT_EQ(detail::scoreFromRatio(0), 0);
  EXPECT_EQ(detail::scoreFromRatio(-1), 0);
  EXPECT_EQ(detail::scoreFromRatio(std::numeric_limits<double>::quiet_NaN()), 0);
  EXPECT_NEAR(detail::scoreFromRatio(1), 0.8, 1e-12);
  EXPECT_EQ(detail::scoreFromRatio(std::numeric_limits<double>::infinity()), 1);
  double prev = 0;
  for (double r = 0.01; r < 5; r += 0.01) {
    const double s = detail::scoreFromRatio(r);
    EXPECT_GE(s, prev);
    EXPECT_LE(s, 1);
    prev = s;
  }
  EXPECT_LT(detail::scoreFromRatio(0.5), 0.2);
  EXPECT_GT(detail::scoreFromRatio(1.5), 0.99);
}

// ---------------------------------------------------------------------------------------------
// Each kind finds its own anomaly type.

TEST(ZScore, FindsSpikesAndStaysQuietAround) {
  Series s = noise(3000, 11);
  const std::size_t spikes[] = {1000, 1800, 2500};
  s.x[1000] += 8;
  s.x[1800] -= 9;
  s.x[2500] += 10;
  auto d = make(DetectorKind::kZScore);
  const auto v = run(*d, s);
  EXPECT_EQ(firstReady(v), 60u);  // half the default window
  double clean = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_GE(v[i].score, 0);
    EXPECT_LE(v[i].score, 1);
    if (std::find(std::begin(spikes), std::end(spikes), i) == std::end(spikes)) clean = std::max(clean, v[i].score);
  }
  for (std::size_t i : spikes) {
    EXPECT_GE(v[i].score, kThreshold) << i;
    EXPECT_TRUE(v[i].ready);
    EXPECT_TRUE(s.x[i] < v[i].expected_lo || s.x[i] > v[i].expected_hi) << i;
  }
  EXPECT_LT(clean, kThreshold);
  // The expected range is centred on the level, about +-5 sd wide.
  EXPECT_NEAR(0.5 * (v[999].expected_lo + v[999].expected_hi), 20, 1.5);
  EXPECT_NEAR(v[999].expected_hi - v[999].expected_lo, 10, 3);
}

TEST(ZScore, QuantisedFlatSignalDoesNotScreamButRealChangeDoes) {
  // A sensor reporting 21.5 with an occasional one-step (0.1) blip: the MAD is 0, the fallback
  // scale (resolution) keeps single-step blips quiet; a jump of 1.0 is flagged.
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  auto d = make(DetectorKind::kZScore);
  double clean = 0;
  std::int64_t ts = kT0;
  for (int i = 0; i < 2000; ++i) {
    const double x = u(rng) < 0.1 ? 21.6 : (u(rng) < 0.05 ? 21.4 : 21.5);
    const Verdict v = feed(*d, ts += kInterval, x);
    EXPECT_TRUE(std::isfinite(v.score));
    clean = std::max(clean, v.score);
  }
  EXPECT_LT(clean, kThreshold);
  EXPECT_GE(feed(*d, ts += kInterval, 22.5).score, kThreshold);
  // A perfectly constant series: no NaN, and any change is maximally unusual.
  auto c = make(DetectorKind::kZScore);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(feed(*c, kT0 + i, 0.0).score, 0);
  EXPECT_EQ(feed(*c, kT0 + 500, 1.0).score, 1);
  // min_scale puts a floor under the spread.
  auto f = make(DetectorKind::kZScore, {{"min_scale", 0.5}});
  for (int i = 0; i < 200; ++i) feed(*f, kT0 + i, 0.0);
  EXPECT_LT(feed(*f, kT0 + 500, 1.0).score, 0.2);
}

TEST(Ewma, FindsSpikesAndWinsorisesThem) {
  Series s = noise(3000, 12);
  s.x[1500] += 9;
  s.x[2200] -= 10;
  auto d = make(DetectorKind::kEwma);
  const auto v = run(*d, s);
  EXPECT_EQ(firstReady(v), 30u);
  EXPECT_GE(v[1500].score, kThreshold);
  EXPECT_GE(v[2200].score, kThreshold);
  EXPECT_GT(s.x[1500], v[1500].expected_hi);
  EXPECT_LT(s.x[2200], v[2200].expected_lo);
  double clean = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i != 1500 && i != 2200) clean = std::max(clean, v[i].score);
  }
  EXPECT_LT(clean, kThreshold);
  // The outlier moved the baseline by at most alpha * clamp sd (~0.07), not alpha * 9 sd (0.18).
  const double centre_before = 0.5 * (v[1500].expected_lo + v[1500].expected_hi);
  const double centre_after = 0.5 * (v[1501].expected_lo + v[1501].expected_hi);
  EXPECT_LT(std::abs(centre_after - centre_before), 0.1);
}

TEST(Ewma, FlagsALevelShiftThenAdapts) {
  Series s = noise(4000, 13);
  for (std::size_t i = 2000; i < s.size(); ++i) s.x[i] += 8;
  auto d = make(DetectorKind::kEwma);
  const auto v = run(*d, s);
  EXPECT_LT(maxScore(v, 0, 2000), kThreshold);
  EXPECT_GE(maxScore(v, 2000, 2005), kThreshold);
  EXPECT_LT(maxScore(v, 3000, 4000), kThreshold);  // the new level became the baseline
}

TEST(Cusum, FindsALevelShift) {
  Series s = noise(4000, 21);
  for (std::size_t i = 2000; i < 2300; ++i) s.x[i] += 2;  // 2 sd: too small for z-score kinds
  auto d = make(DetectorKind::kCusum);
  const auto v = run(*d, s);
  EXPECT_EQ(firstReady(v), 100u);
  EXPECT_LT(maxScore(v, 0, 2000), kThreshold);
  EXPECT_GE(maxScore(v, 2000, 2100), kThreshold);
  // The z-score does not see a 2 sd shift point by point.
  auto z = make(DetectorKind::kZScore);
  EXPECT_LT(maxScore(run(*z, s), 2000, 2100), kThreshold);
}

TEST(Cusum, FindsASlowDrift) {
  Series s = noise(4000, 22);
  // Ramp of 0.04 sd per point for 250 points (to +10 sd), then back down.
  for (std::size_t i = 2000; i < 2500; ++i) {
    const double t = static_cast<double>(i - 2000);
    s.x[i] += 0.04 * (t < 250 ? t : 500 - t);
  }
  auto d = make(DetectorKind::kCusum);
  const auto v = run(*d, s);
  EXPECT_LT(maxScore(v, 0, 2000), kThreshold);
  EXPECT_GE(maxScore(v, 2000, 2250), kThreshold);
  // The point-wise z-score only sees it late (if at all): CUSUM is earlier.
  std::size_t first_cusum = 0;
  while (first_cusum < 500 && v[2000 + first_cusum].score < kThreshold) ++first_cusum;
  EXPECT_LT(first_cusum, 150u);
}

TEST(Cusum, PermanentShiftAlarmsThenSettles) {
  Series s = noise(5000, 23);
  for (std::size_t i = 2000; i < s.size(); ++i) s.x[i] += 3;
  auto d = make(DetectorKind::kCusum);
  const auto v = run(*d, s);
  EXPECT_LT(maxScore(v, 0, 2000), kThreshold);
  EXPECT_GE(maxScore(v, 2000, 2010), kThreshold);
  EXPECT_LT(maxScore(v, 2100, 5000), kThreshold);
  // After the re-learning the reference is the new level.
  EXPECT_NEAR(0.5 * (v[4999].expected_lo + v[4999].expected_hi), 23, 1.5);  // +- the wander
}

TEST(Spike, FindsSpikesButNotTheirReturn) {
  Series s = noise(3000, 31);
  // Changes are measured against the usual point-to-point changes, whose spread is ~1.2 x the
  // noise's: a rate detector needs a bigger spike than the z-score to reach k = 5.
  s.x[1000] += 10;
  s.x[1700] -= 10;
  s.x[1701] -= 10;  // a two-point spike
  s.x[2400] += 12;
  auto d = make(DetectorKind::kSpike);
  const auto v = run(*d, s);
  EXPECT_EQ(firstReady(v), 61u);  // 3 points of history + half the window of changes
  EXPECT_GE(v[1000].score, kThreshold);
  EXPECT_GE(maxScore(v, 1700, 1702), kThreshold);
  EXPECT_GE(v[2400].score, kThreshold);
  EXPECT_GT(s.x[1000], v[1000].expected_hi);
  // The returns to the level (1001, 1702, 2401) are not a second spike.
  EXPECT_LT(v[1001].score, kThreshold);
  EXPECT_LT(v[1702].score, kThreshold);
  EXPECT_LT(v[2401].score, kThreshold);
  double clean = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i != 1000 && i != 1700 && i != 1701 && i != 2400) clean = std::max(clean, v[i].score);
  }
  EXPECT_LT(clean, kThreshold);
}

TEST(Spike, IrregularSamplingAndGaps) {
  // Heavy timing jitter (+-40 % of the interval) and a trend: quiet.
  Series s = noise(3000, 32, 0.5, 0.4);
  for (std::size_t i = 0; i < s.size(); ++i) s.x[i] += 0.01 * static_cast<double>(i);
  auto d = make(DetectorKind::kSpike);
  auto v = run(*d, s);
  EXPECT_LT(maxScore(v, 0, v.size()), kThreshold);
  // After a 2 hour outage a moderate move (the level wandered meanwhile) is not a spike, but
  // a sudden step between two regular points is.
  const std::int64_t t = s.ts.back();
  EXPECT_LT(feed(*d, t + 120 * kInterval, s.x.back() + 6).score, kThreshold);
  auto e = make(DetectorKind::kSpike);
  v = run(*e, s);
  EXPECT_GE(feed(*e, t + kInterval, s.x.back() + 8).score, kThreshold);
}

TEST(Flatline, FindsAStuckSensor) {
  Series s = noise(3000, 41);
  for (std::size_t i = 2001; i < 2100; ++i) s.x[i] = s.x[2000];  // stuck for 99 points
  auto d = make(DetectorKind::kFlatline);
  const auto v = run(*d, s);
  EXPECT_LT(maxScore(v, 0, 2001), kThreshold);
  EXPECT_LT(maxScore(v, 2001, 2006), kThreshold);  // 5 repeats: not yet
  EXPECT_GE(maxScore(v, 2001, 2100), kThreshold);
  // The limit: 10 repeats (min_points) lasting 10 x the usual hold time (one interval here).
  EXPECT_GT(v[2008].score, 0.3);
  EXPECT_GE(v[2012].score, kThreshold);
  EXPECT_GT(v[2020].score, 0.99);
  EXPECT_LT(maxScore(v, 2100, 3000), kThreshold);
  EXPECT_TRUE(std::isnan(v[2050].expected_lo));
}

TEST(Flatline, ConstantFromTheStartIsNotStuck) {
  auto d = make(DetectorKind::kFlatline);
  for (int i = 0; i < 1000; ++i) {
    const Verdict v = feed(*d, kT0 + i * kInterval, 1.0);  // a status flag
    EXPECT_FALSE(v.ready);
    EXPECT_EQ(v.score, 0);
  }
}

TEST(Flatline, QuantisedSlowSignalIsNotStuckButEpsilonAndDurationWork) {
  // A slow sine rounded to 0.1: the value holds for several points at a time, naturally. The
  // learned typical hold time keeps it quiet.
  std::mt19937 rng(5);
  std::normal_distribution<double> g(0, 0.02);
  auto d = make(DetectorKind::kFlatline);
  double m = 0;
  for (int i = 0; i < 5000; ++i) {
    const double x = std::round((20 + 0.5 * std::sin(i / 40.0) + g(rng)) * 10) / 10;
    const Verdict v = feed(*d, kT0 + i * kInterval, x);
    if (i > 500) m = std::max(m, v.score);
  }
  EXPECT_LT(m, kThreshold);

  // epsilon: tiny noise around a stuck value still counts as stuck.
  auto e = make(DetectorKind::kFlatline, {{"epsilon", 0.01}});
  Series s = noise(600, 42);
  for (std::size_t i = 400; i < 600; ++i) s.x[i] = 25 + 0.001 * static_cast<double>(i % 3);
  const auto v = run(*e, s);
  EXPECT_LT(maxScore(v, 0, 400), kThreshold);
  EXPECT_GE(maxScore(v, 400, 600), kThreshold);

  // min_duration_ms: an absolute limit (here 1 hour = 60 points) instead of the learned one.
  auto h = make(DetectorKind::kFlatline, {{"epsilon", 0.01}, {"min_duration_ms", 3'600'000}});
  const auto w = run(*h, s);
  EXPECT_LT(maxScore(w, 400, 445), kThreshold);
  EXPECT_GE(maxScore(w, 400, 600), kThreshold);
}

TEST(Missing, ScoresSilenceOnTickAndTheGapOnUpdate) {
  Series s = noise(500, 51);
  auto d = make(DetectorKind::kMissing);
  EXPECT_FALSE(d->tick(kT0).ready);  // nothing seen yet
  const auto v = run(*d, s);
  EXPECT_LT(maxScore(v, 0, v.size()), kThreshold);
  EXPECT_TRUE(v.back().ready);
  EXPECT_TRUE(std::isnan(v.back().expected_lo) && std::isnan(v.back().expected_hi));
  const std::int64_t last = s.ts.back();
  EXPECT_LT(d->tick(last + kInterval).score, 0.01);
  EXPECT_LT(d->tick(last + 2 * kInterval).score, 0.3);
  const Verdict at3 = d->tick(last + 3 * kInterval + 12'000);
  EXPECT_TRUE(at3.ready);
  EXPECT_GE(at3.score, kThreshold);
  EXPECT_GT(d->tick(last + 6 * kInterval).score, 0.999);
  EXPECT_LE(d->tick(last + 1000 * kInterval).score, 1);
  // A clock behind the last point: no silence.
  EXPECT_EQ(d->tick(last - kInterval).score, 0);
  // The point after a 10-interval outage reports it, then scoring is back to normal.
  const Verdict after = feed(*d, last + 10 * kInterval, 20);
  EXPECT_GE(after.score, kThreshold);
  EXPECT_LT(feed(*d, last + 11 * kInterval, 20).score, kThreshold);
  EXPECT_LT(d->tick(last + 11 * kInterval + kInterval / 2).score, kThreshold);
}

TEST(Missing, FollowsAChangeOfRateAndHonoursMinGap) {
  auto d = make(DetectorKind::kMissing);
  std::int64_t t = kT0;
  for (int i = 0; i < 100; ++i) feed(*d, t += 1000, 1);
  // The device now reports every 10 s: a few alarms, then that is the new normal.
  int alarms_late = 0;
  for (int i = 0; i < 100; ++i) {
    const Verdict v = feed(*d, t += 10'000, 1);
    if (i >= 20 && v.score >= kThreshold) ++alarms_late;
  }
  EXPECT_EQ(alarms_late, 0);
  EXPECT_LT(d->tick(t + 15'000).score, kThreshold);
  // min_gap_ms: a fast series (1 s) is not flagged before 5 minutes of silence.
  auto m = make(DetectorKind::kMissing, {{"min_gap_ms", 300'000}});
  t = kT0;
  for (int i = 0; i < 100; ++i) feed(*m, t += 1000, 1);
  EXPECT_LT(m->tick(t + 60'000).score, kThreshold);
  EXPECT_GE(m->tick(t + 300'000).score, kThreshold);
}

// ---------------------------------------------------------------------------------------------
// Every kind: quiet on clean series, input guards, bounded memory.

TEST(AllUnivariate, QuietOnCleanSeries) {
  for (DetectorKind k : kUnivariate) {
    for (std::uint32_t seed : {101u, 202u, 303u}) {
      Series s = noise(5000, seed);
      auto d = make(k);
      const auto v = run(*d, s);
      EXPECT_LT(firstReady(v), 200u) << kindName(k);
      EXPECT_LT(maxScore(v, 0, v.size()), kThreshold) << kindName(k) << " seed " << seed;
      if (k == DetectorKind::kMissing) {
        EXPECT_LT(d->tick(s.ts.back() + kInterval).score, kThreshold);
      }
    }
  }
}

TEST(AllUnivariate, OutOfOrderDuplicateAndNonFiniteInputAreIgnored) {
  const double bad_values[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                               -std::numeric_limits<double>::infinity()};
  for (DetectorKind k : kUnivariate) {
    Series s = noise(800, 61);
    auto d = make(k);
    auto twin = make(k);
    for (std::size_t i = 0; i < s.size(); ++i) {
      const Verdict a = feed(*d, s.ts[i], s.x[i]);
      const Verdict b = feed(*twin, s.ts[i], s.x[i]);
      ASSERT_TRUE(sameVerdict(a, b));
      if (i % 50 == 10) {
        // Junk only `d` sees: a duplicate timestamp, an older one, non-finite values, wrong arity.
        for (const Verdict& j :
             {feed(*d, s.ts[i], 1e6), feed(*d, s.ts[i] - 5000, -1e6), feed(*d, s.ts[i] + 1, bad_values[i % 3])}) {
          EXPECT_EQ(j.score, 0) << kindName(k);
          EXPECT_FALSE(j.ready) << kindName(k);
        }
        const double two[2] = {1, 2};
        EXPECT_FALSE(d->update(s.ts[i] + 2, std::span<const double>(two, 2)).ready);
        EXPECT_FALSE(d->update(s.ts[i] + 3, std::span<const double>()).ready);
      }
    }
    // The junk left no trace: both continue identically.
    for (int i = 1; i <= 50; ++i) {
      const std::int64_t t = s.ts.back() + i * kInterval;
      ASSERT_TRUE(sameVerdict(feed(*d, t, 20 + (i % 7) * 0.3), feed(*twin, t, 20 + (i % 7) * 0.3))) << kindName(k);
    }
  }
}

TEST(AllUnivariate, ExtremeValuesKeepScoresInRange) {
  const double values[] = {0, 1e300, -1e300, 1e-300, 5, 5, 5, 5, -0.0, 1e15, 1e15 + 1, 3};
  for (DetectorKind k : kUnivariate) {
    auto d = make(k);
    std::int64_t t = kT0;
    for (int rep = 0; rep < 300; ++rep) {
      for (double x : values) {
        const Verdict v = feed(*d, t += 1 + rep % 5 * 1000, x);
        ASSERT_GE(v.score, 0) << kindName(k);
        ASSERT_LE(v.score, 1) << kindName(k);
        ASSERT_FALSE(std::isnan(v.score)) << kindName(k);
      }
      const Verdict tv = d->tick(t + 5000);
      ASSERT_TRUE(tv.score >= 0 && tv.score <= 1) << kindName(k);
    }
    // And it recovers: after a while of normal data it scores normally again.
    Series s = noise(3000, 17);
    double late = 0;
    Verdict last;
    for (std::size_t i = 0; i < s.size(); ++i) {
      last = feed(*d, t + static_cast<std::int64_t>(i + 1) * kInterval, s.x[i]);
      if (i >= 2000) late = std::max(late, last.score);
    }
    EXPECT_TRUE(last.ready) << kindName(k);
    EXPECT_LT(late, kThreshold) << kindName(k);
    if (k != DetectorKind::kFlatline && k != DetectorKind::kMissing) {
      EXPECT_TRUE(std::isfinite(last.expected_lo) && std::isfinite(last.expected_hi)) << kindName(k);
      EXPECT_NEAR(0.5 * (last.expected_lo + last.expected_hi), 20, 3) << kindName(k);
    }
  }
}

TEST(AllUnivariate, MemoryIsBoundedByParams) {
  for (DetectorKind k : kUnivariate) {
    Params p;
    if (k == DetectorKind::kZScore || k == DetectorKind::kSpike) p["window"] = 4096;
    auto d = make(k, p);
    Series s = noise(20000, 71);
    run(*d, s, 0, 10000);
    const std::size_t mid = d->memoryBytes();
    run(*d, s, 10000, 20000);
    EXPECT_EQ(d->memoryBytes(), mid) << kindName(k);
    EXPECT_LT(mid, 80'000u) << kindName(k);  // 2 x 4096 doubles + the object at most
    EXPECT_GE(mid, sizeof(Detector)) << kindName(k);
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

TEST(Checkpoint, RoundTripGivesIdenticalVerdicts) {
  for (DetectorKind k : kUnivariate) {
    // During warm-up, right after it, and well into the stream (incl. a cusum re-learn and a
    // spike's return window).
    for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{70}, std::size_t{1201}, std::size_t{2001}}) {
      Series s = noise(3000, 81);
      s.x[1200] += 10;
      for (std::size_t i = 1990; i < 2100; ++i) s.x[i] += 4;
      for (std::size_t i = 2500; i < 2600; ++i) s.x[i] = s.x[2499];
      auto a = make(k);
      run(*a, s, 0, cut);
      std::string bytes;
      a->save(bytes);
      auto b = make(k);
      ASSERT_TRUE(b->load(bytes)) << kindName(k) << " cut " << cut;
      std::string again;
      b->save(again);
      EXPECT_EQ(again, bytes) << kindName(k);
      for (std::size_t i = cut; i < s.size(); ++i) {
        ASSERT_TRUE(sameVerdict(feed(*a, s.ts[i], s.x[i]), feed(*b, s.ts[i], s.x[i]))) << kindName(k) << " at " << i;
        if (i % 97 == 0) {
          ASSERT_TRUE(sameVerdict(a->tick(s.ts[i] + 200'000), b->tick(s.ts[i] + 200'000)));
        }
      }
      // save() appends.
      std::string prefixed = "xyz";
      a->save(prefixed);
      EXPECT_EQ(prefixed.substr(0, 3), "xyz");
    }
  }
}

TEST(Checkpoint, DamagedOrMismatchedBytesAreRejectedSafely) {
  Series s = noise(1500, 91);
  for (DetectorKind k : kUnivariate) {
    auto a = make(k);
    run(*a, s, 0, 1000);
    std::string good;
    a->save(good);
    auto fresh_like = [&](Detector& d) {
      // After a failed load the instance behaves exactly like a new one.
      auto ref = make(k);
      for (std::size_t i = 1000; i < 1200; ++i) {
        if (!sameVerdict(feed(d, s.ts[i], s.x[i]), feed(*ref, s.ts[i], s.x[i]))) return false;
      }
      return true;
    };
    // Every truncation.
    for (std::size_t n = 0; n < good.size(); ++n) {
      auto b = make(k);
      run(*b, s, 0, 300);  // some state to lose
      ASSERT_FALSE(b->load(std::string_view(good).substr(0, n))) << kindName(k) << " len " << n;
      if (n % 97 == 0) {
        ASSERT_TRUE(fresh_like(*b)) << kindName(k);
      }
    }
    // Trailing junk, flipped bits, random bytes.
    {
      auto b = make(k);
      EXPECT_FALSE(b->load(good + "x")) << kindName(k);
    }
    std::mt19937 rng(5);
    for (int i = 0; i < 200; ++i) {
      std::string bad = good;
      bad[rng() % bad.size()] ^= static_cast<char>(1u << (rng() % 8));
      auto b = make(k);
      ASSERT_FALSE(b->load(bad)) << kindName(k);
      if (i % 50 == 0) {
        ASSERT_TRUE(fresh_like(*b));
      }
    }
    for (int i = 0; i < 200; ++i) {
      std::string junk(rng() % 300, '\0');
      for (char& c : junk) c = static_cast<char>(rng());
      if (i % 2) junk.replace(0, std::min<std::size_t>(4, junk.size()), "SWDS");
      auto b = make(k);
      ASSERT_FALSE(b->load(junk));
    }
    // Another kind's bytes, or the same kind with other params.
    for (DetectorKind other : kUnivariate) {
      if (other == k) continue;
      auto b = make(other);
      EXPECT_FALSE(b->load(good)) << kindName(k) << " into " << kindName(other);
    }
    const ParamSpec& first = kindInfo(k).params.front();
    Params changed = {{std::string(first.name), first.default_value == first.max ? first.min : first.max}};
    auto c = make(k, changed);
    EXPECT_FALSE(c->load(good)) << kindName(k);
    // And the good bytes still load.
    auto ok = make(k);
    EXPECT_TRUE(ok->load(good));
  }
}

TEST(Checkpoint, ValidEnvelopeWithInconsistentBodyIsRejected) {
  // A well-formed checkpoint (right kind, params, checksum) whose body lies: a window count
  // larger than the window must not be trusted.
  const auto k = DetectorKind::kZScore;
  const Params p = *resolveParams(k, {{"window", 8}});
  std::string bytes;
  state_io::StateWriter w(bytes, k, 1, state_io::paramsFingerprint(p));
  w.i64(kT0);
  w.u32(1'000'000);  // claims a million values
  for (int i = 0; i < 20; ++i) w.f64(1.0);
  w.finish();
  auto d = std::move(*makeDetector(k, p));
  EXPECT_FALSE(d->load(bytes));
  // NaN inside the window is rejected too.
  bytes.clear();
  state_io::StateWriter w2(bytes, k, 1, state_io::paramsFingerprint(p));
  w2.i64(kT0);
  w2.u32(2);
  w2.f64(1.0);
  w2.f64(std::numeric_limits<double>::quiet_NaN());
  w2.finish();
  EXPECT_FALSE(d->load(bytes));
}

}  // namespace
}  // namespace sw::analytics
