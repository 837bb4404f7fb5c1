// MQTT packet codec: round trips of every packet in both versions, exact bytes of canonical
// packets, every decoder rule with the reason code the server must send, variable byte integer
// boundaries and MQTT UTF-8 validation.
#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "ingest/transports/mqtt/packet.h"

namespace sw::mqtt {
namespace {

// "10 02 00 ff" -> bytes.
std::string hex(std::string_view text) {
  std::string out;
  int nibbles = 0;
  unsigned value = 0;
  for (char c : text) {
    if (c == ' ') continue;
    const unsigned digit = (c >= '0' && c <= '9') ? unsigned(c - '0') : unsigned((c | 0x20) - 'a' + 10);
    value = (value << 4) | digit;
    if (++nibbles == 2) {
      out.push_back(static_cast<char>(value));
      nibbles = 0;
      value = 0;
    }
  }
  return out;
}

// Two-byte length prefixed string.
std::string str(std::string_view s) {
  std::string out;
  out.push_back(static_cast<char>(s.size() >> 8));
  out.push_back(static_cast<char>(s.size() & 0xFF));
  out.append(s);
  return out;
}

std::string varint(std::uint32_t v) {
  std::string out;
  appendVarInt(v, out);
  return out;
}

// A whole packet: first byte, remaining length, body.
std::string frame(std::uint8_t first, std::string_view body) {
  std::string out(1, static_cast<char>(first));
  appendVarInt(static_cast<std::uint32_t>(body.size()), out);
  out.append(body);
  return out;
}

std::span<const std::uint8_t> asBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::variant<Packet, DecodeError> decodeWhole(std::string_view bytes, Version v) {
  FixedHeader h;
  const auto in = asBytes(bytes);
  if (parseFixedHeader(in, h) != FrameStatus::kComplete) return DecodeError{0xFF, "frame"};
  if (std::size_t{h.header_size} + h.remaining_length != bytes.size()) return DecodeError{0xFE, "size"};
  return decode(h, in.subspan(h.header_size), v);
}

// 0 when the packet decodes, else the reason code of the error.
std::uint8_t reasonOf(std::string_view bytes, Version v) {
  auto r = decodeWhole(bytes, v);
  if (auto* e = std::get_if<DecodeError>(&r)) {
    EXPECT_FALSE(e->message.empty());
    return e->reason;
  }
  return 0;
}

template <class T>
T decodeAs(std::string_view bytes, Version v) {
  auto r = decodeWhole(bytes, v);
  if (auto* e = std::get_if<DecodeError>(&r)) {
    ADD_FAILURE() << "decode failed: " << e->message;
    return T{};
  }
  auto& p = std::get<Packet>(r);
  if (!std::holds_alternative<T>(p)) {
    ADD_FAILURE() << "unexpected packet type " << p.index();
    return T{};
  }
  return std::get<T>(p);
}

std::string encoded(const Packet& p, Version v) {
  std::string out;
  encode(p, v, out);
  EXPECT_EQ(out.size(), encodedSize(p, v));
  return out;
}

// encode -> decode, checking the size promise and that re-encoding gives the same bytes.
template <class T>
T roundTrip(const T& packet, Version v) {
  const std::string bytes = encoded(packet, v);
  T back = decodeAs<T>(bytes, v);
  EXPECT_EQ(encoded(back, v), bytes);
  return back;
}

constexpr Version k3 = Version::k311;
constexpr Version k5 = Version::k5;

Properties publishProps() {
  Properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 3600;
  p.content_type = "application/json";
  p.response_topic = "reply/to/me";
  p.correlation_data = std::string("\x00\x01\xFF", 3);
  p.subscription_identifiers = {1, 127, 128, 268435455};
  p.topic_alias = 7;
  p.user_properties = {{"k", "v"}, {"k", "second"}, {"", ""}};
  return p;
}

Properties willProps() {
  Properties p;
  p.payload_format_indicator = 0;
  p.message_expiry_interval = 10;
  p.content_type = "text/plain";
  p.response_topic = "will/reply";
  p.correlation_data = "cid";
  p.will_delay_interval = 30;
  p.user_properties = {{"w", "1"}};
  return p;
}

Properties connectProps() {
  Properties p;
  p.session_expiry_interval = 0xFFFFFFFF;
  p.authentication_method = "SCRAM-SHA-1";
  p.authentication_data = std::string("\x00\x10", 2);
  p.request_problem_information = 0;
  p.request_response_information = 1;
  p.receive_maximum = 20;
  p.topic_alias_maximum = 0;
  p.user_properties = {{"device", "d1"}};
  p.maximum_packet_size = 1048576;
  return p;
}

Properties reasonProps() {
  Properties p;
  p.reason_string = "because";
  p.user_properties = {{"a", "b"}};
  return p;
}

// ---- round trips ----

TEST(MqttPacket, ConnectRoundTripsV5WithEverything) {
  Connect c;
  c.version = k5;
  c.clean_start = false;
  c.keep_alive = 65535;
  c.client_id = "sensor-\xC3\xA9";
  c.username = "user";
  c.password = std::string("p\x00ss", 4);
  c.will = Will{"will/topic", std::string("bye\x00", 4), 2, true, willProps()};
  c.props = connectProps();
  // The session version is ignored for CONNECT: the protocol level decides.
  EXPECT_EQ(roundTrip(c, k3), c);
  EXPECT_EQ(roundTrip(c, k5), c);
}

TEST(MqttPacket, ConnectRoundTrips311) {
  Connect c;
  c.version = k3;
  c.keep_alive = 60;
  c.client_id = "";
  c.username = "";
  c.password = "secret";
  c.will = Will{"w", "", 1, false, {}};
  EXPECT_EQ(roundTrip(c, k3), c);
  Connect bare;
  bare.client_id = "c";
  EXPECT_EQ(roundTrip(bare, k5), bare);
}

TEST(MqttPacket, ConnectV5AllowsPasswordWithoutUserName) {
  Connect c;
  c.version = k5;
  c.client_id = "c";
  c.password = "token";
  EXPECT_EQ(roundTrip(c, k5), c);
}

TEST(MqttPacket, PublishRoundTripsEveryQos) {
  for (std::uint8_t qos = 0; qos <= 2; ++qos) {
    for (bool retain : {false, true}) {
      Publish p;
      p.qos = qos;
      p.dup = qos > 0;
      p.retain = retain;
      p.topic = "a/b/\xE2\x82\xAC";
      p.packet_id = qos > 0 ? 65535 : 0;
      p.payload = std::string("\x00payload\xFF", 9);
      EXPECT_EQ(roundTrip(p, k3), p);
      p.props = publishProps();
      EXPECT_EQ(roundTrip(p, k5), p);
    }
  }
}

TEST(MqttPacket, PublishV5WithAliasAndEmptyTopicAndPayload) {
  Publish p;
  p.topic = "";
  p.props.topic_alias = 1;
  EXPECT_EQ(roundTrip(p, k5), p);
  EXPECT_EQ(encoded(p, k5), hex("30 06 00 00 03 23 00 01"));
}

TEST(MqttPacket, AcksRoundTrip) {
  for (PacketType t : {PacketType::kPuback, PacketType::kPubrec, PacketType::kPubrel, PacketType::kPubcomp}) {
    Ack a;
    a.type = t;
    a.packet_id = 42;
    EXPECT_EQ(roundTrip(a, k3), a);
    EXPECT_EQ(roundTrip(a, k5), a);
    a.reason = 0x92;
    EXPECT_EQ(roundTrip(a, k5), a);
    a.props = reasonProps();
    EXPECT_EQ(roundTrip(a, k5), a);
    a.reason = 0;
    EXPECT_EQ(roundTrip(a, k5), a);
  }
}

TEST(MqttPacket, SubscribeRoundTrips) {
  Subscribe s;
  s.packet_id = 9;
  s.subscriptions = {{"a/+", 0, false, false, 0}, {"b/#", 1, false, false, 0}, {"c", 2, false, false, 0}};
  EXPECT_EQ(roundTrip(s, k3), s);
  s.subscriptions.push_back({"$share/g/d", 2, true, true, 2});
  s.subscriptions.push_back({"e", 1, false, true, 1});
  s.props.subscription_identifiers = {268435455};
  s.props.user_properties = {{"x", "y"}};
  EXPECT_EQ(roundTrip(s, k5), s);
}

TEST(MqttPacket, UnsubscribeRoundTrips) {
  Unsubscribe u;
  u.packet_id = 1;
  u.filters = {"a/#", "", "b"};
  EXPECT_EQ(roundTrip(u, k3), u);
  u.props.user_properties = {{"x", "y"}, {"x", "z"}};
  EXPECT_EQ(roundTrip(u, k5), u);
}

TEST(MqttPacket, PingreqDisconnectAuthRoundTrip) {
  EXPECT_EQ(roundTrip(Pingreq{}, k3), Pingreq{});
  EXPECT_EQ(roundTrip(Pingreq{}, k5), Pingreq{});
  EXPECT_EQ(roundTrip(Disconnect{}, k3), Disconnect{});
  Disconnect d;
  d.reason = reason::kDisconnectWithWill;
  EXPECT_EQ(roundTrip(d, k5), d);
  d.props = reasonProps();
  d.props.session_expiry_interval = 0;
  d.props.server_reference = "other.example";
  EXPECT_EQ(roundTrip(d, k5), d);
  d.reason = 0;
  EXPECT_EQ(roundTrip(d, k5), d);

  AuthPacket a;
  EXPECT_EQ(roundTrip(a, k5), a);
  a.reason = 0x18;
  EXPECT_EQ(roundTrip(a, k5), a);
  a.props = reasonProps();
  a.props.authentication_method = "SCRAM-SHA-1";
  a.props.authentication_data = "data";
  EXPECT_EQ(roundTrip(a, k5), a);
}

// ---- exact bytes ----

TEST(MqttPacket, CanonicalServerPackets) {
  EXPECT_EQ(encoded(Connack{true, connack311::kAccepted, {}}, k3), hex("20 02 01 00"));
  EXPECT_EQ(encoded(Connack{false, connack311::kNotAuthorized, {}}, k3), hex("20 02 00 05"));
  EXPECT_EQ(encoded(Connack{false, reason::kNotAuthorized, {}}, k5), hex("20 03 00 87 00"));
  EXPECT_EQ(encoded(Connack{false, reason::kUnsupportedVersion, {}}, k5), hex("20 03 00 84 00"));
  EXPECT_EQ(encoded(Connack{true, 0, {}}, k5), hex("20 03 01 00 00"));
  EXPECT_EQ(encoded(Pingresp{}, k3), hex("D0 00"));
  EXPECT_EQ(encoded(Pingresp{}, k5), hex("D0 00"));
  EXPECT_EQ(encoded(Pingreq{}, k5), hex("C0 00"));
  EXPECT_EQ(encoded(Disconnect{reason::kTopicNameInvalid, {}}, k5), hex("E0 01 90"));
  EXPECT_EQ(encoded(Disconnect{0, {}}, k5), hex("E0 00"));
  EXPECT_EQ(encoded(Disconnect{reason::kTopicNameInvalid, {}}, k3), hex("E0 00"));
  EXPECT_EQ(encoded(AuthPacket{0x18, {}}, k5), hex("F0 02 18 00"));
  EXPECT_EQ(encoded(AuthPacket{0, {}}, k5), hex("F0 00"));

  EXPECT_EQ(encoded(Ack{PacketType::kPuback, 1, 0, {}}, k5), hex("40 02 00 01"));
  EXPECT_EQ(encoded(Ack{PacketType::kPuback, 1, 0x10, {}}, k5), hex("40 03 00 01 10"));
  EXPECT_EQ(encoded(Ack{PacketType::kPubrec, 0x1234, 0x80, {}}, k3), hex("50 02 12 34"));
  EXPECT_EQ(encoded(Ack{PacketType::kPubrel, 2, 0, {}}, k5), hex("62 02 00 02"));
  EXPECT_EQ(encoded(Ack{PacketType::kPubcomp, 2, 0x92, {}}, k5), hex("70 03 00 02 92"));
  Properties rs;
  rs.reason_string = "no";
  EXPECT_EQ(encoded(Ack{PacketType::kPuback, 1, 0, rs}, k5), hex("40 09 00 01 00 05 1F 00 02") + "no");

  EXPECT_EQ(encoded(Suback{10, {}, {0, 1, 2, 0x87}}, k3), hex("90 06 00 0A 00 01 02 80"));
  EXPECT_EQ(encoded(Suback{10, {}, {0, 1, 2, 0x87}}, k5), hex("90 07 00 0A 00 00 01 02 87"));
  EXPECT_EQ(encoded(Unsuback{10, {}, {0x11}}, k3), hex("B0 02 00 0A"));
  EXPECT_EQ(encoded(Unsuback{10, {}, {0, 0x11}}, k5), hex("B0 05 00 0A 00 00 11"));
}

TEST(MqttPacket, ConnackV5WithEveryProperty) {
  Connack c;
  c.props.session_expiry_interval = 3600;
  c.props.assigned_client_identifier = "auto-1";
  c.props.server_keep_alive = 30;
  c.props.authentication_method = "M";
  c.props.authentication_data = "\x01\x02";
  c.props.response_information = "resp";
  c.props.server_reference = "srv";
  c.props.reason_string = "ok";
  c.props.receive_maximum = 64;
  c.props.topic_alias_maximum = 10;
  c.props.maximum_qos = 1;
  c.props.retain_available = 1;
  c.props.user_properties = {{"k", "v"}};
  c.props.maximum_packet_size = 1048576;
  c.props.wildcard_subscription_available = 1;
  c.props.subscription_identifier_available = 0;
  c.props.shared_subscription_available = 1;
  c.props.topic_alias = 3;  // not a CONNACK property: never written
  const std::string props = hex("11 00 00 0E 10") + hex("12") + str("auto-1") + hex("13 00 1E") + hex("15") + str("M") +
                            hex("16") + str("\x01\x02") + hex("1A") + str("resp") + hex("1C") + str("srv") + hex("1F") +
                            str("ok") + hex("21 00 40 22 00 0A 24 01 25 01 26") + str("k") + str("v") +
                            hex("27 00 10 00 00 28 01 29 00 2A 01");
  const std::string body = hex("00 00") + varint(static_cast<std::uint32_t>(props.size())) + props;
  EXPECT_EQ(encoded(c, k5), frame(0x20, body));
  EXPECT_EQ(encoded(c, k3), hex("20 02 00 00"));
}

TEST(MqttPacket, CanonicalClientPackets) {
  Connect c;
  c.keep_alive = 60;
  c.client_id = "client1";
  const std::string connect311 = hex("10 13") + str("MQTT") + hex("04 02 00 3C") + str("client1");
  EXPECT_EQ(encoded(c, k3), connect311);
  EXPECT_EQ(decodeAs<Connect>(connect311, k3), c);

  Publish p;
  p.qos = 1;
  p.packet_id = 1;
  p.topic = "a/b";
  p.payload = "hi";
  EXPECT_EQ(encoded(p, k3), hex("32 09") + str("a/b") + hex("00 01") + "hi");
  EXPECT_EQ(encoded(p, k5), hex("32 0A") + str("a/b") + hex("00 01 00") + "hi");

  Subscribe s{5, {}, {{"t", 1, true, true, 2}}};
  EXPECT_EQ(encoded(s, k3), hex("82 06 00 05") + str("t") + hex("01"));
  EXPECT_EQ(encoded(s, k5), hex("82 07 00 05 00") + str("t") + hex("2D"));
}

TEST(MqttPacket, EncoderWritesOnlyPropertiesThePacketAllows) {
  Publish p;
  p.topic = "t";
  p.props.session_expiry_interval = 5;
  p.props.reason_string = "x";
  EXPECT_EQ(encoded(p, k5), hex("30 04") + str("t") + hex("00"));
  Subscribe s{1, {}, {{"t", 0, false, false, 0}}};
  s.props.subscription_identifiers = {3, 4};
  EXPECT_EQ(encoded(s, k5), hex("82 09 00 01 02 0B 03") + str("t") + hex("00"));
  Ack a{PacketType::kPuback, 1, 0, {}};
  a.props.topic_alias = 4;
  EXPECT_EQ(encoded(a, k5), hex("40 02 00 01"));
}

TEST(MqttPacket, EncoderKeepsFramingForOutOfRangeFields) {
  Publish p;
  p.topic = std::string(70000, 'a');
  p.qos = 3;
  p.dup = true;
  p.packet_id = 1;
  const std::string bytes = encoded(p, k3);
  const auto back = decodeAs<Publish>(bytes, k3);
  EXPECT_EQ(back.qos, 2);
  EXPECT_EQ(back.topic.size(), 65535u);
  EXPECT_EQ(back.payload, "");

  Publish q0;
  q0.topic = "t";
  q0.dup = true;
  EXPECT_EQ(encoded(q0, k3), hex("30 03") + str("t"));
}

TEST(MqttPacket, LargePublishUsesMultiByteLength) {
  Publish p;
  p.topic = "t";
  p.payload = std::string(20000, 'x');
  const std::string bytes = encoded(p, k5);
  EXPECT_EQ(bytes.substr(0, 4), hex("30") + varint(20004));
  EXPECT_EQ(roundTrip(p, k5), p);
}

// ---- decoder rules ----

const std::string kConnectHead311 = str("MQTT") + hex("04");
const std::string kConnectHead5 = str("MQTT") + hex("05");

TEST(MqttDecode, ProtocolNameAndLevel) {
  EXPECT_EQ(reasonOf(frame(0x10, str("MQIsdp") + hex("03 02 00 3C") + str("c")), k3), reason::kUnsupportedVersion);
  EXPECT_EQ(reasonOf(frame(0x10, str("MQTT") + hex("03 02 00 3C") + str("c")), k3), reason::kUnsupportedVersion);
  EXPECT_EQ(reasonOf(frame(0x10, str("MQTT") + hex("06 02 00 3C") + str("c")), k5), reason::kUnsupportedVersion);
  EXPECT_EQ(reasonOf(frame(0x10, str("MQTX") + hex("04 02 00 3C") + str("c")), k3), reason::kUnsupportedVersion);
  EXPECT_EQ(reasonOf(frame(0x10, str("MQTT")), k3), reason::kMalformed);
  EXPECT_EQ(decodeAs<Connect>(frame(0x10, kConnectHead5 + hex("02 00 3C 00") + str("c")), k3).version, k5);
  EXPECT_EQ(decodeAs<Connect>(frame(0x10, kConnectHead311 + hex("02 00 3C") + str("c")), k5).version, k3);
}

TEST(MqttDecode, ConnectFlags) {
  auto connect311 = [](std::string_view flags, std::string_view rest) {
    return frame(0x10, kConnectHead311 + hex(flags) + hex("00 3C") + str("c") + std::string(rest));
  };
  EXPECT_EQ(reasonOf(connect311("03", ""), k3), reason::kMalformed);                   // reserved bit
  EXPECT_EQ(reasonOf(connect311("1E", str("w") + str("p")), k3), reason::kMalformed);  // will QoS 3
  EXPECT_EQ(reasonOf(connect311("0A", ""), k3), reason::kMalformed);                   // will QoS without will flag
  EXPECT_EQ(reasonOf(connect311("22", ""), k3), reason::kMalformed);                   // will retain without will flag
  EXPECT_EQ(reasonOf(connect311("42", str("pw")), k3), reason::kMalformed);            // password without user name
  EXPECT_EQ(reasonOf(connect311("C2", str("u") + str("pw")), k3), 0);
  EXPECT_EQ(reasonOf(connect311("36", str("w") + str("p")), k3), 0);  // will QoS 2 retain
  // v5: password without user name is fine.
  EXPECT_EQ(reasonOf(frame(0x10, kConnectHead5 + hex("42 00 3C 00") + str("c") + str("pw")), k5), 0);
  EXPECT_EQ(reasonOf(frame(0x10, kConnectHead5 + hex("03 00 3C 00") + str("c")), k5), reason::kMalformed);
}

TEST(MqttDecode, EveryTruncationOfConnectIsMalformed) {
  Connect c;
  c.version = k5;
  c.client_id = "client";
  c.username = "u";
  c.password = "p";
  c.will = Will{"w/t", "payload", 1, true, willProps()};
  c.props = connectProps();
  const std::string bytes = encoded(c, k5);
  FixedHeader h;
  ASSERT_EQ(parseFixedHeader(asBytes(bytes), h), FrameStatus::kComplete);
  const std::string body = bytes.substr(h.header_size);
  for (std::size_t n = 0; n < body.size(); ++n) {
    EXPECT_EQ(reasonOf(frame(0x10, body.substr(0, n)), k5), reason::kMalformed) << "prefix " << n;
  }
  EXPECT_EQ(reasonOf(frame(0x10, body + "x"), k5), reason::kMalformed);  // trailing byte
}

TEST(MqttDecode, ConnectPropertyRules) {
  auto withProps = [](std::string_view props) {
    return frame(0x10, kConnectHead5 + hex("02 00 3C") + varint(static_cast<std::uint32_t>(props.size())) +
                           std::string(props) + str("c"));
  };
  EXPECT_EQ(reasonOf(withProps(hex("21 00 00")), k5), reason::kProtocolError);        // receive maximum 0
  EXPECT_EQ(reasonOf(withProps(hex("27 00 00 00 00")), k5), reason::kProtocolError);  // maximum packet size 0
  EXPECT_EQ(reasonOf(withProps(hex("17 02")), k5), reason::kProtocolError);           // request problem info 2
  EXPECT_EQ(reasonOf(withProps(hex("19 05")), k5), reason::kProtocolError);           // request response info 5
  EXPECT_EQ(reasonOf(withProps(hex("11 00 00 00 01 11 00 00 00 02")), k5), reason::kProtocolError);  // duplicate
  EXPECT_EQ(reasonOf(withProps(hex("23 00 01")), k5), reason::kMalformed);              // topic alias: not in CONNECT
  EXPECT_EQ(reasonOf(withProps(hex("01 01")), k5), reason::kMalformed);                 // payload format: will only
  EXPECT_EQ(reasonOf(withProps(hex("16") + str("d")), k5), reason::kProtocolError);     // data without method
  EXPECT_EQ(reasonOf(withProps(hex("15") + str("\xC0\x80")), k5), reason::kMalformed);  // method UTF-8
  EXPECT_EQ(
      reasonOf(withProps(hex("21 00 01 27 00 00 00 01 26") + str("a") + str("b") + hex("26") + str("a") + str("b")),
               k5),
      0);
  // Will properties: session expiry is not one of them.
  EXPECT_EQ(reasonOf(frame(0x10, kConnectHead5 + hex("06 00 3C 00") + str("c") + hex("05 11 00 00 00 01") + str("w") +
                                     str("p")),
                     k5),
            reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x10, kConnectHead5 + hex("06 00 3C 00") + str("c") + hex("05 18 00 00 00 01") + str("w") +
                                     str("p")),
                     k5),
            0);
}

