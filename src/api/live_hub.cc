#include "api/live_hub.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/json_util.h"
#include "api/problem.h"
#include "api/services.h"

namespace sw::api {

namespace json = boost::json;

// One subscription of one socket. Immutable after creation except the fields marked as guarded
// by the connection's mutex.
struct LiveSubscription {
  std::string id;  // the client's sub id
  SubscribeRequest::Stream stream = SubscribeRequest::Stream::kTelemetry;
  TenantId tenant;
  std::vector<DeviceId> device_ids;
  std::optional<DeviceFilterSpec> filter;
  std::vector<std::string> keys;  // sorted, unique; empty: every key
  std::weak_ptr<LiveConnection> connection;
  // Guarded by the connection's mutex.
  bool active = true;
  bool pending = true;            // snapshot not queued yet: telemetry waits in held
  std::vector<std::string> held;  // counted in the connection's queued bytes
  std::size_t held_bytes = 0;
};

struct LiveHub::Tenant {
  std::mutex mutex;
  std::unordered_map<DeviceId, std::vector<std::shared_ptr<LiveSubscription>>> by_device;
  std::vector<std::shared_ptr<LiveSubscription>> filter_subs;
  std::vector<std::shared_ptr<LiveSubscription>> alarm_subs;
  std::size_t telemetry_subs = 0;
  // Type and labels of the tenant's devices, kept while it has filter subscriptions. Every
  // change bumps generation; a lookup that started before a change does not fill the cache.
  std::unordered_map<DeviceId, std::shared_ptr<const DeviceInfo>> devices;
  std::uint64_t generation = 0;
  bool empty() const { return telemetry_subs == 0 && alarm_subs.empty(); }
};

namespace {

// Bookkeeping bytes counted per coalesced entry (map node, strings' headers).
constexpr std::size_t kEntryOverhead = 64;

std::string valueJson(const storage::Value& v) {
  JsonWriter w;
  w.value(v);
  return w.take();
}

// {"type":"telemetry","sub":..,"device_id":..,"points":{"k":[[ts,v],..]}}; points sorted by key.
std::string telemetryMessage(std::string_view sub, const DeviceId& device,
                             std::span<const storage::Point* const> points) {
  JsonWriter w;
  w.beginObject().key("type").string("telemetry").key("sub").string(sub).key("device_id").string(device.str());
  w.key("points").beginObject();
  std::string_view current;
  bool open = false;
  for (const storage::Point* p : points) {
    if (!open || p->key != current) {
      if (open) w.endArray();
      w.key(p->key).beginArray();
      current = p->key;
      open = true;
    }
    w.beginArray().integer(p->ts).value(p->value).endArray();
  }
  if (open) w.endArray();
  w.endObject().endObject();
  return w.take();
}

}  // namespace

LiveLimits LiveLimits::fromConfig(const Config& config) {
  LiveLimits l;
  l.max_queue_bytes = config.ws_max_queue_bytes;
  l.max_coalesced_bytes = config.ws_max_coalesced_bytes;
  l.max_subscriptions = config.ws_max_subscriptions;
  l.slow_close = std::chrono::seconds(config.ws_slow_close_s);
  return l;
}

std::string errorMessage(std::string_view sub, Code code, std::string_view detail) {
  JsonWriter w;
  w.beginObject().key("type").string("error");
  if (!sub.empty()) w.key("sub").string(sub);
  w.key("code").string(codeName(code)).key("detail").string(detail).endObject();
  return w.take();
}

std::string authOkMessage(const LiveIdentity& id) {
  JsonWriter w;
  w.beginObject().key("type").string("auth_ok").key("user").beginObject();
  w.key("id").string(id.principal.user_id.str());
  w.key("username").string(id.username);
  w.key("role").string(security::roleName(id.principal.role));
  w.key("tenant_id");
  if (id.principal.tenant_id.empty())
    w.null();
  else
    w.string(id.principal.tenant_id.str());
  w.endObject().key("expires_at").integer(id.expires_at_ms).endObject();
  return w.take();
}

// ---------------------------------------------------------------------------------------------
// LiveConnection
// ---------------------------------------------------------------------------------------------

LiveConnection::LiveConnection(const LiveLimits& limits, std::function<void()> wake, LiveCounters counters)
    : limits_(limits), wake_(std::move(wake)), counters_(counters) {}

LiveConnection::~LiveConnection() = default;

void LiveConnection::wakeIfNeeded(bool wake) {
  if (wake && wake_) wake_();
}

bool LiveConnection::enqueueLocked(std::string message) {
  queued_bytes_ += message.size();
  queue_.push_back(std::move(message));
  if (!writer_idle_) return false;
  writer_idle_ = false;
  return true;
}

bool LiveConnection::next(std::string& out) {
  std::lock_guard lock(mutex_);
  if (close_ && !close_->after_queue) {
    writer_idle_ = true;
    return false;
  }
  if (queue_.empty() && !close_ && coalescing_.load(std::memory_order_relaxed)) flushCoalescedLocked();
  if (queue_.empty()) {
    writer_idle_ = true;
    return false;
  }
  out = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= out.size();
  inflight_bytes_ += out.size();
  writer_idle_ = false;
  return true;
}

void LiveConnection::sent(std::size_t bytes) {
  {
    std::lock_guard lock(mutex_);
    inflight_bytes_ -= std::min(bytes, inflight_bytes_);
  }
  if (counters_.sent) counters_.sent->inc();
}

std::optional<LiveConnection::CloseRequest> LiveConnection::closeRequested() const {
  std::lock_guard lock(mutex_);
  return close_;
}

bool LiveConnection::closing() const {
  std::lock_guard lock(mutex_);
  return close_.has_value();
}

void LiveConnection::checkSlow(std::chrono::steady_clock::time_point now) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (close_ || !coalescing_.load(std::memory_order_relaxed) || now - coalescing_since_ < limits_.slow_close) return;
    closeLocked(kWsClosePolicy, "client too slow: not reading its messages", true);
    wake = writer_idle_;
    writer_idle_ = false;
  }
  wakeIfNeeded(wake);
}

