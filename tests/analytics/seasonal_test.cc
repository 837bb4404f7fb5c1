// Seasonal (Holt-Winters) and multivariate (Mahalanobis) detectors: quiet on clean series, high
// scores on their own anomaly types, input guards, bounded memory, checkpoint round trip and
// damaged checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/detectors/kinds.h"
#include "analytics/detectors/state_io.h"
#include "analytics/eval/generator.h"

namespace sw::analytics {
namespace {

constexpr std::int64_t kMin = 60'000;
constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kStart = 1'704'067'200'000;  // 2024-01-01T00:00:00Z
constexpr double kThreshold = 0.8;

struct Series {
  std::vector<std::int64_t> ts;
  std::vector<double> v;
};

double dailyShape(std::int64_t ts, double amplitude) {
  const double phase = static_cast<double>(((ts % kDay) + kDay) % kDay) / kDay * 2 * std::numbers::pi;
  return amplitude * (std::sin(phase) + 0.3 * std::sin(2 * phase + 1));
}

enum class Break { kNone, kFlatDay, kShiftedDay };

// A daily seasonal series: level 20 + daily shape (amplitude 5) + noise (sd 0.5), one point every
// `interval` with +-10 % jitter. With a break, day `broken_day` (0-based) is flat or shifted by a
// quarter day.
Series dailySeries(std::int64_t interval, int days, std::uint64_t seed, Break brk = Break::kNone, int broken_day = 4) {
  eval::Rng rng(seed);
  Series s;
  const std::int64_t n = days * kDay / interval;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto jitter = static_cast<std::int64_t>(rng.uniform(-0.1, 0.1) * static_cast<double>(interval));
    const std::int64_t ts = kStart + i * interval + jitter;
    double shape = dailyShape(ts, 5);
    const bool in_break = (ts - kStart) / kDay == broken_day;
    if (in_break && brk == Break::kFlatDay) shape = 0;
    if (in_break && brk == Break::kShiftedDay) shape = dailyShape(ts + kDay / 4, 5);
    s.ts.push_back(ts);
    s.v.push_back(20 + shape + 0.5 * rng.gaussian());
  }
  return s;
}

std::unique_ptr<Detector> make(DetectorKind kind, const Params& given = {}, std::size_t dims = 1) {
  auto params = resolveParams(kind, given);
  EXPECT_TRUE(params.has_value());
  auto d = makeDetector(kind, *params, dims);
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message);
  return d ? std::move(*d) : nullptr;
}

Verdict feed(Detector& d, std::int64_t ts, double v) {
  return d.update(ts, std::span<const double>(&v, 1));
}

struct DayStats {
  std::size_t ready = 0;
  std::size_t alarmed = 0;  // score >= threshold
  double max_score = 0;
  std::size_t inside = 0;  // observed inside [expected_lo, expected_hi]
};

// Runs the series through d and collects per-day statistics.
std::vector<DayStats> runDaily(Detector& d, const Series& s, int days) {
  std::vector<DayStats> out(static_cast<std::size_t>(days));
  for (std::size_t i = 0; i < s.ts.size(); ++i) {
    const Verdict v = feed(d, s.ts[i], s.v[i]);
    EXPECT_GE(v.score, 0);
    EXPECT_LE(v.score, 1);
    const auto day = static_cast<std::size_t>(std::clamp<std::int64_t>((s.ts[i] - kStart) / kDay, 0, days - 1));
    if (!v.ready) {
      EXPECT_EQ(v.score, 0);
      continue;
    }
    DayStats& st = out[day];
    ++st.ready;
    st.alarmed += v.score >= kThreshold;
    st.max_score = std::max(st.max_score, v.score);
    st.inside += s.v[i] >= v.expected_lo && s.v[i] <= v.expected_hi;
  }
  return out;
}

// ---- Holt-Winters ----------------------------------------------------------------------------

