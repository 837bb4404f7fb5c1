// libFuzzer target for the live-data WebSocket client messages (docs/websocket.md).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/live_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = sw::api::parseClientMessage(in);
  if (m) {
    // What the parser accepts stays within its documented bounds.
    const auto& s = m->subscribe;
    if (m->type == sw::api::ClientMessage::Type::kSubscribe) {
      if (m->sub.empty() || m->sub.size() > 64) __builtin_trap();
      if (s.device_ids.size() > 1000 || s.keys.size() > 1000) __builtin_trap();
      if (s.stream == sw::api::SubscribeRequest::Stream::kTelemetry && s.device_ids.empty() == !s.filter) {
        __builtin_trap();  // exactly one of ids and filter
      }
    }
  } else if (m.error().detail.empty()) {
    __builtin_trap();  // every refusal says why
  }
  return 0;
}
