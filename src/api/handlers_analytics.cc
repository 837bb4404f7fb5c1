// Analytics REST API (issue 5; docs/api/CONTRACT.md "Analytics"): detector and rule definitions,
// backtests, alarms (list, ack, clear) and insights (forecast, trend, data quality).
#include <boost/json.hpp>
#include <cmath>

#include "analytics/backtest.h"
#include "analytics/engine.h"
#include "analytics/insights/insights.h"
#include "analytics/rules/rule_eval.h"
#include "analytics/store.h"
#include "analytics/stream_logic.h"
#include "api/handler_util.h"
#include "api/services.h"
#include "core/clock.h"

namespace sw::api {

using analytics::Alarm;
using analytics::AlarmStatus;
using analytics::DetectorDef;
using analytics::DeviceSelector;
using analytics::RuleDef;

void writeAlarm(JsonWriter& w, const Alarm& a);

namespace {

constexpr std::size_t kMaxNameBytes = 200;
constexpr std::size_t kMaxDescriptionBytes = 4096;
constexpr std::size_t kMaxKeys = 16;
constexpr std::size_t kMaxKeyBytes = 256;
constexpr std::size_t kMaxFilterIds = 1000;
constexpr std::size_t kMaxDefinitionsPerTenant = 1000;
constexpr std::int64_t kMaxDurationMs = 30LL * 86400000;
constexpr std::size_t kMaxInsightPoints = 500000;

void numberOrNull(JsonWriter& w, double v) {
  if (std::isfinite(v)) {
    w.number(v);
  } else {
    w.null();
  }
}

void optInteger(JsonWriter& w, const std::optional<std::int64_t>& v) {
  if (v) {
    w.integer(*v);
  } else {
    w.null();
  }
}

void writeSelector(JsonWriter& w, const DeviceSelector& f) {
  w.beginObject();
  if (!f.device_ids.empty()) {
    w.key("device_ids").beginArray();
    for (const auto& id : f.device_ids) w.string(id);
    w.endArray();
  }
  if (!f.type.empty()) w.key("type").string(f.type);
  if (!f.label_key.empty()) w.key("label").string(f.label_value ? f.label_key + "=" + *f.label_value : f.label_key);
  w.endObject();
}

void writeDetector(JsonWriter& w, const DetectorDef& d) {
  w.beginObject();
  w.key("id").string(d.id);
  w.key("name").string(d.name);
  w.key("description").string(d.description);
  w.key("device_filter");
  writeSelector(w, d.filter);
  w.key("keys").beginArray();
  for (const auto& k : d.keys) w.string(k);
  w.endArray();
  w.key("kind").string(analytics::kindName(d.kind));
  w.key("params").beginObject();
  for (const auto& [k, v] : d.params) w.key(k).number(v);
  w.endObject();
  w.key("threshold").number(d.threshold);
  w.key("severity").string(analytics::severityName(d.severity));
  w.key("enabled").boolean(d.enabled);
  w.key("version").integer(d.version);
  w.key("created_ms").integer(d.created_ms);
  w.key("updated_ms").integer(d.updated_ms);
  w.endObject();
}

void writeRule(JsonWriter& w, const RuleDef& r, const std::vector<std::string>& keys) {
  w.beginObject();
  w.key("id").string(r.id);
  w.key("name").string(r.name);
  w.key("description").string(r.description);
  w.key("device_filter");
  writeSelector(w, r.filter);
  w.key("condition").string(r.condition);
  w.key("keys").beginArray();
  for (const auto& k : keys) w.string(k);
  w.endArray();
  w.key("duration_ms").integer(r.duration_ms);
  w.key("hysteresis").number(r.hysteresis);
  w.key("severity").string(analytics::severityName(r.severity));
  w.key("enabled").boolean(r.enabled);
  w.key("message").string(r.message);
  w.key("version").integer(r.version);
  w.key("created_ms").integer(r.created_ms);
  w.key("updated_ms").integer(r.updated_ms);
  w.endObject();
}

std::vector<std::string> ruleKeys(const RuleDef& r) {
  auto c = analytics::Condition::parse(r.condition);
  return c ? c->keys() : std::vector<std::string>{};
}

Result<bool> requireAnalytics(Services& s) {
  if (!s.analytics_store) return fail(Code::kUnavailable, "analytics is not available on this server");
  return true;
}

// ---- request bodies ----

Result<std::string> nameField(const boost::json::object& body) {
  auto name = reqString(body, "name");
  if (!name) return name;
  if (name->empty() || name->size() > kMaxNameBytes) {
    return fail(Code::kInvalidArgument, fmt::format("name must be 1-{} bytes", kMaxNameBytes), "name");
  }
  return name;
}

Result<std::string> descriptionField(const boost::json::object& body) {
  auto d = optString(body, "description");
  if (!d) return std::unexpected(d.error());
  if (*d && (*d)->size() > kMaxDescriptionBytes) {
    return fail(Code::kInvalidArgument, fmt::format("description must be at most {} bytes", kMaxDescriptionBytes),
                "description");
  }
  return d->value_or("");
}

Result<DeviceSelector> selectorField(const boost::json::object& body) {
  DeviceSelector f;
  const auto* v = body.if_contains("device_filter");
  if (!v || v->is_null()) return f;
  if (!v->is_object()) return fail(Code::kInvalidArgument, "device_filter must be an object", "device_filter");
  const auto& o = v->as_object();
  for (const auto& [k, _] : o) {
    if (k != "device_ids" && k != "type" && k != "label") {
      return fail(Code::kInvalidArgument, "device_filter may have device_ids, type and label",
                  fmt::format("device_filter.{}", std::string_view(k)));
    }
  }
  if (const auto* ids = o.if_contains("device_ids"); ids && !ids->is_null()) {
    if (!ids->is_array() || ids->as_array().size() > kMaxFilterIds) {
      return fail(Code::kInvalidArgument, fmt::format("device_ids must be an array of at most {} ids", kMaxFilterIds),
                  "device_filter.device_ids");
    }
    for (const auto& id : ids->as_array()) {
      if (!id.is_string() || !parseUuid(id.as_string())) {
        return fail(Code::kInvalidArgument, "device_ids must hold device ids", "device_filter.device_ids");
      }
      f.device_ids.emplace_back(id.as_string());
    }
  }
  auto type = optString(o, "type");
  if (!type) {
    return fail(Code::kInvalidArgument, "type must be a string", "device_filter.type");
  }
  f.type = type->value_or("");
  auto label = optString(o, "label");
  if (!label)
    return fail(Code::kInvalidArgument, "label must be a string like key or key=value", "device_filter.label");
  if (*label && !(*label)->empty()) {
    auto eq = (*label)->find('=');
    f.label_key = (*label)->substr(0, eq);
    if (eq != std::string::npos) f.label_value = (*label)->substr(eq + 1);
    if (f.label_key.empty()) {
      return fail(Code::kInvalidArgument, "label must be like key or key=value", "device_filter.label");
    }
  }
  return f;
}

Result<analytics::Severity> severityField(const boost::json::object& body) {
  auto s = optString(body, "severity");
  if (!s) return std::unexpected(s.error());
  if (!*s) return analytics::Severity::kMajor;
  auto sev = analytics::parseSeverity(**s);
  if (!sev) {
    return fail(Code::kInvalidArgument, "severity must be critical, major, minor, warning or info", "severity");
  }
  return *sev;
}

Result<DetectorDef> readDetectorBody(const boost::json::object& body) {
  DetectorDef d;
  auto name = nameField(body);
  if (!name) return std::unexpected(name.error());
  auto description = descriptionField(body);
  if (!description) return std::unexpected(description.error());
  auto filter = selectorField(body);
  if (!filter) return std::unexpected(filter.error());
  auto kind_s = reqString(body, "kind");
  if (!kind_s) return std::unexpected(kind_s.error());
  auto kind = analytics::parseKind(*kind_s);
  if (!kind) return std::unexpected(kind.error());
  const auto& info = analytics::kindInfo(*kind);
  const auto* keys = body.if_contains("keys");
  if (!keys || !keys->is_array() || keys->as_array().empty() || keys->as_array().size() > kMaxKeys) {
    return fail(Code::kInvalidArgument, fmt::format("keys must be an array of 1 to {} keys", kMaxKeys), "keys");
  }
  for (const auto& k : keys->as_array()) {
    const bool control = k.is_string() && std::any_of(k.as_string().begin(), k.as_string().end(),
                                                      [](char c) { return static_cast<unsigned char>(c) < 0x20; });
    if (!k.is_string() || k.as_string().empty() || k.as_string().size() > kMaxKeyBytes || control) {
      return fail(Code::kInvalidArgument,
                  fmt::format("each key must be a string of 1-{} bytes without control characters", kMaxKeyBytes),
                  "keys");
    }
    std::string key(k.as_string());
    if (std::find(d.keys.begin(), d.keys.end(), key) != d.keys.end()) {
      return fail(Code::kInvalidArgument, fmt::format("key '{}' is listed twice", key), "keys");
    }
    d.keys.push_back(std::move(key));
  }
  if (info.multivariate && d.keys.size() < 2) {
    return fail(Code::kInvalidArgument, "the multivariate kind needs at least 2 keys of the device", "keys");
  }
  analytics::Params given;
  if (const auto* p = body.if_contains("params"); p && !p->is_null()) {
    if (!p->is_object()) return fail(Code::kInvalidArgument, "params must be an object of numbers", "params");
    for (const auto& [k, v] : p->as_object()) {
      if (!v.is_number()) {
        return fail(Code::kInvalidArgument, "each parameter must be a number",
                    fmt::format("params.{}", std::string_view(k)));
      }
      given[std::string(k)] = v.to_number<double>();
    }
  }
  auto params = analytics::resolveParams(*kind, given);
  if (!params) return std::unexpected(params.error());
  auto threshold = optNumber(body, "threshold");
  if (!threshold) return std::unexpected(threshold.error());
  d.threshold = threshold->value_or(info.default_threshold);
  if (!(d.threshold > 0 && d.threshold <= 1)) {
    return fail(Code::kInvalidArgument, "threshold must be a score in (0, 1]", "threshold");
  }
  auto severity = severityField(body);
  if (!severity) return std::unexpected(severity.error());
  auto enabled = optBool(body, "enabled");
  if (!enabled) return std::unexpected(enabled.error());
  d.name = std::move(*name);
  d.description = std::move(*description);
  d.filter = std::move(*filter);
  d.kind = *kind;
  d.params = std::move(*params);
  d.severity = *severity;
  d.enabled = enabled->value_or(true);
  return d;
}

Result<RuleDef> readRuleBody(const boost::json::object& body) {
  RuleDef r;
  auto name = nameField(body);
  if (!name) return std::unexpected(name.error());
  auto description = descriptionField(body);
  if (!description) return std::unexpected(description.error());
  auto filter = selectorField(body);
  if (!filter) return std::unexpected(filter.error());
  auto condition = reqString(body, "condition");
  if (!condition) return std::unexpected(condition.error());
  auto parsed = analytics::Condition::parse(*condition);
  if (!parsed) return std::unexpected(parsed.error());
  auto duration = optInt(body, "duration_ms");
  if (!duration) return std::unexpected(duration.error());
  r.duration_ms = duration->value_or(0);
  if (r.duration_ms < 0 || r.duration_ms > kMaxDurationMs) {
    return fail(Code::kInvalidArgument, "duration_ms must be 0 to 30 days", "duration_ms");
  }
  auto hysteresis = optNumber(body, "hysteresis");
  if (!hysteresis) return std::unexpected(hysteresis.error());
  r.hysteresis = hysteresis->value_or(0);
  if (!(r.hysteresis >= 0) || !std::isfinite(r.hysteresis)) {
    return fail(Code::kInvalidArgument, "hysteresis must be a number >= 0", "hysteresis");
  }
  auto severity = severityField(body);
  if (!severity) return std::unexpected(severity.error());
  auto enabled = optBool(body, "enabled");
  if (!enabled) return std::unexpected(enabled.error());
  auto message = optString(body, "message");
  if (!message) return std::unexpected(message.error());
  if (*message && (*message)->size() > kMaxDescriptionBytes) {
    return fail(Code::kInvalidArgument, fmt::format("message must be at most {} bytes", kMaxDescriptionBytes),
                "message");
  }
  r.name = std::move(*name);
  r.description = std::move(*description);
  r.filter = std::move(*filter);
  r.condition = std::move(*condition);
  r.severity = *severity;
  r.enabled = enabled->value_or(true);
  r.message = message->value_or("");
  return r;
}

// Devices of the tenant a definition applies to (for backtests), at most `limit`.
Result<std::vector<analytics::DeviceInfo>> matchingDevices(Services& s, const TenantId& tenant, const DeviceSelector& f,
                                                           std::size_t limit) {
  std::vector<analytics::DeviceInfo> out;
  auto add = [&](const storage::Device& d) {
    analytics::DeviceInfo info{d.id.str(), d.name, d.type, d.labels};
    if (analytics::selectorMatches(f, info)) out.push_back(std::move(info));
  };
  if (!f.device_ids.empty()) {
    for (const auto& id : f.device_ids) {
      if (out.size() >= limit) break;
      if (auto d = s.metadata.getDevice(tenant, DeviceId(id))) add(*d);
    }
    return out;
  }
  storage::DeviceFilter df;
  df.type = f.type;
  df.label_key = f.label_key;
  df.label_value = f.label_value;
  storage::PageRequest page{limit, {}};
  auto devices = s.metadata.listDevices(tenant, df, page);
  if (!devices) return std::unexpected(devices.error());
  for (const auto& d : devices->items) add(d);
  return out;
}

void writeBacktest(JsonWriter& w, const analytics::BacktestResult& r) {
  w.beginObject();
  w.key("series").beginArray();
  for (const auto& s : r.series) {
    w.beginObject();
    w.key("device_id").string(s.device_id);
    w.key("device_name").string(s.device_name);
    w.key("key").string(s.key);
    w.key("points").beginArray();
    for (const auto& p : s.points) {
      w.beginArray().integer(static_cast<std::int64_t>(p[0]));
      numberOrNull(w, p[1]);
      w.number(p[2]).endArray();
    }
    w.endArray();
    w.key("alarms").beginArray();
    for (const auto& a : s.alarms) {
      w.beginObject();
      w.key("start_ms").integer(a.start_ms);
      w.key("end_ms");
      optInteger(w, a.end_ms);
      w.key("peak_score").number(a.peak_score);
      w.key("observed");
      numberOrNull(w, a.observed);
      w.key("expected_lo");
      numberOrNull(w, a.expected_lo);
      w.key("expected_hi");
      numberOrNull(w, a.expected_hi);
      w.key("message").string(a.message);
      w.endObject();
    }
    w.endArray();
    w.endObject();
  }
  w.endArray();
  w.key("points_scanned").integer(static_cast<std::int64_t>(r.points_scanned));
  w.key("truncated").boolean(r.truncated);
  w.endObject();
}

// {"from","to","device_id"?} of a backtest body; runs it.
Response runBacktest(Services& s, const TenantId& tenant, const DetectorDef& def, const boost::json::object& body) {
  auto from = optInt(body, "from");
  if (!from) return errorResponse(from.error());
  auto to = optInt(body, "to");
  if (!to) return errorResponse(to.error());
  const auto now = nowMs();
  constexpr std::int64_t kLimit = std::int64_t{1} << 52;  // far beyond any real time, no overflow below
  if ((*from && (**from < -kLimit || **from > kLimit)) || (*to && (**to < -kLimit || **to > kLimit))) {
    return problem(400, "invalid_argument", "from and to must be epoch milliseconds", "from");
  }
  const std::int64_t t = to->value_or(now);
  const std::int64_t f = from->value_or(t - 86400000);
  if (t <= f) return problem(400, "invalid_argument", "to must be after from", "to");
  auto device_id = optString(body, "device_id");
  if (!device_id) return errorResponse(device_id.error());
  std::vector<analytics::DeviceInfo> devices;
  if (*device_id) {
    auto d = s.metadata.getDevice(tenant, DeviceId(**device_id));
    if (!d) return problem(404, "not_found", "device not found", "device_id");
    devices.push_back(analytics::DeviceInfo{d->id.str(), d->name, d->type, d->labels});
  } else {
    auto m = matchingDevices(s, tenant, def.filter, analytics::kMaxBacktestDevices);
    if (!m) return errorResponse(m.error());
    devices = std::move(*m);
  }
  auto result = analytics::backtest(def, tenant, devices, f, t, now, s.store);
  if (!result) return errorResponse(result.error());
  JsonWriter w;
  writeBacktest(w, *result);
  return jsonResponse(200, w.take());
}

Result<AlarmStatus> parseStatus(std::string_view v) {
  if (v == "active") return AlarmStatus::kActive;
  if (v == "acknowledged") return AlarmStatus::kAcknowledged;
  if (v == "cleared") return AlarmStatus::kCleared;
  return fail(Code::kInvalidArgument, "status must be active, acknowledged, cleared or open", "status");
}

// A device of the caller's tenant, or the response to send.
std::optional<Response> checkDevice(Services& s, const TenantId& tenant, const DeviceId& id) {
  if (!s.metadata.getDevice(tenant, id)) return problem(404, "not_found", "device not found");
  return std::nullopt;
}

void tellEngine(Services& s, const TenantId& tenant) {
  if (s.analytics) s.analytics->reloadTenant(tenant);
}

// The engine uses the new definitions from here on: nothing queued under the old ones is left,
// so alarms cleared after this are not reopened by the old definition.
void tellEngineAndWait(Services& s, const TenantId& tenant) {
  if (!s.analytics) return;
  s.analytics->reloadTenant(tenant);
  s.analytics->drain();
}

// Clears the open alarms of a deleted or changed definition and tells the subscribers.
void clearSourceAlarms(Services& s, const TenantId& tenant, const std::string& source_id, const std::string& why) {
  auto cleared = s.analytics_store->clearSource(tenant, source_id, nowMs(), why);
  if (cleared && s.analytics) {
    for (const auto& a : *cleared) s.analytics->publish(tenant, "alarm.cleared", a);
  }
}

void writeRuleDef(JsonWriter& w, const RuleDef& r) {
  writeRule(w, r, ruleKeys(r));
}

// Detectors and rules have the same CRUD: tenant_admin writes, viewers read, a cap per tenant,
// ?device_id= lists those whose filter matches the device, and every change reaches the engine.
template <typename Def>
struct DefinitionRoutes {
  using Store = analytics::AnalyticsStore;
  std::string path;  // "/api/v1/detectors"
  std::string noun;  // "detectors"
  Result<Def> (*read)(const boost::json::object&);
  void (*write)(JsonWriter&, const Def&);
  Result<Def> (Store::*create)(const TenantId&, Def);
  Result<Def> (Store::*get)(const TenantId&, const std::string&);
  Result<Def> (Store::*update)(const TenantId&, Def);
  Status (Store::*remove)(const TenantId&, const std::string&);
  Result<std::vector<Def>> (Store::*list)(const TenantId&);
  bool (*listFilter)(const Context&, const Def&);  // more list filters; null: none
};

template <typename Def>
void registerDefinitionRoutes(Router& router, Services& s, const DefinitionRoutes<Def>& r) {
  router.add("POST", r.path, Auth::kUser, [&s, r](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto def = r.read(*body);
    if (!def) return errorResponse(def.error());
    auto existing = (s.analytics_store->*r.list)(*tenant);
    if (!existing) return errorResponse(existing.error());
    if (existing->size() >= kMaxDefinitionsPerTenant) {
      return problem(429, "resource_exhausted",
                     fmt::format("a tenant may have at most {} {}", kMaxDefinitionsPerTenant, r.noun));
    }
    auto created = (s.analytics_store->*r.create)(*tenant, std::move(*def));
    if (!created) return errorResponse(created.error());
    tellEngine(s, *tenant);
    JsonWriter w;
    r.write(w, *created);
    Response resp = jsonResponse(201, w.take());
    resp.headers.emplace_back("Location", r.path + "/" + created->id);
    return resp;
  });

  router.add("GET", r.path, Auth::kUser, [&s, r](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    auto list = (s.analytics_store->*r.list)(*tenant);
    if (!list) return errorResponse(list.error());
    std::optional<analytics::DeviceInfo> device;
    if (auto id = ctx.request.param("device_id"); id && !id->empty()) {
      auto d = s.metadata.getDevice(*tenant, DeviceId(std::string(*id)));
      if (!d) return problem(404, "not_found", "device not found", "device_id");
      device = analytics::DeviceInfo{d->id.str(), d->name, d->type, d->labels};
    }
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& d : *list) {
      if (r.listFilter && !r.listFilter(ctx, d)) continue;
      if (device && !analytics::selectorMatches(d.filter, *device)) continue;
      r.write(w, d);
    }
    w.endArray().endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", r.path + "/{id}", Auth::kUser, [&s, r](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    auto d = (s.analytics_store->*r.get)(*tenant, ctx.param("id"));
    if (!d) return errorResponse(d.error());
    JsonWriter w;
    r.write(w, *d);
    return jsonResponse(200, w.take());
  });

