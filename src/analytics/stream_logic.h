#pragma once
// The pieces of streaming logic that the live engine and the backtest share, so that a backtest
// shows exactly what the engine would have done: alarm edges from scores, alignment of several
// keys into rows (multivariate detectors, rules), device matching and alarm explanations.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "analytics/detectors/detector.h"
#include "analytics/store.h"

namespace sw::analytics {

// Turns a stream of scores into alarm edges. An alarm opens when the score reaches the threshold
// and clears after clear_after consecutive points below it (the detector's "clear_after"
// parameter, default 5), so that one noisy episode is one alarm with a count of its repeats, not
// a flapping series of alarms.
class EdgeTracker {
 public:
  static constexpr int kDefaultClearAfter = analytics::kDefaultClearAfter;
  explicit EdgeTracker(int clear_after = kDefaultClearAfter) : clear_after_(std::max(1, clear_after)) {}
  // The definition's clear_after (params come resolved; the default for older definitions).
  static EdgeTracker forDefinition(const DetectorDef& def) {
    auto it = def.params.find(kClearAfterParam);
    return EdgeTracker(it == def.params.end() ? kDefaultClearAfter : static_cast<int>(it->second));
  }
  enum class Edge { kNone, kRaise, kRepeat, kClear };
  Edge update(double score, double threshold) {
    if (score >= threshold) {
      if (!open_) {
        open_ = true;
        below_ = 0;
        return Edge::kRaise;
      }
      const bool repeat = below_ > 0;
      below_ = 0;
      return repeat ? Edge::kRepeat : Edge::kNone;
    }
    if (open_ && ++below_ >= clear_after_) {
      open_ = false;
      below_ = 0;
      return Edge::kClear;
    }
    return Edge::kNone;
  }
  bool open() const { return open_; }
  // For checkpoints.
  std::uint32_t packed() const { return (open_ ? 1u : 0u) | (static_cast<std::uint32_t>(below_) << 1); }
  void unpack(std::uint32_t v) {
    open_ = (v & 1u) != 0;
    below_ = static_cast<int>((v >> 1) & 0xffff);
  }

 private:
  int clear_after_;
  bool open_ = false;
  int below_ = 0;
};

// Collects the latest value of each of n keys and emits a row once every key has a new value
// since the last row (its time is the newest of them). Used for multivariate detectors.
class RowAligner {
 public:
  explicit RowAligner(std::size_t n = 0) : values_(n, NAN), fresh_(n, false) {}
  // Returns true when a row is complete; then row() holds it and rowTs() its time.
  bool add(std::size_t index, std::int64_t ts, double v) {
    values_[index] = v;
    if (!fresh_[index]) {
      fresh_[index] = true;
      ++fresh_count_;
    }
    if (ts > ts_) ts_ = ts;
    if (fresh_count_ < values_.size()) return false;
    fresh_.assign(values_.size(), false);
    fresh_count_ = 0;
    row_ts_ = ts_;
    return true;
  }
  const std::vector<double>& row() const { return values_; }
  std::int64_t rowTs() const { return row_ts_; }

 private:
  std::vector<double> values_;
  std::vector<bool> fresh_;
  std::size_t fresh_count_ = 0;
  std::int64_t ts_ = INT64_MIN, row_ts_ = INT64_MIN;
};

struct DeviceInfo {
  std::string id, name, type;
  std::map<std::string, std::string> labels;
};
bool selectorMatches(const DeviceSelector& selector, const DeviceInfo& device);

// "temperature = 31.2, expected 18.0 to 24.5 (robust z-score, score 0.93)".
std::string explainDetector(const DetectorDef& def, const std::string& key, double observed, const Verdict& v);
// The rule's own message, or "temperature > 80 (observed 91.2) for 5 min".
std::string explainRule(const RuleDef& def, double observed);
// "temperature" or "a,b" for several keys.
std::string joinKeys(const std::vector<std::string>& keys);

}  // namespace sw::analytics
