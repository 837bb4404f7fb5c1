#include "api/json_util.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>

#include "ingest/codecs/codec_util.h"

namespace sw::api {

namespace json = boost::json;

void JsonWriter::separate() {
  if (need_comma_) out_.push_back(',');
  need_comma_ = true;
}
JsonWriter& JsonWriter::beginObject() {
  separate();
  out_.push_back('{');
  need_comma_ = false;
  return *this;
}
JsonWriter& JsonWriter::endObject() {
  out_.push_back('}');
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::beginArray() {
  separate();
  out_.push_back('[');
  need_comma_ = false;
  return *this;
}
JsonWriter& JsonWriter::endArray() {
  out_.push_back(']');
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::key(std::string_view k) {
  separate();
  ingest::appendJsonString(out_, k);
  out_.push_back(':');
  need_comma_ = false;
  return *this;
}
JsonWriter& JsonWriter::string(std::string_view s) {
  separate();
  ingest::appendJsonString(out_, s);
  return *this;
}
JsonWriter& JsonWriter::integer(std::int64_t v) {
  separate();
  fmt::format_to(std::back_inserter(out_), "{}", v);
  return *this;
}
JsonWriter& JsonWriter::number(double v) {
  separate();
  if (!std::isfinite(v))
    out_ += "null";
  else if (std::trunc(v) == v && std::fabs(v) < 9.0e15)
    fmt::format_to(std::back_inserter(out_), "{}", static_cast<std::int64_t>(v));
  else
    fmt::format_to(std::back_inserter(out_), "{}", v);
  return *this;
}
JsonWriter& JsonWriter::boolean(bool v) {
  separate();
  out_ += v ? "true" : "false";
  return *this;
}
JsonWriter& JsonWriter::null() {
  separate();
  out_ += "null";
  return *this;
}
JsonWriter& JsonWriter::raw(std::string_view j) {
  separate();
  out_.append(j);
  return *this;
}
JsonWriter& JsonWriter::value(const storage::Value& v) {
  if (const double* d = std::get_if<double>(&v)) return number(*d);
  if (const bool* b = std::get_if<bool>(&v)) return boolean(*b);
  if (const std::string* s = std::get_if<std::string>(&v)) return string(*s);
  return raw(std::get<storage::JsonText>(v).text);
}

Result<json::object> parseObject(std::string_view body) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) return fail(Code::kInvalidArgument, fmt::format("body is not valid JSON: {}", ec.message()), "body");
  if (!v.is_object()) return fail(Code::kInvalidArgument, "body must be a JSON object", "body");
  return std::move(v.as_object());
}

Result<std::optional<std::string>> optString(const json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v || v->is_null()) return std::optional<std::string>();
  if (!v->is_string()) return fail(Code::kInvalidArgument, fmt::format("{} must be a string", name), std::string(name));
  return std::optional<std::string>(std::string(v->as_string()));
}

Result<std::string> reqString(const json::object& o, std::string_view name) {
  auto s = optString(o, name);
  if (!s) return std::unexpected(s.error());
  if (!*s || (*s)->empty()) return fail(Code::kInvalidArgument, fmt::format("{} is required", name), std::string(name));
  return std::move(**s);
}

Result<std::optional<std::int64_t>> optInt(const json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v || v->is_null()) return std::optional<std::int64_t>();
  if (v->is_int64()) return std::optional<std::int64_t>(v->as_int64());
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return std::optional<std::int64_t>(static_cast<std::int64_t>(v->as_uint64()));
  }
  if (v->is_double() && std::trunc(v->as_double()) == v->as_double() && std::fabs(v->as_double()) < 9e15) {
    return std::optional<std::int64_t>(static_cast<std::int64_t>(v->as_double()));
  }
  return fail(Code::kInvalidArgument, fmt::format("{} must be an integer", name), std::string(name));
}

Result<std::optional<double>> optNumber(const json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v || v->is_null()) return std::optional<double>();
  if (!v->is_number()) return fail(Code::kInvalidArgument, fmt::format("{} must be a number", name), std::string(name));
  return std::optional<double>(v->to_number<double>());
}

Result<std::optional<std::map<std::string, std::string>>> optStringMap(const json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v || v->is_null()) return std::optional<std::map<std::string, std::string>>();
  if (!v->is_object()) {
    return fail(Code::kInvalidArgument, fmt::format("{} must be an object of strings", name), std::string(name));
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v->as_object()) {
    if (!val.is_string() || k.empty() || k.size() > 255 || val.as_string().size() > 1024) {
      return fail(
          Code::kInvalidArgument,
          fmt::format("{}.{} must be a string (keys 1-255, values up to 1024 bytes)", name, std::string_view(k)),
          fmt::format("{}.{}", name, std::string_view(k)));
    }
    out.emplace(std::string(k), std::string(val.as_string()));
  }
  return std::optional<std::map<std::string, std::string>>(std::move(out));
}

std::string toJsonText(const json::value& v) {
  return json::serialize(v);
}

Result<std::optional<bool>> optBool(const boost::json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (!v || v->is_null()) return std::optional<bool>();
  if (!v->is_bool())
    return fail(Code::kInvalidArgument, fmt::format("{} must be true or false", name), std::string(name));
  return std::optional<bool>(v->as_bool());
}

}  // namespace sw::api