void LiveConnection::send(std::string message) {
  sendImpl(nullptr, std::move(message));
}

void LiveConnection::sendFor(const LiveSubscription& sub, std::string message) {
  sendImpl(&sub, std::move(message));
}

void LiveConnection::sendImpl(const LiveSubscription* sub, std::string message) {
  bool wake;
  {
    std::lock_guard lock(mutex_);
    if (close_ || (sub && !sub->active)) return;
    if (queued_bytes_ + inflight_bytes_ + message.size() > 2 * limits_.max_queue_bytes) {
      closeLocked(kWsClosePolicy, "client too slow: too many unread messages", true);
      wake = writer_idle_;
      writer_idle_ = false;
    } else {
      wake = enqueueLocked(std::move(message));
    }
  }
  wakeIfNeeded(wake);
}

void LiveConnection::close(int code, std::string reason, bool after_queue) {
  bool wake;
  {
    std::lock_guard lock(mutex_);
    if (close_) return;
    closeLocked(code, std::move(reason), false, after_queue);
    wake = writer_idle_;
    writer_idle_ = false;
  }
  wakeIfNeeded(wake);
}

void LiveConnection::closeLocked(int code, std::string reason, bool slow, bool after_queue) {
  if (close_) return;
  // A close reason travels in a control frame: at most 123 bytes.
  if (reason.size() > 123) reason.resize(123);
  close_ = CloseRequest{code, std::move(reason), after_queue};
  if (!after_queue) {
    queue_.clear();
    queued_bytes_ = 0;
  }
  coalesced_.clear();
  coalesced_bytes_ = 0;
  coalescing_.store(false, std::memory_order_relaxed);
  for (auto& [id, sub] : subs_) {
    if (after_queue) queued_bytes_ -= std::min(sub->held_bytes, queued_bytes_);
    sub->held.clear();
    sub->held_bytes = 0;
  }
  if (slow && counters_.closed_slow) counters_.closed_slow->inc();
}

std::optional<LiveIdentity> LiveConnection::identity() const {
  std::lock_guard lock(mutex_);
  return identity_;
}

void LiveConnection::setExpiry(std::int64_t expires_at_ms) {
  std::lock_guard lock(mutex_);
  if (identity_) identity_->expires_at_ms = expires_at_ms;
}

std::size_t LiveConnection::queuedBytes() const {
  std::lock_guard lock(mutex_);
  return queued_bytes_ + inflight_bytes_;
}

bool LiveConnection::coalescing() const {
  return coalescing_.load(std::memory_order_relaxed);
}

std::size_t LiveConnection::coalescedBytes() const {
  std::lock_guard lock(mutex_);
  return coalesced_bytes_;
}

