#include "ingest/codecs/json_telemetry_codec.h"

#include <fmt/format.h>

#include <optional>

#include "ingest/codecs/codec_util.h"
#include "ingest/codecs/simdjson_util.h"

namespace sw::ingest {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Where an entry sits in the message, for error fields ("", "[3]"); built only on errors.
struct EntryPath {
  std::optional<std::size_t> index;
  std::string str() const { return index ? fmt::format("[{}]", *index) : std::string(); }
  std::string field(std::string_view rest) const {
    std::string p = str();
    return p.empty() ? std::string(rest) : p + "." + std::string(rest);
  }
};

// in_values: the key sits under "values" (the {"ts","values"} form).
Status addValue(std::string_view key, const element& v, std::int64_t ts, const DecodeLimits& limits,
                const EntryPath& path, bool in_values, std::vector<storage::Point>& out) {
  auto field = [&] { return path.field(in_values ? fmt::format("values.{}", key) : std::string(key)); };
  if (auto st = validateKey(key, limits, std::string()); !st) return fail(st.error().code, st.error().message, field());
  if (out.size() >= limits.max_points) {
    return fail(Code::kInvalidArgument, fmt::format("more than {} points in one message", limits.max_points), field());
  }
  storage::Point p;
  p.ts = ts;
  p.key.assign(key);
  switch (v.type()) {
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: p.value = *numberOf(v); break;
    case element_type::BOOL: p.value = bool(v); break;
    case element_type::STRING: {
      std::string_view s = v.get_string().value_unsafe();
      if (s.size() > limits.max_string_bytes) {
        return fail(Code::kInvalidArgument,
                    fmt::format("string value is longer than {} bytes", limits.max_string_bytes), field());
      }
      p.value = std::string(s);
      break;
    }
    case element_type::OBJECT:
    case element_type::ARRAY: {
      std::string json = simdjson::minify(v);
      if (json.size() > limits.max_string_bytes) {
        return fail(Code::kInvalidArgument, fmt::format("JSON value is longer than {} bytes", limits.max_string_bytes),
                    field());
      }
      p.value = storage::JsonText{std::move(json)};
      break;
    }
    case element_type::NULL_VALUE: return fail(Code::kInvalidArgument, "null is not a supported value", field());
  }
  out.push_back(std::move(p));
  return ok();
}

Status decodeEntry(const element& e, const EntryPath& path, std::int64_t now_ms, const DecodeLimits& limits,
                   std::vector<storage::Point>& out) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) {
    std::string p = path.str();
    return fail(Code::kInvalidArgument, "telemetry entry must be a JSON object", p.empty() ? "body" : p);
  }
  element ts_el, values_el;
  bool has_ts = obj.at_key("ts").get(ts_el) == simdjson::SUCCESS;
  bool has_values = obj.at_key("values").get(values_el) == simdjson::SUCCESS;
  if (has_ts && has_values) {
    auto ts = integerOf(ts_el);
    if (!ts || !validTimestamp(*ts)) {
      return fail(Code::kInvalidArgument, "ts must be an integer millisecond timestamp between 1970 and 9999",
                  path.field("ts"));
    }
    object values;
    if (values_el.get_object().get(values) != simdjson::SUCCESS) {
      return fail(Code::kInvalidArgument, "values must be a JSON object", path.field("values"));
    }
    for (auto [k, v] : values) {
      if (auto st = addValue(k, v, *ts, limits, path, true, out); !st) return st;
    }
    return ok();
  }
  for (auto [k, v] : obj) {
    if (auto st = addValue(k, v, now_ms, limits, path, false, out); !st) return st;
  }
  return ok();
}

}  // namespace

Status JsonTelemetryCodec::decode(std::string_view payload, std::int64_t now_ms, const DecodeLimits& limits,
                                  std::vector<storage::Point>& out) const {
  element root;
  auto err = threadParser().parse(payload.data(), payload.size(), true).get(root);
  if (err) {
    return fail(Code::kInvalidArgument, fmt::format("body is not valid JSON: {}", simdjson::error_message(err)),
                "body");
  }
  if (root.type() == element_type::ARRAY) {
    simdjson::dom::array entries = root.get_array().value_unsafe();
    std::size_t i = 0;
    for (element entry : entries) {
      if (auto st = decodeEntry(entry, EntryPath{i++}, now_ms, limits, out); !st) return st;
    }
    return ok();
  }
  return decodeEntry(root, EntryPath{}, now_ms, limits, out);
}

}  // namespace sw::ingest