TEST(HoltWinters, QuietOnCleanDailySeriesAndReadyAfterWarmup) {
  for (std::uint64_t seed : {1, 2, 3}) {
    auto d = make(DetectorKind::kHoltWinters);
    const Series s = dailySeries(5 * kMin, 7, seed);
    const auto days = runDaily(*d, s, 7);
    // Two seasons of warm-up (the first initialises, the second calibrates the noise).
    // (A point jittered before midnight puts the first slot in the day before, so the last slot
    // of day 1 may already score.)
    EXPECT_EQ(days[0].ready, 0u);
    EXPECT_LE(days[1].ready, 1u);
    std::size_t ready = 0, alarmed = 0, inside = 0;
    for (int day = 2; day < 7; ++day) {
      EXPECT_GT(days[day].ready, 250u) << "seed " << seed << " day " << day;
      ready += days[day].ready;
      alarmed += days[day].alarmed;
      inside += days[day].inside;
    }
    EXPECT_LE(alarmed, 1u) << "seed " << seed;  // at most a stray point in 5 days
    EXPECT_GT(static_cast<double>(inside) / static_cast<double>(ready), 0.995) << "seed " << seed;
  }
}

TEST(HoltWinters, MissingDailyPeakScoresHigh) {
  for (std::uint64_t seed : {1, 2, 3}) {
    auto d = make(DetectorKind::kHoltWinters);
    const Series s = dailySeries(5 * kMin, 7, seed, Break::kFlatDay, 4);
    const auto days = runDaily(*d, s, 7);
    EXPECT_GE(days[4].max_score, kThreshold) << "seed " << seed;
    EXPECT_GE(days[4].alarmed, 30u) << "seed " << seed;  // a good part of the day, not one point
    for (int day : {2, 3}) EXPECT_EQ(days[day].alarmed, 0u) << "seed " << seed << " day " << day;
  }
}

TEST(HoltWinters, ShiftedDailyPeakScoresHigh) {
  for (std::uint64_t seed : {4, 5}) {
    auto d = make(DetectorKind::kHoltWinters);
    const Series s = dailySeries(5 * kMin, 7, seed, Break::kShiftedDay, 3);
    const auto days = runDaily(*d, s, 7);
    EXPECT_GE(days[3].max_score, kThreshold) << "seed " << seed;
    EXPECT_GE(days[3].alarmed, 30u) << "seed " << seed;
    EXPECT_EQ(days[2].alarmed, 0u) << "seed " << seed;
    // The learnt pattern is not corrupted by the broken day: the next normal days stay mostly
    // quiet (the seasonal update is clipped).
    EXPECT_LE(days[5].alarmed + days[6].alarmed, 3u) << "seed " << seed;
  }
}

TEST(HoltWinters, LearnsOneMinuteIntervalWithCoarseSlots) {
  // 1-min data, at most 288 slots a day: 5 intervals per slot. Still quiet, still catches the day.
  auto d = make(DetectorKind::kHoltWinters, {{"max_slots", 288}});
  const Series s = dailySeries(kMin, 6, 7, Break::kFlatDay, 4);
  const auto days = runDaily(*d, s, 6);
  EXPECT_EQ(days[1].ready, 0u);
  EXPECT_GT(days[2].ready, 1400u);
  EXPECT_LE(days[2].alarmed + days[3].alarmed, 1u);
  EXPECT_GE(days[4].alarmed, 100u);
  // Bounded by max_slots, not by the number of points per day.
  EXPECT_LT(d->memoryBytes(), 288 * 8 + 2048);
}

TEST(HoltWinters, ShortSeasonParameter) {
  // A 6-hour season over 2-min data: 180 slots.
  auto d = make(DetectorKind::kHoltWinters, {{"season_ms", 6 * 3'600'000}});
  eval::Rng rng(11);
  std::size_t alarmed_clean = 0, alarmed_broken = 0, ready = 0;
  const std::int64_t period = 6 * 3'600'000;
  for (std::int64_t i = 0; i < 3 * 24 * 30; ++i) {
    const std::int64_t ts = kStart + i * 2 * kMin;
    const double phase = static_cast<double>(ts % period) / period * 2 * std::numbers::pi;
    const bool broken = i >= 2 * 24 * 30 && i < 2 * 24 * 30 + 180;  // one season flat
    const double v = 10 + (broken ? 0 : 3 * std::sin(phase)) + 0.3 * rng.gaussian();
    const Verdict r = feed(*d, ts, v);
    ready += r.ready;
    if (r.score >= kThreshold) (broken ? alarmed_broken : alarmed_clean) += 1;
  }
  EXPECT_GT(ready, 1000u);
  EXPECT_LE(alarmed_clean, 1u);
  EXPECT_GE(alarmed_broken, 20u);
}

