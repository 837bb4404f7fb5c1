#include "ingest/transports/mqtt/broker.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/clock.h"
#include "ingest/codecs/codec_util.h"
#include "ingest/transports/mqtt/topic.h"

namespace sw::mqtt {

struct Broker::TenantSpace {
  mutable std::shared_mutex mutex;
  TopicTree tree;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions;  // by client id
  std::map<std::string, std::shared_ptr<const Message>> retained;      // by internal topic
  std::size_t retained_bytes = 0;                                      // topics + payloads
};

struct Broker::DeviceEntry {
  TenantId tenant;
  std::vector<std::weak_ptr<ClientSink>> sinks;  // its own MQTT connections
  DeviceId via_gateway;                          // sub-device announced by this gateway
  std::string name;                              // the sub-device's name at the gateway
  std::optional<std::int64_t> last_connect, last_disconnect, last_activity;
  bool changed = false;  // listed in changed_
};

struct Broker::PendingRpc {
  TenantId tenant;
  DeviceId device;
  std::uint32_t id = 0;
  std::string method, params_json;
  bool oneway = false;
  std::chrono::steady_clock::time_point deadline;
  std::function<void(ingest::RpcOutcome)> done;
};

struct Broker::DelayedWill {
  TenantId tenant;
  std::string client_id;
  std::shared_ptr<const Message> will;
  std::chrono::steady_clock::time_point due;
};

namespace {
constexpr std::size_t kMaxQueuedRpcPerDevice = 100;

std::string jsonString(std::string_view s) {
  std::string out;
  ingest::appendJsonString(out, s);
  return out;
}

void appendValue(const storage::Value& v, std::string& out) {
  if (const double* d = std::get_if<double>(&v)) {
    if (std::isfinite(*d)) {
      out += fmt::format("{}", *d);
    } else {
      out += "null";
    }
  } else if (const bool* b = std::get_if<bool>(&v)) {
    out += *b ? "true" : "false";
  } else if (const std::string* s = std::get_if<std::string>(&v)) {
    ingest::appendJsonString(out, *s);
  } else {
    out += std::get<storage::JsonText>(v).text;
  }
}

// [{"ts":ms,"values":{...}}, ...] grouping consecutive points of the same timestamp; a key that
// repeats (two messages of one batch with the same timestamp) starts a new entry, so no object
// has duplicate keys.
std::string pointsJson(std::span<const storage::Point> points) {
  std::string out = "[";
  std::vector<std::string_view> keys;
  for (std::size_t i = 0; i < points.size();) {
    if (i) out += ',';
    out += fmt::format("{{\"ts\":{},\"values\":{{", points[i].ts);
    const std::int64_t ts = points[i].ts;
    keys.clear();
    for (; i < points.size() && points[i].ts == ts; ++i) {
      if (std::find(keys.begin(), keys.end(), points[i].key) != keys.end()) break;
      if (!keys.empty()) out += ',';
      keys.push_back(points[i].key);
      ingest::appendJsonString(out, points[i].key);
      out += ':';
      appendValue(points[i].value, out);
    }
    out += "}}";
  }
  out += ']';
  return out;
}

std::shared_ptr<Message> serverMessage(std::string topic, std::string payload, std::uint8_t qos) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  m->props.content_type = "application/json";
  return m;
}
}  // namespace

