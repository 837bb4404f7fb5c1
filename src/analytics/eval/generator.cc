#include "analytics/eval/generator.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace sw::analytics::eval {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// Independent streams for the parts of a series, so that e.g. the number of keys does not change
// key 0 and the base signal is the same for every anomaly type with the same seed.
constexpr std::uint64_t kStreamBase = 0x1;
constexpr std::uint64_t kStreamPlace = 0x2;
constexpr std::uint64_t kStreamAnomaly = 0x3;
constexpr std::uint64_t kStreamKeys = 0x4;

Rng stream(std::uint64_t seed, std::uint64_t which) {
  return Rng(seed * 0x100000001B3ULL + which * 0xD6E8FEB86659FD93ULL);
}

// Relation of extra key k (>= 1) to key 0: value = slope * key0 + offset + noise.
double relationSlope(std::size_t k) {
  static constexpr double kSlopes[] = {1.5, -0.8, 0.6, -1.2};
  return kSlopes[(k - 1) % 4];
}
double relationOffset(std::size_t k) {
  static constexpr double kOffsets[] = {3, 40, -5, 60};
  return kOffsets[(k - 1) % 4];
}

double season(const GenOptions& o, std::int64_t ts) {
  if (o.season_amplitude == 0 || o.season_ms <= 0) return 0;
  const double phase = static_cast<double>(((ts % o.season_ms) + o.season_ms) % o.season_ms) /
                       static_cast<double>(o.season_ms) * 2 * std::numbers::pi;
  return o.season_amplitude * (std::sin(phase) + 0.3 * std::sin(2 * phase + 1));
}

// Smooth 0 -> 1 -> 0 envelope for windows that must not start with a jump: a cosine taper of
// `ramp` samples at each end of [0, n).
double taper(std::size_t i, std::size_t n, std::size_t ramp) {
  if (ramp == 0) return 1;
  const std::size_t d = std::min(i + 1, n - i);
  if (d >= ramp) return 1;
  return 0.5 - 0.5 * std::cos(std::numbers::pi * static_cast<double>(d) / static_cast<double>(ramp));
}

}  // namespace

Rng::Rng(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

double Rng::uniform(double lo, double hi) {
  return lo + (hi - lo) * uniform();
}

std::size_t Rng::below(std::size_t n) {
  return static_cast<std::size_t>(uniform() * static_cast<double>(n)) % n;
}

double Rng::gaussian() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform();
  while (u1 <= 0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2 * std::numbers::pi * u2);
  has_spare_ = true;
  return r * std::cos(2 * std::numbers::pi * u2);
}

std::string_view anomalyName(AnomalyType type) {
  switch (type) {
    case AnomalyType::kNone: return "clean";
    case AnomalyType::kSpike: return "spike";
    case AnomalyType::kLevelShift: return "level_shift";
    case AnomalyType::kDrift: return "drift";
    case AnomalyType::kBrokenSeasonality: return "broken_seasonality";
    case AnomalyType::kStuck: return "stuck";
    case AnomalyType::kVarianceChange: return "variance_change";
    case AnomalyType::kBrokenRelation: return "broken_relation";
    case AnomalyType::kMissingData: return "missing_data";
  }
  return "unknown";
}

const std::vector<AnomalyType>& anomalyTypes() {
  static const std::vector<AnomalyType> kTypes = {
      AnomalyType::kSpike, AnomalyType::kLevelShift,     AnomalyType::kDrift,          AnomalyType::kBrokenSeasonality,
      AnomalyType::kStuck, AnomalyType::kVarianceChange, AnomalyType::kBrokenRelation, AnomalyType::kMissingData,
  };
  return kTypes;
}

GenOptions standardOptions(AnomalyType type, bool seasonal) {
  GenOptions o;
  if (type == AnomalyType::kBrokenSeasonality || (type == AnomalyType::kNone && seasonal)) {
    // 8 days at 1 min with a daily cycle of +-5 (10 noise sd); 3 days to learn the season, then
    // two broken days (never adjacent) among the last five.
    o.points = 8 * 1440;
    o.warmup_points = 3 * 1440;
    o.season_amplitude = 5;
    o.anomalies = 2;
  } else if (type == AnomalyType::kBrokenRelation) {
    // Key 0 moves widely and slowly (6 h cycle of +-4), so that a broken relation is not a
    // change of range: both keys stay inside what they normally show.
    o.season_amplitude = 4;
    o.season_ms = 6 * 3'600'000;
    o.keys = 2;
  }
  return o;
}

