// Parsing and validation of the messages a live-data WebSocket client sends (docs/websocket.md).
// Kept apart from the hub so that the fuzz target links only this and Boost.JSON.
#include "api/live_protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

namespace sw::api {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxSubIdBytes = 64;
constexpr std::size_t kMaxTokenBytes = 8192;
constexpr std::size_t kMaxDeviceIdBytes = 128;
constexpr std::size_t kMaxKeys = 1000;
constexpr std::size_t kMaxKeyBytes = 255;
constexpr std::size_t kMaxFilterFieldBytes = 1024;

std::unexpected<ClientError> bad(std::string sub, std::string detail, Code code = Code::kInvalidArgument) {
  return std::unexpected(ClientError{std::move(sub), code, std::move(detail)});
}

Result<std::vector<std::string>> stringArray(const json::value& v, std::size_t min, std::size_t max,
                                             std::size_t max_bytes, std::string_view name) {
  if (!v.is_array() || v.as_array().size() < min || v.as_array().size() > max) {
    return fail(Code::kInvalidArgument, fmt::format("{} must be an array of {} to {} strings", name, min, max));
  }
  std::vector<std::string> out;
  out.reserve(v.as_array().size());
  for (const auto& e : v.as_array()) {
    if (!e.is_string() || e.as_string().empty() || e.as_string().size() > max_bytes) {
      return fail(Code::kInvalidArgument, fmt::format("{} must hold strings of 1 to {} bytes", name, max_bytes));
    }
    out.emplace_back(e.as_string());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::expected<SubscribeRequest, ClientError> parseSubscribe(const json::object& o, std::string sub) {
  SubscribeRequest r;
  r.sub = sub;
  const auto* stream = o.if_contains("stream");
  if (!stream || !stream->is_string()) return bad(sub, "stream is required: telemetry or alarms");
  const auto* ids = o.if_contains("device_ids");
  const auto* filter = o.if_contains("filter");
  const auto* keys = o.if_contains("keys");
  if (ids && ids->is_null()) ids = nullptr;
  if (filter && filter->is_null()) filter = nullptr;
  if (keys && keys->is_null()) keys = nullptr;
  if (stream->as_string() == "alarms") {
    r.stream = SubscribeRequest::Stream::kAlarms;
    if (ids || filter || keys) return bad(sub, "an alarms subscription takes no device_ids, filter or keys");
    return r;
  }
  if (stream->as_string() != "telemetry") return bad(sub, "stream must be telemetry or alarms");
  if ((ids != nullptr) == (filter != nullptr)) return bad(sub, "give exactly one of device_ids and filter");
  if (ids) {
    auto list = stringArray(*ids, 1, 1000, kMaxDeviceIdBytes, "device_ids");
    if (!list) return bad(sub, list.error().message);
    for (auto& id : *list) r.device_ids.emplace_back(std::move(id));
  } else {
    if (!filter->is_object()) return bad(sub, "filter must be an object with type and/or label");
    DeviceFilterSpec f;
    for (const auto& [k, v] : filter->as_object()) {
      if (k != "type" && k != "label") return bad(sub, fmt::format("unknown filter field {}", std::string_view(k)));
      if (!v.is_string() || v.as_string().empty() || v.as_string().size() > kMaxFilterFieldBytes) {
        return bad(sub, fmt::format("filter.{} must be a non-empty string", std::string_view(k)));
      }
      std::string_view s = v.as_string();
      if (k == "type") {
        f.type = std::string(s);
      } else {
        auto colon = s.find(':');
        f.label_key = std::string(s.substr(0, colon));
        if (f.label_key.empty()) return bad(sub, "filter.label must be \"key\" or \"key:value\"");
        if (colon != std::string_view::npos) f.label_value = std::string(s.substr(colon + 1));
      }
    }
    r.filter = std::move(f);
  }
  if (keys) {
    auto list = stringArray(*keys, 0, kMaxKeys, kMaxKeyBytes, "keys");
    if (!list) return bad(sub, list.error().message);
    r.keys = std::move(*list);
  }
  return r;
}

}  // namespace

std::expected<ClientMessage, ClientError> parseClientMessage(std::string_view text) {
  json::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return bad("", "the message is not valid JSON");
  if (!v.is_object()) return bad("", "the message must be a JSON object");
  const auto& o = v.as_object();
  const auto* type = o.if_contains("type");
  if (!type || !type->is_string()) return bad("", "type is required");
  const std::string_view t = type->as_string();
  ClientMessage m;
  if (t == "ping") {
    m.type = ClientMessage::Type::kPing;
    return m;
  }
  if (t == "auth") {
    const auto* token = o.if_contains("token");
    if (!token || !token->is_string() || token->as_string().empty() || token->as_string().size() > kMaxTokenBytes) {
      return bad("", "token is required", Code::kUnauthenticated);
    }
    m.type = ClientMessage::Type::kAuth;
    m.token = std::string(token->as_string());
    return m;
  }
  if (t != "subscribe" && t != "unsubscribe") return bad("", "type must be auth, subscribe, unsubscribe or ping");
  const auto* sub = o.if_contains("sub");
  if (!sub || !sub->is_string() || sub->as_string().empty() || sub->as_string().size() > kMaxSubIdBytes) {
    return bad("", fmt::format("sub must be a string of 1 to {} bytes", kMaxSubIdBytes));
  }
  std::string sub_id(sub->as_string());
  if (t == "unsubscribe") {
    m.type = ClientMessage::Type::kUnsubscribe;
    m.sub = std::move(sub_id);
    return m;
  }
  auto r = parseSubscribe(o, sub_id);
  if (!r) return std::unexpected(std::move(r.error()));
  m.type = ClientMessage::Type::kSubscribe;
  m.sub = std::move(sub_id);
  m.subscribe = std::move(*r);
  return m;
}

}  // namespace sw::api
