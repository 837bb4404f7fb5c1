#pragma once
// Live data for WebSocket clients (GET /api/v1/ws, docs/websocket.md), without Beast: the
// client protocol's parsing, subscriptions (device ids or a device filter; alarms), the fan-out
// of every durable telemetry write to the matching sockets, and each socket's bounded outbound
// queue (individual messages, then latest values per (sub, device, key), then close 1008).
//
// LiveHub is shared by every socket and ingest thread. Thread-safety: every method may be called
// from any thread. Methods marked "blocking" read the stores: call them from a blocking pool,
// never from an I/O worker. telemetryStored() is the ingest hot path: with no telemetry
// subscription anywhere it costs one atomic load; with subscriptions elsewhere, a hash lookup
// under one of several shard locks; it never allocates unless a subscription matches.
// Lock order: shard -> tenant -> connection; the wake-up callback runs outside every lock.
//
// LiveConnection is one socket as the hub sees it. The socket's writer (on its I/O worker) pulls
// messages with next()/sent(); everybody else only queues. The hub keeps weak references, so a
// connection freed by its socket is skipped.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/live_protocol.h"
#include "api/router.h"
#include "core/config.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "core/status.h"
#include "ingest/device_authenticator.h"
#include "security/jwt_issuer.h"
#include "storage/metadata_store.h"
#include "storage/time_series_store.h"

namespace sw::api {

// WebSocket close codes the hub asks for.
inline constexpr int kWsCloseGoingAway = 1001;        // server shutting down
inline constexpr int kWsClosePolicy = 1008;           // the client reads too slowly
inline constexpr int kWsCloseTryAgainLater = 1013;    // the server is busy (its blocking pool is full)
inline constexpr int kWsCloseUnauthenticated = 4001;  // token expired or invalid, user deleted, role changed

struct LiveLimits {
  std::size_t max_queue_bytes = 4 << 20;      // per socket, queued + being written
  std::size_t max_coalesced_bytes = 4 << 20;  // per socket, latest values kept while coalescing
  std::size_t max_subscriptions = 100;        // per socket
  std::size_t max_devices_per_subscription = 1000;
  std::size_t max_snapshot_devices = 1000;             // a filter subscription's snapshot covers at most this many
  std::size_t max_cached_devices_per_tenant = 100000;  // device type/labels kept for filter subscriptions
  std::chrono::seconds slow_close{30};                 // coalescing without pause this long: close 1008

  static LiveLimits fromConfig(const Config& config);
};

// Who a socket speaks for, from its JWT (verified like verifyBearer) and the user's row.
struct LiveIdentity {
  Principal principal;
  std::string username;
  std::int64_t expires_at_ms = 0;  // the token's expiry
};

// {"type":"error","sub":..?,"code":..,"detail":..}
std::string errorMessage(std::string_view sub, Code code, std::string_view detail);
// {"type":"auth_ok","user":{...},"expires_at":ms}
std::string authOkMessage(const LiveIdentity& identity);

class LiveHub;
struct LiveSubscription;

// Where a connection counts what it sends and drops (null: not counted).
struct LiveCounters {
  Counter* sent = nullptr;         // sw_ws_messages_sent_total
  Counter* coalesced = nullptr;    // sw_ws_dropped_total{reason="coalesced"}: telemetry merged into latest values
  Counter* closed_slow = nullptr;  // sw_ws_dropped_total{reason="closed_slow"}: sockets closed for not reading
};

class LiveConnection {
 public:
  struct CloseRequest {
    int code = 0;
    std::string reason;
    bool after_queue = false;  // what was queued before is written first
  };

  // wake: called when there is something to write (or a close to send) and the writer is idle;
  // from any thread, outside every lock. It must only post to the socket's executor.
  LiveConnection(const LiveLimits& limits, std::function<void()> wake, LiveCounters counters = {});
  ~LiveConnection();
  LiveConnection(const LiveConnection&) = delete;
  LiveConnection& operator=(const LiveConnection&) = delete;

  // ---- writer side (the socket's executor) ----
  // The next message to write; false when there is none (the writer is then idle until woken)
  // or a close was requested. The message's bytes count against the bound until sent().
  bool next(std::string& out);
  void sent(std::size_t bytes);
  std::optional<CloseRequest> closeRequested() const;
  // Closes (1008) when telemetry has been coalesced without pause for longer than the limit.
  void checkSlow(std::chrono::steady_clock::time_point now);

  // ---- any thread ----
  // A message that is never dropped (replies, snapshots, alarms). Past twice the queue bound the
  // client is not reading: close 1008.
  void send(std::string message);
  // Asks the writer to close the socket with this code. Drops everything queued, or (after_queue)
  // writes what was queued before first, e.g. the error message saying why. Nothing is queued
  // afterwards. The first call wins.
  void close(int code, std::string reason, bool after_queue = false);
  bool closing() const;
  std::optional<LiveIdentity> identity() const;
  void setExpiry(std::int64_t expires_at_ms);

  // Introspection for tests and metrics.
  std::size_t queuedBytes() const;
  bool coalescing() const;
  std::size_t coalescedBytes() const;
  std::size_t subscriptionCount() const;

 private:
  friend class LiveHub;
  struct Latest {
    std::int64_t ts = 0;
    std::string json;  // the value as JSON text
  };
  using KeyValues = std::map<std::string, Latest, std::less<>>;