Broker::Broker(const Config& config, Metrics& metrics)
    : config_(config),
      stats_{metrics.counter("sw_mqtt_connects_total", "MQTT CONNECTs by outcome", R"(result="accepted")"),
             metrics.counter("sw_mqtt_connects_total", "MQTT CONNECTs by outcome", R"(result="refused")"),
             metrics.counter("sw_mqtt_messages_received_total", "MQTT PUBLISH packets received"),
             metrics.counter("sw_mqtt_messages_sent_total", "MQTT PUBLISH packets sent"),
             metrics.counter("sw_mqtt_messages_dropped_total", "MQTT messages dropped", R"(reason="queue_full")"),
             metrics.counter("sw_mqtt_messages_dropped_total", "MQTT messages dropped", R"(reason="expired")"),
             metrics.counter("sw_mqtt_messages_dropped_total", "MQTT messages dropped", R"(reason="not_authorized")"),
             metrics.counter("sw_mqtt_messages_dropped_total", "MQTT messages dropped", R"(reason="too_large")"),
             metrics.counter("sw_mqtt_messages_dropped_total", "MQTT messages dropped", R"(reason="invalid")"),
             metrics.counter("sw_mqtt_messages_dropped_total", "MQTT messages dropped", R"(reason="rate_limited")")} {
  metrics.gauge("sw_mqtt_connections", "Open MQTT connections",
                [this] { return static_cast<double>(stats_.connections.load()); });
  metrics.gauge("sw_mqtt_sessions", "MQTT sessions (connected and persistent)",
                [this] { return static_cast<double>(sessionCount()); });
  metrics.gauge("sw_mqtt_retained", "Retained MQTT messages", [this] { return static_cast<double>(retainedCount()); });
}

Broker::~Broker() = default;

Broker::TenantSpace& Broker::space(const TenantId& tenant) {
  {
    std::shared_lock lock(spaces_mutex_);
    if (auto it = spaces_.find(tenant); it != spaces_.end()) return *it->second;
  }
  std::unique_lock lock(spaces_mutex_);
  auto& slot = spaces_[tenant];
  if (!slot) slot = std::make_unique<TenantSpace>();
  return *slot;
}

const Broker::TenantSpace* Broker::findSpace(const TenantId& tenant) const {
  std::shared_lock lock(spaces_mutex_);
  auto it = spaces_.find(tenant);
  return it == spaces_.end() ? nullptr : it->second.get();
}

Broker::Opened Broker::openSession(const TenantId& tenant, const std::string& client_id, ClientKind kind,
                                   const DeviceId& device, bool clean_start, std::uint32_t expiry_s,
                                   std::shared_ptr<ClientSink> sink) {
  {
    std::lock_guard lock(wills_mutex_);
    std::erase_if(wills_, [&](const DelayedWill& w) { return w.tenant == tenant && w.client_id == client_id; });
  }
  TenantSpace& ts = space(tenant);
  std::unique_lock lock(ts.mutex);
  Opened out;
  std::shared_ptr<Session::Sink> previous;
  auto it = ts.sessions.find(client_id);
  if (it != ts.sessions.end()) {
    std::shared_ptr<Session> old = it->second;
    previous = old->sink();
    // A session belongs to one principal: another device (or an app) reusing the client id
    // starts afresh rather than inheriting its subscriptions.
    if (old->kind() != kind || old->device() != device) return out;
    if (clean_start) {
      removeSessionLocked(ts, old);
    } else {
      out.session = old;
      out.present = true;
    }
  }
  if (!out.session) {
    // Every session holds memory (and persistent ones outlive their connection): bounded per
    // tenant, so no client can exhaust the server with ever new client ids.
    if (ts.sessions.size() >= config_.mqtt_max_sessions_per_tenant) {
      out.quota_exceeded = true;
      return out;
    }
    out.session = std::make_shared<Session>(tenant, client_id, kind, device, config_.mqtt_max_queued);
    ts.sessions.emplace(client_id, out.session);
  }
  out.session->setExpiry(expiry_s);
  out.session->prepareResend();
  // Attached under the tenant lock, so that neither the previous connection's close nor the
  // expiry sweep can remove the session between its lookup and its attachment.
  out.session->attach(std::move(sink));
  lock.unlock();
  // The previous connection learns it was taken over; it detaches itself later, and detach()
  // ignores a sink that is no longer the session's.
  if (previous) previous->kick(reason::kSessionTakenOver);
  return out;
}

void Broker::removeSessionLocked(TenantSpace& ts, const std::shared_ptr<Session>& session) {
  for (const auto& [filter, options] : session->subscriptions()) {
    auto shared = parseSharedFilter(filter);
    if (!shared) continue;
    // The tree holds internal filters; device sessions store theirs rewritten already.
    ts.tree.remove(shared->filter, shared->group, session.get());
  }
  session->clear();
  auto it = ts.sessions.find(session->clientId());
  if (it != ts.sessions.end() && it->second == session) ts.sessions.erase(it);
}