TEST(MqttDecode, InvalidUtf8InEveryStringField) {
  const std::string bad = "a\xC0\x80";
  const std::string nul("a\0b", 3);
  for (const std::string& s : {bad, nul, std::string("\xED\xA0\x80")}) {
    Connect c;
    c.version = k5;
    c.client_id = s;
    EXPECT_EQ(reasonOf(encoded(c, k5), k5), reason::kMalformed) << "client id";
    c.client_id = "c";
    c.username = s;
    EXPECT_EQ(reasonOf(encoded(c, k5), k5), reason::kMalformed) << "user name";
    c.username.reset();
    c.will = Will{s, "", 0, false, {}};
    EXPECT_EQ(reasonOf(encoded(c, k5), k5), reason::kMalformed) << "will topic";
    c.will->topic = "w";
    c.will->props.content_type = s;
    EXPECT_EQ(reasonOf(encoded(c, k5), k5), reason::kMalformed) << "will content type";
    c.will.reset();
    c.props.authentication_method = s;
    EXPECT_EQ(reasonOf(encoded(c, k5), k5), reason::kMalformed) << "auth method";
    c.props = {};
    c.props.user_properties = {{s, "v"}};
    EXPECT_EQ(reasonOf(encoded(c, k5), k5), reason::kMalformed) << "user property name";
    c.props.user_properties = {{"k", s}};
    EXPECT_EQ(reasonOf(encoded(c, k5), k5), reason::kMalformed) << "user property value";

    Publish p;
    p.topic = s;
    EXPECT_EQ(reasonOf(encoded(p, k3), k3), reason::kMalformed) << "topic";
    p.topic = "t";
    p.props.content_type = s;
    EXPECT_EQ(reasonOf(encoded(p, k5), k5), reason::kMalformed) << "content type";
    p.props = {};
    p.props.response_topic = s;
    EXPECT_EQ(reasonOf(encoded(p, k5), k5), reason::kMalformed) << "response topic";

    Subscribe sub{1, {}, {{s, 0, false, false, 0}}};
    EXPECT_EQ(reasonOf(encoded(sub, k3), k3), reason::kMalformed) << "subscribe filter";
    Unsubscribe unsub{1, {}, {"ok", s}};
    EXPECT_EQ(reasonOf(encoded(unsub, k5), k5), reason::kMalformed) << "unsubscribe filter";

    Properties rs;
    rs.reason_string = s;
    EXPECT_EQ(reasonOf(encoded(Ack{PacketType::kPuback, 1, 0x80, rs}, k5), k5), reason::kMalformed) << "reason";
    EXPECT_EQ(reasonOf(encoded(Disconnect{0x80, rs}, k5), k5), reason::kMalformed) << "disconnect reason";
  }
  // Binary fields are not UTF-8 checked.
  Connect c;
  c.client_id = "c";
  c.username = "u";
  c.password = bad;
  c.will = Will{"w", nul, 0, false, {}};
  EXPECT_EQ(decodeAs<Connect>(encoded(c, k3), k3), c);
}