TEST(HoltWinters, GapAdvancesTheModelInPhase) {
  // Six hours without data on day 3: afterwards the forecast is in phase again (no alarms), and
  // the gap itself is not an anomaly for this detector.
  auto d = make(DetectorKind::kHoltWinters);
  Series s = dailySeries(5 * kMin, 6, 21);
  Series cut;
  for (std::size_t i = 0; i < s.ts.size(); ++i) {
    const std::int64_t off = s.ts[i] - kStart;
    if (off >= 3 * kDay + 2 * 3'600'000 && off < 3 * kDay + 8 * 3'600'000) continue;
    cut.ts.push_back(s.ts[i]);
    cut.v.push_back(s.v[i]);
  }
  const auto days = runDaily(*d, cut, 6);
  for (int day = 2; day < 6; ++day) EXPECT_EQ(days[day].alarmed, 0u) << "day " << day;
  EXPECT_GT(days[3].ready, 150u);
}

TEST(HoltWinters, HugeGapIsConstantTime) {
  auto d = make(DetectorKind::kHoltWinters);
  const Series s = dailySeries(5 * kMin, 3, 3);
  for (std::size_t i = 0; i < s.ts.size(); ++i) feed(*d, s.ts[i], s.v[i]);
  // Ten years later (~1M slots): must not loop over them; the state stays usable.
  const std::int64_t later = s.ts.back() + 3650 * kDay;
  const Verdict v = feed(*d, later, 20);
  EXPECT_TRUE(v.ready);
  EXPECT_TRUE(std::isfinite(v.expected_lo));
  EXPECT_TRUE(std::isfinite(v.score));
}

TEST(HoltWinters, ExtremeTimestampsAreSafe) {
  // Around both ends of the int64 range: no overflow (checked by the sanitizer build), and the
  // state still round-trips.
  for (std::int64_t base :
       {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max() - 40 * kDay}) {
    auto d = make(DetectorKind::kHoltWinters, {{"season_ms", 3'600'000}});
    for (std::int64_t i = 0; i < 2000; ++i) feed(*d, base + i * kMin, std::sin(static_cast<double>(i)));
    std::string bytes;
    d->save(bytes);
    EXPECT_TRUE(make(DetectorKind::kHoltWinters, {{"season_ms", 3'600'000}})->load(bytes));
    const Verdict v = feed(*d, std::numeric_limits<std::int64_t>::max(), 0.5);
    EXPECT_TRUE(std::isfinite(v.score));
  }
}

TEST(HoltWinters, IgnoresOutOfOrderAndNonFinitePoints) {
  auto a = make(DetectorKind::kHoltWinters);
  auto b = make(DetectorKind::kHoltWinters);
  const Series s = dailySeries(5 * kMin, 4, 9);
  const double nan = std::nan("");
  for (std::size_t i = 0; i < s.ts.size(); ++i) {
    const Verdict va = feed(*a, s.ts[i], s.v[i]);
    const Verdict vb = feed(*b, s.ts[i], s.v[i]);
    ASSERT_EQ(va.score, vb.score);
    if (i % 97 == 5) {
      // Junk only b sees: it must not change b's state.
      for (const Verdict& j : {feed(*b, s.ts[i] - 1, 1e9), feed(*b, s.ts[i], 1e9), feed(*b, s.ts[i] + 1, nan),
                               feed(*b, s.ts[i] + 1, INFINITY)}) {
        EXPECT_FALSE(j.ready);
        EXPECT_EQ(j.score, 0);
      }
      const double two[2] = {1, 2};
      EXPECT_FALSE(b->update(s.ts[i] + 1, two).ready);  // wrong arity
    }
  }
  std::string sa, sb;
  a->save(sa);
  b->save(sb);
  EXPECT_EQ(sa, sb);
}

bool sameBits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}
bool sameVerdict(const Verdict& a, const Verdict& b) {
  return sameBits(a.score, b.score) && a.ready == b.ready && sameBits(a.expected_lo, b.expected_lo) &&
         sameBits(a.expected_hi, b.expected_hi);
}

// Feeds the first `split` points to one instance, checkpoints it into a second one, then feeds
// the rest to both: every verdict must be bit-identical and so must the final checkpoints.
void expectExactRoundTrip(DetectorKind kind, const Params& params, std::size_t dims,
                          const std::vector<std::int64_t>& ts, const std::vector<std::vector<double>>& rows,
                          std::size_t split) {
  auto a = make(kind, params, dims);
  for (std::size_t i = 0; i < split; ++i) a->update(ts[i], rows[i]);
  std::string bytes;
  a->save(bytes);
  auto b = make(kind, params, dims);
  ASSERT_TRUE(b->load(bytes)) << "split " << split;
  std::string again;
  b->save(again);
  EXPECT_EQ(bytes, again);
  for (std::size_t i = split; i < ts.size(); ++i) {
    const Verdict va = a->update(ts[i], rows[i]);
    const Verdict vb = b->update(ts[i], rows[i]);
    ASSERT_TRUE(sameVerdict(va, vb)) << "split " << split << " point " << i;
  }
  std::string fa, fb;
  a->save(fa);
  b->save(fb);
  EXPECT_EQ(fa, fb);
}

