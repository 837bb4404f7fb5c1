// Tenants (system administrator) and users (system and tenant administrators).
#include <boost/json.hpp>
#include <cmath>

#include "analytics/engine.h"
#include "analytics/store.h"
#include "analytics/webhooks.h"
#include "api/handler_util.h"
#include "api/live_hub.h"
#include "api/services.h"
#include "security/crypto.h"

namespace sw::api {
namespace {

using security::Role;

Status requireSysadmin(const Context& ctx) {
  if (ctx.user().role != Role::kSysadmin)
    return fail(Code::kPermissionDenied, "only the system administrator may do this");
  return ok();
}

Status checkName(const std::string& name, const char* field) {
  if (name.size() > 200) return fail(Code::kInvalidArgument, "name is longer than 200 bytes", field);
  return ok();
}

Result<std::string> hashNewPassword(Services& s, const std::string& password) {
  if (password.size() < 8) return fail(Code::kInvalidArgument, "password must have at least 8 characters", "password");
  if (password.size() > 1024) return fail(Code::kInvalidArgument, "password is too long", "password");
  HashingSlot slot(s.hashing_slots);
  if (!slot.held()) return fail(Code::kUnavailable, "server busy, retry later");
  return security::hashPassword(password);
}

// The user `id` as seen by the caller: other tenants' users do not exist for a tenant user.
Result<storage::User> visibleUser(Services& s, const Context& ctx, const UserId& id) {
  auto u = s.metadata.getUser(id);
  if (!u) return u;
  const Principal& p = ctx.user();
  if (p.role == Role::kSysadmin || u->id == p.user_id) return u;
  if (u->tenant_id != p.tenant_id) return fail(Code::kNotFound, "user not found");
  return u;
}

Response tenantRoutesCreate(Services& s, Context& ctx) {
  if (auto st = requireSysadmin(ctx); !st) return errorResponse(st.error());
  auto body = parseObject(ctx.request.body);
  if (!body) return errorResponse(body.error());
  auto name = reqString(*body, "name");
  if (!name) return errorResponse(name.error());
  if (auto st = checkName(*name, "name"); !st) return errorResponse(st.error());
  auto retention = optInt(*body, "retention_days");
  if (!retention) return errorResponse(retention.error());
  auto rate = optNumber(*body, "max_msgs_per_s");
  if (!rate) return errorResponse(rate.error());
  storage::Tenant t;
  t.name = *name;
  const std::int64_t retention_days = retention->value_or(0);
  if (retention_days < 0 || retention_days > 365000) {  // checked before narrowing to int
    return problem(400, "invalid_argument", "retention_days must be from 0 to 365000", "retention_days");
  }
  t.retention_days = static_cast<int>(retention_days);
  t.max_msgs_per_s = rate->value_or(0);
  if (!std::isfinite(t.max_msgs_per_s) || t.max_msgs_per_s < 0)
    return problem(400, "invalid_argument", "max_msgs_per_s must be 0 or more", "max_msgs_per_s");
  auto created = s.metadata.createTenant(t);
  if (!created) return errorResponse(created.error());
  JsonWriter w;
  writeTenant(w, *created);
  return jsonResponse(201, w.take());
}

}  // namespace

void registerAdminRoutes(Router& router, Services& s) {
  // ---- tenants ----
  router.add("POST", "/api/v1/tenants", Auth::kUser, [&s](Context& ctx) { return tenantRoutesCreate(s, ctx); });

  router.add("GET", "/api/v1/tenants", Auth::kUser, [&s](Context& ctx) {
    if (auto st = requireSysadmin(ctx); !st) return errorResponse(st.error());
    auto page = pageRequest(ctx);
    if (!page) return errorResponse(page.error());
    auto result = s.metadata.listTenants(*page);
    if (!result) return errorResponse(result.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& t : result->items) writeTenant(w, t);
    w.endArray();
    writeNextCursor(w, result->next_cursor);
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/tenants/{id}", Auth::kUser, [&s](Context& ctx) {
    if (auto st = requireSysadmin(ctx); !st) return errorResponse(st.error());
    auto t = s.metadata.getTenant(TenantId(ctx.param("id")));
    if (!t) return errorResponse(t.error());
    JsonWriter w;
    writeTenant(w, *t);
    return jsonResponse(200, w.take());
  });

  router.add("PATCH", "/api/v1/tenants/{id}", Auth::kUser, [&s](Context& ctx) {
    if (auto st = requireSysadmin(ctx); !st) return errorResponse(st.error());
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    storage::TenantPatch patch;
    auto name = optString(*body, "name");
    auto retention = optInt(*body, "retention_days");
    auto rate = optNumber(*body, "max_msgs_per_s");
    if (!name) return errorResponse(name.error());
    if (!retention) return errorResponse(retention.error());
    if (!rate) return errorResponse(rate.error());
    if (*name && ((*name)->empty() || (*name)->size() > 200))
      return problem(400, "invalid_argument", "name must be 1-200 bytes", "name");
    if (*retention && (**retention < 0 || **retention > 365000))
      return problem(400, "invalid_argument", "retention_days must be 0 or more", "retention_days");
    if (*rate && **rate < 0)
      return problem(400, "invalid_argument", "max_msgs_per_s must be 0 or more", "max_msgs_per_s");
    patch.name = *name;
    if (*retention) patch.retention_days = static_cast<int>(**retention);
    patch.max_msgs_per_s = *rate;
    auto t = s.metadata.updateTenant(TenantId(ctx.param("id")), patch);
    if (!t) return errorResponse(t.error());
    s.pipeline.authenticator().clear();  // cached per-device limits follow the tenant's
    JsonWriter w;
    writeTenant(w, *t);
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", "/api/v1/tenants/{id}", Auth::kUser, [&s](Context& ctx) {
    if (auto st = requireSysadmin(ctx); !st) return errorResponse(st.error());
    TenantId id(ctx.param("id"));
    if (auto st = s.metadata.deleteTenant(id); !st) return errorResponse(st.error());
    if (s.live) s.live->tenantDeleted(id);
    // Definitions first: the engine's reload then finds none and forgets the tenant.
    if (s.analytics_store) (void)s.analytics_store->deleteTenant(id);
    if (s.analytics) s.analytics->tenantDeleted(id);
    s.pipeline.authenticator().clear();
    if (auto st = s.store.deleteTenant(id); !st) return errorResponse(st.error());
    if (s.webhooks) {
      if (auto st = s.webhooks->deleteTenant(id); !st) return errorResponse(st.error());
    }
    return noContent();
  });

  // ---- users ----
  router.add("POST", "/api/v1/users", Auth::kUser, [&s](Context& ctx) {
    const Principal& p = ctx.user();
    if (p.role == Role::kViewer) return problem(403, "permission_denied", "viewers cannot manage users");
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto username = reqString(*body, "username");
    if (!username) return errorResponse(username.error());
    if (username->size() > 200)
      return problem(400, "invalid_argument", "username is longer than 200 bytes", "username");
    auto password = reqString(*body, "password");
    if (!password) return errorResponse(password.error());
    auto role_s = reqString(*body, "role");
    if (!role_s) return errorResponse(role_s.error());
    auto role = security::parseRole(*role_s);
    if (!role) return problem(400, "invalid_argument", "role must be sysadmin, tenant_admin or viewer", "role");
    auto tenant_s = optString(*body, "tenant_id");
    if (!tenant_s) return errorResponse(tenant_s.error());
    storage::User u;
    u.username = *username;
    u.role = *role_s;
    if (p.role == Role::kTenantAdmin) {
      if (*role == Role::kSysadmin)
        return problem(403, "permission_denied", "tenant administrators cannot create system administrators");
      if (*tenant_s && **tenant_s != p.tenant_id.str())
        return problem(404, "not_found", "tenant not found", "tenant_id");
      u.tenant_id = p.tenant_id;
    } else if (*role != Role::kSysadmin) {
      if (!*tenant_s) return problem(400, "invalid_argument", "tenant_id is required for this role", "tenant_id");
      if (!s.metadata.getTenant(TenantId(**tenant_s)))
        return problem(404, "not_found", "tenant not found", "tenant_id");
      u.tenant_id = TenantId(**tenant_s);
    } else if (*tenant_s) {
      return problem(400, "invalid_argument", "a system administrator belongs to no tenant", "tenant_id");
    }
    if (s.metadata.getUserByName(u.username)) return problem(409, "already_exists", "username is taken", "username");
    auto hash = hashNewPassword(s, *password);
    if (!hash) return errorResponse(hash.error());
    u.password_hash = std::move(*hash);
    auto created = s.metadata.createUser(u);
    if (!created) return errorResponse(created.error());
    JsonWriter w;
    writeUser(w, *created);
    return jsonResponse(201, w.take());
  });

  router.add("GET", "/api/v1/users", Auth::kUser, [&s](Context& ctx) {
    const Principal& p = ctx.user();
    if (p.role == Role::kViewer) return problem(403, "permission_denied", "viewers cannot list users");
    auto page = pageRequest(ctx);
    if (!page) return errorResponse(page.error());
    auto result = s.metadata.listUsers(p.role == Role::kSysadmin ? TenantId() : p.tenant_id, *page);
    if (!result) return errorResponse(result.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& u : result->items) writeUser(w, u);
    w.endArray();
    writeNextCursor(w, result->next_cursor);
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/users/{id}", Auth::kUser, [&s](Context& ctx) {
    const Principal& p = ctx.user();
    UserId id(ctx.param("id"));
    if (p.role == Role::kViewer && id != p.user_id) {
      // A viewer may read only itself; other users of its tenant are hidden like foreign ones.
      auto u = visibleUser(s, ctx, id);
      if (!u) return errorResponse(u.error());
      return problem(403, "permission_denied", "viewers cannot read other users");
    }
    auto u = visibleUser(s, ctx, id);
    if (!u) return errorResponse(u.error());
    JsonWriter w;
    writeUser(w, *u);
    return jsonResponse(200, w.take());
  });

  router.add("PATCH", "/api/v1/users/{id}", Auth::kUser, [&s](Context& ctx) {
    const Principal& p = ctx.user();
    UserId id(ctx.param("id"));
    auto target = visibleUser(s, ctx, id);
    if (!target) return errorResponse(target.error());
    const bool self = id == p.user_id;
    if (!self && p.role == Role::kViewer) return problem(403, "permission_denied", "viewers cannot change other users");
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto role_s = optString(*body, "role");
    auto password = optString(*body, "password");
    auto current = optString(*body, "current_password");
    if (!role_s) return errorResponse(role_s.error());
    if (!password) return errorResponse(password.error());
    if (!current) return errorResponse(current.error());
    storage::UserPatch patch;
    if (*role_s) {
      auto role = security::parseRole(**role_s);
      if (!role) return problem(400, "invalid_argument", "role must be sysadmin, tenant_admin or viewer", "role");
      if (self) return problem(403, "permission_denied", "users cannot change their own role");
      if (p.role != Role::kSysadmin && *role == Role::kSysadmin)
        return problem(403, "permission_denied", "tenant administrators cannot grant sysadmin");
      if ((*role == Role::kSysadmin) != target->tenant_id.empty())
        return problem(400, "invalid_argument",
                       "a system administrator belongs to no tenant; tenant users cannot become one", "role");
      patch.role = **role_s;
    }
    if (*password) {
      if (self) {
        bool good = false;
        if (*current) {
          HashingSlot slot(s.hashing_slots);
          if (!slot.held()) return problem(503, "unavailable", "server busy, retry later");
          good = security::verifyPassword(**current, target->password_hash);
        }
        if (!good) return problem(403, "permission_denied", "current_password is wrong or missing", "current_password");
      }
      auto hash = hashNewPassword(s, **password);
      if (!hash) return errorResponse(hash.error());
      patch.password_hash = std::move(*hash);
    }
    auto updated = s.metadata.updateUser(id, patch);
    if (!updated) return errorResponse(updated.error());
    if (s.live && patch.role) s.live->userChanged(id);
    JsonWriter w;
    writeUser(w, *updated);
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", "/api/v1/users/{id}", Auth::kUser, [&s](Context& ctx) {
    const Principal& p = ctx.user();
    UserId id(ctx.param("id"));
    auto target = visibleUser(s, ctx, id);
    if (!target) return errorResponse(target.error());
    if (p.role == Role::kViewer) return problem(403, "permission_denied", "viewers cannot delete users");
    if (id == p.user_id) return problem(400, "invalid_argument", "users cannot delete themselves", "id");
    if (auto st = s.metadata.deleteUser(id); !st) return errorResponse(st.error());
    if (s.live) s.live->userChanged(id);
    return noContent();
  });
}

}  // namespace sw::api
