#include "ingest/transports/mqtt/device_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/clock.h"
#include "core/ids.h"
#include "ingest/codecs/codec_util.h"
#include "ingest/codecs/simdjson_util.h"
#include "ingest/transports/mqtt/topic.h"
#include "security/crypto.h"

namespace sw::mqtt {
namespace {

constexpr std::string_view kDeviceMe = "v1/devices/me/";
constexpr std::string_view kGateway = "v1/gateway/";
constexpr auto kCredentialTtl = std::chrono::seconds(30);
constexpr std::size_t kMaxGatewayCache = 10000;

Identity deviceIdentity(ingest::DeviceRef ref) {
  Identity id;
  id.tenant = ref.tenant_id;
  id.kind = ClientKind::kDevice;
  id.device_prefix = Broker::deviceTopicPrefix(ref.device_id);
  id.gateway_prefix = Broker::gatewayTopicPrefix(ref.device_id);
  id.device = std::move(ref);
  return id;
}

std::optional<std::uint32_t> parseId(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::uint8_t reasonFor(const Error& e) {
  switch (e.code) {
    case Code::kInvalidArgument: return reason::kPayloadFormatInvalid;
    case Code::kResourceExhausted: return reason::kQuotaExceeded;
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
    case Code::kNotFound: return reason::kNotAuthorized;
    default: return kReasonStorageFailed;
  }
}

std::shared_ptr<Message> fromDevice(const Identity& id, std::string topic, std::string payload) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = 1;
  m->origin_device = id.device.device_id;
  return m;
}

std::shared_ptr<Message> fromServer(std::string topic, std::string payload) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = 1;
  m->props.content_type = "application/json";
  return m;
}

std::string jsonQuote(std::string_view s) {
  std::string out;
  ingest::appendJsonString(out, s);
  return out;
}

// A sub-device of the gateway by name, created on first use when create is set.
Result<ingest::DeviceRef> subDevice(DeviceApi api, const Identity& gw, GatewayCache& cache, const std::string& name,
                                    const std::string& type, bool create) {
  if (auto it = cache.by_name.find(name); it != cache.by_name.end()) return it->second;
  if (name.empty() || name.size() > 256) return fail(Code::kInvalidArgument, "invalid sub-device name", "device");
  auto dev = api.metadata.findDeviceByName(gw.tenant, name);
  if (!dev && dev.error().code == Code::kNotFound && create) {
    storage::Device d;
    d.id = DeviceId(newUuid());
    d.tenant_id = gw.tenant;
    d.name = name;
    d.type = type.empty() ? "default" : type;
    d.created_at = nowMs();
    d.gateway_id = gw.device.device_id;
    // Sub-devices are reached through their gateway: their token is random and never shown.
    dev = api.metadata.createDevice(d, security::sha256Hex(security::randomToken()));
    if (!dev && dev.error().code == Code::kAlreadyExists) dev = api.metadata.findDeviceByName(gw.tenant, name);
  }
  if (!dev) return std::unexpected(dev.error());
  // A gateway speaks only for its own sub-devices, not for every device of the tenant.
  if (dev->gateway_id != gw.device.device_id)
    return fail(Code::kPermissionDenied, "the device is not a sub-device of this gateway", "device");
  ingest::DeviceRef ref{dev->tenant_id, dev->id, dev->name, gw.device.max_msgs_per_s, dev->gateway};
  if (cache.by_name.size() >= kMaxGatewayCache) cache.by_name.clear();
  cache.by_name.emplace(name, ref);
  return ref;
}

std::uint8_t attributesRequest(DeviceApi api, const Identity& id, const DeviceOp& op) {
  auto n = parseId(op.suffix);
  if (!n) return reason::kTopicNameInvalid;
  std::optional<std::vector<std::string>> client_keys, shared_keys;
  auto split = [](std::string_view csv) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= csv.size()) {
      std::size_t end = csv.find(',', start);
      if (end == std::string_view::npos) end = csv.size();
      if (end > start) out.emplace_back(csv.substr(start, end - start));
      start = end + 1;
    }
    return out;
  };
  if (!op.payload.empty()) {
    simdjson::dom::element root;
    if (ingest::threadParser().parse(op.payload.data(), op.payload.size(), true).get(root) != simdjson::SUCCESS ||
        !root.is_object())
      return reason::kPayloadFormatInvalid;
    std::string_view s;
    if (root["clientKeys"].get_string().get(s) == simdjson::SUCCESS) client_keys = split(s);
    if (root["sharedKeys"].get_string().get(s) == simdjson::SUCCESS) shared_keys = split(s);
  }
  auto render = [&](const char* scope, const std::optional<std::vector<std::string>>& keys) -> Result<std::string> {
    auto attrs = api.metadata.getAttributes(id.tenant, id.device.device_id, scope);
    if (!attrs) return std::unexpected(attrs.error());
    std::string out = "{";
    bool first = true;
    for (const auto& a : *attrs) {
      if (keys && std::find(keys->begin(), keys->end(), a.key) == keys->end()) continue;
      if (!first) out += ',';
      first = false;
      out += jsonQuote(a.key) + ":" + a.json_value;
    }
    return out + "}";
  };
  auto client = render("client", client_keys);
  auto shared = render("shared", shared_keys);
  if (!client || !shared) return kReasonStorageFailed;
  api.broker.publish(id.tenant, fromServer(fmt::format("{}attributes/response/{}", id.device_prefix, *n),
                                           fmt::format(R"({{"client":{},"shared":{}}})", *client, *shared)));
  return reason::kSuccess;
}

