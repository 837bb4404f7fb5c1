#include "analytics/stream_logic.h"

#include <fmt/format.h>

namespace sw::analytics {

bool selectorMatches(const DeviceSelector& s, const DeviceInfo& d) {
  if (!s.device_ids.empty()) {
    bool found = false;
    for (const auto& id : s.device_ids) found = found || id == d.id;
    if (!found) return false;
  }
  if (!s.type.empty() && s.type != d.type) return false;
  if (!s.label_key.empty()) {
    auto it = d.labels.find(s.label_key);
    if (it == d.labels.end()) return false;
    if (s.label_value && it->second != *s.label_value) return false;
  }
  return true;
}

namespace {
std::string num(double v) {
  if (!std::isfinite(v)) return "n/a";
  return fmt::format("{:.4g}", v);
}
}  // namespace

std::string explainDetector(const DetectorDef& def, const std::string& key, double observed, const Verdict& v) {
  const auto& info = kindInfo(def.kind);
  if (def.kind == DetectorKind::kMissing) {
    return fmt::format("{}: no data for longer than usual ({}, score {:.2f})", key, info.title, v.score);
  }
  if (std::isfinite(v.expected_lo) && std::isfinite(v.expected_hi)) {
    return fmt::format("{} = {}, expected {} to {} ({}, score {:.2f})", key, num(observed), num(v.expected_lo),
                       num(v.expected_hi), info.title, v.score);
  }
  return fmt::format("{} = {} is unusual ({}, score {:.2f})", key, num(observed), info.title, v.score);
}

std::string explainRule(const RuleDef& def, double observed) {
  if (!def.message.empty()) return def.message;
  std::string out = fmt::format("{} (observed {})", def.condition, num(observed));
  if (def.duration_ms > 0) {
    const auto d = def.duration_ms;
    if (d % 3600000 == 0) {
      out += fmt::format(" for {} h", d / 3600000);
    } else if (d % 60000 == 0) {
      out += fmt::format(" for {} min", d / 60000);
    } else {
      out += fmt::format(" for {} s", d / 1000.0);
    }
  }
  return out;
}

std::string joinKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out.push_back(',');
    out += k;
  }
  return out;
}

}  // namespace sw::analytics
