#pragma once
// Telemetry payload decoders. A codec turns the bytes of one message (HTTP body, MQTT payload)
// into points. Input is untrusted: every failure is an invalid_argument naming the field, never
// a crash; each codec has a fuzz target (tests/fuzz).
// Thread-safety: decode() is const and may be called concurrently.
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "storage/value.h"

namespace sw::ingest {

struct DecodeLimits {
  std::size_t max_points = 200000;
  std::size_t max_key_bytes = 255;
  std::size_t max_string_bytes = 64 * 1024;
};

class TelemetryCodec {
 public:
  virtual ~TelemetryCodec() = default;
  virtual std::string_view name() const = 0;
  // now_ms stamps points that carry no timestamp. Appends to out; on error out is unspecified.
  virtual Status decode(std::string_view payload, std::int64_t now_ms, const DecodeLimits& limits,
                        std::vector<storage::Point>& out) const = 0;
};

}  // namespace sw::ingest