std::uint8_t gatewayOp(DeviceApi api, const Identity& gw, const DeviceOp& op, GatewayCache& cache) {
  simdjson::dom::element root;
  if (ingest::threadParser().parse(op.payload.data(), op.payload.size(), true).get(root) != simdjson::SUCCESS ||
      !root.is_object())
    return reason::kPayloadFormatInvalid;
  // Copy what is needed out of the parsed document first: the ingest pipeline reuses this
  // thread's parser and would invalidate it.
  switch (op.kind) {
    case DeviceOpKind::kGatewayConnect:
    case DeviceOpKind::kGatewayDisconnect: {
      std::string_view name, type;
      if (root["device"].get_string().get(name) != simdjson::SUCCESS) return reason::kPayloadFormatInvalid;
      if (root["type"].get_string().get(type) != simdjson::SUCCESS) type = {};
      const bool connect = op.kind == DeviceOpKind::kGatewayConnect;
      auto ref = subDevice(api, gw, cache, std::string(name), std::string(type), connect);
      if (!ref) return ref.error().code == Code::kNotFound ? reason::kSuccess : reasonFor(ref.error());
      if (connect) {
        api.broker.subDeviceOnline(gw.tenant, gw.device.device_id, ref->device_id, ref->name);
        api.broker.deviceReady(gw.tenant, ref->device_id);
      } else {
        api.broker.subDeviceOffline(ref->device_id);
      }
      return reason::kSuccess;
    }
    case DeviceOpKind::kGatewayRpc: {
      std::string_view name;
      simdjson::dom::element data;
      std::uint64_t rpc_id = 0;
      if (root["device"].get_string().get(name) != simdjson::SUCCESS ||
          root["id"].get_uint64().get(rpc_id) != simdjson::SUCCESS || rpc_id > UINT32_MAX)
        return reason::kPayloadFormatInvalid;
      std::string reply = root["data"].get(data) == simdjson::SUCCESS ? simdjson::minify(data) : "null";
      auto ref = subDevice(api, gw, cache, std::string(name), {}, false);
      if (!ref) return reason::kSuccess;  // a reply for a device we do not know: nothing waits
      api.broker.completeRpc(ref->device_id, static_cast<std::uint32_t>(rpc_id), std::move(reply));
      return reason::kSuccess;
    }
    default: break;
  }
  // Telemetry / attributes: {"Device A": <payload>, ...}
  std::vector<std::pair<std::string, std::string>> per_device;
  for (auto [k, v] : simdjson::dom::object(root)) per_device.emplace_back(std::string(k), simdjson::minify(v));
  std::uint8_t result = reason::kSuccess;
  // A storage failure must reach the client (no acknowledgement): no later error replaces it.
  auto note = [&](std::uint8_t r) {
    if (result != kReasonStorageFailed) result = r;
  };
  for (auto& [name, payload] : per_device) {
    auto ref = subDevice(api, gw, cache, name, {}, true);
    if (!ref) {
      note(reasonFor(ref.error()));
      continue;
    }
    api.broker.subDeviceOnline(gw.tenant, gw.device.device_id, ref->device_id, ref->name);
    auto store = [&](const ingest::DeviceRef& d) -> Status {
      if (op.kind == DeviceOpKind::kGatewayTelemetry) {
        auto r = api.pipeline.telemetry(d, "application/json", payload);
        return r ? ok() : Status(std::unexpected(r.error()));
      }
      return api.pipeline.attributes(d, payload);
    };
    Status st = store(*ref);
    if (!st && (st.error().code == Code::kUnauthenticated || st.error().code == Code::kNotFound)) {
      // The sub-device was deleted since this connection resolved it: created anew on use.
      cache.by_name.erase(name);
      ref = subDevice(api, gw, cache, name, {}, true);
      if (ref) st = store(*ref);
    }
    if (!st) note(reasonFor(st.error()));
  }
  return result;
}

}  // namespace

