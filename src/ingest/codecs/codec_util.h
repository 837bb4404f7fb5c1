#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "ingest/codecs/telemetry_codec.h"

namespace sw::ingest {

// A telemetry key: 1..max_key_bytes of valid UTF-8 without control characters.
Status validateKey(std::string_view key, const DecodeLimits& limits, const std::string& field);
// Millisecond timestamps from 1970 up to year 9999.
inline constexpr std::int64_t kMaxTimestampMs = 253402300799999;
bool validTimestamp(std::int64_t ts);
bool validUtf8(std::string_view s);
// Appends s as a quoted JSON string; bytes that are not UTF-8 are escaped one by one, so the
// output is valid JSON whatever s holds.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace sw::ingest
