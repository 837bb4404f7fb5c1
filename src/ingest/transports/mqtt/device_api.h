#pragma once
// The device-facing MQTT API (DESIGN.md section 4, docs/mqtt.md): who a client is, which
// topics it may use, how device and gateway topics map to the tenant's internal topics
// (v1/devices/me/X <-> sw/v1/devices/{id}/X, v1/gateway/X <-> sw/v1/gateways/{id}/X), and the
// operations that touch storage (telemetry, attributes, gateway messages), which run on a
// blocking pool.
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ingest/device_authenticator.h"
#include "ingest/pipeline.h"
#include "ingest/transports/mqtt/broker.h"
#include "ingest/transports/mqtt/mqtt_server.h"
#include "ingest/transports/mqtt/packet.h"
#include "storage/metadata_store.h"

namespace sw::mqtt {

struct DeviceApi {
  ingest::IngestPipeline& pipeline;
  storage::MetadataStore& metadata;
  Broker& broker;
};

// The authenticated principal of a connection.
struct Identity {
  TenantId tenant;
  ClientKind kind = ClientKind::kApp;
  ingest::DeviceRef device;                   // devices only
  bool can_publish = false;                   // applications: role allows publishing
  std::string device_prefix, gateway_prefix;  // internal topic prefixes (devices)
};

// Successful verifications of MQTT basic credentials, so reconnect storms do not run argon2
// for every CONNECT. Entries expire after 30 s. Thread-safe.
class CredentialCache {
 public:
  bool verified(const std::string& username, std::string_view password, const std::string& hash);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> ok_;
};

// Sub-devices a gateway connection has resolved (name -> device). Used by one connection's
// storage jobs, which never run concurrently.
struct GatewayCache {
  std::unordered_map<std::string, ingest::DeviceRef> by_name;
};

// Decides who the CONNECT is from (docs/mqtt.md "Who connects"). Blocking.
Result<Identity> authenticateClient(DeviceApi api, const AppAuthenticator& app_auth, CredentialCache& cache,
                                    const Connect& connect, const std::string& client_id);

// The tenant-internal filter for a client's filter; nullopt when the client may not subscribe.
std::optional<std::string> internalFilter(const Identity& id, std::string_view filter, bool shared);
// The topic a client sees for an internal topic.
std::string clientTopic(const Identity& id, const std::string& internal);
bool appMayPublish(const Identity& id, std::string_view topic);
// True when a device's internal filter receives server-to-device RPC requests.
bool receivesRpc(const Identity& id, std::string_view internal_filter);

enum class DeviceOpKind : std::uint8_t {
  kTelemetry,
  kAttributes,
  kAttributesRequest,
  kRpcResponse,
  kRpcRequest,
  kGatewayConnect,
  kGatewayDisconnect,
  kGatewayTelemetry,
  kGatewayAttributes,
  kGatewayRpc,
};

struct DeviceOp {
  DeviceOpKind kind = DeviceOpKind::kTelemetry;
  std::string suffix;  // the request id
  std::string payload;
  Properties props;
  std::uint64_t seq = 0;         // the connection's ack slot
  std::int64_t received_ms = 0;  // arrival time: points without a timestamp get it, not the
                                 // time of the batch they are stored in
};

// nullopt: the device may not publish there.
std::optional<DeviceOp> classifyDeviceTopic(const Identity& id, std::string_view topic);
bool needsStorage(DeviceOpKind kind);

// Reason code meaning "not stored, do not acknowledge" (storage unavailable).
inline constexpr std::uint8_t kReasonStorageFailed = 0xFF;

// Runs storage ops in order on the calling (pool) thread; returns one v5 reason code per op.
// Consecutive telemetry messages are written in one durable batch.
std::vector<std::uint8_t> runDeviceOps(DeviceApi api, const Identity& id, std::span<DeviceOp> ops, GatewayCache& cache);
// Ops that only route (RPC replies and requests). Non-blocking.
std::uint8_t routeDeviceMessage(DeviceApi api, const Identity& id, const std::string& client_id, DeviceOp& op);

// A PUBLISH from an application as a routable message.
std::shared_ptr<Message> toMessage(Publish p, const std::string& client_id, const DeviceId& device);
// The will of a client as a routable message; nullptr when the client may not publish there.
std::shared_ptr<Message> makeWill(const Identity& id, const Will& will);

}  // namespace sw::mqtt