TEST(HoltWinters, CheckpointRoundTripIsExactInEveryPhase) {
  const Series s = dailySeries(10 * kMin, 4, 13, Break::kFlatDay, 3);
  std::vector<std::vector<double>> rows;
  for (double v : s.v) rows.push_back({v});
  // Before any point, while learning the interval, in the first season, warming up, scoring.
  for (std::size_t split :
       {std::size_t{0}, std::size_t{10}, std::size_t{100}, std::size_t{200}, std::size_t{400}, std::size_t{500}}) {
    expectExactRoundTrip(DetectorKind::kHoltWinters, {}, 1, s.ts, rows, split);
  }
  // A configured interval skips learning (also one longer than the season: one slot).
  expectExactRoundTrip(DetectorKind::kHoltWinters, {{"interval_ms", 600'000}}, 1, s.ts, rows, 7);
  expectExactRoundTrip(DetectorKind::kHoltWinters, {{"interval_ms", 7'200'000}, {"season_ms", 3'600'000}}, 1, s.ts,
                       rows, 300);
}

// Damaged or foreign checkpoints are refused and leave a fresh detector.
void expectRejectsGarbage(DetectorKind kind, const Params& params, std::size_t dims, const std::string& good,
                          const std::string& foreign) {
  std::vector<std::string> bad = {"",        "SWDS", std::string(3, '\0'), foreign, good.substr(0, good.size() / 2),
                                  good + "x"};
  for (std::size_t i = 0; i < good.size(); i += std::max<std::size_t>(1, good.size() / 97)) {
    std::string flipped = good;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
    bad.push_back(flipped);
  }
  eval::Rng rng(99);
  for (int k = 0; k < 200; ++k) {
    std::string junk(rng.below(600), '\0');
    for (char& c : junk) c = static_cast<char>(rng.below(256));
    if (k % 2) junk.replace(0, std::min<std::size_t>(4, junk.size()), "SWDS");
    bad.push_back(junk);
  }
  for (const std::string& b : bad) {
    auto d = make(kind, params, dims);
    EXPECT_FALSE(d->load(b));
    std::string after, fresh;
    d->save(after);
    make(kind, params, dims)->save(fresh);
    EXPECT_EQ(after, fresh);
  }
}

// Mutations of a valid checkpoint with the checksum recomputed (so the body's own validation is
// what is tested): load may accept or refuse, but must not crash, and the detector keeps working
// with scores in [0, 1] (run under ASan/UBSan in `make asan`).
void expectSurvivesResealedMutations(DetectorKind kind, const Params& params, std::size_t dims, const std::string& good,
                                     const std::vector<std::int64_t>& ts,
                                     const std::vector<std::vector<double>>& rows) {
  eval::Rng rng(1234);
  for (int k = 0; k < 400; ++k) {
    std::string m = good.substr(0, good.size() - 8);
    const std::size_t flips = 1 + rng.below(3);
    for (std::size_t f = 0; f < flips; ++f) {
      const std::size_t at = 15 + rng.below(m.size() - 15);  // keep the header: reach the body
      m[at] = static_cast<char>(rng.below(256));
    }
    const std::uint64_t sum = state_io::fnv1a(m);
    for (int i = 0; i < 8; ++i) m.push_back(static_cast<char>((sum >> (8 * i)) & 0xff));
    auto d = make(kind, params, dims);
    d->load(m);
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const Verdict v = d->update(ts[i], rows[i]);
      ASSERT_TRUE(v.score >= 0 && v.score <= 1) << "mutation " << k;
    }
  }
}

TEST(HoltWinters, SurvivesResealedMutations) {
  const Series s = dailySeries(10 * kMin, 4, 23);
  std::vector<std::vector<double>> rows;
  for (double v : s.v) rows.push_back({v});
  for (std::size_t split : {std::size_t{20}, std::size_t{100}, std::size_t{400}}) {
    auto d = make(DetectorKind::kHoltWinters);
    for (std::size_t i = 0; i < split; ++i) d->update(s.ts[i], rows[i]);
    std::string good;
    d->save(good);
    const std::vector<std::int64_t> rest_ts(s.ts.begin() + static_cast<std::ptrdiff_t>(split),
                                            s.ts.begin() + static_cast<std::ptrdiff_t>(split + 60));
    const std::vector<std::vector<double>> rest(rows.begin() + static_cast<std::ptrdiff_t>(split),
                                                rows.begin() + static_cast<std::ptrdiff_t>(split + 60));
    expectSurvivesResealedMutations(DetectorKind::kHoltWinters, {}, 1, good, rest_ts, rest);
  }
}

TEST(HoltWinters, RejectsDamagedOrForeignCheckpoints) {
  auto d = make(DetectorKind::kHoltWinters);
  const Series s = dailySeries(10 * kMin, 3, 17);
  for (std::size_t i = 0; i < s.ts.size(); ++i) feed(*d, s.ts[i], s.v[i]);
  std::string good;
  d->save(good);
  std::string foreign;
  make(DetectorKind::kHoltWinters, {{"gamma", 0.3}})->save(foreign);  // other params
  expectRejectsGarbage(DetectorKind::kHoltWinters, {}, 1, good, foreign);
  std::string other_kind;
  make(DetectorKind::kZScore)->save(other_kind);
  EXPECT_FALSE(make(DetectorKind::kHoltWinters)->load(other_kind));
}

// Checkpoints with a valid header and checksum whose fields contradict each other (as a bug or a
// hand-edited file could produce) are refused too.
TEST(HoltWinters, RejectsForgedInconsistentState) {
  const Params params = *resolveParams(DetectorKind::kHoltWinters, {});
  const std::uint64_t fp = state_io::paramsFingerprint(params, 1);
  struct Body {
    std::uint8_t phase = 2;
    std::int64_t last_ts = kStart + 3 * kDay;
    std::int64_t interval = 300'000, slots = 288;
    std::int64_t g_start = 0;
    std::int64_t cur_g = 0;
    std::uint64_t pos = 0;
    std::size_t season_n = 288;
    double level = 20;
  };
  auto bytes = [&](const Body& b) {
    std::string out;
    state_io::StateWriter w(out, DetectorKind::kHoltWinters, 1, fp);
    w.u8(b.phase);
    w.i64(b.last_ts);
    w.int64s({});
    w.doubles({});
    w.i64(b.interval);
    w.i64(b.slots);
    w.i64(b.g_start);
    w.doubles({});
    w.doubles({});
    w.i64(b.cur_g);
    for (int i = 0; i < 5; ++i) w.f64(0);  // slot sum, count, |residual| sum, count, yhat
    w.f64(b.level);
    w.f64(0);
    w.doubles(std::vector<double>(b.season_n, 0.0));
    w.u64(b.pos);
    w.f64(0.4);
    w.f64(1000);
    w.finish();
    return out;
  };
  Body good;
  good.cur_g = (good.last_ts / kDay) * 288 + (good.last_ts % kDay) * 288 / kDay;
  good.g_start = good.cur_g - 3 * 288;
  good.pos = static_cast<std::uint64_t>(good.cur_g % 288);
  ASSERT_TRUE(make(DetectorKind::kHoltWinters)->load(bytes(good)));  // the forger is right
  std::vector<Body> bad(9, good);
  bad[0].phase = 3;
  bad[1].slots = 289;  // not what the interval gives
  bad[2].interval = 0;
  bad[3].cur_g += 1;  // the last point is not in the current slot
  bad[4].pos = (good.pos + 1) % 288;
  bad[5].season_n = 287;
  bad[6].g_start = std::numeric_limits<std::int64_t>::min();
  bad[7].g_start = good.cur_g + 5;  // starts after the last point
  bad[8].level = std::nan("");
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto d = make(DetectorKind::kHoltWinters);
    EXPECT_FALSE(d->load(bytes(bad[i]))) << "case " << i;
    EXPECT_FALSE(feed(*d, kStart, 1).ready);  // fresh and usable
  }
}

TEST(HoltWinters, RegistryDefaultsAndValidation) {
  const KindInfo& info = kindInfo(DetectorKind::kHoltWinters);
  EXPECT_FALSE(info.multivariate);
  EXPECT_DOUBLE_EQ(info.default_threshold, kThreshold);
  EXPECT_EQ(kindName(DetectorKind::kHoltWinters), "holt_winters");
  const Params p = defaultParams(DetectorKind::kHoltWinters);
  EXPECT_EQ(p.at("season_ms"), 86'400'000);
  EXPECT_EQ(p.at("max_slots"), 2016);
  EXPECT_TRUE(resolveParams(DetectorKind::kHoltWinters, {{"season_ms", 604'800'000}}).has_value());
  for (const Params& bad : std::vector<Params>{{{"season_ms", 1000}},
                                               {{"max_slots", 2}},
                                               {{"max_slots", 100.5}},
                                               {{"alpha", 1.5}},
                                               {{"sigmas", -1}},
                                               {{"nope", 1}}}) {
    auto r = resolveParams(DetectorKind::kHoltWinters, bad);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Code::kInvalidArgument);
    EXPECT_EQ(r.error().field.rfind("params.", 0), 0u);
  }
  EXPECT_FALSE(makeDetector(DetectorKind::kHoltWinters, p, 2).has_value());
}

