// Devices, their credentials (access token, MQTT basic), attributes and server-to-device RPC.
#include <boost/json.hpp>
#include <ranges>

#include "analytics/engine.h"
#include "analytics/store.h"
#include "api/handler_util.h"
#include "api/live_hub.h"
#include "api/services.h"
#include "core/clock.h"
#include "security/crypto.h"

namespace sw::api {
namespace {

Status checkDeviceField(const std::string& v, const char* field) {
  if (v.empty() || v.size() > 200)
    return fail(Code::kInvalidArgument, fmt::format("{} must be 1-200 bytes", field), field);
  return ok();
}

// A write by a caller who may not write: a viewer learns nothing about other tenants' devices
// (404), else the permission error.
Response writeDenied(Services& s, const Context& ctx, const DeviceId& id, const Error& error) {
  if (auto t = tenantOf(ctx); t && !s.metadata.getDevice(*t, id)) return problem(404, "not_found", "device not found");
  return errorResponse(error);
}

// A write to an existing device with a JSON object body: fills tenant and body, or returns the
// response to send instead (403 for a viewer, 404 for an unknown or another tenant's device, 400
// for a body that is not a JSON object).
std::optional<Response> prepareDeviceWrite(Services& s, Context& ctx, const DeviceId& id,
                                           std::optional<TenantId>& tenant, std::optional<boost::json::object>& body) {
  auto writable = writableTenantOf(ctx);
  if (!writable) return writeDenied(s, ctx, id, writable.error());
  if (auto d = s.metadata.getDevice(*writable, id); !d) return errorResponse(d.error());
  auto parsed = parseObject(ctx.request.body);
  if (!parsed) return errorResponse(parsed.error());
  tenant = std::move(*writable);
  body = std::move(*parsed);
  return std::nullopt;
}

// Live state from the transports, completed by what was last saved (state survives restarts).
ingest::DeviceState stateOf(Services& s, const storage::Device& d) {
  ingest::DeviceState st = s.devices ? s.devices->state(d.tenant_id, d.id) : ingest::DeviceState{};
  auto latest = [](std::optional<std::int64_t>& live, const std::optional<std::int64_t>& saved) {
    if (saved && (!live || *saved > *live)) live = saved;
  };
  latest(st.last_connect, d.last_connect);
  latest(st.last_disconnect, d.last_disconnect);
  latest(st.last_activity, d.last_activity);
  return st;
}

// The device's credentials changed or it is gone: cached lookups and open connections end now.
void revokeDevice(Services& s, const TenantId& tenant, const DeviceId& id) {
  s.pipeline.authenticator().evictDevice(id);
  if (s.devices) s.devices->revoke(tenant, id);
}

// Characters (code points) of valid UTF-8; false when it holds a control character.
bool countPrintable(std::string_view v, std::size_t& chars) {
  chars = 0;
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) return false;
    if ((c & 0xC0) != 0x80) ++chars;
  }
  return true;
}

Status checkMqttText(const std::string& v, std::size_t min, std::size_t max, const char* field) {
  std::size_t chars = 0;
  if (!countPrintable(v, chars) || chars < min || chars > max) {
    return fail(Code::kInvalidArgument,
                fmt::format("{} must be {}-{} characters without control characters", field, min, max), field);
  }
  return ok();
}

void writeMqttCredential(JsonWriter& w, const storage::MqttCredential& c) {
  w.beginObject();
  w.key("username").string(c.username);
  w.key("client_id");
  if (c.client_id.empty())
    w.null();
  else
    w.string(c.client_id);
  w.endObject();
}

constexpr std::int64_t kMaxRpcTimeoutMs = 600'000;
constexpr std::int64_t kDefaultRpcTimeoutMs = 10'000;
constexpr std::size_t kMaxRpcMethodBytes = 256;

