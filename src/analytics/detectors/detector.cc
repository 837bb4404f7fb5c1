// Kind registry, parameter validation and the detector factory (issue 5). Each kind's parameter
// list and implementation live in detectors/<kind>.cc; this file only assembles them.
#include "analytics/detectors/detector.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "analytics/detectors/kinds.h"

namespace sw::analytics {

namespace {

constexpr std::array<std::string_view, 8> kKindNames = {"zscore", "ewma",     "holt_winters", "cusum",
                                                        "spike",  "flatline", "missing",      "multivariate"};

constexpr std::size_t kMaxMultivariateKeys = 16;

// Shortest round-trip text of a number for messages ("4096", "0.5", "1e-06").
std::string num(double v) {
  char buf[40];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

std::string_view kindName(DetectorKind kind) {
  const auto i = static_cast<std::size_t>(kind);
  return i < kKindNames.size() ? kKindNames[i] : std::string_view("unknown");
}

Result<DetectorKind> parseKind(std::string_view name) {
  for (std::size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) return static_cast<DetectorKind>(i);
  }
  std::string list;
  for (std::string_view k : kKindNames) {
    if (!list.empty()) list += ", ";
    list += k;
  }
  return fail(Code::kInvalidArgument, "unknown detector kind \"" + std::string(name) + "\" (one of: " + list + ")",
              "kind");
}

const std::vector<KindInfo>& kindInfos() {
  // Built once (thread-safe static init), in DetectorKind order.
  static const std::vector<KindInfo> infos = [] {
    std::vector<KindInfo> v = {detail::zscoreInfo(),  detail::ewmaInfo(),        detail::holtWintersInfo(),
                               detail::cusumInfo(),   detail::spikeInfo(),       detail::flatlineInfo(),
                               detail::missingInfo(), detail::multivariateInfo()};
    for (KindInfo& info : v) {
      info.params.push_back({kClearAfterParam, kDefaultClearAfter, 1, 1000, true,
                             "Points in a row below the threshold before an open alarm clears itself. Higher: "
                             "fewer alarms for one flickering episode; lower: alarms end sooner."});
    }
    return v;
  }();
  return infos;
}

const KindInfo& kindInfo(DetectorKind kind) {
  const auto& infos = kindInfos();
  const auto i = static_cast<std::size_t>(kind);
  return infos[i < infos.size() ? i : 0];
}

Params defaultParams(DetectorKind kind) {
  Params p;
  for (const ParamSpec& spec : kindInfo(kind).params) p.emplace(std::string(spec.name), spec.default_value);
  return p;
}

Result<Params> resolveParams(DetectorKind kind, const Params& given) {
  const KindInfo& info = kindInfo(kind);
  Params out = defaultParams(kind);
  for (const auto& [name, value] : given) {
    const ParamSpec* spec = nullptr;
    for (const ParamSpec& s : info.params) {
      if (s.name == name) spec = &s;
    }
    const std::string field = "params." + name;
    if (spec == nullptr) {
      std::string list;
      for (const ParamSpec& s : info.params) {
        if (!list.empty()) list += ", ";
        list += s.name;
      }
      return fail(Code::kInvalidArgument,
                  "unknown parameter \"" + name + "\" for detector kind \"" + std::string(kindName(kind)) + "\"" +
                      (list.empty() ? std::string(" (it takes none)") : " (known: " + list + ")"),
                  field);
    }
    if (!std::isfinite(value)) return fail(Code::kInvalidArgument, field + " must be a finite number", field);
    if (value < spec->min || value > spec->max) {
      return fail(Code::kInvalidArgument,
                  field + " must be between " + num(spec->min) + " and " + num(spec->max) + " (got " + num(value) + ")",
                  field);
    }
    if (spec->integer && value != std::floor(value)) {
      return fail(Code::kInvalidArgument, field + " must be a whole number (got " + num(value) + ")", field);
    }
    out[name] = value;
  }
  return out;
}

Result<std::unique_ptr<Detector>> makeDetector(DetectorKind kind, const Params& params, std::size_t dims) {
  if (static_cast<std::size_t>(kind) >= kKindNames.size()) {
    return fail(Code::kInvalidArgument, "unknown detector kind", "kind");
  }
  const KindInfo& info = kindInfo(kind);
  if (info.multivariate) {
    if (dims < 2 || dims > kMaxMultivariateKeys) {
      return fail(Code::kInvalidArgument,
                  "detector kind \"" + std::string(kindName(kind)) + "\" takes 2 to " +
                      std::to_string(kMaxMultivariateKeys) + " keys (got " + std::to_string(dims) + ")",
                  "keys");
    }
  } else if (dims != 1) {
    return fail(Code::kInvalidArgument,
                "detector kind \"" + std::string(kindName(kind)) + "\" takes one key at a time (got " +
                    std::to_string(dims) + " values per point)",
                "keys");
  }
  // Re-resolve: fills defaults for absent names and rejects bad values even when the caller
  // skipped resolveParams (cheap; done once per instance).
  auto resolved = resolveParams(kind, params);
  if (!resolved) return std::unexpected(resolved.error());
  const Params& p = *resolved;
  std::unique_ptr<Detector> d;
  switch (kind) {
    case DetectorKind::kZScore: d = detail::makeZScore(p); break;
    case DetectorKind::kEwma: d = detail::makeEwma(p); break;
    case DetectorKind::kHoltWinters: d = detail::makeHoltWinters(p); break;
    case DetectorKind::kCusum: d = detail::makeCusum(p); break;
    case DetectorKind::kSpike: d = detail::makeSpike(p); break;
    case DetectorKind::kFlatline: d = detail::makeFlatline(p); break;
    case DetectorKind::kMissing: d = detail::makeMissing(p); break;
    case DetectorKind::kMultivariate: d = detail::makeMultivariate(p, dims); break;
  }
  if (!d) return fail(Code::kInternal, "could not create detector \"" + std::string(kindName(kind)) + "\"");
  return d;
}

}  // namespace sw::analytics
