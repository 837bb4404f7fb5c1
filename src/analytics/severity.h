#pragma once
// Alarm severities, most severe first: "critical", "major", "minor", "warning", "info".
#include <optional>
#include <string_view>

namespace sw::analytics {

enum class Severity { kCritical = 0, kMajor = 1, kMinor = 2, kWarning = 3, kInfo = 4 };

inline std::string_view severityName(Severity s) {
  switch (s) {
    case Severity::kCritical: return "critical";
    case Severity::kMajor: return "major";
    case Severity::kMinor: return "minor";
    case Severity::kWarning: return "warning";
    case Severity::kInfo: return "info";
  }
  return "info";
}

inline std::optional<Severity> parseSeverity(std::string_view s) {
  for (auto v : {Severity::kCritical, Severity::kMajor, Severity::kMinor, Severity::kWarning, Severity::kInfo}) {
    if (severityName(v) == s) return v;
  }
  return std::nullopt;
}

// True when `s` is at least as severe as `floor`.
inline bool atLeast(Severity s, Severity floor) {
  return static_cast<int>(s) <= static_cast<int>(floor);
}

}  // namespace sw::analytics