bool CredentialCache::verified(const std::string& username, std::string_view password, const std::string& hash) {
  const std::string digest = security::sha256Hex(std::string(password) + '\0' + hash);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    auto it = ok_.find(username);
    if (it != ok_.end() && it->second.second > now && security::constantTimeEquals(it->second.first, digest))
      return true;
  }
  if (!security::verifyPassword(password, hash)) return false;
  std::lock_guard lock(mutex_);
  if (ok_.size() > 100000) ok_.clear();
  ok_[username] = {digest, now + kCredentialTtl};
  return true;
}

Result<Identity> authenticateClient(DeviceApi api, const AppAuthenticator& app_auth, CredentialCache& cache,
                                    const Connect& connect, const std::string& client_id) {
  if (!connect.username || connect.username->empty()) return fail(Code::kUnauthenticated, "no username");
  const std::string& username = *connect.username;
  if (username == "app") {
    if (!connect.password || !app_auth) return fail(Code::kUnauthenticated, "no access token");
    auto p = app_auth(*connect.password);
    if (!p) return std::unexpected(p.error());
    if (p->tenant.empty()) return fail(Code::kPermissionDenied, "the system administrator has no tenant");
    Identity id;
    id.tenant = p->tenant;
    id.kind = ClientKind::kApp;
    id.can_publish = p->can_publish;
    return id;
  }
  if (connect.password && !connect.password->empty()) {
    auto cred = api.metadata.findMqttCredentialByUsername(username);
    if (cred) {
      if (!cred->client_id.empty() && cred->client_id != client_id)
        return fail(Code::kUnauthenticated, "client id does not match the credential");
      if (!cache.verified(username, *connect.password, cred->password_hash))
        return fail(Code::kUnauthenticated, "wrong password");
      auto dev = api.metadata.getDevice(cred->tenant_id, cred->device_id);
      if (!dev) return fail(Code::kUnauthenticated, "device no longer exists");
      ingest::DeviceRef ref{dev->tenant_id, dev->id, dev->name, 0, dev->gateway};
      if (auto t = api.metadata.getTenant(dev->tenant_id)) ref.max_msgs_per_s = t->max_msgs_per_s;
      return deviceIdentity(std::move(ref));
    }
    if (cred.error().code != Code::kNotFound) return std::unexpected(cred.error());
  }
  // ThingsBoard style: the access token as username (a password, if any, is ignored).
  auto ref = api.pipeline.authenticate(username);
  if (!ref) return std::unexpected(ref.error());
  return deviceIdentity(std::move(*ref));
}

std::optional<std::string> internalFilter(const Identity& id, std::string_view filter, bool shared) {
  if (id.kind == ClientKind::kApp) return std::string(filter);
  if (shared) return std::nullopt;
  if (filter.starts_with(kDeviceMe) && filter.size() > kDeviceMe.size())
    return id.device_prefix + std::string(filter.substr(kDeviceMe.size()));
  if (id.device.gateway && filter.starts_with(kGateway) && filter.size() > kGateway.size())
    return id.gateway_prefix + std::string(filter.substr(kGateway.size()));
  return std::nullopt;
}

