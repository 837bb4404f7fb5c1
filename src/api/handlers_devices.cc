// Devices, their credentials and attributes.
#include <boost/json.hpp>

#include "api/handler_util.h"
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
    storage::Device d;
    d.tenant_id = *tenant;
    d.name = *name;
    d.type = type->value_or("default");
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
    JsonWriter w;
    writeDevice(w, *created, token);
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
    auto result = s.metadata.listDevices(*tenant, f, *page);
    if (!result) return errorResponse(result.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& d : result->items) writeDevice(w, d);
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
    writeDevice(w, *d);
    return jsonResponse(200, w.take());
  });

  router.add("PATCH", "/api/v1/devices/{id}", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    if (!tenant) {
      // Viewers learn nothing about devices of other tenants either.
      if (auto t = tenantOf(ctx); t && !s.metadata.getDevice(*t, DeviceId(ctx.param("id")))) {
        return problem(404, "not_found", "device not found");
      }
      return errorResponse(tenant.error());
    }
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
    JsonWriter w;
    writeDevice(w, *d);
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", "/api/v1/devices/{id}", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    DeviceId id(ctx.param("id"));
    if (!tenant) {
      if (auto t = tenantOf(ctx); t && !s.metadata.getDevice(*t, id))
        return problem(404, "not_found", "device not found");
      return errorResponse(tenant.error());
    }
    if (auto st = s.metadata.deleteDevice(*tenant, id); !st) return errorResponse(st.error());
    s.pipeline.authenticator().evictDevice(id);
    if (auto st = s.store.deleteDevice(*tenant, id); !st) return errorResponse(st.error());
    return noContent();
  });

  router.add("POST", "/api/v1/devices/{id}/credentials", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    DeviceId id(ctx.param("id"));
    if (!tenant) {
      if (auto t = tenantOf(ctx); t && !s.metadata.getDevice(*t, id))
        return problem(404, "not_found", "device not found");
      return errorResponse(tenant.error());
    }
    std::string token = security::randomToken(24);
    auto previous = s.metadata.replaceDeviceToken(*tenant, id, security::sha256Hex(token));
    if (!previous) return errorResponse(previous.error());
    s.pipeline.authenticator().evictDevice(id);
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
    if (!tenant) {
      if (auto t = tenantOf(ctx); t && !s.metadata.getDevice(*t, id))
        return problem(404, "not_found", "device not found");
      return errorResponse(tenant.error());
    }
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
    return attributesResponse(s, *tenant, id, scope);
  });
}

}  // namespace sw::api
