#pragma once
// JSON helpers for handlers. Output: a small streaming writer (numbers printed shortest
// round-trip, e.g. 21.5, not 2.15E1). Input: Boost.JSON parsing with field-naming errors.
#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "storage/value.h"

namespace sw::api {

class JsonWriter {
 public:
  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  JsonWriter& key(std::string_view k);
  JsonWriter& string(std::string_view s);
  JsonWriter& integer(std::int64_t v);
  JsonWriter& number(double v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  JsonWriter& raw(std::string_view json);  // already-valid JSON text
  JsonWriter& value(const storage::Value& v);
  std::string take() { return std::move(out_); }
  std::size_t size() const { return out_.size(); }

 private:
  void separate();
  std::string out_;
  bool need_comma_ = false;
};

// Parses a request body that must be a JSON object.
Result<boost::json::object> parseObject(std::string_view body);
// Typed field access; missing optional fields give nullopt, wrong types invalid_argument.
Result<std::optional<std::string>> optString(const boost::json::object& o, std::string_view name);
Result<std::string> reqString(const boost::json::object& o, std::string_view name);
Result<std::optional<std::int64_t>> optInt(const boost::json::object& o, std::string_view name);
Result<std::optional<double>> optNumber(const boost::json::object& o, std::string_view name);
Result<std::optional<bool>> optBool(const boost::json::object& o, std::string_view name);
Result<std::optional<std::map<std::string, std::string>>> optStringMap(const boost::json::object& o,
                                                                       std::string_view name);
std::string toJsonText(const boost::json::value& v);

}  // namespace sw::api
