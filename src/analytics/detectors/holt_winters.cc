// Seasonal detector (issue 5): additive Holt-Winters (level, damped trend, seasonal) on a regular
// grid learned from the data's own sampling interval.
//
// Points arrive at arbitrary times. The first kLearnGaps gaps give the typical interval (median);
// the season (a day by default) is cut into slots of that interval, or of several intervals when
// season / interval exceeds max_slots. A slot's points are averaged; the model takes one step per
// slot. The first full season initialises level and seasonal pattern, the following ones (up to
// warmup_seasons) calibrate the residual scale; scoring starts after that. Slots without points
// advance the model without updating it (O(1) however long the gap).
//
// Each point is scored by its standardised one-step residual z = |y - yhat| / sd;
// score = scoreFromRatio(z / sigmas), 0.8 at z = sigmas; expected range yhat +- sigmas * sd.
// Robustness (so an anomaly is not learnt as normal while it lasts):
// - the model learns from the slot mean cleaned to within kClip sd of its forecast (robust
//   Holt-Winters), so a spike or a broken day barely moves level, trend or pattern; a lasting
//   change still gets in at kClip sd per slot (a permanent shift of 8 sd alarms for about a sixth
//   of a season, of 16 sd about half a season);
// - sd = sqrt(pi/2) * EWMA of |residual| over the points within kClip sd (truncated, with its
//   small bias undone): one broken day does not inflate it, a real variance increase still does,
//   through the residuals that stay inside the band.
// By default the level adapts over about a quarter season: slow enough that a missing or shifted
// daily peak shows as a large residual, fast enough to follow slow wander; the scale over about
// three seasons.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "analytics/detectors/holt_winters_model.h"
#include "analytics/detectors/kinds.h"
#include "analytics/detectors/state_io.h"
#include "analytics/detectors/univariate.h"

