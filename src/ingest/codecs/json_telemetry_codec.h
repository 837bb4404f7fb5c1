#pragma once
// ThingsBoard-compatible JSON telemetry: {"k":v,...}, {"ts":ms,"values":{...}}, or an array of
// those. Values: numbers, booleans, strings, or JSON objects/arrays (kept as compact JSON).
#include "ingest/codecs/telemetry_codec.h"

namespace sw::ingest {

class JsonTelemetryCodec final : public TelemetryCodec {
 public:
  std::string_view name() const override { return "json"; }
  Status decode(std::string_view payload, std::int64_t now_ms, const DecodeLimits& limits,
                std::vector<storage::Point>& out) const override;
};

}  // namespace sw::ingest
