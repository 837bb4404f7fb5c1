// Webhooks of a tenant (alarm notifications): CRUD, the delivery log and a test ping. The work
// (outbox, signing, sending, retries) is analytics::WebhookService's; this file maps HTTP to it.
// tenant_admin writes, viewer reads, sysadmin 403; another tenant's webhook is 404.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "analytics/webhooks.h"
#include "api/handler_util.h"
#include "api/services.h"

namespace sw::api {
namespace {

using analytics::Delivery;
using analytics::Webhook;
using analytics::WebhookInput;

constexpr std::size_t kMaxBodyBytes = 64 * 1024;

void optionalInt(JsonWriter& w, const char* key, const std::optional<std::int64_t>& v) {
  w.key(key);
  if (v)
    w.integer(*v);
  else
    w.null();
}

void optionalString(JsonWriter& w, const char* key, const std::optional<std::string>& v) {
  w.key(key);
  if (v)
    w.string(*v);
  else
    w.null();
}

void writeWebhook(JsonWriter& w, const Webhook& h, bool with_secret) {
  w.beginObject();
  w.key("id").string(h.id.str());
  w.key("name").string(h.name);
  w.key("url").string(h.url);
  w.key("min_severity").string(analytics::severityName(h.min_severity));
  w.key("enabled").boolean(h.enabled);
  w.key("created_ms").integer(h.created_ms);
  w.key("updated_ms").integer(h.updated_ms);
  optionalInt(w, "last_delivery_ms", h.last_delivery_ms);
  optionalString(w, "last_error", h.last_error);
  w.key("failing").boolean(h.failing);
  if (with_secret) w.key("secret").string(h.secret);
  w.endObject();
}

void writeDelivery(JsonWriter& w, const Delivery& d) {
  w.beginObject();
  w.key("id").string(d.id);
  w.key("event").string(d.event);
  optionalString(w, "alarm_id", d.alarm_id);
  w.key("status").string(analytics::deliveryStatusName(d.status));
  w.key("attempts").integer(d.attempts);
  w.key("last_status_code");
  if (d.last_status_code)
    w.integer(*d.last_status_code);
  else
    w.null();
  optionalString(w, "last_error", d.last_error);
  optionalInt(w, "next_attempt_ms", d.next_attempt_ms);
  w.key("created_ms").integer(d.created_ms);
  optionalInt(w, "delivered_ms", d.delivered_ms);
  w.endObject();
}

// The body of a create or a full replace; the response to send instead on failure.
std::optional<Response> parseInput(const Context& ctx, WebhookInput& in) {
  if (ctx.request.body.size() > kMaxBodyBytes) {
    return problem(413, "payload_too_large", fmt::format("a webhook body may have at most {} bytes", kMaxBodyBytes),
                   "body");
  }
  auto body = parseObject(ctx.request.body);
  if (!body) return errorResponse(body.error());
  auto name = reqString(*body, "name");
  if (!name) return errorResponse(name.error());
  auto url = reqString(*body, "url");
  if (!url) return errorResponse(url.error());
  auto secret = optString(*body, "secret");
  if (!secret) return errorResponse(secret.error());
  auto severity = optString(*body, "min_severity");
  if (!severity) return errorResponse(severity.error());
  in.name = std::move(*name);
  in.url = std::move(*url);
  in.secret = std::move(*secret);
  in.min_severity = analytics::Severity::kInfo;
  if (*severity) {
    auto s = analytics::parseSeverity(**severity);
    if (!s) {
      return problem(400, "invalid_argument", "min_severity must be critical, major, minor, warning or info",
                     "min_severity");
    }
    in.min_severity = *s;
  }
  in.enabled = true;
  if (const auto* enabled = body->if_contains("enabled"); enabled && !enabled->is_null()) {
    if (!enabled->is_bool()) return problem(400, "invalid_argument", "enabled must be true or false", "enabled");
    in.enabled = enabled->as_bool();
  }
  return std::nullopt;
}

// A write by a caller who may not write: a viewer learns nothing about webhooks it cannot see
// (404), else the permission error.
Response writeDenied(Services& s, const Context& ctx, const WebhookId& id, const Error& error) {
  if (auto t = tenantOf(ctx); t && !s.webhooks->getWebhook(*t, id)) {
    return problem(404, "not_found", "webhook not found");
  }
  return errorResponse(error);
}

Response unavailable() {
  return problem(503, "unavailable", "webhooks are not available in this server");
}

}  // namespace

void registerWebhookRoutes(Router& router, Services& s) {
  router.add("POST", "/api/v1/webhooks", Auth::kUser, [&s](Context& ctx) {
    if (!s.webhooks) return unavailable();
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    WebhookInput in;
    if (auto bad = parseInput(ctx, in)) return std::move(*bad);
    auto created = s.webhooks->createWebhook(*tenant, std::move(in));
    if (!created) return errorResponse(created.error());
    JsonWriter w;
    writeWebhook(w, *created, true);
    Response r = jsonResponse(201, w.take());
    r.headers.emplace_back("Location", "/api/v1/webhooks/" + created->id.str());
    return r;
  });

  router.add("GET", "/api/v1/webhooks", Auth::kUser, [&s](Context& ctx) {
    if (!s.webhooks) return unavailable();
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto page = pageRequest(ctx);
    if (!page) return errorResponse(page.error());
    auto result = s.webhooks->listWebhooks(*tenant, *page);
    if (!result) return errorResponse(result.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& h : result->items) writeWebhook(w, h, false);
    w.endArray();
    writeNextCursor(w, result->next_cursor);
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/webhooks/{id}", Auth::kUser, [&s](Context& ctx) {
    if (!s.webhooks) return unavailable();
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto h = s.webhooks->getWebhook(*tenant, WebhookId(ctx.param("id")));
    if (!h) return errorResponse(h.error());
    JsonWriter w;
    writeWebhook(w, *h, false);
    return jsonResponse(200, w.take());
  });

  router.add("PUT", "/api/v1/webhooks/{id}", Auth::kUser, [&s](Context& ctx) {
    if (!s.webhooks) return unavailable();
    WebhookId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    WebhookInput in;
    if (auto bad = parseInput(ctx, in)) return std::move(*bad);
    const bool new_secret = in.secret.has_value();
    auto updated = s.webhooks->updateWebhook(*tenant, id, std::move(in));
    if (!updated) return errorResponse(updated.error());
    JsonWriter w;
    writeWebhook(w, *updated, new_secret);
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", "/api/v1/webhooks/{id}", Auth::kUser, [&s](Context& ctx) {
    if (!s.webhooks) return unavailable();
    WebhookId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    if (auto st = s.webhooks->deleteWebhook(*tenant, id); !st) return errorResponse(st.error());
    return noContent();
  });

  router.add("GET", "/api/v1/webhooks/{id}/deliveries", Auth::kUser, [&s](Context& ctx) {
    if (!s.webhooks) return unavailable();
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto page = pageRequest(ctx);
    if (!page) return errorResponse(page.error());
    auto result = s.webhooks->listDeliveries(*tenant, WebhookId(ctx.param("id")), *page);
    if (!result) return errorResponse(result.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& d : result->items) writeDelivery(w, d);
    w.endArray();
    writeNextCursor(w, result->next_cursor);
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("POST", "/api/v1/webhooks/{id}/test", Auth::kUser, [&s](Context& ctx) {
    if (!s.webhooks) return unavailable();
    WebhookId id(ctx.param("id"));
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return writeDenied(s, ctx, id, tenant.error());
    auto d = s.webhooks->ping(*tenant, id);
    if (!d) return errorResponse(d.error());
    JsonWriter w;
    writeDelivery(w, *d);
    return jsonResponse(202, w.take());
  });
}

}  // namespace sw::api