void Broker::closeSession(const std::shared_ptr<Session>& session, const ClientSink* sink,
                          std::shared_ptr<const Message> will, std::uint32_t will_delay_s) {
  const bool was_attached = session->detach(sink);
  const std::uint32_t expiry = session->expiry();
  // Taken over by a new connection: a delayed will is cancelled by that reconnection.
  if (!was_attached && will_delay_s > 0) will.reset();
  if (will) {
    // Message expiry of a will counts from its publication, not from CONNECT.
    if (will->props.message_expiry_interval) {
      auto copy = std::make_shared<Message>(*will);
      copy->expires = std::chrono::steady_clock::now() + std::chrono::seconds(*will->props.message_expiry_interval);
      copy->props.message_expiry_interval.reset();
      will = std::move(copy);
    }
    const std::uint32_t delay = std::min(will_delay_s, expiry);
    if (delay == 0) {
      publish(session->tenant(), std::move(will));
    } else {
      std::lock_guard lock(wills_mutex_);
      wills_.push_back(DelayedWill{session->tenant(), session->clientId(), std::move(will),
                                   std::chrono::steady_clock::now() + std::chrono::seconds(delay)});
    }
  }
  if (expiry == 0 && !session->connected()) {
    TenantSpace& ts = space(session->tenant());
    std::unique_lock lock(ts.mutex);
    if (!session->connected()) removeSessionLocked(ts, session);
  }
}

bool Broker::subscribe(const std::shared_ptr<Session>& session, const std::string& internal, const std::string& group,
                       const SubscriptionOptions& options, std::uint8_t retain_handling) {
  TenantSpace& ts = space(session->tenant());
  bool is_new;
  {
    std::unique_lock lock(ts.mutex);
    // A session that was replaced must not come back into the tree (nothing would remove it).
    auto it = ts.sessions.find(session->clientId());
    if (it == ts.sessions.end() || it->second != session) return false;
    // The session records the internal filter (with its $share prefix) so that removal at the
    // session's end needs no knowledge of the client's topic rewriting.
    const std::string key = group.empty() ? internal : "$share/" + group + "/" + internal;
    is_new = session->addSubscription(key, options);
    ts.tree.add(internal, group, session, options);
  }
  if (!group.empty() || retain_handling == 2 || (retain_handling == 1 && !is_new)) return true;
  std::shared_lock lock(ts.mutex);
  deliverRetained(ts, session, internal, options);
  return true;
}

void Broker::deliverRetained(TenantSpace& ts, const std::shared_ptr<Session>& session, std::string_view internal_filter,
                             const SubscriptionOptions& options) {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [topic, msg] : ts.retained) {
    if (msg->expires && *msg->expires <= now) continue;
    if (!topicMatches(internal_filter, topic)) continue;
    if (session->kind() == ClientKind::kDevice && msg->origin_device == session->device()) continue;
    Delivery d{msg, std::min(msg->qos, options.qos), true, {}};
    if (options.subscription_id) d.subscription_ids.push_back(options.subscription_id);
    if (!session->deliver(std::move(d))) stats_.dropped_queue_full.inc();
  }
}

bool Broker::unsubscribe(const std::shared_ptr<Session>& session, const std::string& internal,
                         const std::string& group) {
  TenantSpace& ts = space(session->tenant());
  std::unique_lock lock(ts.mutex);
  const std::string key = group.empty() ? internal : "$share/" + group + "/" + internal;
  const bool had = session->removeSubscription(key);
  ts.tree.remove(internal, group, session.get());
  return had;
}