TEST(MqttDecode, FixedHeaderFlags) {
  EXPECT_EQ(reasonOf(hex("60 02 00 01"), k3), reason::kMalformed);  // PUBREL must be 0010
  EXPECT_EQ(reasonOf(hex("62 02 00 01"), k3), 0);
  EXPECT_EQ(reasonOf(hex("42 02 00 01"), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(hex("51 02 00 01"), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(hex("78 02 00 01"), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x80, hex("00 01") + str("t") + hex("00")), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x83, hex("00 01") + str("t") + hex("00")), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0xA0, hex("00 01") + str("t")), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(hex("C1 00"), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(hex("E2 00"), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(hex("F1 00"), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x12, kConnectHead311 + hex("02 00 3C") + str("c")), k3), reason::kMalformed);
}

TEST(MqttDecode, PublishRules) {
  EXPECT_EQ(reasonOf(frame(0x36, str("t") + hex("00 01")), k3), reason::kMalformed);  // QoS 3
  EXPECT_EQ(reasonOf(frame(0x32, str("t") + hex("00 00")), k3), reason::kMalformed);  // packet id 0
  EXPECT_EQ(reasonOf(frame(0x34, str("t") + hex("00 00 00")), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x38, str("t")), k3), reason::kMalformed);              // DUP with QoS 0
  EXPECT_EQ(reasonOf(frame(0x32, str("t") + hex("00")), k3), reason::kMalformed);  // truncated id
  EXPECT_EQ(reasonOf(frame(0x30, hex("00 05 61")), k3), reason::kMalformed);       // topic beyond body
  EXPECT_EQ(reasonOf(frame(0x30, hex("00")), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x30, str("t")), k5), reason::kMalformed);  // v5: property length missing
  // Wildcards and empty topics are the broker's business, not the codec's.
  EXPECT_EQ(decodeAs<Publish>(frame(0x31, str("a/+/#")), k3).topic, "a/+/#");
  EXPECT_EQ(decodeAs<Publish>(frame(0x30, str("") + hex("00")), k5).topic, "");
  // 3.1.1 has no properties: the byte after the topic is payload.
  EXPECT_EQ(decodeAs<Publish>(frame(0x30, str("t") + hex("00 78")), k3).payload, std::string("\0x", 2));
  EXPECT_EQ(decodeAs<Publish>(frame(0x30, str("t") + hex("00 78")), k5).payload, "x");
  const auto p = decodeAs<Publish>(frame(0x3D, str("t") + hex("FF FF 00") + "pay"), k5);
  EXPECT_TRUE(p.dup);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.qos, 2);
  EXPECT_EQ(p.packet_id, 0xFFFF);
  EXPECT_EQ(p.payload, "pay");
}