  // Telemetry for one subscription (points already restricted to its keys).
  void pushTelemetry(LiveSubscription& sub, const DeviceId& device, std::span<const storage::Point* const> points);
  void coalesceLocked(LiveSubscription& sub, const DeviceId& device, std::span<const storage::Point* const> points);
  void flushCoalescedLocked();
  void closeLocked(int code, std::string reason, bool slow, bool after_queue = false);
  bool enqueueLocked(std::string message);                         // true: the writer must be woken
  void sendFor(const LiveSubscription& sub, std::string message);  // dropped once sub is inactive
  void sendImpl(const LiveSubscription* sub, std::string message);
  void wakeIfNeeded(bool wake);

  const LiveLimits limits_;
  const std::function<void()> wake_;
  const LiveCounters counters_;

  mutable std::mutex mutex_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;    // in queue_
  std::size_t inflight_bytes_ = 0;  // taken by next(), not yet sent()
  bool writer_idle_ = true;
  std::atomic<bool> coalescing_{false};
  std::chrono::steady_clock::time_point coalescing_since_{};
  // (sub, device) -> key -> latest value, while coalescing
  std::map<std::pair<std::string, std::string>, KeyValues> coalesced_;
  std::size_t coalesced_bytes_ = 0;
  std::optional<CloseRequest> close_;
  std::optional<LiveIdentity> identity_;
  std::map<std::string, std::shared_ptr<LiveSubscription>, std::less<>> subs_;  // by client id
};

class LiveHub {
 public:
  LiveHub(const LiveLimits& limits, storage::MetadataStore& metadata, storage::TimeSeriesStore& store,
          const security::JwtIssuer& jwt, Metrics& metrics);
  ~LiveHub();
  LiveHub(const LiveHub&) = delete;
  LiveHub& operator=(const LiveHub&) = delete;

  const LiveLimits& limits() const { return limits_; }
  std::shared_ptr<LiveConnection> newConnection(std::function<void()> wake);

  // Socket slots (the ws max_connections bound): false when all are taken.
  bool reserveSocket(std::size_t max_sockets);
  void releaseSocket();
  std::size_t sockets() const { return sockets_.load(std::memory_order_relaxed); }

  // Blocking. Verifies a user's JWT and that the user still exists with the same role and tenant.
  Result<LiveIdentity> authenticate(std::string_view token);
  // Blocking. The identity's user still exists with the same role and tenant.
  Status recheck(const LiveIdentity& identity);

  // The connection authenticated (first time): it becomes reachable by tenant and user events.
  void attach(const std::shared_ptr<LiveConnection>& connection, LiveIdentity identity);
  // The socket ended: its subscriptions go. Idempotent.
  void detach(LiveConnection& connection);

  // Blocking. Validates and registers a subscription, then queues "subscribed" and (telemetry)
  // the snapshot, or an "error" message. Telemetry written meanwhile follows the snapshot.
  void subscribe(const std::shared_ptr<LiveConnection>& connection, const SubscribeRequest& request);
  // False when the connection has no such subscription.
  bool unsubscribe(LiveConnection& connection, std::string_view sub);

  // Hot path: called by the ingest pipeline after each durable write (any ingest thread).
  void telemetryStored(const ingest::DeviceRef& device, std::span<const storage::Point> points);
  // Delivers {"type":"alarm","sub":..,"alarm":<alarm_json>} to the tenant's alarm subscribers.
  // alarm_json must be a JSON object (the analytics module's alarm).
  void publishAlarm(const TenantId& tenant, std::string_view alarm_json);

  // Metadata changes, after they are committed (REST handlers). Blocking (re-reads the device).
  void deviceChanged(const TenantId& tenant, const DeviceId& device);  // created or updated
  void deviceDeleted(const TenantId& tenant, const DeviceId& device);
  void tenantDeleted(const TenantId& tenant);  // its sockets close with 4001
  void userChanged(const UserId& user);        // re-checks the user's sockets; 4001 if no longer valid

  // Shutdown: every socket is asked to close with this code, and so is any created afterwards.
  void closeAll(int code, const std::string& reason);
  std::size_t attachedConnections() const;

 private:
  struct DeviceInfo {
    bool exists = false;
    std::string type;
    std::map<std::string, std::string> labels;
  };
  struct Tenant;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<TenantId, std::shared_ptr<Tenant>> tenants;
  };

  Shard& shardOf(const TenantId& tenant);
  std::shared_ptr<Tenant> findTenant(const TenantId& tenant);
  static bool matches(const DeviceFilterSpec& filter, const DeviceInfo& info);
  std::shared_ptr<const DeviceInfo> lookupDevice(const TenantId& tenant, const DeviceId& device);
  void removeSubscription(const TenantId& tenant, const std::shared_ptr<LiveSubscription>& sub);
  void refreshDevice(const TenantId& tenant, const DeviceId& device, bool deleted);
  void primeDeviceCache(Tenant& t, const TenantId& tenant_id, std::uint64_t generation);
  void subscribeLocked(const std::shared_ptr<LiveConnection>& connection, const SubscribeRequest& request,
                       const LiveIdentity& identity);
  std::vector<std::shared_ptr<LiveConnection>> connectionsWhere(const std::function<bool(const LiveIdentity&)>& pred);

  const LiveLimits limits_;
  storage::MetadataStore& metadata_;
  storage::TimeSeriesStore& store_;
  const security::JwtIssuer& jwt_;
  LiveCounters counters_;

  std::atomic<std::size_t> telemetry_subs_{0};  // over every tenant: the hot path's first check
  std::atomic<std::size_t> sockets_{0};
  std::array<Shard, 16> shards_;

  mutable std::mutex registry_mutex_;
  std::unordered_map<LiveConnection*, std::weak_ptr<LiveConnection>> registry_;  // attached connections
  // Set by closeAll(): a connection created later (a handshake finishing during shutdown) is
  // closed at once with the same code, so that no socket outlives the drain.
  std::optional<std::pair<int, std::string>> closed_all_;
};

}  // namespace sw::api
