#pragma once
// The MQTT broker core, independent of sockets: per-tenant session registries, subscription
// trees and retained messages; routing; wills; device connection state; server-to-device RPC
// (the ingest::DeviceChannel the REST API uses).
//
// Tenant isolation is structural: every tenant has its own TenantSpace, and a client only ever
// reaches the space of the tenant it authenticated into, so no filter ('#' included) can match
// another tenant's topic.
//
// Thread-safety: all public methods may be called from any thread. Locks: a tenant's
// shared_mutex, then (inside it) session mutexes; never the other way round. Sinks are woken
// with no lock held by the broker beyond the tenant's shared lock.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "ingest/device_authenticator.h"
#include "ingest/device_channel.h"
#include "ingest/transports/mqtt/session.h"
#include "ingest/transports/mqtt/topic_tree.h"
#include "storage/metadata_store.h"
#include "storage/value.h"

namespace sw::mqtt {

// The connection side of a session as the broker sees it.
using ClientSink = Session::Sink;

struct MqttStats {
  Counter& connects_accepted;
  Counter& connects_refused;
  Counter& received;
  Counter& sent;
  Counter& dropped_queue_full;
  Counter& dropped_expired;
  Counter& dropped_not_authorized;
  Counter& dropped_too_large;
  Counter& dropped_invalid;
  Counter& dropped_rate;
  std::atomic<std::int64_t> connections{0};
};

class Broker final : public ingest::DeviceChannel {
 public:
  Broker(const Config& config, Metrics& metrics);
  ~Broker() override;

  MqttStats& stats() { return stats_; }

  // ---- sessions ----
  struct Opened {
    std::shared_ptr<Session> session;
    bool present = false;
    bool quota_exceeded = false;  // no session: the tenant has mqtt_max_sessions_per_tenant
  };
  // Attaches sink to the session of (tenant, client_id), creating it or (clean_start) replacing
  // it. A connection already attached is kicked with 0x8E; a pending delayed will of that client
  // is cancelled. A null session when the client id belongs to another device or application of
  // the tenant (a device must not be able to end an application's session).
  Opened openSession(const TenantId& tenant, const std::string& client_id, ClientKind kind, const DeviceId& device,
                     bool clean_start, std::uint32_t expiry_s, std::shared_ptr<ClientSink> sink);
  // The connection ended. A session with expiry 0 is removed at once, otherwise kept until its
  // expiry; will (if any) is published after will_delay (capped by the session expiry).
  void closeSession(const std::shared_ptr<Session>& session, const ClientSink* sink,
                    std::shared_ptr<const Message> will, std::uint32_t will_delay_s);

  // ---- subscriptions ----
  // internal is the tenant-internal filter (device filters are rewritten), group the share
  // group or "". Sends retained messages per
  // retain_handling (0 always, 1 if new, 2 never; never for shared subscriptions).
  // False when the session is no longer the tenant's session of its client id (taken over).
  bool subscribe(const std::shared_ptr<Session>& session, const std::string& internal, const std::string& group,
                 const SubscriptionOptions& options, std::uint8_t retain_handling);
  bool unsubscribe(const std::shared_ptr<Session>& session, const std::string& internal, const std::string& group);

  // ---- routing ----
  // Stores/clears the retained message if msg->retain, then delivers to every matching
  // subscription of the tenant. Returns the number of sessions it was queued to.
  std::size_t publish(const TenantId& tenant, std::shared_ptr<const Message> msg);
  bool hasSubscribers(const TenantId& tenant, std::string_view topic) const;

  // Live telemetry from any transport (a pipeline observer): published on
  // sw/v1/devices/{id}/telemetry when someone listens; also records device activity.
  void telemetryStored(const ingest::DeviceRef& device, std::span<const storage::Point> points);
  // Client attributes from any transport: published on sw/v1/devices/{id}/attributes.
  void attributesStored(const ingest::DeviceRef& device, std::string_view json_object);

  // ---- device state ----
  void deviceConnected(const TenantId& tenant, const DeviceId& device, std::shared_ptr<ClientSink> sink);
  void deviceDisconnected(const DeviceId& device, const ClientSink* sink);
  // A gateway announced (or stopped serving) a sub-device.
  void subDeviceOnline(const TenantId& tenant, const DeviceId& gateway, const DeviceId& device,
                       const std::string& name);
  void subDeviceOffline(const DeviceId& device);
  void activity(const TenantId& tenant, const DeviceId& device);
  // Connection state changed since the last call, to be saved in the metadata store.
  std::vector<storage::DeviceActivity> takeChangedStates();
  // The device (or its gateway) can now receive RPC: send what was queued for it.
  void deviceReady(const TenantId& tenant, const DeviceId& device);
  // A reply from the device to server RPC id. False when no call waits for it.
  bool completeRpc(const DeviceId& device, std::uint32_t id, std::string payload);

  // ---- ingest::DeviceChannel ----
  ingest::DeviceState state(const TenantId& tenant, const DeviceId& device) const override;
  std::vector<DeviceId> onlineDevices(const TenantId& tenant) const override;
  void rpc(ingest::RpcRequest request, std::function<void(ingest::RpcOutcome)> done) override;
  void sharedAttributesChanged(const TenantId& tenant, const DeviceId& device, std::string json_object) override;
  void revoke(const TenantId& tenant, const DeviceId& device) override;

  // Periodic work (session expiry, delayed wills, RPC timeouts). Called about every 250 ms.
  void tick();

  std::size_t sessionCount() const;
  std::size_t retainedCount() const;

  static std::string deviceTopicPrefix(const DeviceId& device) { return "sw/v1/devices/" + device.str() + "/"; }
  static std::string gatewayTopicPrefix(const DeviceId& device) { return "sw/v1/gateways/" + device.str() + "/"; }

 private:
  struct TenantSpace;
  struct DeviceEntry;
  struct PendingRpc;
  struct DelayedWill;

  TenantSpace& space(const TenantId& tenant);
  const TenantSpace* findSpace(const TenantId& tenant) const;
  void deliverRetained(TenantSpace& ts, const std::shared_ptr<Session>& session, std::string_view internal_filter,
                       const SubscriptionOptions& options);
  void removeSessionLocked(TenantSpace& ts, const std::shared_ptr<Session>& session);
  void sendRpc(const TenantId& tenant, const DeviceId& device, std::uint32_t id, const std::string& method,
               const std::string& params_json);
  bool online(const DeviceId& device) const;
  void markChanged(const DeviceId& device, DeviceEntry& entry);  // holds devices_mutex_
  static constexpr std::size_t kMaxTrackedDevices = 1000000;

  const Config& config_;
  MqttStats stats_;

  mutable std::shared_mutex spaces_mutex_;
  std::unordered_map<TenantId, std::unique_ptr<TenantSpace>> spaces_;

  mutable std::mutex devices_mutex_;
  std::unordered_map<DeviceId, DeviceEntry> devices_;
  std::vector<DeviceId> changed_;  // entries whose state changed since takeChangedStates()

  std::mutex rpc_mutex_;
  std::atomic<std::uint32_t> next_rpc_id_{1};
  std::map<std::pair<DeviceId, std::uint32_t>, PendingRpc> pending_rpc_;  // awaiting a reply
  std::unordered_map<DeviceId, std::vector<PendingRpc>> queued_rpc_;      // awaiting the device

  std::mutex wills_mutex_;
  std::vector<DelayedWill> wills_;
};

}  // namespace sw::mqtt