std::string publishWithProps(std::string_view props) {
  return frame(0x30, str("t") + varint(static_cast<std::uint32_t>(props.size())) + std::string(props) + "pl");
}

TEST(MqttDecode, PropertyRules) {
  EXPECT_EQ(reasonOf(publishWithProps(hex("23 00 00")), k5), reason::kTopicAliasInvalid);   // topic alias 0
  EXPECT_EQ(reasonOf(publishWithProps(hex("0B 00")), k5), reason::kProtocolError);          // subscription id 0
  EXPECT_EQ(reasonOf(publishWithProps(hex("0B 01 0B 02 0B FF FF FF 7F")), k5), 0);          // ids may repeat
  EXPECT_EQ(reasonOf(publishWithProps(hex("0B 80 00")), k5), reason::kMalformed);           // non-minimal var int
  EXPECT_EQ(reasonOf(publishWithProps(hex("0B FF FF FF FF 01")), k5), reason::kMalformed);  // 5 bytes
  EXPECT_EQ(reasonOf(publishWithProps(hex("0B 80")), k5), reason::kMalformed);              // truncated var int
  EXPECT_EQ(reasonOf(publishWithProps(hex("05 00")), k5), reason::kMalformed);              // unknown id
  EXPECT_EQ(reasonOf(publishWithProps(hex("00")), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(publishWithProps(hex("2B 00")), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(publishWithProps(hex("81 01")), k5), reason::kMalformed);           // multi-byte identifier
  EXPECT_EQ(reasonOf(publishWithProps(hex("11 00 00 00 01")), k5), reason::kMalformed);  // not allowed
  EXPECT_EQ(reasonOf(publishWithProps(hex("1F") + str("r")), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(publishWithProps(hex("03") + str("a") + hex("03") + str("b")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(publishWithProps(hex("01 00 01 01")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(publishWithProps(hex("23 00 01 23 00 02")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(publishWithProps(hex("02 00 00")), k5), reason::kMalformed);  // value cut by property length
  EXPECT_EQ(reasonOf(publishWithProps(hex("09 00 05 61")), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(publishWithProps(hex("26") + str("k")), k5), reason::kMalformed);  // pair without value
  // Property length beyond the body.
  EXPECT_EQ(reasonOf(frame(0x30, str("t") + hex("05 01 01")), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x30, str("t") + hex("80 80 80 80 01")), k5), reason::kMalformed);
  // The payload after a property block is kept as is.
  const auto p = decodeAs<Publish>(publishWithProps(hex("01 01 23 00 09")), k5);
  EXPECT_EQ(p.props.payload_format_indicator, 1);
  EXPECT_EQ(p.props.topic_alias, 9);
  EXPECT_EQ(p.payload, "pl");
}

TEST(MqttDecode, AckForms) {
  for (std::uint8_t first : {0x40, 0x50, 0x62, 0x70}) {
    const auto type = static_cast<PacketType>(first >> 4);
    EXPECT_EQ(decodeAs<Ack>(frame(first, hex("00 07")), k5), (Ack{type, 7, 0, {}}));
    EXPECT_EQ(decodeAs<Ack>(frame(first, hex("00 07 92")), k5), (Ack{type, 7, 0x92, {}}));
    EXPECT_EQ(decodeAs<Ack>(frame(first, hex("00 07 92 00")), k5), (Ack{type, 7, 0x92, {}}));
    EXPECT_EQ(reasonOf(frame(first, hex("00 07 92 00 00")), k5), reason::kMalformed);  // trailing
    EXPECT_EQ(reasonOf(frame(first, hex("00 07 00 02 1F 00")), k5), reason::kMalformed);
    EXPECT_EQ(reasonOf(frame(first, hex("00 07 00 02 0B 01")), k5), reason::kMalformed);  // not allowed
    EXPECT_EQ(reasonOf(frame(first, hex("00")), k5), reason::kMalformed);
    EXPECT_EQ(reasonOf(frame(first, hex("00 07 92")), k3), reason::kMalformed);  // 3.1.1: exactly 2 bytes
    EXPECT_EQ(reasonOf(frame(first, hex("")), k3), reason::kMalformed);
    EXPECT_EQ(decodeAs<Ack>(frame(first, hex("00 07")), k3), (Ack{type, 7, 0, {}}));
  }
}

TEST(MqttDecode, SubscribeRules) {
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01")), k3), reason::kProtocolError);                     // no filters
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01 00")), k5), reason::kProtocolError);                  // v5: no filters
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 00") + str("t") + hex("00")), k3), reason::kMalformed);  // packet id 0
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01") + str("t")), k3), reason::kMalformed);              // options missing
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01") + str("t") + hex("03")), k3), reason::kMalformed);  // QoS 3
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01") + str("t") + hex("04")), k3), reason::kMalformed);  // 3.1.1 bits
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01") + str("t") + hex("80")), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01 00") + str("t") + hex("40")), k5), reason::kMalformed);  // reserved
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01 00") + str("t") + hex("03")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01 00") + str("t") + hex("30")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01 02 0B 00") + str("t") + hex("00")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01 04 0B 01 0B 02") + str("t") + hex("00")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(frame(0x82, hex("00 01 02 23 01") + str("t") + hex("00")), k5), reason::kMalformed);
  const auto s =
      decodeAs<Subscribe>(frame(0x82, hex("00 01 02 0B 05") + str("a") + hex("2E") + str("b") + hex("01")), k5);
  ASSERT_EQ(s.subscriptions.size(), 2u);
  EXPECT_EQ(s.props.subscription_identifiers, std::vector<std::uint32_t>{5});
  EXPECT_EQ(s.subscriptions[0], (SubscriptionRequest{"a", 2, true, true, 2}));
  EXPECT_EQ(s.subscriptions[1], (SubscriptionRequest{"b", 1, false, false, 0}));
}

TEST(MqttDecode, UnsubscribeRules) {
  EXPECT_EQ(reasonOf(frame(0xA2, hex("00 01")), k3), reason::kProtocolError);
  EXPECT_EQ(reasonOf(frame(0xA2, hex("00 01 00")), k5), reason::kProtocolError);
  EXPECT_EQ(reasonOf(frame(0xA2, hex("00 00") + str("t")), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(frame(0xA2, hex("00 01") + str("t") + hex("00")), k3), reason::kMalformed);  // cut string
  EXPECT_EQ(reasonOf(frame(0xA2, hex("00 01 02 0B 01") + str("t")), k5), reason::kMalformed);     // sub id not allowed
  EXPECT_EQ(decodeAs<Unsubscribe>(frame(0xA2, hex("00 01") + str("t") + str("u")), k3).filters,
            (std::vector<std::string>{"t", "u"}));
}

TEST(MqttDecode, PingDisconnectAuth) {
  EXPECT_EQ(reasonOf(hex("C0 00"), k3), 0);
  EXPECT_EQ(reasonOf(hex("C0 01 00"), k3), reason::kMalformed);
  EXPECT_EQ(reasonOf(hex("E0 00"), k3), 0);
  EXPECT_EQ(reasonOf(hex("E0 01 00"), k3), reason::kMalformed);  // 3.1.1 DISCONNECT has no body
  EXPECT_EQ(decodeAs<Disconnect>(hex("E0 00"), k5), Disconnect{});
  EXPECT_EQ(decodeAs<Disconnect>(hex("E0 01 04"), k5), (Disconnect{4, {}}));
  EXPECT_EQ(decodeAs<Disconnect>(hex("E0 02 04 00"), k5), (Disconnect{4, {}}));
  EXPECT_EQ(reasonOf(hex("E0 03 04 00 00"), k5), reason::kMalformed);
  EXPECT_EQ(reasonOf(hex("E0 04 04 02 23 01"), k5), reason::kMalformed);  // topic alias not allowed
  EXPECT_EQ(reasonOf(hex("E0 07 00 05 11 00 00 00 0A"), k5), 0);
  EXPECT_EQ(reasonOf(hex("F0 00"), k3), reason::kProtocolError);  // AUTH is v5 only
  EXPECT_EQ(decodeAs<AuthPacket>(hex("F0 00"), k5), AuthPacket{});
  EXPECT_EQ(decodeAs<AuthPacket>(hex("F0 02 18 00"), k5), (AuthPacket{0x18, {}}));
  EXPECT_EQ(reasonOf(hex("F0 04 18 02 11 00"), k5), reason::kMalformed);  // session expiry not allowed
}

TEST(MqttDecode, PacketsAServerNeverReceives) {
  EXPECT_EQ(reasonOf(hex("20 02 00 00"), k3), reason::kProtocolError);
  EXPECT_EQ(reasonOf(hex("90 03 00 01 00"), k3), reason::kProtocolError);
  EXPECT_EQ(reasonOf(hex("B0 02 00 01"), k3), reason::kProtocolError);
  EXPECT_EQ(reasonOf(hex("D0 00"), k5), reason::kProtocolError);
}

TEST(MqttDecode, BodyMustMatchRemainingLength) {
  FixedHeader h;
  const std::string bytes = hex("C0 00");
  ASSERT_EQ(parseFixedHeader(asBytes(bytes), h), FrameStatus::kComplete);
  const std::string body = hex("00");
  auto r = decode(h, asBytes(body), k3);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(r));
  EXPECT_EQ(std::get<DecodeError>(r).reason, reason::kMalformed);
}

// ---- variable byte integers and the fixed header ----

TEST(MqttVarInt, Boundaries) {
  const std::pair<std::uint32_t, std::string> cases[] = {
      {0, hex("00")},
      {127, hex("7F")},
      {128, hex("80 01")},
      {16383, hex("FF 7F")},
      {16384, hex("80 80 01")},
      {2097151, hex("FF FF 7F")},
      {2097152, hex("80 80 80 01")},
      {268435455, hex("FF FF FF 7F")},
  };
  for (const auto& [value, bytes] : cases) {
    EXPECT_EQ(varint(value), bytes) << value;
    EXPECT_EQ(varIntSize(value), bytes.size()) << value;
    const std::string packet = hex("30") + bytes;
    FixedHeader h;
    ASSERT_EQ(parseFixedHeader(asBytes(packet), h), FrameStatus::kComplete) << value;
    EXPECT_EQ(h.remaining_length, value);
    EXPECT_EQ(h.header_size, bytes.size() + 1);
    EXPECT_EQ(h.type(), PacketType::kPublish);
    // Every shorter prefix needs more bytes.
    for (std::size_t n = 0; n < packet.size(); ++n) {
      EXPECT_EQ(parseFixedHeader(asBytes(packet.substr(0, n)), h), FrameStatus::kIncomplete) << value << " " << n;
    }
  }
  EXPECT_EQ(varint(268435456), hex("FF FF FF 7F"));  // clamped
  EXPECT_EQ(varIntSize(0xFFFFFFFF), 4u);
}

TEST(MqttVarInt, MalformedFixedHeaders) {
  FixedHeader h;
  EXPECT_EQ(parseFixedHeader(asBytes(hex("30 FF FF FF FF 01")), h), FrameStatus::kMalformed);
  EXPECT_EQ(parseFixedHeader(asBytes(hex("30 FF FF FF 80")), h), FrameStatus::kMalformed);  // needs a 5th byte
  EXPECT_EQ(parseFixedHeader(asBytes(hex("30 80 00")), h), FrameStatus::kMalformed);        // not minimal
  EXPECT_EQ(parseFixedHeader(asBytes(hex("30 FF 80 00")), h), FrameStatus::kMalformed);
  EXPECT_EQ(parseFixedHeader(asBytes(hex("00 00")), h), FrameStatus::kMalformed);  // type 0
  EXPECT_EQ(parseFixedHeader(asBytes(hex("0F")), h), FrameStatus::kMalformed);
  EXPECT_EQ(parseFixedHeader(asBytes(hex("C0 00 C0 00")), h), FrameStatus::kComplete);  // trailing data is next packet
  EXPECT_EQ(h.header_size, 2);
}

// ---- UTF-8 ----

TEST(MqttUtf8, Validation) {
  EXPECT_TRUE(validMqttUtf8(""));
  EXPECT_TRUE(validMqttUtf8("plain/ascii+#"));
  EXPECT_TRUE(validMqttUtf8("\xC2\x80"));                  // U+0080
  EXPECT_TRUE(validMqttUtf8("\xE2\x82\xAC"));              // U+20AC
  EXPECT_TRUE(validMqttUtf8("\xED\x9F\xBF"));              // U+D7FF
  EXPECT_TRUE(validMqttUtf8("\xEE\x80\x80"));              // U+E000
  EXPECT_TRUE(validMqttUtf8("\xEF\xBF\xBF"));              // U+FFFF (non-character, allowed)
  EXPECT_TRUE(validMqttUtf8("\xF0\x9F\x98\x80"));          // U+1F600
  EXPECT_TRUE(validMqttUtf8("\xF4\x8F\xBF\xBF"));          // U+10FFFF
  EXPECT_FALSE(validMqttUtf8(std::string_view("\0", 1)));  // U+0000
  EXPECT_FALSE(validMqttUtf8(std::string_view("a\0", 2)));
  EXPECT_FALSE(validMqttUtf8("\xED\xA0\x80"));      // U+D800 surrogate
  EXPECT_FALSE(validMqttUtf8("\xED\xBF\xBF"));      // U+DFFF surrogate
  EXPECT_FALSE(validMqttUtf8("\xC0\x80"));          // overlong U+0000
  EXPECT_FALSE(validMqttUtf8("\xC1\xBF"));          // overlong
  EXPECT_FALSE(validMqttUtf8("\xE0\x80\x80"));      // overlong
  EXPECT_FALSE(validMqttUtf8("\xE0\x9F\xBF"));      // overlong
  EXPECT_FALSE(validMqttUtf8("\xF0\x8F\xBF\xBF"));  // overlong
  EXPECT_FALSE(validMqttUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(validMqttUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(validMqttUtf8("\xFF"));
  EXPECT_FALSE(validMqttUtf8("\x80"));          // lone continuation
  EXPECT_FALSE(validMqttUtf8("\xC3"));          // truncated 2-byte
  EXPECT_FALSE(validMqttUtf8("\xE2\x82"));      // truncated 3-byte
  EXPECT_FALSE(validMqttUtf8("\xF0\x9F\x98"));  // truncated 4-byte
  EXPECT_FALSE(validMqttUtf8("\xE2\x28\xA1"));  // bad continuation
  EXPECT_FALSE(validMqttUtf8("ok\xC3"));
}

}  // namespace
}  // namespace sw::mqtt