TEST(HoltWinters, MemoryIsBoundedAndStableAfterWarmup) {
  auto d = make(DetectorKind::kHoltWinters);
  const Series s = dailySeries(kMin, 3, 5);  // 1440 slots a day (< max_slots)
  std::size_t at_ready = 0;
  for (std::size_t i = 0; i < s.ts.size(); ++i) {
    const Verdict v = feed(*d, s.ts[i], s.v[i]);
    if (v.ready && at_ready == 0) at_ready = d->memoryBytes();
  }
  ASSERT_GT(at_ready, 0u);
  EXPECT_EQ(d->memoryBytes(), at_ready);
  EXPECT_LT(at_ready, 1440 * 8 + 2048);
}

TEST(HoltWinters, CatchesTheEvaluationsBrokenSeasonality) {
  // The evaluation generator's profile (1-min, +-5 daily cycle, wander): both broken days score.
  for (std::uint64_t seed : {1, 2}) {
    const auto gen = eval::generate(eval::AnomalyType::kBrokenSeasonality,
                                    eval::standardOptions(eval::AnomalyType::kBrokenSeasonality), seed);
    auto d = make(DetectorKind::kHoltWinters);
    std::vector<std::size_t> hits(gen.anomalies.size(), 0);
    std::size_t false_alarms = 0;
    for (std::size_t i = 0; i < gen.size(); ++i) {
      const Verdict v = feed(*d, gen.ts[i], gen.values[0][i]);
      if (v.score < kThreshold) continue;
      bool in = false;
      for (std::size_t w = 0; w < gen.anomalies.size(); ++w) {
        if (gen.ts[i] >= gen.anomalies[w].start_ms && gen.ts[i] < gen.anomalies[w].end_ms) {
          ++hits[w];
          in = true;
        }
      }
      false_alarms += !in;
    }
    for (std::size_t w = 0; w < hits.size(); ++w) EXPECT_GE(hits[w], 30u) << "seed " << seed << " window " << w;
    EXPECT_LE(false_alarms, 20u) << "seed " << seed;
  }
}

