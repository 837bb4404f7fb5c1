#pragma once
// MQTT 3.1.1 and 5.0 control packets: value types, a decoder for untrusted bytes and encoders.
// Pure functions, no I/O and no Boost, so the decoder is fuzzed on its own (tests/fuzz).
//
// The decoder never trusts its input: every length is checked against the bytes present, every
// UTF-8 string is validated (MQTT-1.5.4: well-formed, no U+0000, no surrogates), reserved flag
// bits and property sets are checked per packet type. Errors carry the MQTT 5 reason code the
// server must send (0x81 malformed, 0x82 protocol error, ...); for a 3.1.1 session the caller just
// closes the connection. Thread-safety: all functions are reentrant.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sw::mqtt {

enum class Version : std::uint8_t { k311 = 4, k5 = 5 };

enum class PacketType : std::uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
  kAuth = 15,
};

// MQTT 5 reason codes (section 2.4). 3.1.1 CONNACK return codes are separate (Connack311).
namespace reason {
inline constexpr std::uint8_t kSuccess = 0x00;
inline constexpr std::uint8_t kGrantedQos1 = 0x01;
inline constexpr std::uint8_t kGrantedQos2 = 0x02;
inline constexpr std::uint8_t kDisconnectWithWill = 0x04;
inline constexpr std::uint8_t kNoMatchingSubscribers = 0x10;
inline constexpr std::uint8_t kNoSubscriptionExisted = 0x11;
inline constexpr std::uint8_t kUnspecified = 0x80;
inline constexpr std::uint8_t kMalformed = 0x81;
inline constexpr std::uint8_t kProtocolError = 0x82;
inline constexpr std::uint8_t kImplementationSpecific = 0x83;
inline constexpr std::uint8_t kUnsupportedVersion = 0x84;
inline constexpr std::uint8_t kClientIdInvalid = 0x85;
inline constexpr std::uint8_t kBadCredentials = 0x86;
inline constexpr std::uint8_t kNotAuthorized = 0x87;
inline constexpr std::uint8_t kServerUnavailable = 0x88;
inline constexpr std::uint8_t kServerBusy = 0x89;
inline constexpr std::uint8_t kServerShuttingDown = 0x8B;
inline constexpr std::uint8_t kKeepAliveTimeout = 0x8D;
inline constexpr std::uint8_t kSessionTakenOver = 0x8E;
inline constexpr std::uint8_t kTopicFilterInvalid = 0x8F;
inline constexpr std::uint8_t kTopicNameInvalid = 0x90;
inline constexpr std::uint8_t kPacketIdInUse = 0x91;
inline constexpr std::uint8_t kPacketIdNotFound = 0x92;
inline constexpr std::uint8_t kReceiveMaxExceeded = 0x93;
inline constexpr std::uint8_t kTopicAliasInvalid = 0x94;
inline constexpr std::uint8_t kPacketTooLarge = 0x95;
inline constexpr std::uint8_t kMessageRateTooHigh = 0x96;
inline constexpr std::uint8_t kQuotaExceeded = 0x97;
inline constexpr std::uint8_t kAdministrativeAction = 0x98;
inline constexpr std::uint8_t kPayloadFormatInvalid = 0x99;
inline constexpr std::uint8_t kQosNotSupported = 0x9B;
inline constexpr std::uint8_t kSharedSubsNotSupported = 0x9E;
inline constexpr std::uint8_t kSubIdsNotSupported = 0xA1;
inline constexpr std::uint8_t kWildcardSubsNotSupported = 0xA2;
}  // namespace reason

// 3.1.1 CONNACK return codes.
namespace connack311 {
inline constexpr std::uint8_t kAccepted = 0;
inline constexpr std::uint8_t kBadProtocolVersion = 1;
inline constexpr std::uint8_t kIdentifierRejected = 2;
inline constexpr std::uint8_t kServerUnavailable = 3;
inline constexpr std::uint8_t kBadCredentials = 4;
inline constexpr std::uint8_t kNotAuthorized = 5;
}  // namespace connack311

