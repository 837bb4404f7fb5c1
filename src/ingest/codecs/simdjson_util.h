#pragma once
// Shared simdjson helpers for the JSON-based codecs (only included by codec .cc files).
#include <simdjson.h>

#include <cmath>
#include <optional>
#include <string>

namespace sw::ingest {

// One reusable parser per thread: simdjson's parser owns its buffers.
inline simdjson::dom::parser& threadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// A JSON number as double; nullopt for non-numbers.
inline std::optional<double> numberOf(const simdjson::dom::element& e) {
  switch (e.type()) {
    case simdjson::dom::element_type::DOUBLE: return double(e);
    case simdjson::dom::element_type::INT64: return static_cast<double>(int64_t(e));
    case simdjson::dom::element_type::UINT64: return static_cast<double>(uint64_t(e));
    default: return std::nullopt;
  }
}

// A JSON number that is a whole value in int64 range; nullopt otherwise.
inline std::optional<int64_t> integerOf(const simdjson::dom::element& e) {
  switch (e.type()) {
    case simdjson::dom::element_type::INT64: return int64_t(e);
    case simdjson::dom::element_type::UINT64: {
      uint64_t u = uint64_t(e);
      if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(u);
    }
    case simdjson::dom::element_type::DOUBLE: {
      double d = double(e);
      if (std::trunc(d) != d || std::fabs(d) > 9.0e18) return std::nullopt;
      return static_cast<int64_t>(d);
    }
    default: return std::nullopt;
  }
}

}  // namespace sw::ingest