  router.add("PUT", r.path + "/{id}", Auth::kUser, [&s, r](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    auto def = r.read(*body);
    if (!def) return errorResponse(def.error());
    def->id = ctx.param("id");
    auto updated = (s.analytics_store->*r.update)(*tenant, std::move(*def));
    if (!updated) return errorResponse(updated.error());
    // The learned state starts over with the new definition; its open alarms end.
    tellEngineAndWait(s, *tenant);
    clearSourceAlarms(s, *tenant, updated->id, "updated");
    JsonWriter w;
    r.write(w, *updated);
    return jsonResponse(200, w.take());
  });

  router.add("DELETE", r.path + "/{id}", Auth::kUser, [&s, r](Context& ctx) {
    auto tenant = writableTenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    if (auto st = (s.analytics_store->*r.remove)(*tenant, ctx.param("id")); !st) return errorResponse(st.error());
    tellEngineAndWait(s, *tenant);
    clearSourceAlarms(s, *tenant, ctx.param("id"), "deleted");
    return noContent();
  });
}

}  // namespace

void writeAlarm(JsonWriter& w, const Alarm& a) {
  w.beginObject();
  w.key("id").string(a.id);
  w.key("source").beginObject();
  w.key("type").string(a.source_type);
  w.key("id").string(a.source_id);
  w.key("name").string(a.source_name);
  w.endObject();
  w.key("device_id").string(a.device_id);
  w.key("device_name").string(a.device_name);
  w.key("key").string(a.key);
  w.key("severity").string(analytics::severityName(a.severity));
  w.key("status").string(analytics::alarmStatusName(a.status));
  w.key("acknowledged").boolean(a.acknowledged);
  w.key("count").integer(a.count);
  w.key("start_ms").integer(a.start_ms);
  w.key("last_ms").integer(a.last_ms);
  w.key("end_ms");
  optInteger(w, a.end_ms);
  w.key("message").string(a.message);
  w.key("details").beginObject();
  w.key("observed");
  numberOrNull(w, a.observed);
  w.key("expected_lo");
  numberOrNull(w, a.expected_lo);
  w.key("expected_hi");
  numberOrNull(w, a.expected_hi);
  w.key("score");
  numberOrNull(w, a.score);
  w.endObject();
  w.key("acked_by");
  if (a.acked_by.empty()) {
    w.null();
  } else {
    w.string(a.acked_by);
  }
  w.key("acked_ms");
  optInteger(w, a.acked_ms);
  w.key("cleared_by");
  if (a.cleared_by.empty()) {
    w.null();
  } else {
    w.string(a.cleared_by);
  }
  w.key("cleared_ms");
  optInteger(w, a.cleared_ms);
  w.endObject();
}