// ---- Multivariate ----------------------------------------------------------------------------

struct Joint {
  std::vector<std::int64_t> ts;
  std::vector<std::vector<double>> rows;
  std::size_t break_from = 0, break_to = 0;
};

// a: slow 6-hour cycle (+-4) + noise; b = 2a + 1 + noise; c = 30 - a + noise. With a break, b
// stops following a (it follows a mirrored a instead) in [break_from, break_to): each key stays
// inside its usual range.
Joint jointSeries(std::size_t n, std::uint64_t seed, bool broken, std::size_t dims = 3) {
  eval::Rng rng(seed);
  Joint j;
  j.break_from = broken ? n / 2 : n;
  j.break_to = broken ? n / 2 + 150 : n;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t ts = kStart + static_cast<std::int64_t>(i) * kMin;
    const double a = 10 + 4 * std::sin(static_cast<double>(i) / 360 * 2 * std::numbers::pi) + 0.3 * rng.gaussian();
    const bool in_break = i >= j.break_from && i < j.break_to;
    const double driver = in_break ? 20 - a : a;
    std::vector<double> row = {a, 2 * driver + 1 + 0.3 * rng.gaussian(), 30 - a + 0.3 * rng.gaussian()};
    row.resize(dims, 0);
    for (std::size_t k = 3; k < dims; ++k) row[k] = 0.5 * a + static_cast<double>(k) + 0.3 * rng.gaussian();
    j.ts.push_back(ts);
    j.rows.push_back(row);
  }
  return j;
}

