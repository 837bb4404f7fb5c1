#pragma once
// SenML (RFC 8428) JSON: an array of records with base fields (bn, bt, bu, bv, bs, bver).
// The series key is the resolved name (bn + n). Times are seconds; a resolved time below 2^28
// is relative to now (RFC 8428 section 4.5.3). Fields ending in "_" (must-understand) are rejected.
#include "ingest/codecs/telemetry_codec.h"

namespace sw::ingest {

class SenmlCodec final : public TelemetryCodec {
 public:
  std::string_view name() const override { return "senml"; }
  Status decode(std::string_view payload, std::int64_t now_ms, const DecodeLimits& limits,
                std::vector<storage::Point>& out) const override;
};

}  // namespace sw::ingest