Response rpcResponse(const ingest::RpcOutcome& outcome) {
  using Kind = ingest::RpcOutcome::Kind;
  JsonWriter w;
  switch (outcome.kind) {
    case Kind::kSent:
    case Kind::kQueued:
      w.beginObject();
      w.key("id").integer(outcome.id);
      w.key("status").string(outcome.kind == Kind::kSent ? "sent" : "queued");
      w.endObject();
      return jsonResponse(202, w.take());
    case Kind::kReply: {
      w.beginObject();
      w.key("id").integer(outcome.id);
      w.key("response");
      boost::json::error_code ec;
      boost::json::parse_options opts;
      opts.max_depth = 64;
      boost::json::value reply = boost::json::parse(outcome.reply, ec, {}, opts);
      if (ec)
        w.string(outcome.reply);  // not JSON: the device's bytes as a string
      else
        w.raw(boost::json::serialize(reply));
      w.endObject();
      return jsonResponse(200, w.take());
    }
    case Kind::kTimeout: return problem(504, "timeout", "the device did not reply in time");
    case Kind::kOffline: return problem(409, "device_offline", "the device is not connected");
    case Kind::kBusy: return problem(429, "resource_exhausted", "too many RPC requests are pending for this device");
  }
  return problem(500, "internal", "unknown RPC outcome");
}

Response attributesResponse(Services& s, const TenantId& tenant, const DeviceId& device,
                            std::optional<std::string_view> scope) {
  static const char* const kScopes[] = {"client", "shared", "server"};
  JsonWriter w;
  w.beginObject();
  for (const char* sc : kScopes) {
    if (scope && *scope != sc) continue;
    auto attrs = s.metadata.getAttributes(tenant, device, sc);
    if (!attrs) return errorResponse(attrs.error());
    w.key(sc).beginObject();
    for (const auto& a : *attrs) {
      w.key(a.key).beginObject();
      w.key("value").raw(a.json_value);
      w.key("updated_at").integer(a.updated_at);
      w.endObject();
    }
    w.endObject();
  }
  w.endObject();
  return jsonResponse(200, w.take());
}

}  // namespace