std::size_t LiveConnection::subscriptionCount() const {
  std::lock_guard lock(mutex_);
  return subs_.size();
}

void LiveConnection::pushTelemetry(LiveSubscription& sub, const DeviceId& device,
                                   std::span<const storage::Point* const> points) {
  // Serialized outside the lock when the message will most likely be queued as it is.
  std::string message;
  if (!coalescing_.load(std::memory_order_relaxed)) message = telemetryMessage(sub.id, device, points);
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (close_ || !sub.active) return;
    if (message.empty() && !coalescing_.load(std::memory_order_relaxed)) {
      message = telemetryMessage(sub.id, device, points);
    }
    const bool fits = !coalescing_.load(std::memory_order_relaxed) && !message.empty() &&
                      queued_bytes_ + inflight_bytes_ + message.size() <= limits_.max_queue_bytes;
    if (!fits) {
      coalesceLocked(sub, device, points);
      if (!close_ && writer_idle_ && !sub.pending) {
        writer_idle_ = false;
        wake = true;
      }
    } else if (sub.pending) {
      queued_bytes_ += message.size();
      sub.held_bytes += message.size();
      sub.held.push_back(std::move(message));
    } else {
      wake = enqueueLocked(std::move(message));
    }
    if (close_ && writer_idle_) {  // closed for slowness just now
      writer_idle_ = false;
      wake = true;
    }
  }
  wakeIfNeeded(wake);
}

void LiveConnection::coalesceLocked(LiveSubscription& sub, const DeviceId& device,
                                    std::span<const storage::Point* const> points) {
  if (!coalescing_.load(std::memory_order_relaxed)) {
    coalescing_.store(true, std::memory_order_relaxed);
    coalescing_since_ = std::chrono::steady_clock::now();
  }
  if (counters_.coalesced) counters_.coalesced->inc();
  auto [group, inserted] = coalesced_.try_emplace({sub.id, device.str()});
  if (inserted) coalesced_bytes_ += sub.id.size() + device.str().size() + kEntryOverhead;
  KeyValues& kv = group->second;
  for (const storage::Point* p : points) {
    auto it = kv.find(p->key);
    if (it == kv.end()) {
      std::string v = valueJson(p->value);
      coalesced_bytes_ += p->key.size() + v.size() + kEntryOverhead;
      kv.emplace(p->key, Latest{p->ts, std::move(v)});
    } else if (p->ts >= it->second.ts) {
      std::string v = valueJson(p->value);
      coalesced_bytes_ = coalesced_bytes_ + v.size() - it->second.json.size();
      it->second = Latest{p->ts, std::move(v)};
    }
  }
  if (coalesced_bytes_ > limits_.max_coalesced_bytes) {
    closeLocked(kWsClosePolicy, "client too slow: too much unread telemetry", true);
  }
}

