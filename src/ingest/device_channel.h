#pragma once
// What the REST API needs from the live device transports (implemented by the MQTT broker):
// connection state, server-to-device RPC, shared-attribute pushes and revocation.
// Thread-safety: every method may be called from any thread and never blocks on I/O.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.h"

namespace sw::ingest {

struct DeviceState {
  bool online = false;
  std::optional<std::int64_t> last_connect, last_disconnect, last_activity;  // epoch ms
};

struct RpcRequest {
  TenantId tenant;
  DeviceId device;
  std::string method;
  std::string params_json = "{}";  // compact JSON
  std::chrono::milliseconds timeout{10000};
  bool oneway = false;
  bool queue = false;  // hold until the device connects instead of failing when offline
};

struct RpcOutcome {
  enum class Kind {
    kSent,     // one-way, delivered to the connection
    kQueued,   // one-way, held until the device connects
    kReply,    // two-way: reply holds the device's payload
    kTimeout,  // two-way: no reply in time (or never connected while queued)
    kOffline,  // not connected and not queued
    kBusy,     // the device's queue of pending calls is full
  };
  Kind kind = Kind::kOffline;
  std::uint32_t id = 0;
  std::string reply;  // raw payload of the reply (JSON if the device sent JSON)
};

class DeviceChannel {
 public:
  virtual ~DeviceChannel() = default;
  virtual DeviceState state(const TenantId& tenant, const DeviceId& device) const = 0;
  // The tenant's devices that are online now (state().online), in no particular order.
  virtual std::vector<DeviceId> onlineDevices(const TenantId& tenant) const = 0;
  // done runs exactly once, on an arbitrary thread (never inline in a way that re-enters).
  virtual void rpc(RpcRequest request, std::function<void(RpcOutcome)> done) = 0;
  // Shared attributes changed through the REST API: push {"key": value, ...} to the device.
  virtual void sharedAttributesChanged(const TenantId& tenant, const DeviceId& device, std::string json_object) = 0;
  // The device was deleted or its credentials changed: close its connections (v5 DISCONNECT 0x98).
  virtual void revoke(const TenantId& tenant, const DeviceId& device) = 0;
};

}  // namespace sw::ingest