std::string clientTopic(const Identity& id, const std::string& internal) {
  if (id.kind == ClientKind::kDevice) {
    if (internal.starts_with(id.device_prefix))
      return std::string(kDeviceMe) + internal.substr(id.device_prefix.size());
    if (internal.starts_with(id.gateway_prefix))
      return std::string(kGateway) + internal.substr(id.gateway_prefix.size());
  }
  return internal;
}

bool receivesRpc(const Identity& id, std::string_view internal_filter) {
  return topicMatches(internal_filter, id.device_prefix + "rpc/request/1") ||
         (id.device.gateway && topicMatches(internal_filter, id.gateway_prefix + "rpc"));
}

bool appMayPublish(const Identity& id, std::string_view topic) {
  if (!id.can_publish) return false;
  // Device-owned streams: only devices produce telemetry and client attributes.
  return !topicMatches("sw/v1/devices/+/telemetry", topic) && !topicMatches("sw/v1/devices/+/attributes", topic) &&
         !topicMatches("sw/v1/devices/+/telemetry/#", topic);
}

std::optional<DeviceOp> classifyDeviceTopic(const Identity& id, std::string_view topic) {
  DeviceOp op;
  if (topic.starts_with(kDeviceMe)) {
    const std::string_view rest = topic.substr(kDeviceMe.size());
    auto withId = [&](std::string_view prefix, DeviceOpKind kind) {
      if (!rest.starts_with(prefix) || rest.size() == prefix.size()) return false;
      op.kind = kind;
      op.suffix = rest.substr(prefix.size());
      return true;
    };
    if (rest == "telemetry") {
      op.kind = DeviceOpKind::kTelemetry;
    } else if (rest == "attributes") {
      op.kind = DeviceOpKind::kAttributes;
    } else if (!withId("attributes/request/", DeviceOpKind::kAttributesRequest) &&
               !withId("rpc/response/", DeviceOpKind::kRpcResponse) &&
               !withId("rpc/request/", DeviceOpKind::kRpcRequest)) {
      return std::nullopt;  // only the topics of the device API (docs/mqtt.md)
    }
    return op;
  }
  if (id.device.gateway && topic.starts_with(kGateway)) {
    const std::string_view rest = topic.substr(kGateway.size());
    if (rest == "connect")
      op.kind = DeviceOpKind::kGatewayConnect;
    else if (rest == "disconnect")
      op.kind = DeviceOpKind::kGatewayDisconnect;
    else if (rest == "telemetry")
      op.kind = DeviceOpKind::kGatewayTelemetry;
    else if (rest == "attributes")
      op.kind = DeviceOpKind::kGatewayAttributes;
    else if (rest == "rpc")
      op.kind = DeviceOpKind::kGatewayRpc;
    else
      return std::nullopt;
    return op;
  }
  return std::nullopt;
}

bool needsStorage(DeviceOpKind kind) {
  return kind != DeviceOpKind::kRpcResponse && kind != DeviceOpKind::kRpcRequest;
}

std::vector<std::uint8_t> runDeviceOps(DeviceApi api, const Identity& id, std::span<DeviceOp> ops,
                                       GatewayCache& cache) {
  std::vector<std::uint8_t> reasons(ops.size(), reason::kSuccess);
  for (std::size_t i = 0; i < ops.size();) {
    DeviceOp& op = ops[i];
    if (op.kind == DeviceOpKind::kTelemetry) {
      std::size_t j = i;
      std::vector<ingest::IngestPipeline::Message> batch;
      for (; j < ops.size() && ops[j].kind == DeviceOpKind::kTelemetry; ++j) {
        const auto& ct = ops[j].props.content_type;
        batch.push_back(
            {ct ? std::string_view(*ct) : std::string_view("application/json"), ops[j].payload, ops[j].received_ms});
      }
      auto results = api.pipeline.telemetryBatch(id.device, batch);
      for (std::size_t k = 0; k < results.size(); ++k)
        reasons[i + k] = results[k] ? reason::kSuccess : reasonFor(results[k].error());
      i = j;
      continue;
    }
    switch (op.kind) {
      case DeviceOpKind::kAttributes:
        if (auto st = api.pipeline.attributes(id.device, op.payload); !st) reasons[i] = reasonFor(st.error());
        break;
      case DeviceOpKind::kAttributesRequest: reasons[i] = attributesRequest(api, id, op); break;
      default: reasons[i] = gatewayOp(api, id, op, cache); break;
    }
    ++i;
  }
  return reasons;
}