void LiveConnection::flushCoalescedLocked() {
  decltype(coalesced_) kept;  // of subscriptions still waiting for their snapshot
  std::size_t kept_bytes = 0;
  for (auto& [where, kv] : coalesced_) {
    auto sub = subs_.find(where.first);
    if (sub == subs_.end() || !sub->second->active) continue;
    if (sub->second->pending) {
      for (const auto& [k, latest] : kv) kept_bytes += k.size() + latest.json.size() + kEntryOverhead;
      kept_bytes += where.first.size() + where.second.size() + kEntryOverhead;
      kept.emplace(where, std::move(kv));
      continue;
    }
    JsonWriter w;
    w.beginObject().key("type").string("telemetry").key("sub").string(where.first);
    w.key("device_id").string(where.second).key("points").beginObject();
    for (const auto& [k, latest] : kv) {
      w.key(k).beginArray().beginArray().integer(latest.ts).raw(latest.json).endArray().endArray();
    }
    w.endObject().key("coalesced").boolean(true).endObject();
    std::string message = w.take();
    queued_bytes_ += message.size();
    queue_.push_back(std::move(message));
  }
  coalesced_ = std::move(kept);
  coalesced_bytes_ = kept_bytes;
  if (coalesced_.empty()) coalescing_.store(false, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// LiveHub
// ---------------------------------------------------------------------------------------------

LiveHub::LiveHub(const LiveLimits& limits, storage::MetadataStore& metadata, storage::TimeSeriesStore& store,
                 const security::JwtIssuer& jwt, Metrics& metrics)
    : limits_(limits), metadata_(metadata), store_(store), jwt_(jwt) {
  counters_.sent = &metrics.counter("sw_ws_messages_sent_total", "WebSocket messages written to clients");
  counters_.coalesced =
      &metrics.counter("sw_ws_dropped_total", "WebSocket telemetry not sent as it was", R"(reason="coalesced")");
  counters_.closed_slow =
      &metrics.counter("sw_ws_dropped_total", "WebSocket telemetry not sent as it was", R"(reason="closed_slow")");
  metrics.gauge("sw_ws_connections", "Open WebSocket connections",
                [this] { return static_cast<double>(sockets_.load(std::memory_order_relaxed)); });
}

LiveHub::~LiveHub() = default;

std::shared_ptr<LiveConnection> LiveHub::newConnection(std::function<void()> wake) {
  auto c = std::make_shared<LiveConnection>(limits_, std::move(wake), counters_);
  std::optional<std::pair<int, std::string>> closed_all;
  {
    std::lock_guard lock(registry_mutex_);
    registry_.emplace(c.get(), c);
    closed_all = closed_all_;
  }
  if (closed_all) c->close(closed_all->first, closed_all->second);
  return c;
}

bool LiveHub::reserveSocket(std::size_t max_sockets) {
  if (sockets_.fetch_add(1) >= max_sockets) {
    sockets_.fetch_sub(1);
    return false;
  }
  return true;
}

void LiveHub::releaseSocket() {
  sockets_.fetch_sub(1);
}

Result<LiveIdentity> LiveHub::authenticate(std::string_view token) {
  auto claims = jwt_.verify(std::string(token));
  if (!claims) return std::unexpected(claims.error());
  auto user = metadata_.getUser(claims->user_id);
  if (!user) return fail(Code::kUnauthenticated, "the token's user no longer exists");
  auto role = security::parseRole(user->role);
  if (!role || user->tenant_id != claims->tenant_id) return fail(Code::kUnauthenticated, "token is no longer valid");
  LiveIdentity id;
  id.principal = Principal{user->id, user->tenant_id, *role};
  id.username = user->username;
  id.expires_at_ms = claims->expires_at * 1000;
  return id;
}

Status LiveHub::recheck(const LiveIdentity& identity) {
  auto user = metadata_.getUser(identity.principal.user_id);
  if (!user) return fail(Code::kUnauthenticated, "the user no longer exists");
  auto role = security::parseRole(user->role);
  if (!role || *role != identity.principal.role || user->tenant_id != identity.principal.tenant_id) {
    return fail(Code::kUnauthenticated, "the user's role changed");
  }
  return ok();
}

void LiveHub::attach(const std::shared_ptr<LiveConnection>& connection, LiveIdentity identity) {
  std::lock_guard lock(connection->mutex_);
  connection->identity_ = std::move(identity);
}

void LiveHub::detach(LiveConnection& connection) {
  std::vector<std::shared_ptr<LiveSubscription>> subs;
  {
    std::lock_guard lock(connection.mutex_);
    for (auto& [id, sub] : connection.subs_) {
      sub->active = false;
      subs.push_back(sub);
    }
    connection.subs_.clear();
    connection.queue_.clear();
    connection.queued_bytes_ = 0;
    connection.coalesced_.clear();
    connection.coalesced_bytes_ = 0;
  }
  for (auto& sub : subs) removeSubscription(sub->tenant, sub);
  std::lock_guard lock(registry_mutex_);
  registry_.erase(&connection);
}

LiveHub::Shard& LiveHub::shardOf(const TenantId& tenant) {
  return shards_[std::hash<TenantId>{}(tenant) % shards_.size()];
}

std::shared_ptr<LiveHub::Tenant> LiveHub::findTenant(const TenantId& tenant) {
  Shard& shard = shardOf(tenant);
  std::lock_guard lock(shard.mutex);
  auto it = shard.tenants.find(tenant);
  return it == shard.tenants.end() ? nullptr : it->second;
}

bool LiveHub::matches(const DeviceFilterSpec& f, const DeviceInfo& info) {
  if (!info.exists) return false;
  if (!f.type.empty() && info.type != f.type) return false;
  if (!f.label_key.empty()) {
    auto it = info.labels.find(f.label_key);
    if (it == info.labels.end()) return false;
    if (f.label_value && it->second != *f.label_value) return false;
  }
  return true;
}

std::shared_ptr<const LiveHub::DeviceInfo> LiveHub::lookupDevice(const TenantId& tenant, const DeviceId& device) {
  auto info = std::make_shared<DeviceInfo>();
  if (auto d = metadata_.getDevice(tenant, device)) {
    info->exists = true;
    info->type = std::move(d->type);
    info->labels = std::move(d->labels);
  }
  return info;
}

void LiveHub::subscribe(const std::shared_ptr<LiveConnection>& connection, const SubscribeRequest& request) {
  auto identity = connection->identity();
  if (!identity) {
    connection->send(errorMessage(request.sub, Code::kUnauthenticated, "authenticate first"));
    return;
  }
  subscribeLocked(connection, request, *identity);
}

void LiveHub::subscribeLocked(const std::shared_ptr<LiveConnection>& connection, const SubscribeRequest& request,
                              const LiveIdentity& identity) {
  auto refuse = [&](Code code, std::string_view detail) { connection->send(errorMessage(request.sub, code, detail)); };
  const Principal& p = identity.principal;
  if (p.role == security::Role::kSysadmin || p.tenant_id.empty()) {
    return refuse(Code::kPermissionDenied, "the system administrator has no access to tenant data");
  }
  const TenantId& tenant = p.tenant_id;
  const bool telemetry = request.stream == SubscribeRequest::Stream::kTelemetry;
  // Checked before the stores are read, and again (authoritatively) when adding.
  auto admissible = [&]() -> std::optional<std::pair<Code, std::string>> {
    if (connection->subs_.contains(request.sub)) return std::pair(Code::kInvalidArgument, "sub is already in use");
    if (connection->subs_.size() >= limits_.max_subscriptions) {
      return std::pair(Code::kResourceExhausted,
                       fmt::format("at most {} subscriptions per connection", limits_.max_subscriptions));
    }
    return std::nullopt;
  };
  {
    std::optional<std::pair<Code, std::string>> refused;
    {
      std::lock_guard lock(connection->mutex_);
      if (connection->close_) return;
      refused = admissible();
    }
    if (refused) return refuse(refused->first, refused->second);
  }
  // Every id must be the caller tenant's: another tenant's device is not_found, like the REST API.
  for (const auto& id : request.device_ids) {
    if (auto d = metadata_.getDevice(tenant, id); !d) {
      if (d.error().code == Code::kNotFound)
        return refuse(Code::kNotFound, fmt::format("device {} not found", id.str()));
      return refuse(d.error().code, d.error().message);
    }
  }

  auto sub = std::make_shared<LiveSubscription>();
  sub->id = request.sub;
  sub->stream = request.stream;
  sub->tenant = tenant;
  sub->device_ids = request.device_ids;
  sub->filter = request.filter;
  sub->keys = request.keys;
  sub->connection = connection;
  sub->pending = telemetry;
  {
    std::optional<std::pair<Code, std::string>> refused;
    {
      std::lock_guard lock(connection->mutex_);
      if (connection->close_) return;
      refused = admissible();
      if (!refused) connection->subs_.emplace(sub->id, sub);
    }
    if (refused) return refuse(refused->first, refused->second);
  }
  bool prime = false;
  std::uint64_t generation = 0;
  std::shared_ptr<Tenant> t;
  {
    Shard& shard = shardOf(tenant);
    std::lock_guard shard_lock(shard.mutex);
    auto& slot = shard.tenants[tenant];
    if (!slot) slot = std::make_shared<Tenant>();
    t = slot;
    std::lock_guard lock(t->mutex);
    if (!telemetry) {
      t->alarm_subs.push_back(sub);
    } else {
      if (sub->filter) {
        prime = t->filter_subs.empty();
        generation = t->generation;
        t->filter_subs.push_back(sub);
      } else {
        for (const auto& id : sub->device_ids) t->by_device[id].push_back(sub);
      }
      ++t->telemetry_subs;
      telemetry_subs_.fetch_add(1, std::memory_order_release);
    }
  }

  JsonWriter subscribed;
  subscribed.beginObject().key("type").string("subscribed").key("sub").string(sub->id).endObject();
  if (!telemetry) {
    // Bounded like any other message: subscribe/unsubscribe without reading must not grow the queue.
    connection->sendFor(*sub, subscribed.take());
    return;
  }
  if (prime) primeDeviceCache(*t, tenant, generation);

  // The snapshot: latest values of the subscribed devices, read after the subscription is in
  // place, so that nothing written meanwhile is missed (it follows the snapshot).
  JsonWriter w;
  w.beginObject().key("type").string("snapshot").key("sub").string(sub->id).key("devices").beginObject();
  bool too_large = false;
  Status failed = ok();
  auto addDevice = [&](const DeviceId& id) {
    auto latest = store_.latest(tenant, id, sub->keys);
    if (!latest) {
      if (latest.error().code != Code::kNotFound) failed = std::unexpected(latest.error());
      return;
    }
    w.key(id.str()).beginObject();
    for (const auto& [k, tv] : *latest) {
      w.key(k).beginObject().key("ts").integer(tv.ts).key("value").value(tv.value).endObject();
    }
    w.endObject();
    if (w.size() > limits_.max_queue_bytes) too_large = true;
  };
  bool truncated = false;
  if (sub->filter) {
    storage::DeviceFilter f;
    f.type = sub->filter->type;
    f.label_key = sub->filter->label_key;
    f.label_value = sub->filter->label_value;
    storage::PageRequest page;
    page.page_size = 500;
    std::size_t listed = 0;
    while (!too_large && failed) {
      auto devices = metadata_.listDevices(tenant, f, page);
      if (!devices) {
        failed = std::unexpected(devices.error());
        break;
      }
      for (const auto& d : devices->items) {
        if (listed == limits_.max_snapshot_devices) {
          truncated = true;
          break;
        }
        ++listed;
        addDevice(d.id);
        if (too_large || !failed) break;
      }
      if (truncated || devices->next_cursor.empty()) break;
      page.after = devices->next_cursor;
    }
  } else {
    for (const auto& id : sub->device_ids) {
      addDevice(id);
      if (too_large || !failed) break;
    }
  }
  w.endObject();
  if (truncated) w.key("truncated").boolean(true);
  w.endObject();
  if (too_large || !failed) {
    unsubscribe(*connection, sub->id);
    if (too_large) {
      return refuse(Code::kResourceExhausted,
                    "the snapshot would be too large; subscribe to fewer devices or restrict keys");
    }
    return refuse(failed.error().code, failed.error().message);
  }
  std::string snapshot = w.take();
  bool wake = false;
  {
    std::lock_guard lock(connection->mutex_);
    if (!sub->active || connection->close_) return;
    std::string s = subscribed.take();
    // The same bound as send(): a client that keeps subscribing (or re-subscribing) without
    // reading would otherwise queue snapshots without limit.
    if (connection->queued_bytes_ + connection->inflight_bytes_ + s.size() + snapshot.size() >
        2 * limits_.max_queue_bytes) {
      connection->closeLocked(kWsClosePolicy, "client too slow: too many unread messages", true);
      if (connection->writer_idle_) {
        connection->writer_idle_ = false;
        wake = true;
      }
    } else {
      connection->queued_bytes_ += s.size() + snapshot.size();
      connection->queue_.push_back(std::move(s));
      connection->queue_.push_back(std::move(snapshot));
      // Telemetry that arrived while the snapshot was read follows it, in order (its bytes are
      // already counted).
      for (auto& m : sub->held) connection->queue_.push_back(std::move(m));
      sub->held.clear();
      sub->held_bytes = 0;
      sub->pending = false;
      if (connection->writer_idle_) {
        connection->writer_idle_ = false;
        wake = true;
      }
    }
  }
  connection->wakeIfNeeded(wake);
}

void LiveHub::primeDeviceCache(Tenant& t, const TenantId& tenant, std::uint64_t generation) {
  // The tenant's devices (type, labels), read once when its first filter subscription starts, so
  // that the hot path finds them without a lookup. Skipped when a change raced with the read.
  std::vector<std::pair<DeviceId, std::shared_ptr<const DeviceInfo>>> read;
  storage::PageRequest page;
  page.page_size = 1000;
  while (read.size() < limits_.max_cached_devices_per_tenant) {
    auto devices = metadata_.listDevices(tenant, storage::DeviceFilter{}, page);
    if (!devices) return;
    for (auto& d : devices->items) {
      auto info = std::make_shared<DeviceInfo>();
      info->exists = true;
      info->type = std::move(d.type);
      info->labels = std::move(d.labels);
      read.emplace_back(d.id, std::move(info));
    }
    if (devices->next_cursor.empty()) break;
    page.after = devices->next_cursor;
  }
  std::lock_guard lock(t.mutex);
  if (t.generation != generation || t.filter_subs.empty()) return;
  for (auto& [id, info] : read) {
    if (t.devices.size() >= limits_.max_cached_devices_per_tenant) break;
    t.devices.try_emplace(id, std::move(info));
  }
}

bool LiveHub::unsubscribe(LiveConnection& connection, std::string_view sub_id) {
  std::shared_ptr<LiveSubscription> sub;
  {
    std::lock_guard lock(connection.mutex_);
    auto it = connection.subs_.find(sub_id);
    if (it == connection.subs_.end()) return false;
    sub = it->second;
    connection.subs_.erase(it);
    sub->active = false;
    connection.queued_bytes_ -= std::min(sub->held_bytes, connection.queued_bytes_);
    sub->held.clear();
    sub->held_bytes = 0;
  }
  removeSubscription(sub->tenant, sub);
  return true;
}

void LiveHub::removeSubscription(const TenantId& tenant, const std::shared_ptr<LiveSubscription>& sub) {
  Shard& shard = shardOf(tenant);
  std::lock_guard shard_lock(shard.mutex);
  auto it = shard.tenants.find(tenant);
  if (it == shard.tenants.end()) return;
  Tenant& t = *it->second;
  bool erase_tenant = false;
  {
    std::lock_guard lock(t.mutex);
    bool removed = false;
    if (sub->stream == SubscribeRequest::Stream::kAlarms) {
      removed = std::erase(t.alarm_subs, sub) > 0;
    } else if (sub->filter) {
      removed = std::erase(t.filter_subs, sub) > 0;
      if (t.filter_subs.empty()) {
        t.devices.clear();
        ++t.generation;
      }
    } else {
      for (const auto& id : sub->device_ids) {
        auto d = t.by_device.find(id);
        if (d == t.by_device.end()) continue;
        removed |= std::erase(d->second, sub) > 0;
        if (d->second.empty()) t.by_device.erase(d);
      }
      // A deleted device's entries are gone already; the subscription still counted.
      removed = true;
    }
    if (removed && sub->stream == SubscribeRequest::Stream::kTelemetry && t.telemetry_subs > 0) {
      --t.telemetry_subs;
      telemetry_subs_.fetch_sub(1, std::memory_order_release);
    }
    erase_tenant = t.empty();
  }
  if (erase_tenant) shard.tenants.erase(it);
}

void LiveHub::telemetryStored(const ingest::DeviceRef& device, std::span<const storage::Point> points) {
  if (telemetry_subs_.load(std::memory_order_acquire) == 0 || points.empty()) return;
  std::shared_ptr<Tenant> t = findTenant(device.tenant_id);
  if (!t) return;
  std::vector<std::shared_ptr<LiveSubscription>> matched;
  bool need_info = false;
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(t->mutex);
    if (t->telemetry_subs == 0) return;
    if (auto it = t->by_device.find(device.device_id); it != t->by_device.end()) matched = it->second;
    if (!t->filter_subs.empty()) {
      if (auto it = t->devices.find(device.device_id); it != t->devices.end()) {
        for (const auto& s : t->filter_subs)
          if (matches(*s->filter, *it->second)) matched.push_back(s);
      } else {
        need_info = true;
        generation = t->generation;
      }
    }
  }
  if (need_info) {
    // A device the cache does not know (created by a gateway, or beyond the cache's bound): read
    // once, then kept until it changes.
    auto info = lookupDevice(device.tenant_id, device.device_id);
    std::lock_guard lock(t->mutex);
    if (t->generation == generation && !t->filter_subs.empty() &&
        t->devices.size() < limits_.max_cached_devices_per_tenant) {
      t->devices.emplace(device.device_id, info);
    }
    for (const auto& s : t->filter_subs)
      if (matches(*s->filter, *info)) matched.push_back(s);
  }
  if (matched.empty()) return;

  // The points grouped by key, each key's points in their order.
  std::vector<const storage::Point*> sorted;
  sorted.reserve(points.size());
  for (const auto& p : points) sorted.push_back(&p);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const storage::Point* a, const storage::Point* b) { return a->key < b->key; });
  std::vector<const storage::Point*> selected;
  for (const auto& sub : matched) {
    auto connection = sub->connection.lock();
    if (!connection) continue;
    std::span<const storage::Point* const> view(sorted);
    if (!sub->keys.empty()) {
      selected.clear();
      for (const storage::Point* p : sorted) {
        if (std::binary_search(sub->keys.begin(), sub->keys.end(), p->key)) selected.push_back(p);
      }
      view = selected;
    }
    if (!view.empty()) connection->pushTelemetry(*sub, device.device_id, view);
  }
}