LabelledSeries generate(AnomalyType type, const GenOptions& opt, std::uint64_t seed) {
  LabelledSeries out;
  out.type = type;
  out.interval_ms = std::max<std::int64_t>(opt.interval_ms, 1);
  const std::size_t n = opt.points;
  const std::size_t keys = std::max<std::size_t>(type == AnomalyType::kBrokenRelation ? 2 : 1, opt.keys);
  const double jitter = std::clamp(opt.jitter, 0.0, 0.45);
  const double sd = std::max(opt.noise_sd, 0.0);
  const double mag = opt.magnitude;

  // Base signal of key 0: timestamps, level + season + AR(1) wander, and the noise kept apart
  // (variance_change scales it).
  Rng base = stream(seed, kStreamBase);
  std::vector<std::int64_t> ts(n);
  std::vector<double> clean(n), noise(n);
  constexpr double kPhi = 0.995;
  double wander = opt.wander_sd * base.gaussian();
  const double innovation = opt.wander_sd * std::sqrt(1 - kPhi * kPhi);
  for (std::size_t i = 0; i < n; ++i) {
    const double nominal =
        static_cast<double>(opt.start_ms) + static_cast<double>(i) * static_cast<double>(out.interval_ms);
    const double j = jitter == 0 ? 0.0 : base.uniform(-jitter, jitter) * static_cast<double>(out.interval_ms);
    ts[i] = static_cast<std::int64_t>(std::llround(nominal + j));
    wander = kPhi * wander + innovation * base.gaussian();
    noise[i] = sd * base.gaussian();
    clean[i] = opt.level + season(opt, ts[i]) + wander;
  }
  std::vector<std::vector<double>> values(keys, std::vector<double>(n));
  for (std::size_t i = 0; i < n; ++i) values[0][i] = clean[i] + noise[i];
  Rng kr = stream(seed, kStreamKeys);
  for (std::size_t k = 1; k < keys; ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      values[k][i] = relationSlope(k) * values[0][i] + relationOffset(k) + sd * kr.gaussian();
    }
  }

  // Where the anomalies go: index ranges [s, e) of samples.
  struct Span {
    std::size_t s, e;
  };
  std::vector<Span> spans;
  Rng place = stream(seed, kStreamPlace);
  Rng an = stream(seed, kStreamAnomaly);
  if (type == AnomalyType::kBrokenSeasonality) {
    // Whole days (by timestamp, in the season's phase): pick among the days after warm-up,
    // never two adjacent ones, so each broken day is followed by a normal one.
    const std::int64_t day = std::max<std::int64_t>(opt.season_ms, out.interval_ms);
    std::vector<std::int64_t> days;
    if (n > 0) {
      const std::size_t first = std::min(opt.warmup_points, n - 1);
      std::int64_t d0 = ts[first] - (((ts[first] % day) + day) % day);
      if (d0 < ts[first]) d0 += day;
      for (std::int64_t d = d0; d + day <= ts[n - 1]; d += day) days.push_back(d);
    }
    std::vector<std::int64_t> chosen;
    for (std::size_t tries = 0; tries < 64 && chosen.size() < opt.anomalies && !days.empty(); ++tries) {
      const std::int64_t d = days[place.below(days.size())];
      const bool clash =
          std::any_of(chosen.begin(), chosen.end(), [&](std::int64_t c) { return std::llabs(c - d) <= day; });
      if (!clash) chosen.push_back(d);
    }
    std::sort(chosen.begin(), chosen.end());
    for (std::int64_t d : chosen) {
      const auto s = static_cast<std::size_t>(std::lower_bound(ts.begin(), ts.end(), d) - ts.begin());
      const auto e = static_cast<std::size_t>(std::lower_bound(ts.begin(), ts.end(), d + day) - ts.begin());
      if (s < e) spans.push_back({s, e});
    }
  } else if (type != AnomalyType::kNone && opt.anomalies > 0 && n > opt.warmup_points) {
    // Equal slots after warm-up (with a tail so the end of the last window is observed); one
    // window at a random place in each slot, at least 100 samples from the slot's end.
    const std::size_t tail = std::min<std::size_t>(200, (n - opt.warmup_points) / 4);
    const std::size_t region = n - opt.warmup_points - tail;
    const std::size_t slot = region / opt.anomalies;
    for (std::size_t a = 0; a < opt.anomalies && slot >= 2; ++a) {
      std::size_t len = 1;
      switch (type) {
        case AnomalyType::kSpike: len = place.uniform() < 0.3 ? 2 : 1; break;
        case AnomalyType::kLevelShift: len = 240 + place.below(481); break;
        case AnomalyType::kDrift: len = 2 * (240 + place.below(241)); break;
        case AnomalyType::kStuck: len = 60 + place.below(181); break;
        case AnomalyType::kVarianceChange: len = 240 + place.below(241); break;
        case AnomalyType::kBrokenRelation: len = 120 + place.below(241); break;
        case AnomalyType::kMissingData: len = 30 + place.below(151); break;
        default: break;
      }
      const std::size_t room = slot > 100 ? slot - 100 : slot / 2;
      len = std::clamp<std::size_t>(len, 1, std::max<std::size_t>(room, 1));
      const std::size_t s = opt.warmup_points + a * slot + place.below(std::max<std::size_t>(room - len + 1, 1));
      spans.push_back({s, std::min(s + len, n)});
    }
  }

  // Inject.
  std::vector<bool> drop(n, false);
  for (const Span& sp : spans) {
    const std::size_t len = sp.e - sp.s;
    const double sign = an.uniform() < 0.5 ? -1.0 : 1.0;
    auto& x = values[0];
    switch (type) {
      case AnomalyType::kSpike: {
        const double delta = sign * an.uniform(6, 12) * sd * mag;
        for (std::size_t i = sp.s; i < sp.e; ++i) x[i] += delta;
        break;
      }
      case AnomalyType::kLevelShift: {
        const double delta = sign * an.uniform(4, 8) * sd * mag;
        for (std::size_t i = sp.s; i < sp.e; ++i) x[i] += delta;
        break;
      }
      case AnomalyType::kDrift: {
        // Triangle: linear ramp to the peak over half the window and back.
        const double peak = sign * an.uniform(6, 10) * sd * mag;
        const double half = static_cast<double>(len) / 2;
        for (std::size_t i = sp.s; i < sp.e; ++i) {
          const double u = static_cast<double>(i - sp.s) + 0.5;
          x[i] += peak * (u <= half ? u / half : (static_cast<double>(len) - u) / half);
        }
        break;
      }
      case AnomalyType::kBrokenSeasonality: {
        // Either the day's pattern is missing (flat at the level) or shifted by a quarter season.
        const bool flat = an.uniform() < 0.5;
        const std::int64_t shift = opt.season_ms / 4;
        for (std::size_t i = sp.s; i < sp.e; ++i) {
          const double target = flat ? 0.0 : season(opt, ts[i] + shift);
          x[i] += mag * (target - season(opt, ts[i]));
        }
        break;
      }
      case AnomalyType::kStuck: {
        const double v = sp.s > 0 ? x[sp.s - 1] : x[sp.s];
        for (std::size_t i = sp.s; i < sp.e; ++i) x[i] = v;
        break;
      }
      case AnomalyType::kVarianceChange: {
        const double factor = 1 + (an.uniform(3, 5) - 1) * mag;
        for (std::size_t i = sp.s; i < sp.e; ++i) x[i] += noise[i] * (factor - 1);
        break;
      }
      case AnomalyType::kBrokenRelation: {
        // Key 1 follows key 0 mirrored around the level instead of key 0, blended in and out
        // over 30 samples so neither key jumps: both stay in their usual range.
        const std::size_t k = 1;
        const double slope = relationSlope(k);
        for (std::size_t i = sp.s; i < sp.e; ++i) {
          const double a = values[0][i];
          const double m = taper(i - sp.s, len, 30) * std::min(mag, 1.0);
          const double driver = (1 - m) * a + m * (2 * opt.level - a);
          values[k][i] += slope * (driver - a);
        }
        break;
      }
      case AnomalyType::kMissingData:
        for (std::size_t i = sp.s; i < sp.e; ++i) drop[i] = true;
        break;
      case AnomalyType::kNone: break;
    }
  }
  out.anomalous_key = type == AnomalyType::kBrokenRelation ? 1 : 0;

  // Labels, in time.
  for (const Span& sp : spans) {
    Window w;
    if (type == AnomalyType::kBrokenSeasonality) {
      const std::int64_t day = std::max<std::int64_t>(opt.season_ms, out.interval_ms);
      w.start_ms = ts[sp.s] - (((ts[sp.s] % day) + day) % day);
      w.end_ms = w.start_ms + day;
    } else if (type == AnomalyType::kMissingData) {
      // From when the first missing sample was due until the next one that arrives.
      w.start_ms = opt.start_ms + static_cast<std::int64_t>(sp.s) * out.interval_ms;
      w.end_ms = sp.e < n ? ts[sp.e] : ts[n - 1] + out.interval_ms;
    } else {
      w.start_ms = ts[sp.s];
      w.end_ms = ts[sp.e - 1] + 1;
    }
    out.anomalies.push_back(w);
  }

  // Emit, dropping the missing samples.
  out.values.assign(keys, {});
  for (auto& v : out.values) v.reserve(n);
  out.ts.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (drop[i]) continue;
    out.ts.push_back(ts[i]);
    for (std::size_t k = 0; k < keys; ++k) out.values[k].push_back(values[k][i]);
  }
  return out;
}

}  // namespace sw::analytics::eval