void registerDeviceRoutes(Router& router, Services& s) {
  router.add("POST", "/api/v1/devices", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto name = reqString(*body, "name");
    if (!name) return errorResponse(name.error());
    auto type = optString(*body, "type");
    if (!type) return errorResponse(type.error());
    auto labels = optStringMap(*body, "labels");
    if (!labels) return errorResponse(labels.error());
    auto gateway = optBool(*body, "gateway");
    if (!gateway) return errorResponse(gateway.error());
    storage::Device d;
    d.tenant_id = *tenant;
    d.name = *name;
    d.type = type->value_or("default");
    d.gateway = gateway->value_or(false);
    if (auto st = checkDeviceField(d.name, "name"); !st) return errorResponse(st.error());
    if (auto st = checkDeviceField(d.type, "type"); !st) return errorResponse(st.error());
    if (*labels) d.labels = std::move(**labels);
    std::string token = security::randomToken(24);  // 192 bits
    auto created = s.metadata.createDevice(d, security::sha256Hex(token));
    if (!created) {
      if (created.error().code == Code::kAlreadyExists)
        return problem(409, "already_exists", "a device with this name exists", "name");
      return errorResponse(created.error());
    }
    if (s.live) s.live->deviceChanged(*tenant, created->id);
    JsonWriter w;
    writeDevice(w, *created, stateOf(s, *created), token);
    Response r = jsonResponse(201, w.take());
    r.headers.emplace_back("Location", "/api/v1/devices/" + created->id.str());
    return r;
  });

  router.add("GET", "/api/v1/devices", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto page = pageRequest(ctx);
    if (!page) return errorResponse(page.error());
    storage::DeviceFilter f;
    if (auto q = ctx.request.param("q")) f.q = *q;
    if (auto t = ctx.request.param("type")) f.type = *t;
    if (auto l = ctx.request.param("label")) {
      auto colon = l->find(':');
      f.label_key = std::string(l->substr(0, colon));
      if (colon != std::string_view::npos) f.label_value = std::string(l->substr(colon + 1));
    }
    if (auto online = ctx.request.param("online")) {
      if (*online != "true" && *online != "false") {
        return problem(400, "invalid_argument", "online must be true or false", "online");
      }
      // Filtered in the query (not after paging), so pages stay full and cursors stay valid.
      std::vector<DeviceId> live = s.devices ? s.devices->onlineDevices(*tenant) : std::vector<DeviceId>{};
      if (*online == "true")
        f.only_ids = std::move(live);
      else
        f.except_ids = std::move(live);
    }
    auto result = s.metadata.listDevices(*tenant, f, *page);
    if (!result) return errorResponse(result.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& d : result->items) writeDevice(w, d, stateOf(s, d));
    w.endArray();
    writeNextCursor(w, result->next_cursor);
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/devices/{id}", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto d = s.metadata.getDevice(*tenant, DeviceId(ctx.param("id")));
    if (!d) return errorResponse(d.error());
    JsonWriter w;
    writeDevice(w, *d, stateOf(s, *d));
    return jsonResponse(200, w.take());
  });

  router.add("PATCH", "/api/v1/devices/{id}", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, DeviceId(ctx.param("id")), tenant.error());
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    storage::DevicePatch patch;
    auto name = optString(*body, "name");
    auto type = optString(*body, "type");
    auto labels = optStringMap(*body, "labels");
    if (!name) return errorResponse(name.error());
    if (!type) return errorResponse(type.error());
    if (!labels) return errorResponse(labels.error());
    if (*name) {
      if (auto st = checkDeviceField(**name, "name"); !st) return errorResponse(st.error());
    }
    if (*type) {
      if (auto st = checkDeviceField(**type, "type"); !st) return errorResponse(st.error());
    }
    patch.name = *name;
    patch.type = *type;
    patch.labels = std::move(*labels);
    auto d = s.metadata.updateDevice(*tenant, DeviceId(ctx.param("id")), patch);
    if (!d) {
      if (d.error().code == Code::kAlreadyExists)
        return problem(409, "already_exists", "a device with this name exists", "name");
      return errorResponse(d.error());
    }
    if (s.live) s.live->deviceChanged(*tenant, d->id);
    if (s.analytics) s.analytics->deviceChanged(*tenant, d->id);
    JsonWriter w;
    writeDevice(w, *d, stateOf(s, *d));
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", "/api/v1/devices/{id}", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    DeviceId id(ctx.param("id"));
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    if (auto st = s.metadata.deleteDevice(*tenant, id); !st) return errorResponse(st.error());
    if (s.live) s.live->deviceDeleted(*tenant, id);
    if (s.analytics) {
      s.analytics->deviceChanged(*tenant, id);
      s.analytics->drain();  // points queued before the delete cannot reopen an alarm after it
    }
    if (s.analytics_store) (void)s.analytics_store->deleteDevice(*tenant, id.str());
    revokeDevice(s, *tenant, id);
    if (auto st = s.store.deleteDevice(*tenant, id); !st) return errorResponse(st.error());
    return noContent();
  });

  router.add("POST", "/api/v1/devices/{id}/credentials", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    DeviceId id(ctx.param("id"));
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    std::string token = security::randomToken(24);
    auto previous = s.metadata.replaceDeviceToken(*tenant, id, security::sha256Hex(token));
    if (!previous) return errorResponse(previous.error());
    revokeDevice(s, *tenant, id);
    JsonWriter w;
    w.beginObject().key("access_token").string(token).endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/devices/{id}/attributes", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto scope = ctx.request.param("scope");
    if (scope && *scope != "client" && *scope != "shared" && *scope != "server") {
      return problem(400, "invalid_argument", "scope must be client, shared or server", "scope");
    }
    return attributesResponse(s, *tenant, DeviceId(ctx.param("id")), scope);
  });

  router.add("POST", "/api/v1/devices/{id}/attributes", Auth::kUser, [&s](Context& ctx) {
    DeviceId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    std::string scope(ctx.request.param("scope").value_or("shared"));
    if (scope != "shared" && scope != "server") {
      return problem(400, "invalid_argument",
                     "users set shared or server attributes; client attributes come from the device", "scope");
    }
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    std::vector<storage::Attribute> attrs;
    const std::int64_t now = nowMs();
    for (const auto& [k, v] : *body) {
      if (k.empty() || k.size() > 255)
        return problem(400, "invalid_argument", "attribute keys must be 1-255 bytes", std::string(k));
      if (v.is_null()) return problem(400, "invalid_argument", "null is not a supported value", std::string(k));
      attrs.push_back(storage::Attribute{std::string(k), toJsonText(v), now});
    }
    if (auto st = s.metadata.upsertAttributes(*tenant, id, scope, attrs); !st) return errorResponse(st.error());
    if (scope == "shared" && s.devices && !attrs.empty()) {
      JsonWriter changed;
      changed.beginObject();
      for (const auto& a : attrs) changed.key(a.key).raw(a.json_value);
      changed.endObject();
      s.devices->sharedAttributesChanged(*tenant, id, changed.take());
    }
    return attributesResponse(s, *tenant, id, scope);
  });

  // DELETE ?scope=shared|server&keys=a,b: removes those keys (unknown keys are ignored); a device
  // is told about removed shared keys as ThingsBoard does: {"deleted":["a"]}.
  router.add("DELETE", "/api/v1/devices/{id}/attributes", Auth::kUser, [&s](Context& ctx) {
    DeviceId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    std::string scope(ctx.request.param("scope").value_or("shared"));
    if (scope != "shared" && scope != "server") {
      return problem(400, "invalid_argument", "users delete shared or server attributes", "scope");
    }
    std::vector<std::string> keys;
    for (auto k : std::views::split(ctx.request.param("keys").value_or(""), ',')) {
      if (!k.empty()) keys.emplace_back(k.begin(), k.end());
    }
    if (keys.empty() || keys.size() > 1000) {
      return problem(400, "invalid_argument", "keys must list 1 to 1000 attribute keys", "keys");
    }
    auto removed = s.metadata.deleteAttributes(*tenant, id, scope, keys);
    if (!removed) return errorResponse(removed.error());
    if (scope == "shared" && s.devices && !removed->empty()) {
      JsonWriter deleted;
      deleted.beginObject().key("deleted").beginArray();
      for (const auto& k : *removed) deleted.string(k);
      deleted.endArray().endObject();
      s.devices->sharedAttributesChanged(*tenant, id, deleted.take());
    }
    return attributesResponse(s, *tenant, id, scope);
  });

  router.add("PUT", "/api/v1/devices/{id}/credentials/mqtt-basic", Auth::kUser, [&s](Context& ctx) {
    DeviceId id(ctx.param("id"));
    std::optional<TenantId> tenant;
    std::optional<boost::json::object> body;
    if (auto denied = prepareDeviceWrite(s, ctx, id, tenant, body)) return std::move(*denied);
    auto username = reqString(*body, "username");
    if (!username) return errorResponse(username.error());
    auto password = reqString(*body, "password");
    if (!password) return errorResponse(password.error());
    auto client_id = optString(*body, "client_id");
    if (!client_id) return errorResponse(client_id.error());
    if (auto st = checkMqttText(*username, 1, 128, "username"); !st) return errorResponse(st.error());
    if (*username == "app") {
      return problem(400, "invalid_argument", "the username app is reserved for applications", "username");
    }
    if (password->size() < 8) {
      return problem(400, "invalid_argument", "password must have at least 8 characters", "password");
    }
    if (password->size() > 1024) return problem(400, "invalid_argument", "password is too long", "password");
    if (*client_id) {
      if (auto st = checkMqttText(**client_id, 0, 256, "client_id"); !st) return errorResponse(st.error());
    }
    // Cheap check first, so a taken username costs no hashing (the store enforces it anyway).
    if (auto holder = s.metadata.findMqttCredentialByUsername(*username); holder && holder->device_id != id) {
      return problem(409, "already_exists", "another device uses this MQTT username", "username");
    }
    storage::MqttCredential credential{*tenant, id, *username, client_id->value_or(""), {}};
    {
      HashingSlot slot(s.hashing_slots);
      if (!slot.held()) return problem(503, "unavailable", "server busy, retry later");
      auto hash = security::hashPassword(*password);
      if (!hash) return errorResponse(hash.error());
      credential.password_hash = std::move(*hash);
    }
    if (auto st = s.metadata.putMqttCredential(credential); !st) {
      if (st.error().code == Code::kAlreadyExists)
        return problem(409, "already_exists", "another device uses this MQTT username", "username");
      return errorResponse(st.error());
    }
    revokeDevice(s, *tenant, id);
    JsonWriter w;
    writeMqttCredential(w, credential);
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/devices/{id}/credentials/mqtt-basic", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto credential = s.metadata.getMqttCredential(*tenant, DeviceId(ctx.param("id")));
    if (!credential) return errorResponse(credential.error());
    JsonWriter w;
    writeMqttCredential(w, *credential);
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", "/api/v1/devices/{id}/credentials/mqtt-basic", Auth::kUser, [&s](Context& ctx) {
    DeviceId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    if (auto st = s.metadata.deleteMqttCredential(*tenant, id); !st) return errorResponse(st.error());
    revokeDevice(s, *tenant, id);
    return noContent();
  });

  router.add("POST", "/api/v1/devices/{id}/rpc", Auth::kUser, [&s](Context& ctx) {
    DeviceId id(ctx.param("id"));
    std::optional<TenantId> tenant;
    std::optional<boost::json::object> body;
    if (auto denied = prepareDeviceWrite(s, ctx, id, tenant, body)) return std::move(*denied);
    auto method = reqString(*body, "method");
    if (!method) return errorResponse(method.error());
    if (method->size() > kMaxRpcMethodBytes) {
      return problem(400, "invalid_argument", fmt::format("method must be 1-{} bytes", kMaxRpcMethodBytes), "method");
    }
    auto timeout = optInt(*body, "timeout_ms");
    if (!timeout) return errorResponse(timeout.error());
    const std::int64_t timeout_ms = timeout->value_or(kDefaultRpcTimeoutMs);
    if (timeout_ms < 1 || timeout_ms > kMaxRpcTimeoutMs) {
      return problem(400, "invalid_argument", fmt::format("timeout_ms must be 1-{}", kMaxRpcTimeoutMs), "timeout_ms");
    }
    auto oneway = optBool(*body, "oneway");
    if (!oneway) return errorResponse(oneway.error());
    auto queue = optBool(*body, "queue");
    if (!queue) return errorResponse(queue.error());
    if (!s.devices) return problem(409, "device_offline", "the device is not connected");

    ingest::RpcRequest request;
    request.tenant = *tenant;
    request.device = id;
    request.method = std::move(*method);
    if (const auto* params = body->if_contains("params"); params && !params->is_null()) {
      request.params_json = toJsonText(*params);
    }
    request.timeout = std::chrono::milliseconds(timeout_ms);
    request.oneway = oneway->value_or(false);
    request.queue = queue->value_or(false);

    // The outcome arrives later (a two-way call waits for the device's reply): no handler
    // thread waits for it. The server's own limit is a backstop should the channel never answer.
    Response r;
    r.deferred_timeout = request.timeout + std::chrono::seconds(5);
    r.deferred = [channel = s.devices, request = std::move(request)](ResponseCallback done) mutable {
      channel->rpc(std::move(request),
                   [done = std::move(done)](ingest::RpcOutcome outcome) { done(rpcResponse(outcome)); });
    };
    return r;
  });
}

}  // namespace sw::api