// MQTT 5 properties. Which ones a packet may carry is checked by the decoder; encoders write the
// ones that are set. user_properties keep their order; subscription_identifiers may repeat only
// in PUBLISH.
struct Properties {
  std::optional<std::uint8_t> payload_format_indicator;              // 0x01
  std::optional<std::uint32_t> message_expiry_interval;              // 0x02
  std::optional<std::string> content_type;                           // 0x03
  std::optional<std::string> response_topic;                         // 0x08
  std::optional<std::string> correlation_data;                       // 0x09 (binary)
  std::vector<std::uint32_t> subscription_identifiers;               // 0x0B (variable byte integer, 1..268435455)
  std::optional<std::uint32_t> session_expiry_interval;              // 0x11
  std::optional<std::string> assigned_client_identifier;             // 0x12
  std::optional<std::uint16_t> server_keep_alive;                    // 0x13
  std::optional<std::string> authentication_method;                  // 0x15
  std::optional<std::string> authentication_data;                    // 0x16 (binary)
  std::optional<std::uint8_t> request_problem_information;           // 0x17
  std::optional<std::uint32_t> will_delay_interval;                  // 0x18
  std::optional<std::uint8_t> request_response_information;          // 0x19
  std::optional<std::string> response_information;                   // 0x1A
  std::optional<std::string> server_reference;                       // 0x1C
  std::optional<std::string> reason_string;                          // 0x1F
  std::optional<std::uint16_t> receive_maximum;                      // 0x21 (non-zero)
  std::optional<std::uint16_t> topic_alias_maximum;                  // 0x22
  std::optional<std::uint16_t> topic_alias;                          // 0x23 (non-zero)
  std::optional<std::uint8_t> maximum_qos;                           // 0x24
  std::optional<std::uint8_t> retain_available;                      // 0x25
  std::vector<std::pair<std::string, std::string>> user_properties;  // 0x26
  std::optional<std::uint32_t> maximum_packet_size;                  // 0x27 (non-zero)
  std::optional<std::uint8_t> wildcard_subscription_available;       // 0x28
  std::optional<std::uint8_t> subscription_identifier_available;     // 0x29
  std::optional<std::uint8_t> shared_subscription_available;         // 0x2A

  friend bool operator==(const Properties&, const Properties&) = default;
};

struct Will {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  Properties props;  // will properties (v5)

  friend bool operator==(const Will&, const Will&) = default;
};

struct Connect {
  Version version = Version::k311;
  bool clean_start = true;  // 3.1.1: clean session
  std::uint16_t keep_alive = 0;
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  std::optional<Will> will;
  Properties props;

  friend bool operator==(const Connect&, const Connect&) = default;
};

struct Connack {
  bool session_present = false;
  std::uint8_t reason = 0;  // v5 reason code, or 3.1.1 return code
  Properties props;

  friend bool operator==(const Connack&, const Connack&) = default;
};

struct Publish {
  bool dup = false;
  std::uint8_t qos = 0;
  bool retain = false;
  std::string topic;  // may be empty in v5 when a topic alias is set
  std::uint16_t packet_id = 0;
  Properties props;
  std::string payload;

  friend bool operator==(const Publish&, const Publish&) = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct Ack {
  PacketType type = PacketType::kPuback;
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0;
  Properties props;

  friend bool operator==(const Ack&, const Ack&) = default;
};

struct SubscriptionRequest {
  std::string filter;
  std::uint8_t qos = 0;
  bool no_local = false;             // v5
  bool retain_as_published = false;  // v5
  std::uint8_t retain_handling = 0;  // v5: 0 send retained, 1 only if new, 2 never

  friend bool operator==(const SubscriptionRequest&, const SubscriptionRequest&) = default;
};

struct Subscribe {
  std::uint16_t packet_id = 0;
  Properties props;
  std::vector<SubscriptionRequest> subscriptions;  // never empty after decoding

  friend bool operator==(const Subscribe&, const Subscribe&) = default;
};

struct Suback {
  std::uint16_t packet_id = 0;
  Properties props;
  std::vector<std::uint8_t> reasons;  // 3.1.1: 0,1,2 or 0x80

  friend bool operator==(const Suback&, const Suback&) = default;
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  Properties props;
  std::vector<std::string> filters;  // never empty after decoding

  friend bool operator==(const Unsubscribe&, const Unsubscribe&) = default;
};

struct Unsuback {
  std::uint16_t packet_id = 0;
  Properties props;
  std::vector<std::uint8_t> reasons;  // v5 only; not written for 3.1.1

  friend bool operator==(const Unsuback&, const Unsuback&) = default;
};

struct Pingreq {
  friend bool operator==(const Pingreq&, const Pingreq&) = default;
};
struct Pingresp {
  friend bool operator==(const Pingresp&, const Pingresp&) = default;
};

struct Disconnect {
  std::uint8_t reason = 0;
  Properties props;