namespace sw::analytics::detail {

namespace {

constexpr std::size_t kLearnGaps = 32;  // gaps whose median is the interval
// Residuals beyond kClip sd are clipped for the model update and left out of the scale.
constexpr double kClip = 3.0;
// The mean |x| of a normal truncated at 3 sd is 0.99158 of the untruncated one: undo that bias.
constexpr double kTruncationBias = 1.0085;
constexpr double kAbsToSd = 1.2533141373155003;  // sqrt(pi / 2): sd of a normal from its mean |x|
constexpr double kMinScaleSlots = 16;            // slots of residuals before the scale is trusted
constexpr std::uint16_t kStateVersion = 1;

double param(const Params& p, std::string_view name, double fallback) {
  const auto it = p.find(name);
  return it == p.end() ? fallback : it->second;
}

std::int64_t floorDiv(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

struct Config {
  std::int64_t season_ms = 86'400'000;
  std::int64_t interval_ms = 0;  // 0: learn
  std::int64_t max_slots = 2016;
  double alpha = 0, beta = 0, gamma = 0.2, phi = 0;  // 0: auto (alpha, beta, phi)
  double sigmas = 4;
  std::int64_t warmup_seasons = 2;
  double scale_alpha = 0;  // 0: auto
};

class HoltWinters final : public Detector {
 public:
  explicit HoltWinters(const Params& p) : fingerprint_(state_io::paramsFingerprint(p, 1)) {
    cfg_.season_ms = std::max<std::int64_t>(static_cast<std::int64_t>(param(p, "season_ms", 86'400'000)), 1000);
    cfg_.interval_ms = std::max<std::int64_t>(static_cast<std::int64_t>(param(p, "interval_ms", 0)), 0);
    cfg_.max_slots = std::clamp<std::int64_t>(static_cast<std::int64_t>(param(p, "max_slots", 2016)), 1, 1'000'000);
    cfg_.alpha = param(p, "alpha", 0);
    cfg_.beta = param(p, "beta", 0);
    cfg_.gamma = param(p, "gamma", 0.2);
    cfg_.phi = param(p, "phi", 0);
    cfg_.sigmas = std::max(param(p, "sigmas", 4), 1e-3);
    cfg_.warmup_seasons = std::max<std::int64_t>(static_cast<std::int64_t>(param(p, "warmup_seasons", 2)), 1);
    cfg_.scale_alpha = param(p, "scale_alpha", 0);
    st_ = fresh();
  }

  DetectorKind kind() const override { return DetectorKind::kHoltWinters; }

  std::size_t memoryBytes() const override {
    return sizeof(*this) + (st_.learn_ts.capacity() + st_.learn_v.capacity() + st_.init_sum.capacity() +
                            st_.init_n.capacity() + st_.model.season.capacity()) *
                               8;
  }

  Verdict update(std::int64_t ts, std::span<const double> values) override {
    double v = 0;
    if (!acceptPoint(st_.last_ts, ts, values, v)) return notReady();
    st_.last_ts = ts;
    if (st_.phase == Phase::kLearn) {
      st_.learn_ts.push_back(ts);
      st_.learn_v.push_back(v);
      if (cfg_.interval_ms == 0 && st_.learn_ts.size() <= kLearnGaps) return notReady();
      startGrid();
      return notReady();
    }
    return ingest(ts, v);
  }

  void save(std::string& out) const override {
    state_io::StateWriter w(out, DetectorKind::kHoltWinters, kStateVersion, fingerprint_);
    w.u8(static_cast<std::uint8_t>(st_.phase));
    w.i64(st_.last_ts);
    w.int64s(st_.learn_ts);
    w.doubles(st_.learn_v);
    w.i64(st_.interval);
    w.i64(st_.slots);
    w.i64(st_.g_start);
    w.doubles(st_.init_sum);
    w.doubles(st_.init_n);
    w.i64(st_.cur_g);
    w.f64(st_.slot_sum);
    w.f64(st_.slot_n);
    w.f64(st_.slot_abs);
    w.f64(st_.slot_abs_n);
    w.f64(st_.yhat);
    w.f64(st_.model.level);
    w.f64(st_.model.trend);
    w.doubles(st_.model.season);
    w.u64(st_.model.pos);
    w.f64(st_.scale_abs);
    w.f64(st_.scale_n);
    w.finish();
  }

  bool load(std::string_view in) override {
    state_io::StateReader r(in, DetectorKind::kHoltWinters, kStateVersion, fingerprint_);
    State s = fresh();
    if (r.ok() && read(r, s) && r.finish()) {
      st_ = std::move(s);
      return true;
    }
    st_ = fresh();
    return false;
  }

 private:
  enum class Phase : std::uint8_t { kLearn = 0, kInit = 1, kRun = 2 };

  struct State {
    Phase phase = Phase::kLearn;
    std::int64_t last_ts = kNoTs;
    // kLearn: the first points (their gaps give the interval), replayed into the grid after.
    std::vector<std::int64_t> learn_ts;
    std::vector<double> learn_v;
    // The grid (kInit, kRun): slot g covers [slotStart(g), slotStart(g + 1)); slot g is at
    // position g mod slots of the season.
    std::int64_t interval = 0;
    std::int64_t slots = 0;
    std::int64_t g_start = 0;  // first slot seen; [g_start, g_start + slots) initialises
    // kInit: per position, sum and count of the points of the first season.
    std::vector<double> init_sum, init_n;
    // kRun: the current slot (the model's next step), its points and its forecast.
    std::int64_t cur_g = 0;
    std::int64_t cur_end = 0;  // slotStart(cur_g + 1); derived, not saved
    double slot_sum = 0, slot_n = 0;
    double slot_abs = 0, slot_abs_n = 0;  // |residual| of the points within kClip sd (scale)
    double yhat = 0;
    hw::Model model;
    double scale_abs = 0;  // EWMA of |point residual| per slot
    double scale_n = 0;    // slots in the scale (bias correction while it is young)
  };

  State fresh() const {
    State s;
    s.learn_ts.reserve(kLearnGaps + 1);
    s.learn_v.reserve(kLearnGaps + 1);
    return s;
  }

  static Verdict notReady() { return Verdict{0, false, kNaN, kNaN}; }

  std::int64_t slotsFor(std::int64_t interval) const {
    const std::int64_t s0 = (cfg_.season_ms + interval / 2) / interval;
    return std::clamp<std::int64_t>(s0, 1, cfg_.max_slots);
  }

  // The slot of instant ts when a season has `slots` slots. No overflow: |ts| / season_ms
  // (season >= 1 s) times slots (<= 1e6) stays far inside int64.
  std::int64_t slotOf(std::int64_t ts, std::int64_t slots) const {
    const std::int64_t q = floorDiv(ts, cfg_.season_ms);
    std::int64_t rem = ts % cfg_.season_ms;  // not ts - q * season: that overflows near INT64_MIN
    if (rem < 0) rem += cfg_.season_ms;      // [0, season)
    return q * slots + rem * slots / cfg_.season_ms;
  }
  std::int64_t slotOf(std::int64_t ts) const { return slotOf(ts, st_.slots); }

  // First instant of slot g (saturated at the int64 range).
  std::int64_t slotStart(std::int64_t g, std::int64_t slots) const {
    const std::int64_t q = floorDiv(g, slots);
    const std::int64_t r = g - q * slots;
    const __int128 t =
        static_cast<__int128>(q) * cfg_.season_ms + (static_cast<__int128>(r) * cfg_.season_ms + slots - 1) / slots;
    if (t > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
    if (t < std::numeric_limits<std::int64_t>::min()) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(t);
  }
  std::int64_t slotStart(std::int64_t g) const { return slotStart(g, st_.slots); }

  hw::Smoothing smoothing(std::int64_t slots) const {
    const double m = static_cast<double>(slots);
    hw::Smoothing s;
    s.alpha = cfg_.alpha > 0 ? cfg_.alpha : 1 - std::exp(-4 / m);
    s.beta = cfg_.beta > 0 ? cfg_.beta : s.alpha * s.alpha / 4;
    s.gamma = cfg_.gamma;
    s.phi = cfg_.phi > 0 ? cfg_.phi : std::exp(-1 / m);
    return s;
  }

  double scaleAlpha() const {
    return cfg_.scale_alpha > 0 ? cfg_.scale_alpha : 1 / (3 * static_cast<double>(st_.slots));
  }

  // Ends kLearn: the interval is the median positive gap of the buffered points (or the
  // configured one); sets up the grid and replays the buffer into it.
  void startGrid() {
    std::int64_t interval = cfg_.interval_ms;
    if (interval == 0) {
      std::vector<std::uint64_t> gaps;
      gaps.reserve(st_.learn_ts.size());
      for (std::size_t i = 1; i < st_.learn_ts.size(); ++i) {
        gaps.push_back(static_cast<std::uint64_t>(st_.learn_ts[i]) - static_cast<std::uint64_t>(st_.learn_ts[i - 1]));
      }
      std::nth_element(gaps.begin(), gaps.begin() + static_cast<std::ptrdiff_t>(gaps.size() / 2), gaps.end());
      interval = static_cast<std::int64_t>(std::min<std::uint64_t>(gaps[gaps.size() / 2], cfg_.season_ms));
    }
    st_.interval = std::clamp<std::int64_t>(interval, 1, cfg_.season_ms);  // (a configured one may exceed it)
    st_.slots = slotsFor(st_.interval);
    st_.model.s = smoothing(st_.slots);
    st_.phase = Phase::kInit;
    st_.g_start = slotOf(st_.learn_ts.front());
    st_.init_sum.assign(static_cast<std::size_t>(st_.slots), 0.0);
    st_.init_n.assign(static_cast<std::size_t>(st_.slots), 0.0);
    std::vector<std::int64_t> ts;
    std::vector<double> vs;
    ts.swap(st_.learn_ts);
    vs.swap(st_.learn_v);
    for (std::size_t i = 0; i < ts.size(); ++i) ingest(ts[i], vs[i]);
  }

  // Builds the model from the first season: per-position means, empty positions interpolated
  // (circularly) from their nearest filled neighbours.
  void finishInit() {
    const auto n = static_cast<std::size_t>(st_.slots);
    std::vector<double> means(n, 0.0);
    std::vector<std::size_t> filled;
    for (std::size_t p = 0; p < n; ++p) {
      if (st_.init_n[p] > 0) {
        means[p] = st_.init_sum[p] / st_.init_n[p];
        filled.push_back(p);
      }
    }
    if (!filled.empty() && filled.size() < n) {
      for (std::size_t k = 0; k < filled.size(); ++k) {
        const std::size_t a = filled[k];
        const std::size_t b = filled[(k + 1) % filled.size()];
        const std::size_t span = b > a ? b - a : b + n - a;  // == n when only one filled
        for (std::size_t j = 1; j < span; ++j) {
          const double w = static_cast<double>(j) / static_cast<double>(span);
          means[(a + j) % n] = (1 - w) * means[a] + w * means[b];
        }
      }
    }
    st_.model.initFromSeason(
        means, static_cast<std::size_t>(st_.g_start % st_.slots + st_.slots) % static_cast<std::size_t>(st_.slots));
    std::vector<double>().swap(st_.init_sum);
    std::vector<double>().swap(st_.init_n);
    st_.phase = Phase::kRun;
  }

  double currentSd() const { return std::max(kAbsToSd * st_.scale_abs, 1e-9 * std::max(1.0, std::abs(st_.yhat))); }
  bool scaleTrusted() const { return st_.scale_n >= kMinScaleSlots; }

  // Closes the current slot: the model learns from the slot's mean, the scale from its points.
  void closeSlot() {
    if (st_.slot_n > 0) {
      // Robust Holt-Winters (Gelper, Fried & Croux 2010): the model learns from the observation
      // cleaned to within kClip sd of its forecast, so one wild slot cannot drag level, trend or
      // pattern; a lasting change still gets in, kClip sd per slot at a time.
      double e = st_.slot_sum / st_.slot_n - st_.yhat;
      if (scaleTrusted()) {
        const double c = kClip * currentSd();
        e = std::clamp(e, -c, c);
      }
      st_.model.correct(e);
      if (st_.slot_abs_n > 0) {
        const double a = std::max(scaleAlpha(), 1 / (st_.scale_n + 1));
        const double mean_abs = st_.slot_abs / st_.slot_abs_n * (scaleTrusted() ? kTruncationBias : 1.0);
        st_.scale_abs += a * (mean_abs - st_.scale_abs);
        if (st_.scale_n < 1e12) st_.scale_n += 1;
      }
    } else {
      st_.model.skip(1);
    }
    st_.slot_sum = st_.slot_n = st_.slot_abs = st_.slot_abs_n = 0;
  }

  // Moves to slot g > cur_g (slots in between had no points).
  void enterSlot(std::int64_t g) {
    closeSlot();
    st_.model.skip(static_cast<std::uint64_t>(g - st_.cur_g - 1));
    st_.cur_g = g;
    st_.cur_end = slotStart(g + 1);
    st_.yhat = st_.model.forecast();
  }

  Verdict ingest(std::int64_t ts, double v) {
    if (st_.phase == Phase::kInit) {
      const std::int64_t g = slotOf(ts);
      if (g < st_.g_start + st_.slots) {
        const auto p = static_cast<std::size_t>((g % st_.slots + st_.slots) % st_.slots);
        st_.init_sum[p] += v;
        st_.init_n[p] += 1;
        return notReady();
      }
      finishInit();
      // The model's next step is g_start + slots; treat it as an empty current slot.
      st_.cur_g = st_.g_start + st_.slots;
      st_.slot_sum = st_.slot_n = st_.slot_abs = st_.slot_abs_n = 0;
      st_.model.skip(static_cast<std::uint64_t>(g - st_.cur_g));
      st_.cur_g = g;
      st_.cur_end = slotStart(g + 1);
      st_.yhat = st_.model.forecast();
    } else if (ts >= st_.cur_end) {
      const std::int64_t g = slotOf(ts);
      if (g > st_.cur_g) enterSlot(g);
    }
    const double sd = currentSd();
    const double e = v - st_.yhat;
    const double abs_e = std::abs(e);
    st_.slot_sum += v;
    st_.slot_n += 1;
    if (!scaleTrusted() || abs_e <= kClip * sd) {
      st_.slot_abs += abs_e;
      st_.slot_abs_n += 1;
    }
    const bool ready = scaleTrusted() && st_.cur_g >= st_.g_start + cfg_.warmup_seasons * st_.slots;
    if (!ready) return notReady();
    const double half = cfg_.sigmas * sd;
    return Verdict{scoreFromRatio(abs_e / half), true, st_.yhat - half, st_.yhat + half};
  }

  // Parses a saved state into `s` (a fresh state), checking it is consistent with the params.
  bool read(state_io::StateReader& r, State& s) const {
    std::uint8_t phase = 0;
    std::uint64_t pos = 0;
    if (!r.u8(phase) || phase > 2 || !r.i64(s.last_ts)) return false;
    s.phase = static_cast<Phase>(phase);
    if (!r.int64s(s.learn_ts, 0, kLearnGaps + 1) || !r.doubles(s.learn_v, 0, kLearnGaps + 1)) return false;
    if (s.learn_ts.size() != s.learn_v.size()) return false;
    for (std::size_t i = 0; i < s.learn_ts.size(); ++i) {
      if (!std::isfinite(s.learn_v[i]) || (i > 0 && s.learn_ts[i] <= s.learn_ts[i - 1])) return false;
    }
    if (!r.i64(s.interval) || !r.i64(s.slots) || !r.i64(s.g_start)) return false;
    const bool grid = s.phase != Phase::kLearn;
    if (grid &&
        (s.interval < 1 || s.interval > cfg_.season_ms || s.slots != slotsFor(s.interval) || !s.learn_ts.empty())) {
      return false;
    }
    if (!grid && (s.interval != 0 || s.slots != 0 || !s.learn_ts.empty() != (s.last_ts != kNoTs) ||
                  s.learn_ts.size() > kLearnGaps || (!s.learn_ts.empty() && s.learn_ts.back() != s.last_ts))) {
      return false;
    }
    const std::size_t init_n = s.phase == Phase::kInit ? static_cast<std::size_t>(s.slots) : 0;
    if (!r.doubles(s.init_sum, init_n, init_n) || !r.doubles(s.init_n, init_n, init_n)) return false;
    for (std::size_t i = 0; i < init_n; ++i) {
      if (!std::isfinite(s.init_sum[i]) || !(s.init_n[i] >= 0) || s.init_n[i] > 1e15) return false;
    }
    if (!r.i64(s.cur_g) || !r.f64(s.slot_sum) || !r.f64(s.slot_n) || !r.f64(s.slot_abs) || !r.f64(s.slot_abs_n) ||
        !r.f64(s.yhat) || !r.f64(s.model.level) || !r.f64(s.model.trend)) {
      return false;
    }
    const std::size_t season_n = s.phase == Phase::kRun ? static_cast<std::size_t>(s.slots) : 0;
    if (!r.doubles(s.model.season, season_n, season_n) || !r.u64(pos) || !r.f64(s.scale_abs) || !r.f64(s.scale_n)) {
      return false;
    }
    for (double x : {s.slot_sum, s.slot_n, s.slot_abs, s.slot_abs_n, s.yhat, s.model.level, s.model.trend, s.scale_abs,
                     s.scale_n}) {
      if (!std::isfinite(x)) return false;
    }
    for (double x : s.model.season) {
      if (!std::isfinite(x)) return false;
    }
    if (s.slot_n < 0 || s.slot_abs < 0 || s.slot_abs_n < 0 || s.slot_abs_n > s.slot_n || s.scale_abs < 0 ||
        s.scale_n < 0)
      return false;
    // Invariants the update path relies on: the first slot lies before the last point (and far
    // from the int64 ends), the last point lies in the current slot (kRun) or in the first
    // season (kInit), and the model's slot is the current slot's position.
    if (grid && (s.g_start < slotOf(std::numeric_limits<std::int64_t>::min(), s.slots) ||
                 s.g_start > slotOf(s.last_ts, s.slots))) {
      return false;
    }
    if (s.phase == Phase::kInit) {
      if (slotOf(s.last_ts, s.slots) - s.g_start >= s.slots || pos != 0) return false;
    } else if (s.phase == Phase::kRun) {
      if (s.cur_g != slotOf(s.last_ts, s.slots) ||
          pos != static_cast<std::uint64_t>((s.cur_g % s.slots + s.slots) % s.slots)) {
        return false;
      }
      s.cur_end = slotStart(s.cur_g + 1, s.slots);
    } else if (pos != 0) {
      return false;
    }
    s.model.pos = static_cast<std::size_t>(pos);
    if (grid) s.model.s = smoothing(s.slots);
    return true;
  }

  Config cfg_;
  std::uint64_t fingerprint_;
  State st_;
};

}  // namespace

KindInfo holtWintersInfo() {
  return KindInfo{
      DetectorKind::kHoltWinters,
      "Seasonal (Holt-Winters)",
      "Learns the daily (or weekly) pattern on the data's own sampling interval and scores each point by its "
      "distance from the seasonal forecast: catches a missing or shifted daily peak even inside the normal range.",
      false,
      kDefaultThreshold,
      {
          {"season_ms", 86'400'000, 60'000, 2'419'200'000, true,
           "Season length in ms: 86400000 (daily), 604800000 (weekly) or any other period."},
          {"interval_ms", 0, 0, 86'400'000, true,
           "Sampling interval in ms; 0 = learn it from the data (median of the first 32 gaps)."},
          {"max_slots", 2016, 4, 20160, true,
           "Most slots per season (8 bytes each); when season / interval is larger, several intervals share a slot."},
          {"alpha", 0, 0, 1, false,
           "Level smoothing per slot; 0 = auto (1 - exp(-4 / slots): the level follows within about a quarter "
           "season)."},
          {"beta", 0, 0, 1, false,
           "Trend smoothing per slot; 0 = auto (alpha^2 / 4: the trend only follows slow drifts)."},
          {"gamma", 0.2, 0, 1, false,
           "Seasonal smoothing, applied once a season per slot: how fast the pattern itself adapts."},
          {"phi", 0, 0, 1, false, "Trend damping per slot; 0 = auto (the trend fades over one season)."},
          {"sigmas", 4, 1, 20, false,
           "Half-width of the expected range in residual standard deviations; a point this far out scores 0.8."},
          {"warmup_seasons", 2, 1, 8, true,
           "Seasons learnt before scoring: the first initialises the pattern, the others calibrate the noise."},
          {"scale_alpha", 0, 0, 1, false,
           "Smoothing of the residual scale per slot; 0 = auto (1 / (3 * slots): about three seasons)."},
      },
  };
}

std::unique_ptr<Detector> makeHoltWinters(const Params& p) {
  return std::make_unique<HoltWinters>(p);
}

}  // namespace sw::analytics::detail
