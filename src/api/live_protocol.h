#pragma once
// The messages a live-data WebSocket client sends (docs/websocket.md), parsed and validated.
// Untrusted input: fuzzed by tests/fuzz/fuzz_ws_message.cc.
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace sw::api {

struct DeviceFilterSpec {
  std::string type;                        // empty: any
  std::string label_key;                   // empty: any
  std::optional<std::string> label_value;  // with label_key: the label has this value
};

struct SubscribeRequest {
  enum class Stream { kTelemetry, kAlarms };
  std::string sub;
  Stream stream = Stream::kTelemetry;
  std::vector<DeviceId> device_ids;  // telemetry: exactly one of device_ids and filter
  std::optional<DeviceFilterSpec> filter;
  std::vector<std::string> keys;  // sorted, unique; empty: every key
};

// A client message, parsed and validated (sizes, types, required fields).
struct ClientMessage {
  enum class Type { kAuth, kSubscribe, kUnsubscribe, kPing };
  Type type = Type::kPing;
  std::string token;  // auth
  std::string sub;    // unsubscribe
  SubscribeRequest subscribe;
};

struct ClientError {
  std::string sub;  // the subscription the error is about; empty when none
  Code code = Code::kInvalidArgument;
  std::string detail;
};

std::expected<ClientMessage, ClientError> parseClientMessage(std::string_view text);

}  // namespace sw::api
