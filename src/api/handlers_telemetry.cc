// Telemetry queries (users) and the ThingsBoard-compatible device HTTP API.
#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "api/handler_util.h"
#include "api/services.h"
#include "core/hex.h"

namespace sw::api {
namespace {

constexpr std::size_t kMaxKeysPerQuery = 100;
constexpr std::size_t kMaxRawLimit = 100000;
constexpr std::int64_t kMaxBuckets = 100000;
// One response holds at most this many points (raw or buckets, over all keys and devices) and
// this many bytes; larger queries get 400 / 429 instead of exhausting memory.
constexpr std::int64_t kMaxPointsPerResponse = 2'000'000;
constexpr std::size_t kMaxResponseBytes = 64u << 20;

std::vector<std::string> splitKeys(std::string_view csv) {
  std::vector<std::string> keys;
  while (!csv.empty()) {
    auto comma = csv.find(',');
    auto k = csv.substr(0, comma);
    if (!k.empty() && std::find(keys.begin(), keys.end(), k) == keys.end()) keys.emplace_back(k);
    csv = comma == std::string_view::npos ? std::string_view() : csv.substr(comma + 1);
  }
  return keys;
}

std::optional<storage::AggFn> parseAgg(std::string_view s) {
  using storage::AggFn;
  if (s == "avg") return AggFn::kAvg;
  if (s == "min") return AggFn::kMin;
  if (s == "max") return AggFn::kMax;
  if (s == "sum") return AggFn::kSum;
  if (s == "count") return AggFn::kCount;
  if (s == "first") return AggFn::kFirst;
  if (s == "last") return AggFn::kLast;
  return std::nullopt;
}

struct AggSpec {
  storage::AggFn fn;
  std::int64_t interval;
};

// Validates agg and interval for the range [from, to).
Result<AggSpec> parseAggSpec(std::string_view agg, std::string_view interval_s, std::int64_t from, std::int64_t to) {
  auto fn = parseAgg(agg);
  if (!fn) return fail(Code::kInvalidArgument, "agg must be one of avg, min, max, sum, count, first, last", "agg");
  auto interval = parseInterval(interval_s);
  if (!interval) return fail(Code::kInvalidArgument, "interval must be like 500, 30s, 1m, 1h or 1d", "interval");
  // 128-bit: the span of an int64 range can overflow 64 bits.
  if ((static_cast<__int128>(to) - from) / *interval > kMaxBuckets) {
    return fail(Code::kInvalidArgument, "the range holds too many intervals; use a larger interval", "interval");
  }
  return AggSpec{*fn, *interval};
}

// Raw-query cursor: for each key cut short by the limit, where to resume. Opaque hex of
// "key \x1f ts \x1e ...".
std::string encodeCursor(const std::vector<std::pair<std::string, std::int64_t>>& resume) {
  std::string raw;
  for (const auto& [k, ts] : resume) raw += fmt::format("{}\x1f{}\x1e", k, ts);
  return hexEncode(raw);
}

Result<std::map<std::string, std::int64_t>> decodeCursor(std::string_view hex) {
  auto bad = [] { return fail(Code::kInvalidArgument, "malformed cursor", "cursor"); };
  std::string raw;
  if (hex.size() > 65536 || !hexDecode(hex, raw)) return bad();
  std::map<std::string, std::int64_t> out;
  std::string_view rest(raw);
  while (!rest.empty()) {
    auto end = rest.find('\x1e');
    auto sep = rest.find('\x1f');
    if (end == std::string_view::npos || sep == std::string_view::npos || sep > end) return bad();
    std::int64_t ts;
    auto tsv = rest.substr(sep + 1, end - sep - 1);
    auto [p, ec] = std::from_chars(tsv.data(), tsv.data() + tsv.size(), ts);
    if (ec != std::errc() || p != tsv.data() + tsv.size()) return bad();
    out[std::string(rest.substr(0, sep))] = ts;
    rest.remove_prefix(end + 1);
  }
  return out;
}

// Resolves the device for a telemetry read: must exist in the caller's tenant.
Result<TenantId> deviceTenant(Services& s, const Context& ctx) {
  auto tenant = tenantOf(ctx);
  if (!tenant) return tenant;
  if (auto d = s.metadata.getDevice(*tenant, DeviceId(ctx.param("id"))); !d) return std::unexpected(d.error());
  return tenant;
}

Error tooLarge() {
  return Error{Code::kResourceExhausted, "the response would be too large; narrow the query (keys, range, limit)", {}};
}

Status checkLimit(std::int64_t limit) {
  if (limit < 1 || static_cast<std::size_t>(limit) > kMaxRawLimit) {
    return fail(Code::kInvalidArgument, "limit must be from 1 to 100000", "limit");
  }
  return ok();
}

void writePoint(JsonWriter& w, const storage::TimedValue& p) {
  w.beginObject().key("ts").integer(p.ts).key("value").value(p.value).endObject();
}

// Writes {"key":[{"ts","value"},...],...} for one device: aggregated when fn is set, else raw
// points (at most limit per key, no paging).
Status writeSeries(JsonWriter& w, Services& s, const TenantId& tenant, const DeviceId& device,
                   const std::vector<std::string>& keys, std::int64_t from, std::int64_t to,
                   std::optional<storage::AggFn> fn, std::int64_t interval, std::size_t limit) {
  w.beginObject();
  for (const auto& k : keys) {
    w.key(k).beginArray();
    if (fn) {
      auto points = s.store.aggregate(tenant, device, k, storage::AggQuery{from, to, interval, *fn});
      if (!points) return std::unexpected(points.error());
      for (const auto& p : *points) w.beginObject().key("ts").integer(p.ts).key("value").number(p.value).endObject();
    } else {
      auto page = s.store.readRaw(tenant, device, k, storage::RawQuery{from, to, limit, kMaxResponseBytes});
      if (!page) return std::unexpected(page.error());
      if (page->more && page->points.size() < limit) return std::unexpected(tooLarge());
      for (const auto& p : page->points) writePoint(w, p);
    }
    w.endArray();
    if (w.size() > kMaxResponseBytes) return std::unexpected(tooLarge());
  }
  w.endObject();
  return ok();
}

// Points a query may produce: per-key limit (raw) or bucket count (aggregates), times keys and
// devices; refused above kMaxPointsPerResponse.
Status checkBudget(std::size_t devices, std::size_t keys, std::int64_t per_series, const char* field) {
  if (static_cast<__int128>(devices) * keys * per_series > kMaxPointsPerResponse) {
    return fail(Code::kInvalidArgument,
                fmt::format("the query could return more than {} points; lower {} or ask for fewer keys/devices",
                            kMaxPointsPerResponse, field),
                field);
  }
  return ok();
}

std::int64_t bucketsIn(std::int64_t from, std::int64_t to, std::int64_t interval) {
  return static_cast<std::int64_t>((static_cast<__int128>(to) - from) / interval + 1);
}

Response timeseries(Services& s, Context& ctx) {
  auto tenant = deviceTenant(s, ctx);
  if (!tenant) return errorResponse(tenant.error());
  DeviceId device(ctx.param("id"));
  auto keys_param = ctx.request.param("keys");
  auto keys = splitKeys(keys_param.value_or(""));
  if (keys.empty()) return problem(400, "invalid_argument", "keys is required (comma-separated)", "keys");
  if (keys.size() > kMaxKeysPerQuery) return problem(400, "invalid_argument", "too many keys in one query", "keys");
  auto from = intParam(ctx, "from", std::nullopt);
  if (!from) return errorResponse(from.error());
  auto to = intParam(ctx, "to", std::nullopt);
  if (!to) return errorResponse(to.error());
  if (*to < *from) return problem(400, "invalid_argument", "to must not be before from", "to");

  if (auto agg_s = ctx.request.param("agg")) {
    auto spec = parseAggSpec(*agg_s, ctx.request.param("interval").value_or(""), *from, *to);
    if (!spec) return errorResponse(spec.error());
    if (auto st = checkBudget(1, keys.size(), bucketsIn(*from, *to, spec->interval), "interval"); !st) {
      return errorResponse(st.error());
    }
    JsonWriter w;
    if (auto st = writeSeries(w, s, *tenant, device, keys, *from, *to, spec->fn, spec->interval, 0); !st) {
      return errorResponse(st.error());
    }
    return jsonResponse(200, w.take());
  }

  JsonWriter w;
  w.beginObject();

  auto limit = intParam(ctx, "limit", 1000);
  if (!limit) return errorResponse(limit.error());
  if (auto st = checkLimit(*limit); !st) return errorResponse(st.error());
  if (auto st = checkBudget(1, keys.size(), *limit, "limit"); !st) return errorResponse(st.error());
  std::map<std::string, std::int64_t> resume;
  const bool paging = ctx.request.param("cursor").has_value();
  if (paging) {
    auto c = decodeCursor(*ctx.request.param("cursor"));
    if (!c) return errorResponse(c.error());
    resume = std::move(*c);
  }
  std::vector<std::pair<std::string, std::int64_t>> next;
  for (const auto& k : keys) {
    w.key(k).beginArray();
    std::int64_t start = *from;
    bool skip = false;
    if (paging) {
      auto it = resume.find(k);
      if (it == resume.end())
        skip = true;  // this key was complete on an earlier page
      else
        start = std::max(start, it->second);
    }
    if (!skip) {
      // The byte bound ends a page early (with a cursor) when values are large strings.
      const std::size_t left = kMaxResponseBytes > w.size() ? kMaxResponseBytes - w.size() : 1;
      auto page =
          s.store.readRaw(*tenant, device, k, storage::RawQuery{start, *to, static_cast<std::size_t>(*limit), left});
      if (!page) return errorResponse(page.error());
      for (const auto& p : page->points) writePoint(w, p);
      if (page->more && !page->points.empty()) next.emplace_back(k, page->points.back().ts + 1);
    }
    w.endArray();
  }
  w.endObject();
  Response r = jsonResponse(200, w.take());
  if (!next.empty()) r.headers.emplace_back("X-Next-Cursor", encodeCursor(next));
  return r;
}

// POST /api/v1/telemetry/query: many devices in one request (dashboards, comparisons).
// {"device_ids":[...], "keys":[...], "from":ms, "to":ms, "agg"?:..., "interval"?:..., "limit"?:n}
Response batchQuery(Services& s, Context& ctx) {
  auto tenant = tenantOf(ctx);
  if (!tenant) return errorResponse(tenant.error());
  auto body = parseObject(ctx.request.body);
  if (!body) return errorResponse(body.error());
  auto strings = [&](std::string_view name, std::size_t max) -> Result<std::vector<std::string>> {
    auto* v = body->if_contains(name);
    if (!v || !v->is_array() || v->as_array().empty() || v->as_array().size() > max) {
      return fail(Code::kInvalidArgument, fmt::format("{} must be a non-empty array of at most {} strings", name, max),
                  std::string(name));
    }
    std::vector<std::string> out;
    for (const auto& e : v->as_array()) {
      if (!e.is_string() || e.as_string().empty()) {
        return fail(Code::kInvalidArgument, fmt::format("{} must hold non-empty strings", name), std::string(name));
      }
      out.emplace_back(e.as_string());
    }
    return out;
  };
  auto devices = strings("device_ids", 1000);
  if (!devices) return errorResponse(devices.error());
  auto keys = strings("keys", kMaxKeysPerQuery);
  if (!keys) return errorResponse(keys.error());
  auto from = optInt(*body, "from");
  if (!from) return errorResponse(from.error());
  auto to = optInt(*body, "to");
  if (!to) return errorResponse(to.error());
  if (!*from) return problem(400, "invalid_argument", "from is required", "from");
  if (!*to) return problem(400, "invalid_argument", "to is required", "to");
  if (**to < **from) return problem(400, "invalid_argument", "to must not be before from", "to");
  auto agg_s = optString(*body, "agg");
  if (!agg_s) return errorResponse(agg_s.error());
  std::optional<storage::AggFn> fn;
  std::int64_t interval = 0;
  if (*agg_s) {
    auto interval_s = optString(*body, "interval");
    if (!interval_s) return errorResponse(interval_s.error());
    auto spec = parseAggSpec(**agg_s, interval_s->value_or(""), **from, **to);
    if (!spec) return errorResponse(spec.error());
    fn = spec->fn;
    interval = spec->interval;
  }
  auto limit = optInt(*body, "limit");
  if (!limit) return errorResponse(limit.error());
  const std::int64_t lim = limit->value_or(1000);
  if (auto st = checkLimit(lim); !st) return errorResponse(st.error());
  auto budget = fn ? checkBudget(devices->size(), keys->size(), bucketsIn(**from, **to, interval), "interval")
                   : checkBudget(devices->size(), keys->size(), lim, "limit");
  if (!budget) return errorResponse(budget.error());
  // Every device must be the caller's: one foreign or unknown id makes the whole query 404.
  for (const auto& id : *devices) {
    if (auto d = s.metadata.getDevice(*tenant, DeviceId(id)); !d) return errorResponse(d.error());
  }
  JsonWriter w;
  w.beginObject().key("results").beginArray();
  for (const auto& id : *devices) {
    w.beginObject().key("device_id").string(id).key("series");
    if (auto st =
            writeSeries(w, s, *tenant, DeviceId(id), *keys, **from, **to, fn, interval, static_cast<std::size_t>(lim));
        !st) {
      return errorResponse(st.error());
    }
    w.endObject();
  }
  w.endArray().endObject();
  return jsonResponse(200, w.take());
}

}  // namespace

void registerTelemetryRoutes(Router& router, Services& s) {
  router.add("GET", "/api/v1/devices/{id}/telemetry/keys", Auth::kUser, [&s](Context& ctx) {
    auto tenant = deviceTenant(s, ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto keys = s.store.keys(*tenant, DeviceId(ctx.param("id")));
    if (!keys) return errorResponse(keys.error());
    std::sort(keys->begin(), keys->end());
    JsonWriter w;
    w.beginArray();
    for (const auto& k : *keys) w.string(k);
    w.endArray();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/devices/{id}/telemetry/latest", Auth::kUser, [&s](Context& ctx) {
    auto tenant = deviceTenant(s, ctx);
    if (!tenant) return errorResponse(tenant.error());
    auto keys = splitKeys(ctx.request.param("keys").value_or(""));
    if (keys.size() > 1000) return problem(400, "invalid_argument", "too many keys in one query", "keys");
    auto latest = s.store.latest(*tenant, DeviceId(ctx.param("id")), keys);
    if (!latest) return errorResponse(latest.error());
    JsonWriter w;
    w.beginObject();
    for (const auto& [k, tv] : *latest) {
      w.key(k).beginObject().key("ts").integer(tv.ts).key("value").value(tv.value).endObject();
    }
    w.endObject();
    return jsonResponse(200, w.take());
  });

  router.add("GET", "/api/v1/devices/{id}/telemetry", Auth::kUser, [&s](Context& ctx) { return timeseries(s, ctx); });
  router.add("POST", "/api/v1/telemetry/query", Auth::kUser, [&s](Context& ctx) { return batchQuery(s, ctx); });

  // ---- device API: the access token in the path authenticates the device ----
  router.add("POST", "/api/v1/{access_token}/telemetry", Auth::kPublic, [&s](Context& ctx) {
    auto device = s.pipeline.authenticate(ctx.param("access_token"));
    if (!device) return errorResponse(device.error());
    auto n = s.pipeline.telemetry(*device, ctx.request.content_type, ctx.request.body);
    if (!n) return errorResponse(n.error());
    JsonWriter w;
    w.beginObject().key("points").integer(static_cast<std::int64_t>(*n)).endObject();
    return jsonResponse(200, w.take());
  });

  router.add("POST", "/api/v1/{access_token}/attributes", Auth::kPublic, [&s](Context& ctx) {
    auto device = s.pipeline.authenticate(ctx.param("access_token"));
    if (!device) return errorResponse(device.error());
    if (auto st = s.pipeline.attributes(*device, ctx.request.body); !st) return errorResponse(st.error());
    return jsonResponse(200, "{}");
  });
}

}  // namespace sw::api