std::size_t Broker::publish(const TenantId& tenant, std::shared_ptr<const Message> msg) {
  TenantSpace& ts = space(tenant);
  if (msg->retain) {
    std::unique_lock lock(ts.mutex);
    auto size = [](const Message& m) { return m.topic.size() + m.payload.size(); };
    auto it = ts.retained.find(msg->topic);
    const std::size_t old_bytes = it == ts.retained.end() ? 0 : size(*it->second);
    if (msg->payload.empty()) {
      if (it != ts.retained.end()) ts.retained.erase(it);
      ts.retained_bytes -= old_bytes;
    } else if ((it != ts.retained.end() || ts.retained.size() < config_.mqtt_max_retained) &&
               ts.retained_bytes - old_bytes + size(*msg) <= config_.mqtt_max_retained_bytes) {
      ts.retained[msg->topic] = msg;
      ts.retained_bytes += size(*msg) - old_bytes;
    } else {
      stats_.dropped_queue_full.inc();  // the tenant's retained store is full: not retained
    }
  }
  // One delivery per session, at the highest QoS of its matching subscriptions, carrying every
  // matching subscription identifier (MQTT 5 section 3.3.4).
  std::vector<std::pair<std::shared_ptr<Session>, Delivery>> targets;
  std::unordered_map<const Session*, std::size_t> index;  // session -> position in targets
  {
    std::shared_lock lock(ts.mutex);
    ts.tree.match(msg->topic, [&](const TopicTree::Entry& e) {
      const Session* s = e.session.get();
      if (!msg->origin_device.empty() && s->kind() == ClientKind::kDevice && s->device() == msg->origin_device) return;
      if (e.options.no_local && !msg->origin_client.empty() && s->clientId() == msg->origin_client) return;
      const std::uint8_t qos = std::min(msg->qos, e.options.qos);
      const bool retain = e.options.retain_as_published && msg->retain;
      auto [it, inserted] = index.try_emplace(s, targets.size());
      if (inserted) {
        targets.emplace_back(e.session, Delivery{msg, qos, retain, {}});
      } else {
        Delivery& d = targets[it->second].second;
        d.qos = std::max(d.qos, qos);
        d.retain = d.retain || retain;
      }
      if (e.options.subscription_id) targets[it->second].second.subscription_ids.push_back(e.options.subscription_id);
    });
  }
  std::size_t queued = 0;
  for (auto& [s, d] : targets) {
    if (s->deliver(std::move(d))) {
      ++queued;
    } else {
      stats_.dropped_queue_full.inc();
    }
  }
  return queued;
}

bool Broker::hasSubscribers(const TenantId& tenant, std::string_view topic) const {
  const TenantSpace* ts = findSpace(tenant);
  if (!ts) return false;
  std::shared_lock lock(ts->mutex);
  return ts->tree.anyMatch(topic);
}

void Broker::telemetryStored(const ingest::DeviceRef& device, std::span<const storage::Point> points) {
  activity(device.tenant_id, device.device_id);
  std::string topic = deviceTopicPrefix(device.device_id) + "telemetry";
  if (!hasSubscribers(device.tenant_id, topic)) return;
  auto msg = serverMessage(std::move(topic), pointsJson(points), 1);
  msg->origin_device = device.device_id;
  publish(device.tenant_id, std::move(msg));
}

void Broker::attributesStored(const ingest::DeviceRef& device, std::string_view json_object) {
  activity(device.tenant_id, device.device_id);
  std::string topic = deviceTopicPrefix(device.device_id) + "attributes";
  if (!hasSubscribers(device.tenant_id, topic)) return;
  auto msg = serverMessage(std::move(topic), std::string(json_object), 1);
  msg->origin_device = device.device_id;
  publish(device.tenant_id, std::move(msg));
}

void Broker::deviceConnected(const TenantId& tenant, const DeviceId& device, std::shared_ptr<ClientSink> sink) {
  std::lock_guard lock(devices_mutex_);
  DeviceEntry& e = devices_[device];
  e.tenant = tenant;
  std::erase_if(e.sinks, [](const auto& w) { return w.expired(); });
  e.sinks.push_back(sink);
  e.last_connect = nowMs();
  e.last_activity = e.last_connect;
  markChanged(device, e);
}

void Broker::deviceDisconnected(const DeviceId& device, const ClientSink* sink) {
  std::lock_guard lock(devices_mutex_);
  auto it = devices_.find(device);
  if (it == devices_.end()) return;
  std::erase_if(it->second.sinks, [&](const auto& w) {
    auto s = w.lock();
    return !s || s.get() == sink;
  });
  it->second.last_disconnect = nowMs();
  markChanged(device, it->second);
  // Sub-devices served by this gateway go offline with it.
  if (it->second.sinks.empty()) {
    const auto when = it->second.last_disconnect;
    for (auto& [id, e] : devices_) {
      if (e.via_gateway == device) {
        e.via_gateway = DeviceId();
        e.last_disconnect = when;
        markChanged(id, e);
      }
    }
  }
}

