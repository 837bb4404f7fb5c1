#pragma once
// A client session (MQTT section 4.1): subscriptions, queued and inflight outbound messages,
// inbound QoS 2 packet ids. It outlives its connection when the session is persistent.
//
// Thread-safety: every member function locks the session's mutex; deliveries arrive from any
// worker while the connection that owns the session (if any) sends from its own worker. The
// connection is told about new work through Sink::wake(), which must not block.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/ids.h"
#include "ingest/transports/mqtt/packet.h"

namespace sw::mqtt {

using SteadyTime = std::chrono::steady_clock::time_point;

// One published message, shared by every session it is delivered to. Topic is the tenant-
// internal name (device topics are rewritten when sent to a device).
struct Message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  Properties props;  // the application properties only (content type, user properties, ...)
  std::optional<SteadyTime> expires;
  std::string origin_client;  // client id of the publisher ("" for the server)
  DeviceId origin_device;     // the publishing device, if any (devices never get their own messages)
};

struct Delivery {
  std::shared_ptr<const Message> msg;
  std::uint8_t qos = 0;
  bool retain = false;
  std::vector<std::uint32_t> subscription_ids;
};

enum class ClientKind : std::uint8_t { kDevice, kApp };

struct SubscriptionOptions {
  std::uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  std::uint32_t subscription_id = 0;
};

class Session {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void wake() = 0;  // new work to send; called with no session lock held
    // Close the connection, sending DISCONNECT with reason (v5). Must not block; any thread.
    virtual void kick(std::uint8_t reason) = 0;
  };

  Session(TenantId tenant, std::string client_id, ClientKind kind, DeviceId device, std::size_t max_queued)
      : tenant_(std::move(tenant)),
        client_id_(std::move(client_id)),
        kind_(kind),
        device_(std::move(device)),
        max_queued_(max_queued) {}

  const TenantId& tenant() const { return tenant_; }
  const std::string& clientId() const { return client_id_; }
  ClientKind kind() const { return kind_; }
  const DeviceId& device() const { return device_; }

  // Queues a message; false when the queue is full (the caller counts the drop).
  bool deliver(Delivery delivery);

  // Returns the sink that was attached before (a connection being taken over), if any.
  std::shared_ptr<Sink> attach(std::shared_ptr<Sink> sink);
  std::shared_ptr<Sink> sink() const;
  // False (and no change) when another sink took over.
  bool detach(const Sink* sink);
  bool connected() const;

  // Expiry of a disconnected session (seconds, 0 = ends with the connection).
  void setExpiry(std::uint32_t seconds);
  std::uint32_t expiry() const;
  std::optional<SteadyTime> disconnectedAt() const;

  // Subscriptions as the client made them (full filter text incl. $share/...); the topic tree
  // is the routing index, this is what a session keeps across connections.
  bool addSubscription(const std::string& filter, const SubscriptionOptions& options);  // true if new
  bool removeSubscription(const std::string& filter);
  std::map<std::string, SubscriptionOptions> subscriptions() const;
  std::size_t subscriptionCount() const;

  // What the connection may send now. out receives packets to write: retransmissions first
  // (after a reconnect), then queued messages, while the inflight window allows and until about
  // byte_budget payload bytes are taken (at least one message). Messages that expired are
  // dropped (expired_drops incremented).
  struct Outgoing {
    std::uint16_t packet_id = 0;  // 0 for QoS 0
    Delivery delivery;
    bool dup = false;
    bool pubrel = false;  // resend a PUBREL instead of the PUBLISH
  };
  void takeSendable(std::size_t inflight_window, std::size_t byte_budget, std::vector<Outgoing>& out,
                    std::uint64_t& expired_drops);
  // Marks every inflight message for retransmission (called when a connection attaches).
  void prepareResend();

  // Outbound acknowledgements. Each returns false for an unknown packet id.
  bool puback(std::uint16_t id);   // QoS 1 done
  bool pubrec(std::uint16_t id);   // QoS 2: PUBLISH -> PUBREL state
  bool pubcomp(std::uint16_t id);  // QoS 2 done
  std::size_t inflight() const;
  std::size_t queued() const;

  // Inbound QoS 2: ids received (PUBREC sent) and not yet released.
  bool inboundQos2Seen(std::uint16_t id) const;
  void inboundQos2Add(std::uint16_t id);
  void inboundQos2Release(std::uint16_t id);

  // Dropping everything (clean start).
  void clear();

 private:
  struct Inflight {
    Delivery delivery;
    bool released = false;  // QoS 2: PUBREC received, PUBREL sent
    bool resend = false;
  };
  std::uint16_t nextPacketId();

  const TenantId tenant_;
  const std::string client_id_;
  const ClientKind kind_;
  const DeviceId device_;
  const std::size_t max_queued_;

  mutable std::mutex mutex_;
  std::shared_ptr<Sink> sink_;
  std::uint32_t expiry_s_ = 0;
  std::optional<SteadyTime> disconnected_at_;
  std::map<std::string, SubscriptionOptions> subscriptions_;
  std::deque<Delivery> queue_;
  std::map<std::uint16_t, Inflight> inflight_;
  std::set<std::uint16_t> inbound_qos2_;
  std::uint16_t last_id_ = 0;
};

}  // namespace sw::mqtt
