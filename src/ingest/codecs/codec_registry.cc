#include "ingest/codecs/codec_registry.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "ingest/codecs/json_telemetry_codec.h"
#include "ingest/codecs/senml_codec.h"

namespace sw::ingest {

CodecRegistry::CodecRegistry() {
  codecs_.push_back(std::make_unique<JsonTelemetryCodec>());
  codecs_.push_back(std::make_unique<SenmlCodec>());
}

const TelemetryCodec* CodecRegistry::byName(std::string_view name) const {
  for (const auto& c : codecs_) {
    if (c->name() == name) return c.get();
  }
  return nullptr;
}

const TelemetryCodec& CodecRegistry::forContentType(std::string_view content_type) const {
  std::string ct(content_type.substr(0, content_type.find(';')));
  std::transform(ct.begin(), ct.end(), ct.begin(), [](unsigned char c) { return std::tolower(c); });
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (ct == "application/senml+json") return *byName("senml");
  return *byName("json");
}

}  // namespace sw::ingest
