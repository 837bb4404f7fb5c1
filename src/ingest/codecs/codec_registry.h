#pragma once
// Chooses the telemetry codec for a content type. Codecs are registered here explicitly.
#include <memory>
#include <string_view>
#include <vector>

#include "ingest/codecs/telemetry_codec.h"

namespace sw::ingest {

class CodecRegistry {
 public:
  CodecRegistry();  // registers json and senml
  // application/senml+json -> senml; anything else (application/json, none, text/plain) -> json,
  // as ThingsBoard devices send JSON with all sorts of content types.
  const TelemetryCodec& forContentType(std::string_view content_type) const;
  const TelemetryCodec* byName(std::string_view name) const;

 private:
  std::vector<std::unique_ptr<TelemetryCodec>> codecs_;
};

}  // namespace sw::ingest
