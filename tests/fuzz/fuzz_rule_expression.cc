// libFuzzer target for rule conditions (src/analytics/rules/rule_eval.h): the bytes are parsed as
// a condition; what parses is evaluated on value vectors (incl. NaN, inf, 0) with and without
// hysteresis, its text() must re-parse to an equivalent condition, and a RuleState is fed with it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/rules/rule_eval.h"

namespace {

using sw::analytics::Condition;
using sw::analytics::RuleSpec;
using sw::analytics::RuleState;
using sw::analytics::RuleTransition;

bool sameValue(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

std::vector<std::vector<double>> vectors(std::size_t n, std::uint64_t seed) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<double>> out;
  for (double fill : {0.0, -0.0, 1.0, -1.0, 80.0, 1e308, kInf, -kInf}) out.emplace_back(n, fill);
  std::vector<double> ramp(n), mixed(n), pseudo(n);
  for (std::size_t i = 0; i < n; ++i) {
    ramp[i] = static_cast<double>(i) * 7.5 - 20;
    static constexpr double kMix[] = {0.0, 2.5, -3.0, 1e-300, 100.0, kInf, 0.5};
    mixed[i] = kMix[(i + seed) % 7];
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    pseudo[i] = static_cast<double>(static_cast<std::int64_t>(seed >> 33) % 2001 - 1000) / 10.0;
  }
  out.push_back(ramp);
  out.push_back(mixed);
  out.push_back(pseudo);
  if (n > 0) {
    std::vector<double> with_nan = pseudo;
    with_nan[seed % n] = kNaN;
    out.push_back(with_nan);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  // Garbage checkpoints are refused without crashing; what load() accepts saves back the same.
  RuleState garbage;
  if (garbage.load(in)) {
    std::string again;
    garbage.save(again);
    if (again != in) __builtin_trap();
  }

  auto c = Condition::parse(in);
  if (!c) {
    const auto& e = c.error();
    if (e.code != sw::Code::kInvalidArgument || e.field != "condition" || e.message.empty()) __builtin_trap();
    return 0;
  }
  const auto& keys = c->keys();
  if (keys.empty() || keys.size() > size) __builtin_trap();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty()) __builtin_trap();
    for (std::size_t j = 0; j < i; ++j) {
      if (keys[i] == keys[j]) __builtin_trap();  // distinct
    }
  }

  // text() re-parses to the same condition (same keys, same text, same results).
  std::string text = c->text();
  auto again = Condition::parse(text);
  if (!again) __builtin_trap();
  if (again->keys() != keys || again->text() != text) __builtin_trap();

  std::uint64_t seed = 1469598103934665603ULL;
  for (std::size_t i = 0; i < size; ++i) seed = (seed ^ data[i]) * 1099511628211ULL;
  auto vs = vectors(keys.size(), seed);
  for (const auto& v : vs) {
    bool has_nan = false;
    for (double x : v) has_nan |= std::isnan(x);
    double obs = c->observed(v);
    if (!sameValue(obs, again->observed(v))) __builtin_trap();
    bool prev = false;
    for (double h : {0.0, 0.5, 1.5, 1e6}) {
      bool r = c->evaluate(v, h);
      if (r != again->evaluate(v, h)) __builtin_trap();
      if (has_nan && r) __builtin_trap();  // a missing value never fires
      if (prev && !r) __builtin_trap();    // more hysteresis only relaxes
      prev = r;
    }
  }
  // Too few values: false, not a read past the end.
  std::vector<double> short_values(keys.size() - 1, 1.0);
  if (c->evaluate(short_values)) __builtin_trap();

  // A RuleState fed with these vectors in time order keeps its invariants and checkpoints.
  RuleSpec spec;
  spec.duration_ms = static_cast<std::int64_t>(seed % 4) * 1000;
  spec.hysteresis = static_cast<double>(seed % 3);
  RuleState state;
  std::int64_t ts = static_cast<std::int64_t>(seed % 1000) - 500;
  for (int round = 0; round < 3; ++round) {
    for (const auto& v : vs) {
      bool was_active = state.active();
      RuleState copy;
      std::string saved;
      state.save(saved);
      if (!copy.load(saved)) __builtin_trap();
      auto t = state.update(*c, spec, ts, v);
      auto tc = copy.update(*c, spec, ts, v);
      if (t != tc || state.active() != copy.active() || state.pendingSince() != copy.pendingSince()) __builtin_trap();
      if (t == RuleTransition::kRaise && (was_active || !state.active())) __builtin_trap();
      if (t == RuleTransition::kClear && (!was_active || state.active())) __builtin_trap();
      if (t == RuleTransition::kNone && was_active != state.active()) __builtin_trap();
      if (state.active() && state.pendingSince() != -1) __builtin_trap();
      // Out of order: ignored.
      if (state.update(*c, spec, ts - 1, v) != RuleTransition::kNone) __builtin_trap();
      ts += 700;
    }
  }
  return 0;
}