std::string alarmJson(const Alarm& a) {
  JsonWriter w;
  writeAlarm(w, a);
  return w.take();
}

void registerAnalyticsRoutes(Router& router, Services& s) {
  // ---- detectors ----
  router.add("GET", "/api/v1/detectors/kinds", Auth::kUser, [](Context& ctx) {
    if (auto t = tenantOf(ctx); !t) return errorResponse(t.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& k : analytics::kindInfos()) {
      w.beginObject();
      w.key("kind").string(analytics::kindName(k.kind));
      w.key("title").string(k.title);
      w.key("description").string(k.description);
      w.key("multivariate").boolean(k.multivariate);
      w.key("default_threshold").number(k.default_threshold);
      w.key("params").beginArray();
      for (const auto& p : k.params) {
        w.beginObject();
        w.key("name").string(p.name);
        w.key("default").number(p.default_value);
        w.key("min").number(p.min);
        w.key("max").number(p.max);
        w.key("integer").boolean(p.integer);
        w.key("description").string(p.description);
        w.endObject();
      }
      w.endArray();
      w.endObject();
    }
    w.endArray().endObject();
    return jsonResponse(200, w.take());
  });

  registerDefinitionRoutes<DetectorDef>(
      router, s,
      DefinitionRoutes<DetectorDef>{
          "/api/v1/detectors", "detectors", &readDetectorBody, &writeDetector,
          &analytics::AnalyticsStore::createDetector, &analytics::AnalyticsStore::getDetector,
          &analytics::AnalyticsStore::updateDetector, &analytics::AnalyticsStore::deleteDetector,
          &analytics::AnalyticsStore::listDetectors, [](const Context& ctx, const DetectorDef& d) {
            auto kind = ctx.request.param("kind");
            return !kind || kind->empty() || analytics::kindName(d.kind) == *kind;
          }});

  router.add("POST", "/api/v1/detectors/{id}/backtest", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    auto d = s.analytics_store->getDetector(*tenant, ctx.param("id"));
    if (!d) return errorResponse(d.error());
    auto body = parseObject(ctx.request.body.empty() ? std::string_view("{}") : ctx.request.body);
    if (!body) return errorResponse(body.error());
    return runBacktest(s, *tenant, *d, *body);
  });

  router.add("POST", "/api/v1/detectors/backtest", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    auto body = parseObject(ctx.request.body);
    if (!body) return errorResponse(body.error());
    const auto* det = body->if_contains("detector");
    if (!det || !det->is_object()) {
      return problem(400, "invalid_argument", "detector (the definition to try) is required", "detector");
    }
    auto def = readDetectorBody(det->as_object());
    if (!def) {
      auto e = def.error();
      if (!e.field.empty()) e.field = "detector." + e.field;
      return errorResponse(e);
    }
    return runBacktest(s, *tenant, *def, *body);
  });

  // ---- rules ----
  registerDefinitionRoutes<RuleDef>(
      router, s,
      DefinitionRoutes<RuleDef>{"/api/v1/rules", "rules", &readRuleBody, &writeRuleDef,
                                &analytics::AnalyticsStore::createRule, &analytics::AnalyticsStore::getRule,
                                &analytics::AnalyticsStore::updateRule, &analytics::AnalyticsStore::deleteRule,
                                &analytics::AnalyticsStore::listRules, nullptr});

  // ---- alarms ----
  router.add("GET", "/api/v1/alarms", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    analytics::AlarmFilter f;
    if (auto st = ctx.request.param("status"); st && !st->empty()) {
      if (*st == "open") {
        f.open_only = true;
      } else {
        auto parsed = parseStatus(*st);
        if (!parsed) return errorResponse(parsed.error());
        f.status = *parsed;
      }
    }
    if (auto sev = ctx.request.param("severity"); sev && !sev->empty()) {
      f.severity = analytics::parseSeverity(*sev);
      if (!f.severity) {
        return problem(400, "invalid_argument", "severity must be critical, major, minor, warning or info", "severity");
      }
    }
    f.device_id = std::string(ctx.request.param("device_id").value_or(""));
    f.source_id = std::string(ctx.request.param("source_id").value_or(""));
    if (ctx.request.param("from")) {
      auto from = intParam(ctx, "from", std::nullopt);
      if (!from) return errorResponse(from.error());
      f.from = *from;
    }
    if (ctx.request.param("to")) {
      auto to = intParam(ctx, "to", std::nullopt);
      if (!to) return errorResponse(to.error());
      f.to = *to;
    }
    auto page = pageRequest(ctx);
    if (!page) return errorResponse(page.error());
    f.page_size = page->page_size;
    f.cursor = page->after;
    auto list = s.analytics_store->listAlarms(*tenant, f);
    if (!list) return errorResponse(list.error());
    JsonWriter w;
    w.beginObject().key("items").beginArray();
    for (const auto& a : list->items) writeAlarm(w, a);
    w.endArray();
    writeNextCursor(w, list->next_cursor);
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/alarms/{id}", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
    auto a = s.analytics_store->getAlarm(*tenant, ctx.param("id"));
    if (!a) return errorResponse(a.error());
    JsonWriter w;
    writeAlarm(w, *a);
    return jsonResponse(200, w.take());
  });

  for (const bool ack : {true, false}) {
    router.add(
        "POST", ack ? "/api/v1/alarms/{id}/ack" : "/api/v1/alarms/{id}/clear", Auth::kUser, [&s, ack](Context& ctx) {
          auto tenant = writableTenantOf(ctx);
          if (!tenant) {
            // A viewer learns nothing about alarms of other tenants.
            if (auto t = tenantOf(ctx); t && s.analytics_store && !s.analytics_store->getAlarm(*t, ctx.param("id"))) {
              return problem(404, "not_found", "alarm not found");
            }
            return errorResponse(tenant.error());
          }
          if (auto a = requireAnalytics(s); !a) return errorResponse(a.error());
          const auto user = ctx.user().user_id.str();
          auto a = ack ? s.analytics_store->acknowledge(*tenant, ctx.param("id"), user, nowMs())
                       : s.analytics_store->clear(*tenant, ctx.param("id"), user, nowMs());
          if (!a) {
            if (a.error().code == Code::kAlreadyExists) return problem(409, "conflict", a.error().message);
            return errorResponse(a.error());
          }
          if (s.analytics) s.analytics->publish(*tenant, ack ? "alarm.acknowledged" : "alarm.cleared", *a);
          JsonWriter w;
          writeAlarm(w, *a);
          return jsonResponse(200, w.take());
        });
  }

  // ---- insights ----
  router.add("GET", "/api/v1/devices/{id}/forecast", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    const DeviceId device(ctx.param("id"));
    if (auto bad = checkDevice(s, *tenant, device)) return std::move(*bad);
    auto key = ctx.request.param("key");
    if (!key || key->empty()) return problem(400, "invalid_argument", "key is required", "key");
    auto horizon = parseInterval(ctx.request.param("horizon").value_or("24h"));
    if (!horizon || *horizon > 30LL * 86400000) {
      return problem(400, "invalid_argument", "horizon must be like 30m, 6h or 7d, at most 30d", "horizon");
    }
    auto history = parseInterval(ctx.request.param("history").value_or("7d"));
    if (!history || *history > 366LL * 86400000) {
      return problem(400, "invalid_argument", "history must be like 1d or 14d, at most 366d", "history");
    }
    // Buckets: about 2000 over the history, at least one minute, and a whole number of them per
    // day (the largest divisor of 1440 minutes not above history / 2000), so that a daily season
    // falls on bucket boundaries.
    std::int64_t minutes = std::max<std::int64_t>(1, *history / 2000 / 60000);
    if (minutes >= 1440) {
      minutes = minutes / 1440 * 1440;
    } else {
      while (1440 % minutes != 0) --minutes;
    }
    const std::int64_t interval = minutes * 60000;
    const auto to = nowMs() / interval * interval + interval;
    const auto from = to - *history;
    auto agg = s.store.aggregate(*tenant, device, std::string(*key),
                                 storage::AggQuery{from, to, interval, storage::AggFn::kAvg});
    if (!agg) return errorResponse(agg.error());
    std::vector<analytics::Sample> samples;
    samples.reserve(agg->size());
    for (const auto& p : *agg) samples.push_back(analytics::Sample{p.ts, p.value});
    auto fc = analytics::forecast(samples, interval, *horizon);
    if (!fc) return errorResponse(fc.error());
    JsonWriter w;
    w.beginObject();
    w.key("key").string(*key);
    w.key("interval_ms").integer(fc->interval_ms);
    w.key("season_ms").integer(fc->season_ms);
    w.key("fitted_points").integer(static_cast<std::int64_t>(fc->fitted_points));
    w.key("points").beginArray();
    for (const auto& p : fc->points) {
      w.beginArray().integer(p.ts).number(p.yhat).number(p.lo).number(p.hi).endArray();
    }
    w.endArray().endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/devices/{id}/insights", Auth::kUser, [&s](Context& ctx) {
    auto tenant = tenantOf(ctx);
    if (!tenant) return errorResponse(tenant.error());
    const DeviceId device(ctx.param("id"));
    if (auto bad = checkDevice(s, *tenant, device)) return std::move(*bad);
    auto key = ctx.request.param("key");
    if (!key || key->empty()) return problem(400, "invalid_argument", "key is required", "key");
    const auto now = nowMs();
    auto to = intParam(ctx, "to", now);
    if (!to) return errorResponse(to.error());
    constexpr std::int64_t kLimit = std::int64_t{1} << 52;
    if (*to < -kLimit || *to > kLimit) return problem(400, "invalid_argument", "to must be epoch milliseconds", "to");
    auto from = intParam(ctx, "from", *to - 86400000);
    if (!from) return errorResponse(from.error());
    if (*from < -kLimit || *from > kLimit) {
      return problem(400, "invalid_argument", "from must be epoch milliseconds", "from");
    }
    if (*to <= *from) return problem(400, "invalid_argument", "to must be after from", "to");
    analytics::QualityOptions opt;
    opt.from = *from;
    opt.to = *to;
    for (const char* name : {"min", "max"}) {
      auto v = ctx.request.param(name);
      if (!v) continue;
      char* end = nullptr;
      std::string text(*v);
      double d = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(d)) {
        return problem(400, "invalid_argument", fmt::format("{} must be a number", name), name);
      }
      (std::string_view(name) == "min" ? opt.lo : opt.hi) = d;
    }
    if (opt.lo && opt.hi && *opt.lo > *opt.hi) return problem(400, "invalid_argument", "min must be <= max", "min");
    bool truncated = false;
    auto samples = analytics::readNumericSeries(s.store, *tenant, device, std::string(*key), *from, *to,
                                                kMaxInsightPoints, truncated);
    if (!samples) return errorResponse(samples.error());
    const auto tr = analytics::trend(*samples);
    const auto q = analytics::dataQuality(*samples, opt);
    JsonWriter w;
    w.beginObject();
    w.key("key").string(*key);
    w.key("from").integer(*from);
    w.key("to").integer(*to);
    w.key("points").integer(static_cast<std::int64_t>(samples->size()));
    w.key("truncated").boolean(truncated);
    w.key("trend").beginObject();
    w.key("slope_per_day");
    numberOrNull(w, tr.slope_per_day);
    w.key("intercept");
    numberOrNull(w, tr.intercept);
    w.key("r2");
    numberOrNull(w, tr.r2);
    w.endObject();
    w.key("quality").beginObject();
    w.key("expected_interval_ms").integer(q.expected_interval_ms);
    w.key("gap_count").integer(static_cast<std::int64_t>(q.gap_count));
    w.key("gaps").beginArray();
    for (const auto& g : q.gaps) w.beginObject().key("from").integer(g.from).key("to").integer(g.to).endObject();
    w.endArray();
    w.key("missing_share").number(q.missing_share);
    w.key("stuck").beginArray();
    for (const auto& st : q.stuck) {
      w.beginObject().key("from").integer(st.from).key("to").integer(st.to).key("value").number(st.value).endObject();
    }
    w.endArray();
    w.key("stuck_share").number(q.stuck_share);
    w.key("out_of_range_share").number(q.out_of_range_share);
    w.key("range").beginObject();
    w.key("lo");
    numberOrNull(w, q.range_lo);
    w.key("hi");
    numberOrNull(w, q.range_hi);
    w.key("source").string(q.range_given ? "given" : "robust");
    w.endObject();
    w.endObject().endObject();
    return jsonResponse(200, w.take());
  });
}

}  // namespace sw::api
