#pragma once
// Telemetry values and points: the data model every transport, codec and store shares.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace sw::storage {

// A JSON object or array kept as its compact text.
struct JsonText {
  std::string text;
  friend bool operator==(const JsonText&, const JsonText&) = default;
};

using Value = std::variant<double, bool, std::string, JsonText>;

struct Point {
  std::int64_t ts = 0;  // milliseconds since the Unix epoch
  std::string key;
  Value value;
};

struct TimedValue {
  std::int64_t ts = 0;
  Value value;
};

// Numeric view used by aggregations: numbers as they are, booleans as 0/1; others are skipped.
bool numericValue(const Value& v, double& out);

// Compact binary encoding used by storage backends: one tag byte, then the payload.
void encodeValue(const Value& v, std::string& out);
// Returns false for bytes that are not a valid encoding.
bool decodeValue(const char* data, std::size_t size, Value& out);

}  // namespace sw::storage
