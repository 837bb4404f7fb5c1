#pragma once
#include <chrono>
#include <cstdint>

namespace sw {

// Wall-clock time in milliseconds since the Unix epoch (telemetry timestamps are in this unit).
inline std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sw
