// Dashboards of a tenant: CRUD with optimistic concurrency (version), export (download) and
// import (a POST of an exported file). The layout is opaque to the server: a JSON object of at
// most kMaxLayoutBytes (compact) that the UI reads and writes, with its own "schema" number.
#include <boost/json.hpp>
#include <cctype>

#include "api/handler_util.h"
#include "api/services.h"

namespace sw::api {
namespace {

constexpr std::size_t kMaxLayoutBytes = 1 << 20;  // compact JSON text of the layout
// An exported file may be pretty-printed: allow room for indentation, refuse anything larger
// before building a DOM of it.
constexpr std::size_t kMaxBodyBytes = 4 * kMaxLayoutBytes;
constexpr std::size_t kMaxNameBytes = 200;
constexpr std::size_t kMaxDescriptionBytes = 4096;

void writeDashboard(JsonWriter& w, const storage::Dashboard& d, bool with_layout) {
  w.beginObject();
  w.key("id").string(d.id.str());
  w.key("tenant_id").string(d.tenant_id.str());
  w.key("name").string(d.name);
  w.key("description").string(d.description);
  w.key("version").integer(d.version);
  w.key("widgets").integer(d.widgets);
  w.key("created_at").integer(d.created_at);
  w.key("updated_at").integer(d.updated_at);
  if (with_layout) w.key("layout").raw(d.layout_json.empty() ? "{}" : d.layout_json);
  w.endObject();
}

// Name, description and layout of a create or update body (server-owned fields of an exported
// file, such as id, tenant_id, version and times, are not read here).
Result<storage::Dashboard> readDashboardBody(const boost::json::object& body) {
  storage::Dashboard d;
  auto name = reqString(body, "name");
  if (!name) return std::unexpected(name.error());
  if (name->size() > kMaxNameBytes) {
    return fail(Code::kInvalidArgument, fmt::format("name must be 1-{} bytes", kMaxNameBytes), "name");
  }
  auto description = optString(body, "description");
  if (!description) return std::unexpected(description.error());
  if (*description && (*description)->size() > kMaxDescriptionBytes) {
    return fail(Code::kInvalidArgument, fmt::format("description must be at most {} bytes", kMaxDescriptionBytes),
                "description");
  }
  const auto* layout = body.if_contains("layout");
  if (!layout || layout->is_null()) return fail(Code::kInvalidArgument, "layout is required", "layout");
  if (!layout->is_object()) return fail(Code::kInvalidArgument, "layout must be a JSON object", "layout");
  d.name = std::move(*name);
  d.description = description->value_or("");
  d.layout_json = toJsonText(*layout);
  if (const auto* widgets = layout->as_object().if_contains("widgets"); widgets && widgets->is_array()) {
    d.widgets = static_cast<int>(widgets->as_array().size());
  }
  return d;
}

// Parses and checks a create/update body; the response to send instead on failure.
std::optional<Response> parseDashboardBody(const Context& ctx, std::optional<boost::json::object>& body,
                                           std::optional<storage::Dashboard>& dashboard) {
  if (ctx.request.body.size() > kMaxBodyBytes) {
    return problem(413, "payload_too_large", fmt::format("a dashboard body may have at most {} bytes", kMaxBodyBytes),
                   "body");
  }
  auto parsed = parseObject(ctx.request.body);
  if (!parsed) return errorResponse(parsed.error());
  auto d = readDashboardBody(*parsed);
  if (!d) return errorResponse(d.error());
  if (d->layout_json.size() > kMaxLayoutBytes) {
    return problem(413, "payload_too_large", fmt::format("the layout may have at most {} bytes", kMaxLayoutBytes),
                   "layout");
  }
  body = std::move(*parsed);
  dashboard = std::move(*d);
  return std::nullopt;
}

// A write by a caller who may not write: a viewer learns nothing about dashboards it cannot see
// (404), else the permission error.
Response writeDenied(Services& s, const Context& ctx, const DashboardId& id, const Error& error) {
  if (auto t = tenantOf(ctx); t && !s.metadata.getDashboard(*t, id)) {
    return problem(404, "not_found", "dashboard not found");
  }
  return errorResponse(error);
}

// A file name for the export: the dashboard's name reduced to characters safe in any file
// system and inside a quoted Content-Disposition parameter.
std::string exportFileName(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (out.size() >= 100) break;
    const bool safe = std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ' ';
    out.push_back(safe ? static_cast<char>(c) : '_');
  }
  const auto first = out.find_first_not_of(" ._");
  if (first == std::string::npos) return "dashboard.json";
  out.erase(0, first);
  out.erase(out.find_last_not_of(" .") + 1);
  return out + ".json";
}

bool wantsDownload(const Context& ctx) {
  auto v = ctx.request.param("download");
  return v && (*v == "1" || *v == "true");
}

}  // namespace

void registerDashboardRoutes(Router& router, Services& s) {
  router.add("POST", "/api/v1/dashboards", Auth::kUser, [&s](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    std::optional<boost::json::object> body;
    std::optional<storage::Dashboard> d;
    if (auto bad = parseDashboardBody(ctx, body, d)) return std::move(*bad);
    d->tenant_id = *tenant;
    auto created = s.metadata.createDashboard(*d);
    if (!created) return errorResponse(created.error());
    JsonWriter w;
    writeDashboard(w, *created, true);
    Response r = jsonResponse(201, w.take());
    r.headers.emplace_back("Location", "/api/v1/dashboards/" + created->id.str());
    return r;
  });

  router.add("GET", "/api/v1/dashboards", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto page = pageRequest(ctx);
    if (!page) return errorResponse(page.error());
    std::string q(ctx.request.param("q").value_or(""));
    auto result = s.metadata.listDashboards(*tenant, q, *page);
    if (!result) return errorResponse(result.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& d : result->items) writeDashboard(w, d, false);
    w.endArray();
    writeNextCursor(w, result->next_cursor);
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/dashboards/{id}", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto d = s.metadata.getDashboard(*tenant, DashboardId(ctx.param("id")));
    if (!d) return errorResponse(d.error());
    JsonWriter w;
    writeDashboard(w, *d, true);
    Response r = jsonResponse(200, w.take());
    if (wantsDownload(ctx)) {
      r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + exportFileName(d->name) + "\"");
    }
    return r;
  });

  router.add("PUT", "/api/v1/dashboards/{id}", Auth::kUser, [&s](Context& ctx) {
    DashboardId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    std::optional<boost::json::object> body;
    std::optional<storage::Dashboard> d;
    if (auto bad = parseDashboardBody(ctx, body, d)) return std::move(*bad);
    auto version = optInt(*body, "version");
    if (!version) return errorResponse(version.error());
    if (!*version || **version < 1) {
      return problem(400, "invalid_argument", "version (the version that was edited, an integer >= 1) is required",
                     "version");
    }
    d->id = id;
    d->tenant_id = *tenant;
    auto updated = s.metadata.updateDashboard(*d, **version);
    if (!updated) return errorResponse(updated.error());
    if (!*updated) {
      return problem(409, "conflict",
                     "the dashboard was changed by someone else since this version: reload it and apply the change "
                     "again",
                     "version");
    }
    JsonWriter w;
    writeDashboard(w, **updated, true);
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", "/api/v1/dashboards/{id}", Auth::kUser, [&s](Context& ctx) {
    DashboardId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    if (auto st = s.metadata.deleteDashboard(*tenant, id); !st) return errorResponse(st.error());
    return noContent();
  });
}

}  // namespace sw::api
