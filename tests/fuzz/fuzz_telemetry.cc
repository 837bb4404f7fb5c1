// libFuzzer target for the telemetry payload decoders (JSON and SenML). The first input byte
// picks the codec so one corpus covers both.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ingest/codecs/codec_registry.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const sw::ingest::CodecRegistry registry;
  if (size == 0) return 0;
  const auto& codec = registry.forContentType((data[0] & 1) ? "application/senml+json" : "application/json");
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  sw::ingest::DecodeLimits limits;
  limits.max_points = 10000;
  std::vector<sw::storage::Point> points;
  auto st = codec.decode(payload, 1700000000000, limits, points);
  if (st) {
    // Every decoded point must respect the limits the decoder promises.
    for (const auto& p : points) {
      if (p.key.empty() || p.key.size() > limits.max_key_bytes || p.ts < 0) __builtin_trap();
    }
    if (points.size() > limits.max_points) __builtin_trap();
  }
  return 0;
}
