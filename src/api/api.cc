#include <charconv>

#include "api/handler_util.h"
#include "api/services.h"

namespace sw::api {

Response jsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response noContent() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Result<TenantId> tenantOf(const Context& ctx) {
  const Principal& p = ctx.user();
  if (p.role == security::Role::kSysadmin || p.tenant_id.empty()) {
    return fail(Code::kPermissionDenied, "the system administrator has no access to tenant data");
  }
  return p.tenant_id;
}

Result<TenantId> writableTenantOf(const Context& ctx) {
  auto t = tenantOf(ctx);
  if (t && ctx.user().role != security::Role::kTenantAdmin) {
    return fail(Code::kPermissionDenied, "this role is read-only");
  }
  return t;
}

Result<storage::PageRequest> pageRequest(const Context& ctx) {
  storage::PageRequest p;
  if (auto ps = ctx.request.param("page_size")) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(ps->data(), ps->data() + ps->size(), n);
    if (ec != std::errc() || ptr != ps->data() + ps->size() || n < 1 || n > 1000) {
      return fail(Code::kInvalidArgument, "page_size must be an integer from 1 to 1000", "page_size");
    }
    p.page_size = static_cast<std::size_t>(n);
  }
  if (auto c = ctx.request.param("cursor")) p.after = std::string(*c);
  return p;
}

void writeNextCursor(JsonWriter& w, const std::string& cursor) {
  w.key("next_cursor");
  if (cursor.empty())
    w.null();
  else
    w.string(cursor);
}

void writeTenant(JsonWriter& w, const storage::Tenant& t) {
  w.beginObject();
  w.key("id").string(t.id.str());
  w.key("name").string(t.name);
  w.key("retention_days").integer(t.retention_days);
  w.key("max_msgs_per_s").number(t.max_msgs_per_s);
  w.key("created_at").integer(t.created_at);
  w.endObject();
}

void writeUser(JsonWriter& w, const storage::User& u) {
  w.beginObject();
  w.key("id").string(u.id.str());
  w.key("username").string(u.username);
  w.key("role").string(u.role);
  w.key("tenant_id");
  if (u.tenant_id.empty())
    w.null();
  else
    w.string(u.tenant_id.str());
  w.key("created_at").integer(u.created_at);
  w.endObject();
}

void writeDevice(JsonWriter& w, const storage::Device& d, const ingest::DeviceState& state, const std::string& token) {
  w.beginObject();
  w.key("id").string(d.id.str());
  w.key("tenant_id").string(d.tenant_id.str());
  w.key("name").string(d.name);
  w.key("type").string(d.type);
  w.key("labels").beginObject();
  for (const auto& [k, v] : d.labels) w.key(k).string(v);
  w.endObject();
  w.key("created_at").integer(d.created_at);
  w.key("gateway").boolean(d.gateway);
  w.key("gateway_id");
  if (d.gateway_id.empty())
    w.null();
  else
    w.string(d.gateway_id.str());
  w.key("online").boolean(state.online);
  const std::pair<const char*, const std::optional<std::int64_t>*> times[] = {
      {"last_connect", &state.last_connect},
      {"last_disconnect", &state.last_disconnect},
      {"last_activity", &state.last_activity}};
  for (const auto& [name, value] : times) {
    w.key(name);
    if (*value)
      w.integer(**value);
    else
      w.null();
  }
  if (!token.empty()) {
    w.key("credentials").beginObject();
    w.key("access_token").string(token);
    w.endObject();
  }
  w.endObject();
}

Result<Principal> verifyBearer(Services& s, std::string_view token) {
  auto claims = s.jwt.verify(std::string(token));
  if (!claims) return std::unexpected(claims.error());
  // The user must still exist with the same role and tenant: deleting a user or changing its
  // role takes effect at once, not when the token expires.
  auto user = s.metadata.getUser(claims->user_id);
  if (!user) return fail(Code::kUnauthenticated, "the token's user no longer exists");
  auto role = security::parseRole(user->role);
  if (!role || user->tenant_id != claims->tenant_id) return fail(Code::kUnauthenticated, "token is no longer valid");
  return Principal{user->id, user->tenant_id, *role};
}

void registerAllRoutes(Router& router, Services& s) {
  registerSystemRoutes(router, s);
  registerAuthRoutes(router, s);
  registerAdminRoutes(router, s);
  registerDeviceRoutes(router, s);
  registerTelemetryRoutes(router, s);
  registerLiveRoutes(router, s);
  registerDashboardRoutes(router, s);
  registerAnalyticsRoutes(router, s);
  registerWebhookRoutes(router, s);
}

std::optional<std::int64_t> parseInterval(std::string_view s) {
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n <= 0) return std::nullopt;
  std::string_view unit(p, s.data() + s.size() - p);
  std::int64_t mult;
  if (unit.empty() || unit == "ms")
    mult = 1;
  else if (unit == "s")
    mult = 1000;
  else if (unit == "m")
    mult = 60000;
  else if (unit == "h")
    mult = 3600000;
  else if (unit == "d")
    mult = 86400000;
  else
    return std::nullopt;
  if (n > INT64_MAX / mult) return std::nullopt;
  return n * mult;
}

Result<std::int64_t> intParam(const Context& ctx, std::string_view name, std::optional<std::int64_t> fallback) {
  auto v = ctx.request.param(name);
  if (!v) {
    if (fallback) return *fallback;
    return fail(Code::kInvalidArgument, fmt::format("{} is required", name), std::string(name));
  }
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size()) {
    return fail(Code::kInvalidArgument, fmt::format("{} must be an integer", name), std::string(name));
  }
  return out;
}

}  // namespace sw::api