void Broker::subDeviceOnline(const TenantId& tenant, const DeviceId& gateway, const DeviceId& device,
                             const std::string& name) {
  std::lock_guard lock(devices_mutex_);
  DeviceEntry& e = devices_[device];
  if (e.via_gateway != gateway) e.last_connect = nowMs();
  e.tenant = tenant;
  e.via_gateway = gateway;
  e.name = name;
  e.last_activity = nowMs();
  markChanged(device, e);
}

void Broker::subDeviceOffline(const DeviceId& device) {
  std::lock_guard lock(devices_mutex_);
  auto it = devices_.find(device);
  if (it == devices_.end() || it->second.via_gateway.empty()) return;
  it->second.via_gateway = DeviceId();
  it->second.last_disconnect = nowMs();
  markChanged(device, it->second);
}

void Broker::activity(const TenantId& tenant, const DeviceId& device) {
  const std::int64_t now = nowMs();
  std::lock_guard lock(devices_mutex_);
  auto it = devices_.find(device);
  if (it == devices_.end()) {
    if (devices_.size() >= kMaxTrackedDevices) return;
    it = devices_.emplace(device, DeviceEntry{}).first;
    it->second.tenant = tenant;
  }
  it->second.last_activity = now;
  markChanged(device, it->second);
}

void Broker::markChanged(const DeviceId& device, DeviceEntry& e) {
  if (e.changed) return;
  e.changed = true;
  changed_.push_back(device);
}

std::vector<storage::DeviceActivity> Broker::takeChangedStates() {
  std::vector<storage::DeviceActivity> out;
  std::lock_guard lock(devices_mutex_);
  out.reserve(changed_.size());
  for (const DeviceId& id : changed_) {
    auto it = devices_.find(id);
    if (it == devices_.end()) continue;
    it->second.changed = false;
    if (it->second.tenant.empty()) continue;
    out.push_back(storage::DeviceActivity{it->second.tenant, id, it->second.last_connect, it->second.last_disconnect,
                                          it->second.last_activity});
  }
  changed_.clear();
  // Offline devices need no live entry once their state is saved: the REST API falls back to
  // the saved values, so the table holds connected devices and recent activity only.
  std::erase_if(devices_, [](const auto& kv) {
    const DeviceEntry& e = kv.second;
    return !e.changed && e.via_gateway.empty() &&
           std::none_of(e.sinks.begin(), e.sinks.end(), [](const auto& w) { return !w.expired(); });
  });
  return out;
}

bool Broker::online(const DeviceId& device) const {
  auto it = devices_.find(device);
  if (it == devices_.end()) return false;
  if (!it->second.via_gateway.empty()) return true;
  return std::any_of(it->second.sinks.begin(), it->second.sinks.end(), [](const auto& w) { return !w.expired(); });
}

ingest::DeviceState Broker::state(const TenantId& tenant, const DeviceId& device) const {
  std::lock_guard lock(devices_mutex_);
  ingest::DeviceState st;
  auto it = devices_.find(device);
  if (it == devices_.end() || (!it->second.tenant.empty() && it->second.tenant != tenant)) return st;
  st.online = online(device);
  st.last_connect = it->second.last_connect;
  st.last_disconnect = it->second.last_disconnect;
  st.last_activity = it->second.last_activity;
  return st;
}

std::vector<DeviceId> Broker::onlineDevices(const TenantId& tenant) const {
  // The table holds connected devices and recent activity only (takeChangedStates prunes the
  // rest), so a scan is bounded by what is live, not by the number of devices.
  std::vector<DeviceId> out;
  std::lock_guard lock(devices_mutex_);
  for (const auto& [id, entry] : devices_) {
    if (entry.tenant == tenant && online(id)) out.push_back(id);
  }
  return out;
}