void LiveHub::publishAlarm(const TenantId& tenant, std::string_view alarm_json) {
  std::shared_ptr<Tenant> t = findTenant(tenant);
  if (!t) return;
  std::vector<std::shared_ptr<LiveSubscription>> subs;
  {
    std::lock_guard lock(t->mutex);
    subs = t->alarm_subs;
  }
  for (const auto& sub : subs) {
    auto connection = sub->connection.lock();
    if (!connection) continue;
    JsonWriter w;
    w.beginObject().key("type").string("alarm").key("sub").string(sub->id).key("alarm").raw(alarm_json).endObject();
    connection->sendFor(*sub, w.take());
  }
}

void LiveHub::refreshDevice(const TenantId& tenant, const DeviceId& device, bool deleted) {
  std::shared_ptr<Tenant> t = findTenant(tenant);
  if (!t) return;
  std::uint64_t generation;
  {
    std::lock_guard lock(t->mutex);
    t->devices.erase(device);
    generation = ++t->generation;
    if (deleted) t->by_device.erase(device);
    if (deleted || t->filter_subs.empty()) return;
  }
  auto info = lookupDevice(tenant, device);
  std::lock_guard lock(t->mutex);
  if (t->generation == generation && !t->filter_subs.empty() &&
      t->devices.size() < limits_.max_cached_devices_per_tenant) {
    t->devices.emplace(device, std::move(info));
  }
}

