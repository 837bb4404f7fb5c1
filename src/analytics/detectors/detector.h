#pragma once
// Streaming anomaly detectors (issue 5). A Detector consumes the points of one series (or, for
// the multivariate kind, aligned values of several keys of one device) in time order and returns
// an anomaly score in [0, 1] per point with the range it expected.
//
// Pure computation: no I/O, no locks, no allocation on update() after warm-up (bounded state
// whose size is fixed by the parameters). Not thread-safe: the analytics engine owns each
// instance on one worker thread. State can be saved to bytes and loaded back (checkpoints), so a
// restart resumes where it left off instead of re-learning.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sw::analytics {

enum class DetectorKind {
  kZScore,        // robust rolling z-score: median/MAD over a sliding window
  kEwma,          // EWMA mean and variance control chart
  kHoltWinters,   // seasonal: additive Holt-Winters, season learned from the data's interval
  kCusum,         // change point: two-sided CUSUM for level shifts and drift
  kSpike,         // spike / rate of change
  kFlatline,      // stuck sensor: no change for too long
  kMissing,       // missing data / device inactivity (scored on tick() as well as on update())
  kMultivariate,  // several keys of one device: Mahalanobis distance on a sliding window
};

// Stable names used by the API and the checkpoint: "zscore", "ewma", "holt_winters", "cusum",
// "spike", "flatline", "missing", "multivariate".
std::string_view kindName(DetectorKind kind);
Result<DetectorKind> parseKind(std::string_view name);  // invalid_argument with field "kind"

// Parameters are named numbers. Every kind has defaults (see defaultParams) so a user only picks
// a kind; unknown names or out-of-range values are invalid_argument with field "params.<name>".
using Params = std::map<std::string, double, std::less<>>;
// Taken by every kind: consecutive points below the threshold before an open alarm clears
// (1..1000, default 5). Read by the alarm logic (EdgeTracker), not by the detectors.
inline constexpr std::string_view kClearAfterParam = "clear_after";
inline constexpr int kDefaultClearAfter = 5;
Params defaultParams(DetectorKind kind);
// Returns the defaults overlaid with `given`, validated.
Result<Params> resolveParams(DetectorKind kind, const Params& given);

struct Verdict {
  double score = 0;    // [0, 1]; 0 while warming up
  bool ready = false;  // false while the detector is still learning (score is 0 then)
  // What the detector expected for this point: observed outside [expected_lo, expected_hi] is
  // what drove the score. NaN when the kind has no such notion (e.g. missing data).
  double expected_lo = 0;
  double expected_hi = 0;
};

class Detector {
 public:
  virtual ~Detector() = default;
  // One point, in time order (a point older than the last one seen is ignored: score 0,
  // ready = false). values.size() == dims() (1 for univariate kinds).
  virtual Verdict update(std::int64_t ts_ms, std::span<const double> values) = 0;
  // Time passes without points (called by the engine every few seconds with wall-clock now).
  // Only kMissing scores here; the others return a default Verdict (score 0, ready false).
  virtual Verdict tick(std::int64_t now_ms) { return {}; }
  virtual DetectorKind kind() const = 0;
  virtual std::size_t dims() const { return 1; }
  // Bytes of heap + object this instance holds (bounded by its parameters).
  virtual std::size_t memoryBytes() const = 0;
  // Appends the full learned state; load() restores it into an instance made with the same
  // kind, params and dims, and returns false (leaving a fresh state) on malformed or
  // mismatched bytes. Checkpoint bytes are untrusted input (a damaged file): never crash.
  virtual void save(std::string& out) const = 0;
  virtual bool load(std::string_view in) = 0;
};

// params must come from resolveParams(kind, ...). dims: 1 for univariate kinds, >= 2 for
// kMultivariate (number of keys).
Result<std::unique_ptr<Detector>> makeDetector(DetectorKind kind, const Params& params, std::size_t dims = 1);

}  // namespace sw::analytics

namespace sw::analytics {

// Describes a kind for the API (GET /api/v1/detectors/kinds) and validation.
struct ParamSpec {
  std::string_view name;
  double default_value;
  double min;
  double max;
  bool integer;  // must be a whole number
  std::string_view description;
};

struct KindInfo {
  DetectorKind kind;
  std::string_view title;        // "Robust z-score"
  std::string_view description;  // one or two sentences for users
  bool multivariate;             // takes >= 2 keys at once
  double default_threshold;      // score at which an alarm is raised
  std::vector<ParamSpec> params;
};

// Every kind, in DetectorKind order.
const std::vector<KindInfo>& kindInfos();
const KindInfo& kindInfo(DetectorKind kind);

}  // namespace sw::analytics