void Broker::sendRpc(const TenantId& tenant, const DeviceId& device, std::uint32_t id, const std::string& method,
                     const std::string& params_json) {
  DeviceId gateway;
  std::string name;
  {
    std::lock_guard lock(devices_mutex_);
    if (auto it = devices_.find(device); it != devices_.end()) {
      gateway = it->second.via_gateway;
      name = it->second.name;
    }
  }
  const std::string request = fmt::format(R"({{"method":{},"params":{}}})", jsonString(method), params_json);
  if (!gateway.empty()) {
    const std::string body = fmt::format(R"({{"device":{},"data":{{"id":{},"method":{},"params":{}}}}})",
                                         jsonString(name), id, jsonString(method), params_json);
    publish(tenant, serverMessage(gatewayTopicPrefix(gateway) + "rpc", body, 1));
  }
  publish(tenant, serverMessage(fmt::format("{}rpc/request/{}", deviceTopicPrefix(device), id), request, 1));
}

void Broker::rpc(ingest::RpcRequest request, std::function<void(ingest::RpcOutcome)> done) {
  const std::uint32_t id = next_rpc_id_.fetch_add(1);
  bool is_online;
  {
    std::lock_guard lock(devices_mutex_);
    is_online = online(request.device);
    if (auto it = devices_.find(request.device);
        is_online && it != devices_.end() && it->second.tenant != request.tenant) {
      is_online = false;
    }
  }
  PendingRpc p{request.tenant,
               request.device,
               id,
               request.method,
               request.params_json,
               request.oneway,
               std::chrono::steady_clock::now() + request.timeout,
               std::move(done)};
  if (!is_online) {
    if (!request.queue) {
      p.done(ingest::RpcOutcome{ingest::RpcOutcome::Kind::kOffline, id, {}});
      return;
    }
    std::unique_lock lock(rpc_mutex_);
    auto& q = queued_rpc_[request.device];
    if (q.size() >= kMaxQueuedRpcPerDevice) {
      lock.unlock();
      p.done(ingest::RpcOutcome{ingest::RpcOutcome::Kind::kBusy, id, {}});
      return;
    }
    if (request.oneway) {
      auto done_now = p.done;
      p.done = nullptr;
      q.push_back(std::move(p));
      lock.unlock();
      done_now(ingest::RpcOutcome{ingest::RpcOutcome::Kind::kQueued, id, {}});
    } else {
      q.push_back(std::move(p));
    }
    return;
  }
  if (request.oneway) {
    sendRpc(request.tenant, request.device, id, request.method, request.params_json);
    p.done(ingest::RpcOutcome{ingest::RpcOutcome::Kind::kSent, id, {}});
    return;
  }
  {
    std::lock_guard lock(rpc_mutex_);
    pending_rpc_.emplace(std::make_pair(request.device, id), std::move(p));
  }
  sendRpc(request.tenant, request.device, id, request.method, request.params_json);
}

void Broker::deviceReady(const TenantId& tenant, const DeviceId& device) {
  std::vector<PendingRpc> ready;
  {
    std::lock_guard lock(rpc_mutex_);
    auto it = queued_rpc_.find(device);
    if (it == queued_rpc_.end()) return;
    std::erase_if(it->second, [&](PendingRpc& p) {
      if (p.tenant != tenant) return false;
      ready.push_back(std::move(p));
      return true;
    });
    if (it->second.empty()) queued_rpc_.erase(it);
    for (auto& p : ready) {
      if (!p.oneway)
        pending_rpc_.emplace(std::make_pair(p.device, p.id),
                             PendingRpc{p.tenant, p.device, p.id, {}, {}, false, p.deadline, p.done});
    }
  }
  for (auto& p : ready) sendRpc(p.tenant, p.device, p.id, p.method, p.params_json);
}

bool Broker::completeRpc(const DeviceId& device, std::uint32_t id, std::string payload) {
  std::function<void(ingest::RpcOutcome)> done;
  {
    std::lock_guard lock(rpc_mutex_);
    auto it = pending_rpc_.find(std::make_pair(device, id));
    if (it == pending_rpc_.end()) return false;
    done = std::move(it->second.done);
    pending_rpc_.erase(it);
  }
  if (done) done(ingest::RpcOutcome{ingest::RpcOutcome::Kind::kReply, id, std::move(payload)});
  return true;
}