void LiveHub::deviceChanged(const TenantId& tenant, const DeviceId& device) {
  refreshDevice(tenant, device, false);
}

void LiveHub::deviceDeleted(const TenantId& tenant, const DeviceId& device) {
  refreshDevice(tenant, device, true);
}

std::vector<std::shared_ptr<LiveConnection>> LiveHub::connectionsWhere(
    const std::function<bool(const LiveIdentity&)>& pred) {
  std::vector<std::shared_ptr<LiveConnection>> all;
  {
    std::lock_guard lock(registry_mutex_);
    for (auto& [ptr, weak] : registry_) {
      if (auto c = weak.lock()) all.push_back(std::move(c));
    }
  }
  std::vector<std::shared_ptr<LiveConnection>> out;
  for (auto& c : all) {
    auto id = c->identity();
    if (id && pred(*id)) out.push_back(std::move(c));
  }
  return out;
}

void LiveHub::tenantDeleted(const TenantId& tenant) {
  for (auto& c : connectionsWhere([&](const LiveIdentity& id) { return id.principal.tenant_id == tenant; })) {
    c->send(errorMessage({}, Code::kUnauthenticated, "the tenant was deleted"));
    c->close(kWsCloseUnauthenticated, "the tenant was deleted", true);
  }
}

void LiveHub::userChanged(const UserId& user) {
  for (auto& c : connectionsWhere([&](const LiveIdentity& id) { return id.principal.user_id == user; })) {
    auto id = c->identity();
    if (!id || recheck(*id)) continue;
    c->send(errorMessage({}, Code::kUnauthenticated, "the user was deleted or its role changed"));
    c->close(kWsCloseUnauthenticated, "the user was deleted or its role changed", true);
  }
}

void LiveHub::closeAll(int code, const std::string& reason) {
  std::vector<std::shared_ptr<LiveConnection>> all;
  {
    std::lock_guard lock(registry_mutex_);
    closed_all_.emplace(code, reason);
    for (auto& [ptr, weak] : registry_) {
      if (auto c = weak.lock()) all.push_back(std::move(c));
    }
  }
  for (auto& c : all) c->close(code, reason);
}

std::size_t LiveHub::attachedConnections() const {
  std::lock_guard lock(registry_mutex_);
  return registry_.size();
}

void registerLiveRoutes(Router& router, Services&) {
  // The WebSocket upgrade is taken by the HTTP server before routing (ws_session.cc): what
  // reaches the router is a plain GET.
  router.add("GET", "/api/v1/ws", Auth::kPublic, [](Context&) {
    return problem(400, "invalid_argument", "GET /api/v1/ws needs a WebSocket upgrade (docs/websocket.md)");
  });
}

}  // namespace sw::api