  friend bool operator==(const Disconnect&, const Disconnect&) = default;
};

struct AuthPacket {
  std::uint8_t reason = 0;
  Properties props;

  friend bool operator==(const AuthPacket&, const AuthPacket&) = default;
};

using Packet = std::variant<Connect, Connack, Publish, Ack, Subscribe, Suback, Unsubscribe, Unsuback, Pingreq, Pingresp,
                            Disconnect, AuthPacket>;

// The fixed header: first byte and the remaining length (variable byte integer, at most 4 bytes).
struct FixedHeader {
  std::uint8_t first_byte = 0;
  std::uint32_t remaining_length = 0;
  std::uint8_t header_size = 0;  // 2..5
  PacketType type() const { return static_cast<PacketType>(first_byte >> 4); }
};

enum class FrameStatus { kComplete, kIncomplete, kMalformed };

// Parses the fixed header at the start of data. kIncomplete: more bytes are needed (the length
// is not yet terminated within the bytes present). kMalformed: the length needs a fifth byte, is
// not in its shortest form (MQTT-1.5.5-1), or the packet type is 0 (reserved).
FrameStatus parseFixedHeader(std::span<const std::uint8_t> data, FixedHeader& out);

struct DecodeError {
  std::uint8_t reason = reason::kMalformed;  // v5 reason code to send in DISCONNECT/CONNACK
  std::string message;                       // for logs
};

// Decodes one complete packet: header from parseFixedHeader, body = exactly remaining_length
// bytes. version is the session's negotiated version; it is ignored for CONNECT, whose protocol
// level decides (an unsupported level gives reason kUnsupportedVersion).
// Only packets a server may receive are decoded: CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL,
// PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH; any other type is kProtocolError.
// Topic names and filters are checked for UTF-8 only here; wildcard rules live in topic.h.
// Reasons follow the v5 spec: kMalformed for framing faults (truncation, trailing bytes, bad
// variable byte integers, unknown or misplaced properties, invalid UTF-8, wrong fixed-header or
// CONNECT flags, PUBLISH QoS 3, DUP with QoS 0, packet identifier 0, reserved subscription
// option bits); kProtocolError for duplicate properties, a zero receive maximum, maximum packet
// size or subscription identifier, 0/1 properties with other values, authentication data
// without a method, SUBSCRIBE/UNSUBSCRIBE without filters, v5 subscription QoS 3 or retain
// handling 3, and packets a server never receives; kTopicAliasInvalid for topic alias 0.
std::variant<Packet, DecodeError> decode(const FixedHeader& header, std::span<const std::uint8_t> body,
                                         Version version);

// Encoders append one complete packet (fixed header included) to out. Properties are written
// only for v5, and only those the packet type allows (one subscription identifier in SUBSCRIBE).
// They encode what the server sends (CONNACK, PUBLISH, acks, SUBACK, UNSUBACK, PINGRESP,
// DISCONNECT, AUTH) and, for test clients and the load generator, CONNECT, SUBSCRIBE,
// UNSUBSCRIBE and PINGREQ too. CONNECT is written with its own Connect::version (as decode takes
// the version from the packet); AUTH exists only in v5 and is always written in v5 form; a 3.1.1
// SUBACK writes every failure reason (>= 0x80) as 0x80. Encoders do not validate: the caller
// keeps fields in range (QoS <= 2, strings <= 65535 bytes, packet <= kMaxVarInt bytes); out of
// range values are clamped or masked so the output stays framed, never undefined.
void encode(const Packet& packet, Version version, std::string& out);

// Size of the encoded packet without building it (to honour a client's maximum packet size).
std::size_t encodedSize(const Packet& packet, Version version);

// Variable byte integer helpers (also used by tests). Values above kMaxVarInt are written as
// kMaxVarInt.
inline constexpr std::uint32_t kMaxVarInt = 268'435'455;
void appendVarInt(std::uint32_t value, std::string& out);
std::size_t varIntSize(std::uint32_t value);

// True when text is a valid MQTT UTF-8 string (MQTT-1.5.4-1/2: well-formed, no U+0000, no
// UTF-16 surrogates encoded as UTF-8).
bool validMqttUtf8(std::string_view text);

}  // namespace sw::mqtt