std::uint8_t routeDeviceMessage(DeviceApi api, const Identity& id, const std::string& client_id, DeviceOp& op) {
  switch (op.kind) {
    case DeviceOpKind::kRpcResponse: {
      auto n = parseId(op.suffix);
      if (!n) return reason::kTopicNameInvalid;
      // Completes a REST call waiting for it, if any; applications see the reply either way.
      api.broker.completeRpc(id.device.device_id, *n, op.payload);
      auto m = fromDevice(id, fmt::format("{}rpc/response/{}", id.device_prefix, *n), std::move(op.payload));
      m->origin_client = client_id;
      api.broker.publish(id.tenant, std::move(m));
      return reason::kSuccess;
    }
    case DeviceOpKind::kRpcRequest: {
      auto n = parseId(op.suffix);
      if (!n) return reason::kTopicNameInvalid;
      std::string_view method;
      simdjson::dom::element root;
      if (ingest::threadParser().parse(op.payload.data(), op.payload.size(), true).get(root) != simdjson::SUCCESS ||
          root["method"].get_string().get(method) != simdjson::SUCCESS)
        return reason::kPayloadFormatInvalid;
      if (method == "getCurrentTime") {
        api.broker.publish(id.tenant, fromServer(fmt::format("{}rpc/response/{}", id.device_prefix, *n),
                                                 fmt::format(R"({{"time":{}}})", nowMs())));
        return reason::kSuccess;
      }
      auto m = fromDevice(id, fmt::format("{}rpc/request/{}", id.device_prefix, *n), std::move(op.payload));
      m->origin_client = client_id;
      m->props = std::move(op.props);
      return api.broker.publish(id.tenant, std::move(m)) > 0 ? reason::kSuccess : reason::kNoMatchingSubscribers;
    }
    default: return reason::kNotAuthorized;
  }
}

std::shared_ptr<Message> toMessage(Publish p, const std::string& client_id, const DeviceId& device) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(p.topic);
  m->payload = std::move(p.payload);
  m->qos = p.qos;
  m->retain = p.retain;
  if (p.props.message_expiry_interval)
    m->expires = std::chrono::steady_clock::now() + std::chrono::seconds(*p.props.message_expiry_interval);
  // Only the application properties travel with the message (MQTT 5 section 3.3.2.3).
  m->props.payload_format_indicator = p.props.payload_format_indicator;
  m->props.content_type = std::move(p.props.content_type);
  m->props.response_topic = std::move(p.props.response_topic);
  m->props.correlation_data = std::move(p.props.correlation_data);
  m->props.user_properties = std::move(p.props.user_properties);
  m->origin_client = client_id;
  m->origin_device = device;
  return m;
}

namespace {
// The broker starts a will's message expiry when it publishes the will, so the interval stays
// a property here instead of becoming a deadline.
std::shared_ptr<Message> willMessage(Publish p, const DeviceId& device) {
  const auto expiry = p.props.message_expiry_interval;
  auto m = toMessage(std::move(p), {}, device);
  m->expires.reset();
  m->props.message_expiry_interval = expiry;
  return m;
}
}  // namespace

std::shared_ptr<Message> makeWill(const Identity& id, const Will& will) {
  if (!validTopicName(will.topic)) return nullptr;
  Publish p;
  p.topic = will.topic;
  p.payload = will.payload;
  p.qos = will.qos;
  p.retain = will.retain;
  p.props = will.props;
  if (id.kind == ClientKind::kApp) {
    if (!appMayPublish(id, will.topic)) return nullptr;
    return willMessage(std::move(p), DeviceId());
  }
  // A device's will goes to its own topics (routed, not stored).
  if (!will.topic.starts_with(kDeviceMe)) return nullptr;
  p.topic = id.device_prefix + will.topic.substr(kDeviceMe.size());
  return willMessage(std::move(p), id.device.device_id);
}

}  // namespace sw::mqtt