void Broker::sharedAttributesChanged(const TenantId& tenant, const DeviceId& device, std::string json_object) {
  DeviceId gateway;
  std::string name;
  {
    std::lock_guard lock(devices_mutex_);
    if (auto it = devices_.find(device); it != devices_.end() && it->second.tenant == tenant) {
      gateway = it->second.via_gateway;
      name = it->second.name;
    }
  }
  if (!gateway.empty()) {
    publish(tenant, serverMessage(gatewayTopicPrefix(gateway) + "attributes",
                                  fmt::format(R"({{"device":{},"data":{}}})", jsonString(name), json_object), 1));
  }
  publish(tenant, serverMessage(deviceTopicPrefix(device) + "attributes", std::move(json_object), 1));
}

void Broker::revoke(const TenantId& tenant, const DeviceId& device) {
  std::vector<std::shared_ptr<ClientSink>> sinks;
  {
    std::lock_guard lock(devices_mutex_);
    auto it = devices_.find(device);
    if (it == devices_.end() || it->second.tenant != tenant) return;
    for (auto& w : it->second.sinks)
      if (auto s = w.lock()) sinks.push_back(std::move(s));
  }
  for (auto& s : sinks) s->kick(reason::kAdministrativeAction);
}

void Broker::tick() {
  const auto now = std::chrono::steady_clock::now();
  // Delayed wills whose time has come.
  std::vector<DelayedWill> due;
  {
    std::lock_guard lock(wills_mutex_);
    std::erase_if(wills_, [&](DelayedWill& w) {
      if (w.due > now) return false;
      due.push_back(std::move(w));
      return true;
    });
  }
  for (auto& w : due) publish(w.tenant, std::move(w.will));
  // Sessions past their expiry.
  std::vector<TenantSpace*> spaces;
  {
    std::shared_lock lock(spaces_mutex_);
    for (auto& [id, ts] : spaces_) spaces.push_back(ts.get());
  }
  for (TenantSpace* ts : spaces) {
    std::unique_lock lock(ts->mutex);
    std::vector<std::shared_ptr<Session>> expired;
    for (auto& [cid, s] : ts->sessions) {
      auto at = s->disconnectedAt();
      if (at && !s->connected() && *at + std::chrono::seconds(s->expiry()) <= now) expired.push_back(s);
    }
    for (auto& s : expired) removeSessionLocked(*ts, s);
  }
  // RPC calls that timed out, waiting for a reply or for the device.
  std::vector<std::function<void(ingest::RpcOutcome)>> timed_out;
  std::vector<std::uint32_t> ids;
  {
    std::lock_guard lock(rpc_mutex_);
    for (auto it = pending_rpc_.begin(); it != pending_rpc_.end();) {
      if (it->second.deadline <= now) {
        timed_out.push_back(std::move(it->second.done));
        ids.push_back(it->second.id);
        it = pending_rpc_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = queued_rpc_.begin(); it != queued_rpc_.end();) {
      std::erase_if(it->second, [&](PendingRpc& p) {
        if (p.deadline > now) return false;
        if (p.done) {
          timed_out.push_back(std::move(p.done));
          ids.push_back(p.id);
        }
        return true;
      });
      it = it->second.empty() ? queued_rpc_.erase(it) : std::next(it);
    }
  }
  for (std::size_t i = 0; i < timed_out.size(); ++i)
    if (timed_out[i]) timed_out[i](ingest::RpcOutcome{ingest::RpcOutcome::Kind::kTimeout, ids[i], {}});
}

std::size_t Broker::sessionCount() const {
  std::shared_lock lock(spaces_mutex_);
  std::size_t n = 0;
  for (auto& [id, ts] : spaces_) {
    std::shared_lock l(ts->mutex);
    n += ts->sessions.size();
  }
  return n;
}

std::size_t Broker::retainedCount() const {
  std::shared_lock lock(spaces_mutex_);
  std::size_t n = 0;
  for (auto& [id, ts] : spaces_) {
    std::shared_lock l(ts->mutex);
    n += ts->retained.size();
  }
  return n;
}

}  // namespace sw::mqtt
