// libFuzzer target for the MQTT packet codec. Bit 0 of the first input byte picks the session
// version (0: 3.1.1, 1: 5); the rest is a byte stream framed with parseFixedHeader as the broker
// does, and a decoded CONNECT switches the version like a real session. Every packet that
// decodes must re-encode to a packet that decodes to an equal value, with encodedSize telling the
// exact size and re-encoding giving the same bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "ingest/transports/mqtt/packet.h"

namespace {

using sw::mqtt::DecodeError;
using sw::mqtt::FixedHeader;
using sw::mqtt::FrameStatus;
using sw::mqtt::Packet;
using sw::mqtt::Version;

void checkRoundTrip(const Packet& packet, Version version) {
  std::string bytes;
  sw::mqtt::encode(packet, version, bytes);
  if (bytes.size() != sw::mqtt::encodedSize(packet, version)) __builtin_trap();
  const std::span<const std::uint8_t> in(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  FixedHeader header;
  if (sw::mqtt::parseFixedHeader(in, header) != FrameStatus::kComplete) __builtin_trap();
  if (std::size_t{header.header_size} + header.remaining_length != bytes.size()) __builtin_trap();
  auto again = sw::mqtt::decode(header, in.subspan(header.header_size), version);
  const auto* back = std::get_if<Packet>(&again);
  if (back == nullptr || back->index() != packet.index()) __builtin_trap();
  if (const auto* p = std::get_if<sw::mqtt::Publish>(&packet)) {
    const auto& q = std::get<sw::mqtt::Publish>(*back);
    if (q.topic != p->topic || q.payload != p->payload) __builtin_trap();
  }
  if (!(*back == packet)) __builtin_trap();
  std::string bytes2;
  sw::mqtt::encode(*back, version, bytes2);
  if (bytes2 != bytes) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Version version = (data[0] & 1) ? Version::k5 : Version::k311;
  std::span<const std::uint8_t> rest(data + 1, size - 1);
  while (!rest.empty()) {
    FixedHeader header;
    const FrameStatus status = sw::mqtt::parseFixedHeader(rest, header);
    if (status != FrameStatus::kComplete) break;
    if (header.header_size < 2 || header.header_size > 5) __builtin_trap();
    if (header.remaining_length > rest.size() - header.header_size) break;
    const auto body = rest.subspan(header.header_size, header.remaining_length);
    auto result = sw::mqtt::decode(header, body, version);
    if (const auto* packet = std::get_if<Packet>(&result)) {
      checkRoundTrip(*packet, version);
      if (const auto* connect = std::get_if<sw::mqtt::Connect>(packet)) version = connect->version;
    } else if (std::get<DecodeError>(result).reason < 0x80) {
      __builtin_trap();  // errors always carry a v5 failure reason code
    }
    rest = rest.subspan(header.header_size + header.remaining_length);
  }
  return 0;
}
