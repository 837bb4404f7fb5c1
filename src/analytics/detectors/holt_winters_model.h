#pragma once
// Internal, header-only: the additive Holt-Winters model (level, damped trend, seasonal) on a
// regular grid of steps, in error-correction form (Hyndman's ETS(A,Ad,A)):
//   yhat    = level + phi * trend + season[pos]
//   e       = y - yhat
//   level  += phi * trend + alpha * e      (i.e. level' = level + phi*trend + alpha*e)
//   trend   = phi * trend + beta * e
//   season[pos] += gamma * e;  pos = (pos + 1) % m
// Shared by the holt_winters detector (detectors/holt_winters.cc) and the forecast insight
// (insights/insights.cc) so both use the same recursion. m = 0 (no season) is Holt's linear
// method. Plain value type: no I/O, no allocation after init().
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sw::analytics::hw {

struct Smoothing {
  double alpha = 0.1;  // level
  double beta = 0.01;  // trend (error-correction form: the trend moves by beta * error)
  double gamma = 0.1;  // seasonal, per visit of a slot (once a season)
  double phi = 1;      // trend damping per step, in (0, 1]; 1 = undamped
};

struct Model {
  Smoothing s;
  double level = 0;
  double trend = 0;
  std::vector<double> season;  // m entries; empty: no season
  std::size_t pos = 0;         // slot of the next step, < m

  std::size_t m() const { return season.size(); }

  // Level and seasonal from one season of values (one per step, finite), trend 0. The next step
  // is at slot `next_pos`, so values[p] belongs to slot p. Reuses the seasonal storage.
  void initFromSeason(std::span<const double> values, std::size_t next_pos) {
    double sum = 0;
    for (double v : values) sum += v;
    const double mean = values.empty() ? 0 : sum / static_cast<double>(values.size());
    level = mean;
    trend = 0;
    season.assign(values.begin(), values.end());
    for (double& x : season) x -= mean;
    pos = season.empty() ? 0 : next_pos % season.size();
  }

  // Holt's linear method (no season) starting at value y0.
  void initLinear(double y0) {
    level = y0;
    trend = 0;
    season.clear();
    pos = 0;
  }

  double seasonal(std::size_t slot) const { return season.empty() ? 0 : season[slot]; }

  // One step ahead.
  double forecast() const { return level + s.phi * trend + seasonal(pos); }

  // h >= 1 steps ahead (no data in between).
  double forecast(std::size_t h) const {
    const double slot_season = season.empty() ? 0 : season[(pos + h - 1) % season.size()];
    return level + trend * dampedSum(h) + slot_season;
  }

  // Applies the one-step error of the current step (possibly cleaned, e.g. clipped, by the
  // caller) and advances by one step.
  void correct(double e) {
    level += s.phi * trend + s.alpha * e;
    trend = s.phi * trend + s.beta * e;
    if (!season.empty()) {
      season[pos] += s.gamma * e;
      if (++pos == season.size()) pos = 0;
    }
  }
  // Observes y at the current step; returns the one-step error.
  double update(double y) {
    const double e = y - forecast();
    correct(e);
    return e;
  }

  // k >= 0 steps without data: level and trend follow the forecast, the seasonal slots stay.
  // O(1) for any k (a device that was off for a year costs the same as one missing step).
  void skip(std::uint64_t k) {
    if (k == 0) return;
    level += trend * dampedSum(k);
    trend *= s.phi == 1 ? 1.0 : std::pow(s.phi, static_cast<double>(k));
    if (!season.empty()) pos = static_cast<std::size_t>((pos + k % season.size()) % season.size());
  }

  // phi + phi^2 + ... + phi^h.
  double dampedSum(std::uint64_t h) const {
    const double hd = static_cast<double>(h);
    if (s.phi == 1) return hd;
    if (s.phi <= 0) return 0;
    return s.phi * (1 - std::pow(s.phi, hd)) / (1 - s.phi);
  }

  // c_j of the h-step forecast error variance: var(h) = sigma^2 * (1 + sum_{j=1}^{h-1} c_j^2),
  // c_j = alpha + beta * (phi + ... + phi^j) + gamma * [j is a multiple of m].
  double errorWeight(std::uint64_t j) const {
    double c = s.alpha + s.beta * dampedSum(j);
    if (!season.empty() && j % season.size() == 0) c += s.gamma;
    return c;
  }
};

}  // namespace sw::analytics::hw