TEST(Multivariate, QuietOnCleanCorrelatedData) {
  for (std::size_t dims : {2, 3, 8, 16}) {
    auto d = make(DetectorKind::kMultivariate, {}, dims);
    ASSERT_EQ(d->dims(), dims);
    const Joint j = jointSeries(3000, 31 + dims, false, dims);
    std::size_t ready = 0, alarmed = 0;
    for (std::size_t i = 0; i < j.ts.size(); ++i) {
      const Verdict v = d->update(j.ts[i], j.rows[i]);
      EXPECT_GE(v.score, 0);
      EXPECT_LE(v.score, 1);
      if (i < 200) {
        EXPECT_FALSE(v.ready);  // the window fills first
      }
      ready += v.ready;
      alarmed += v.score >= kThreshold;
      EXPECT_TRUE(std::isnan(v.expected_lo));
    }
    EXPECT_EQ(ready, 2800u);
    EXPECT_LE(alarmed, 3u) << "dims " << dims;
  }
}

TEST(Multivariate, CatchesBrokenRelationInsideNormalRanges) {
  for (std::uint64_t seed : {41, 42, 43}) {
    const Joint j = jointSeries(3000, seed, true);
    // Sanity: the broken key stays inside its own clean range.
    double lo = 1e9, hi = -1e9;
    for (std::size_t i = 0; i < j.break_from; ++i) lo = std::min(lo, j.rows[i][1]), hi = std::max(hi, j.rows[i][1]);
    for (std::size_t i = j.break_from; i < j.break_to; ++i) {
      ASSERT_GT(j.rows[i][1], lo - 1);
      ASSERT_LT(j.rows[i][1], hi + 1);
    }
    auto d = make(DetectorKind::kMultivariate, {}, 3);
    std::size_t in_break = 0, outside = 0;
    for (std::size_t i = 0; i < j.ts.size(); ++i) {
      const Verdict v = d->update(j.ts[i], j.rows[i]);
      if (v.score < kThreshold) continue;
      (i >= j.break_from && i < j.break_to ? in_break : outside) += 1;
    }
    // Where a and its mirror are close (a near 10) the relation still holds; elsewhere it alarms,
    // and keeps alarming (anomalous vectors are not learnt while the break is short).
    EXPECT_GE(in_break, 110u) << "seed " << seed;
    EXPECT_LE(outside, 3u) << "seed " << seed;
  }
}

TEST(Multivariate, LearnsAPermanentChangeOfRelation) {
  // From point 1500 on, b follows the mirrored a for good: alarms for about a window, then the
  // new relation is normal.
  eval::Rng rng(7);
  auto d = make(DetectorKind::kMultivariate, {}, 2);
  std::size_t early = 0, late = 0;
  for (int i = 0; i < 4000; ++i) {
    const double a = 10 + 4 * std::sin(i / 360.0 * 2 * std::numbers::pi) + 0.3 * rng.gaussian();
    const double driver = i >= 1500 ? 20 - a : a;
    const double row[2] = {a, 2 * driver + 1 + 0.3 * rng.gaussian()};
    const Verdict v = d->update(kStart + i * kMin, row);
    if (v.score < kThreshold) continue;
    if (i >= 1500 && i < 1900) ++early;
    if (i >= 2500) ++late;
  }
  EXPECT_GE(early, 100u);
  EXPECT_LE(late, 2u);
}

TEST(Multivariate, ScoreGrowsWithDistance) {
  auto d = make(DetectorKind::kMultivariate, {}, 2);
  eval::Rng rng(5);
  std::int64_t ts = kStart;
  for (int i = 0; i < 200; ++i) {
    const double a = rng.gaussian();
    const double row[2] = {a, a + 0.1 * rng.gaussian()};
    d->update(ts++, row);
  }
  std::string snapshot;
  d->save(snapshot);
  double last = -1;
  for (double off : {0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 3.0}) {
    auto probe = make(DetectorKind::kMultivariate, {}, 2);
    ASSERT_TRUE(probe->load(snapshot));
    const double row[2] = {0.5, 0.5 + off};  // off the a == b line
    const Verdict v = probe->update(ts, row);
    ASSERT_TRUE(v.ready);
    EXPECT_GE(v.score, last);
    last = v.score;
  }
  EXPECT_GT(last, 0.99);
}

TEST(Multivariate, ConstantAndCollinearKeysStayFinite) {
  auto d = make(DetectorKind::kMultivariate, {{"ridge", 0}}, 3);
  for (int i = 0; i < 400; ++i) {
    const double a = std::sin(i * 0.1);
    const double row[3] = {a, 2 * a, 7};  // exactly collinear and a constant key
    const Verdict v = d->update(kStart + i, row);
    EXPECT_TRUE(std::isfinite(v.score));
    if (v.ready) {
      EXPECT_LT(v.score, kThreshold);
    }
  }
  const double off[3] = {0.5, 1.5, 7};
  const Verdict v = d->update(kStart + 1000, off);
  EXPECT_TRUE(std::isfinite(v.score));
  EXPECT_GE(v.score, kThreshold);
}

TEST(Multivariate, IgnoresBadInput) {
  auto d = make(DetectorKind::kMultivariate, {{"window", 32}}, 2);
  const double ok[2] = {1, 2};
  const double nan2[2] = {1, std::nan("")};
  const double three[3] = {1, 2, 3};
  EXPECT_FALSE(d->update(kStart, ok).ready);
  EXPECT_FALSE(d->update(kStart, ok).ready);         // same timestamp
  EXPECT_FALSE(d->update(kStart - 5, ok).ready);     // older
  EXPECT_FALSE(d->update(kStart + 1, nan2).ready);   // NaN
  EXPECT_FALSE(d->update(kStart + 2, three).ready);  // wrong arity
  EXPECT_FALSE(d->update(kStart + 3, std::span<const double>()).ready);
  EXPECT_FALSE(makeDetector(DetectorKind::kMultivariate, defaultParams(DetectorKind::kMultivariate), 1).has_value());
  EXPECT_FALSE(makeDetector(DetectorKind::kMultivariate, defaultParams(DetectorKind::kMultivariate), 17).has_value());
  EXPECT_TRUE(kindInfo(DetectorKind::kMultivariate).multivariate);
  auto r = resolveParams(DetectorKind::kMultivariate, {{"window", 10}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field, "params.window");
}

TEST(Multivariate, MemoryIsBoundedByWindowAndDims) {
  auto d = make(DetectorKind::kMultivariate, {}, 16);
  const std::size_t before = d->memoryBytes();
  const Joint j = jointSeries(1000, 3, false, 16);
  for (std::size_t i = 0; i < j.ts.size(); ++i) d->update(j.ts[i], j.rows[i]);
  EXPECT_EQ(d->memoryBytes(), before);  // everything allocated up front
  EXPECT_LT(before, (200 * 16 + 4 * 16 * 16 + 64) * 8 + 1024);
}

TEST(Multivariate, CheckpointRoundTripIsExact) {
  const Joint j = jointSeries(900, 77, true);
  for (std::size_t split :
       {std::size_t{0}, std::size_t{50}, std::size_t{199}, std::size_t{200}, std::size_t{450}, std::size_t{620}}) {
    expectExactRoundTrip(DetectorKind::kMultivariate, {}, 3, j.ts, j.rows, split);
  }
}

TEST(Multivariate, SurvivesResealedMutations) {
  const Joint j = jointSeries(400, 19, false);
  auto d = make(DetectorKind::kMultivariate, {{"window", 64}}, 3);
  for (std::size_t i = 0; i < 300; ++i) d->update(j.ts[i], j.rows[i]);
  std::string good;
  d->save(good);
  const std::vector<std::int64_t> rest_ts(j.ts.begin() + 300, j.ts.begin() + 340);
  const std::vector<std::vector<double>> rest(j.rows.begin() + 300, j.rows.begin() + 340);
  expectSurvivesResealedMutations(DetectorKind::kMultivariate, {{"window", 64}}, 3, good, rest_ts, rest);
}

TEST(Multivariate, RejectsDamagedOrForeignCheckpoints) {
  auto d = make(DetectorKind::kMultivariate, {{"window", 64}}, 3);
  const Joint j = jointSeries(300, 8, false);
  for (std::size_t i = 0; i < j.ts.size(); ++i) d->update(j.ts[i], j.rows[i]);
  std::string good;
  d->save(good);
  std::string foreign;
  make(DetectorKind::kMultivariate, {{"window", 64}}, 4)->save(foreign);  // other dims
  expectRejectsGarbage(DetectorKind::kMultivariate, {{"window", 64}}, 3, good, foreign);
}

}  // namespace
}  // namespace sw::analytics
