// MQTT 3.1.1 (OASIS 2014) and 5.0 (OASIS 2019) packet codec. Section numbers refer to the 5.0
// specification unless stated otherwise.
#include "ingest/transports/mqtt/packet.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sw::mqtt {
namespace {

constexpr std::size_t kMaxString = 0xFFFF;

// Where a property may appear (2.2.2.2). Acks = PUBACK, PUBREC, PUBREL, PUBCOMP.
enum PropertyContext : std::uint16_t {
  kInConnect = 1 << 0,
  kInConnack = 1 << 1,
  kInPublish = 1 << 2,
  kInWill = 1 << 3,
  kInAck = 1 << 4,
  kInSubscribe = 1 << 5,
  kInSuback = 1 << 6,
  kInUnsubscribe = 1 << 7,
  kInUnsuback = 1 << 8,
  kInDisconnect = 1 << 9,
  kInAuth = 1 << 10,
  kInAny = 0x7FF,
};

// Property identifiers.
enum PropertyId : std::uint8_t {
  kPayloadFormatIndicator = 0x01,
  kMessageExpiryInterval = 0x02,
  kContentType = 0x03,
  kResponseTopic = 0x08,
  kCorrelationData = 0x09,
  kSubscriptionIdentifier = 0x0B,
  kSessionExpiryInterval = 0x11,
  kAssignedClientIdentifier = 0x12,
  kServerKeepAlive = 0x13,
  kAuthenticationMethod = 0x15,
  kAuthenticationData = 0x16,
  kRequestProblemInformation = 0x17,
  kWillDelayInterval = 0x18,
  kRequestResponseInformation = 0x19,
  kResponseInformation = 0x1A,
  kServerReference = 0x1C,
  kReasonString = 0x1F,
  kReceiveMaximum = 0x21,
  kTopicAliasMaximum = 0x22,
  kTopicAlias = 0x23,
  kMaximumQos = 0x24,
  kRetainAvailable = 0x25,
  kUserProperty = 0x26,
  kMaximumPacketSize = 0x27,
  kWildcardSubscriptionAvailable = 0x28,
  kSubscriptionIdentifierAvailable = 0x29,
  kSharedSubscriptionAvailable = 0x2A,
  kLastPropertyId = 0x2A,
};

// Allowed contexts per property identifier; 0 means the identifier does not exist.
constexpr std::array<std::uint16_t, kLastPropertyId + 1> kPropertyContexts = [] {
  std::array<std::uint16_t, kLastPropertyId + 1> t{};
  t[kPayloadFormatIndicator] = kInPublish | kInWill;
  t[kMessageExpiryInterval] = kInPublish | kInWill;
  t[kContentType] = kInPublish | kInWill;
  t[kResponseTopic] = kInPublish | kInWill;
  t[kCorrelationData] = kInPublish | kInWill;
  t[kSubscriptionIdentifier] = kInPublish | kInSubscribe;
  t[kSessionExpiryInterval] = kInConnect | kInConnack | kInDisconnect;
  t[kAssignedClientIdentifier] = kInConnack;
  t[kServerKeepAlive] = kInConnack;
  t[kAuthenticationMethod] = kInConnect | kInConnack | kInAuth;
  t[kAuthenticationData] = kInConnect | kInConnack | kInAuth;
  t[kRequestProblemInformation] = kInConnect;
  t[kWillDelayInterval] = kInWill;
  t[kRequestResponseInformation] = kInConnect;
  t[kResponseInformation] = kInConnack;
  t[kServerReference] = kInConnack | kInDisconnect;
  t[kReasonString] = kInConnack | kInAck | kInSuback | kInUnsuback | kInDisconnect | kInAuth;
  t[kReceiveMaximum] = kInConnect | kInConnack;
  t[kTopicAliasMaximum] = kInConnect | kInConnack;
  t[kTopicAlias] = kInPublish;
  t[kMaximumQos] = kInConnack;
  t[kRetainAvailable] = kInConnack;
  t[kUserProperty] = kInAny;
  t[kMaximumPacketSize] = kInConnect | kInConnack;
  t[kWildcardSubscriptionAvailable] = kInConnack;
  t[kSubscriptionIdentifierAvailable] = kInConnack;
  t[kSharedSubscriptionAvailable] = kInConnack;
  return t;
}();

bool allowedIn(std::uint8_t id, std::uint16_t context) {
  return id <= kLastPropertyId && (kPropertyContexts[id] & context) != 0;
}

// ---- decoding ----

// Bounds-checked reader over a packet body. Every read either succeeds or records the first
// error and returns false; callers stop at the first false.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) : data_(data), end_(data.size()) {}

  std::size_t remaining() const { return end_ - pos_; }
  bool atEnd() const { return pos_ == end_; }
  std::size_t pos() const { return pos_; }

  bool fail(std::uint8_t reason, std::string message) {
    if (!error_) error_ = DecodeError{reason, std::move(message)};
    return false;
  }
  DecodeError takeError() {
    if (!error_) return DecodeError{reason::kMalformed, "malformed packet"};
    return std::move(*error_);
  }

  bool u8(std::uint8_t& v, std::string_view what) {
    if (remaining() < 1) return truncated(what);
    v = data_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v, std::string_view what) {
    if (remaining() < 2) return truncated(what);
    v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v, std::string_view what) {
    if (remaining() < 4) return truncated(what);
    v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
        (std::uint32_t{data_[pos_ + 2]} << 8) | std::uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  // Variable byte integer (1.5.5): at most 4 bytes, shortest form.
  bool varInt(std::uint32_t& v, std::string_view what) {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      if (atEnd()) return truncated(what);
      const std::uint8_t b = data_[pos_++];
      value |= std::uint32_t{static_cast<std::uint8_t>(b & 0x7F)} << (7 * i);
      if ((b & 0x80) == 0) {
        if (i > 0 && b == 0) return fail(reason::kMalformed, std::string(what) + ": variable byte integer not minimal");
        v = value;
        return true;
      }
    }
    return fail(reason::kMalformed, std::string(what) + ": variable byte integer longer than 4 bytes");
  }
  // Two-byte length followed by that many bytes (1.5.6 binary data).
  bool binary(std::string& v, std::string_view what) {
    std::uint16_t n = 0;
    if (!u16(n, what)) return false;
    if (remaining() < n) return truncated(what);
    v.assign(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  // UTF-8 encoded string (1.5.4).
  bool utf8(std::string& v, std::string_view what) {
    if (!binary(v, what)) return false;
    if (!validMqttUtf8(v)) return fail(reason::kMalformed, std::string(what) + ": invalid UTF-8");
    return true;
  }
  void rest(std::string& v) {
    v.assign(reinterpret_cast<const char*>(data_.data() + pos_), remaining());
    pos_ = end_;
  }

  // Narrows reads to the next n bytes (a property block); restore with widen().
  std::size_t narrow(std::size_t n) {
    const std::size_t old_end = end_;
    end_ = pos_ + n;
    return old_end;
  }
  void widen(std::size_t old_end) { end_ = old_end; }

  bool expectEnd(std::string_view what) {
    if (!atEnd()) return fail(reason::kMalformed, "unexpected bytes after " + std::string(what));
    return true;
  }

 private:
  bool truncated(std::string_view what) { return fail(reason::kMalformed, "truncated " + std::string(what)); }

  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  std::optional<DecodeError> error_;
};

const char* propertyName(std::uint8_t id) {
  switch (id) {
    case kPayloadFormatIndicator: return "payload format indicator";
    case kMessageExpiryInterval: return "message expiry interval";
    case kContentType: return "content type";
    case kResponseTopic: return "response topic";
    case kCorrelationData: return "correlation data";
    case kSubscriptionIdentifier: return "subscription identifier";
    case kSessionExpiryInterval: return "session expiry interval";
    case kAssignedClientIdentifier: return "assigned client identifier";
    case kServerKeepAlive: return "server keep alive";
    case kAuthenticationMethod: return "authentication method";
    case kAuthenticationData: return "authentication data";
    case kRequestProblemInformation: return "request problem information";
    case kWillDelayInterval: return "will delay interval";
    case kRequestResponseInformation: return "request response information";
    case kResponseInformation: return "response information";
    case kServerReference: return "server reference";
    case kReasonString: return "reason string";
    case kReceiveMaximum: return "receive maximum";
    case kTopicAliasMaximum: return "topic alias maximum";
    case kTopicAlias: return "topic alias";
    case kMaximumQos: return "maximum QoS";
    case kRetainAvailable: return "retain available";
    case kUserProperty: return "user property";
    case kMaximumPacketSize: return "maximum packet size";
    case kWildcardSubscriptionAvailable: return "wildcard subscription available";
    case kSubscriptionIdentifierAvailable: return "subscription identifier available";
    case kSharedSubscriptionAvailable: return "shared subscription available";
    default: return "property";
  }
}

template <class T>
bool readOnce(Reader& r, std::optional<T>& slot, std::uint8_t id, bool (Reader::*read)(T&, std::string_view)) {
  const char* name = propertyName(id);
  if (slot) return r.fail(reason::kProtocolError, std::string("duplicate ") + name);
  T v{};
  if (!(r.*read)(v, name)) return false;
  slot = std::move(v);
  return true;
}

// A byte property whose only values are 0 and 1 (3.1.2.11.6/7, 3.2.2.3.4/5/11/12/13).
bool readFlagOnce(Reader& r, std::optional<std::uint8_t>& slot, std::uint8_t id) {
  if (!readOnce(r, slot, id, &Reader::u8)) return false;
  if (*slot > 1) return r.fail(reason::kProtocolError, std::string(propertyName(id)) + " must be 0 or 1");
  return true;
}

// Property length and properties (2.2.2); context says which identifiers are allowed.
bool readProperties(Reader& r, Properties& p, std::uint16_t context) {
  std::uint32_t length = 0;
  if (!r.varInt(length, "property length")) return false;
  if (length > r.remaining()) return r.fail(reason::kMalformed, "property length beyond packet");
  const std::size_t outer_end = r.narrow(length);
  bool ok = true;
  while (ok && !r.atEnd()) {
    std::uint32_t wide_id = 0;
    if (!r.varInt(wide_id, "property identifier")) {
      ok = false;
      break;
    }
    if (wide_id > kLastPropertyId || kPropertyContexts[wide_id] == 0) {
      ok = r.fail(reason::kMalformed, "unknown property identifier " + std::to_string(wide_id));
      break;
    }
    const auto id = static_cast<std::uint8_t>(wide_id);
    if (!allowedIn(id, context)) {
      ok = r.fail(reason::kMalformed, std::string(propertyName(id)) + " not allowed in this packet");
      break;
    }
    switch (id) {
      case kPayloadFormatIndicator: ok = readOnce(r, p.payload_format_indicator, id, &Reader::u8); break;
      case kMessageExpiryInterval: ok = readOnce(r, p.message_expiry_interval, id, &Reader::u32); break;
      case kContentType: ok = readOnce(r, p.content_type, id, &Reader::utf8); break;
      case kResponseTopic: ok = readOnce(r, p.response_topic, id, &Reader::utf8); break;
      case kCorrelationData: ok = readOnce(r, p.correlation_data, id, &Reader::binary); break;
      case kSubscriptionIdentifier: {
        // Repeats only in PUBLISH (3.3.2.3.8); one in SUBSCRIBE (3.8.2.1.2). 0 is a protocol error.
        if ((context & kInPublish) == 0 && !p.subscription_identifiers.empty()) {
          ok = r.fail(reason::kProtocolError, "duplicate subscription identifier");
          break;
        }
        std::uint32_t v = 0;
        ok = r.varInt(v, "subscription identifier");
        if (ok && v == 0) ok = r.fail(reason::kProtocolError, "subscription identifier 0");
        if (ok) p.subscription_identifiers.push_back(v);
        break;
      }
      case kSessionExpiryInterval: ok = readOnce(r, p.session_expiry_interval, id, &Reader::u32); break;
      case kAssignedClientIdentifier: ok = readOnce(r, p.assigned_client_identifier, id, &Reader::utf8); break;
      case kServerKeepAlive: ok = readOnce(r, p.server_keep_alive, id, &Reader::u16); break;
      case kAuthenticationMethod: ok = readOnce(r, p.authentication_method, id, &Reader::utf8); break;
      case kAuthenticationData: ok = readOnce(r, p.authentication_data, id, &Reader::binary); break;
      case kRequestProblemInformation: ok = readFlagOnce(r, p.request_problem_information, id); break;
      case kWillDelayInterval: ok = readOnce(r, p.will_delay_interval, id, &Reader::u32); break;
      case kRequestResponseInformation: ok = readFlagOnce(r, p.request_response_information, id); break;
      case kResponseInformation: ok = readOnce(r, p.response_information, id, &Reader::utf8); break;
      case kServerReference: ok = readOnce(r, p.server_reference, id, &Reader::utf8); break;
      case kReasonString: ok = readOnce(r, p.reason_string, id, &Reader::utf8); break;
      case kReceiveMaximum:
        ok = readOnce(r, p.receive_maximum, id, &Reader::u16);
        if (ok && *p.receive_maximum == 0) ok = r.fail(reason::kProtocolError, "receive maximum 0");
        break;
      case kTopicAliasMaximum: ok = readOnce(r, p.topic_alias_maximum, id, &Reader::u16); break;
      case kTopicAlias:
        // MQTT-3.3.2-8; like an alias above the maximum it is answered with 0x94.
        ok = readOnce(r, p.topic_alias, id, &Reader::u16);
        if (ok && *p.topic_alias == 0) ok = r.fail(reason::kTopicAliasInvalid, "topic alias 0");
        break;
      case kMaximumQos: ok = readFlagOnce(r, p.maximum_qos, id); break;
      case kRetainAvailable: ok = readFlagOnce(r, p.retain_available, id); break;
      case kUserProperty: {
        std::string key;
        std::string value;
        ok = r.utf8(key, "user property name") && r.utf8(value, "user property value");
        if (ok) p.user_properties.emplace_back(std::move(key), std::move(value));
        break;
      }
      case kMaximumPacketSize:
        ok = readOnce(r, p.maximum_packet_size, id, &Reader::u32);
        if (ok && *p.maximum_packet_size == 0) ok = r.fail(reason::kProtocolError, "maximum packet size 0");
        break;
      case kWildcardSubscriptionAvailable: ok = readFlagOnce(r, p.wildcard_subscription_available, id); break;
      case kSubscriptionIdentifierAvailable: ok = readFlagOnce(r, p.subscription_identifier_available, id); break;
      case kSharedSubscriptionAvailable: ok = readFlagOnce(r, p.shared_subscription_available, id); break;
      default: ok = r.fail(reason::kMalformed, "unknown property identifier"); break;
    }
  }
  r.widen(outer_end);
  return ok;
}

using Result = std::variant<Packet, DecodeError>;

Result failed(Reader& r) {
  return r.takeError();
}
Result error(std::uint8_t reason, std::string message) {
  return DecodeError{reason, std::move(message)};
}

Result decodeConnect(Reader& r) {
  Connect c;
  std::string protocol_name;
  std::uint8_t level = 0;
  if (!r.binary(protocol_name, "protocol name") || !r.u8(level, "protocol level")) return failed(r);
  if (protocol_name != "MQTT" || (level != 4 && level != 5)) {
    return error(reason::kUnsupportedVersion, "unsupported protocol name or level " + std::to_string(level));
  }
  c.version = level == 5 ? Version::k5 : Version::k311;
  const bool v5 = c.version == Version::k5;

  std::uint8_t flags = 0;
  if (!r.u8(flags, "connect flags") || !r.u16(c.keep_alive, "keep alive")) return failed(r);
  if (flags & 0x01) return error(reason::kMalformed, "CONNECT reserved flag set");  // MQTT-3.1.2-3
  c.clean_start = (flags & 0x02) != 0;
  const bool will_flag = (flags & 0x04) != 0;
  const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03);
  const bool will_retain = (flags & 0x20) != 0;
  const bool password_flag = (flags & 0x40) != 0;
  const bool username_flag = (flags & 0x80) != 0;
  if (will_qos == 3) return error(reason::kMalformed, "will QoS 3");
  if (!will_flag && (will_qos != 0 || will_retain))
    return error(reason::kMalformed, "will QoS/retain without will flag");
  if (!v5 && password_flag && !username_flag) {
    return error(reason::kMalformed, "password flag without user name flag");  // 3.1.1 MQTT-3.1.2-22
  }

  if (v5) {
    if (!readProperties(r, c.props, kInConnect)) return failed(r);
    if (c.props.authentication_data && !c.props.authentication_method) {
      return error(reason::kProtocolError, "authentication data without authentication method");
    }
  }
  if (!r.utf8(c.client_id, "client identifier")) return failed(r);
  if (will_flag) {
    Will w;
    w.qos = will_qos;
    w.retain = will_retain;
    if (v5 && !readProperties(r, w.props, kInWill)) return failed(r);
    if (!r.utf8(w.topic, "will topic") || !r.binary(w.payload, "will payload")) return failed(r);
    c.will = std::move(w);
  }
  if (username_flag) {
    c.username.emplace();
    if (!r.utf8(*c.username, "user name")) return failed(r);
  }
  if (password_flag) {
    c.password.emplace();
    if (!r.binary(*c.password, "password")) return failed(r);
  }
  if (!r.expectEnd("CONNECT payload")) return failed(r);
  return c;
}

Result decodePublish(std::uint8_t first_byte, Reader& r, bool v5) {
  Publish p;
  p.retain = (first_byte & 0x01) != 0;
  p.qos = static_cast<std::uint8_t>((first_byte >> 1) & 0x03);
  p.dup = (first_byte & 0x08) != 0;
  if (p.qos == 3) return error(reason::kMalformed, "PUBLISH QoS 3");            // MQTT-3.3.1-4
  if (p.dup && p.qos == 0) return error(reason::kMalformed, "DUP with QoS 0");  // MQTT-3.3.1-2
  if (!r.utf8(p.topic, "topic name")) return failed(r);
  if (p.qos > 0) {
    if (!r.u16(p.packet_id, "packet identifier")) return failed(r);
    if (p.packet_id == 0) return error(reason::kMalformed, "packet identifier 0");  // MQTT-2.2.1-3
  }
  if (v5 && !readProperties(r, p.props, kInPublish)) return failed(r);
  r.rest(p.payload);
  return p;
}

// PUBACK, PUBREC, PUBREL, PUBCOMP (3.4-3.7): in v5 the reason code and properties may be omitted.
Result decodeAck(PacketType type, Reader& r, bool v5) {
  Ack a;
  a.type = type;
  if (!r.u16(a.packet_id, "packet identifier")) return failed(r);
  if (v5 && !r.atEnd()) {
    if (!r.u8(a.reason, "reason code")) return failed(r);
    if (!r.atEnd() && !readProperties(r, a.props, kInAck)) return failed(r);
  }
  if (!r.expectEnd("acknowledgement")) return failed(r);
  return a;
}

Result decodeSubscribe(Reader& r, bool v5) {
  Subscribe s;
  if (!r.u16(s.packet_id, "packet identifier")) return failed(r);
  if (s.packet_id == 0) return error(reason::kMalformed, "packet identifier 0");
  if (v5 && !readProperties(r, s.props, kInSubscribe)) return failed(r);
  while (!r.atEnd()) {
    SubscriptionRequest req;
    std::uint8_t options = 0;
    if (!r.utf8(req.filter, "topic filter") || !r.u8(options, "subscription options")) return failed(r);
    req.qos = options & 0x03;
    if (v5) {
      // 3.8.3.1: reserved bits make it malformed; QoS 3 and retain handling 3 are protocol errors.
      if (options & 0xC0) return error(reason::kMalformed, "subscription options reserved bits set");
      req.no_local = (options & 0x04) != 0;
      req.retain_as_published = (options & 0x08) != 0;
      req.retain_handling = static_cast<std::uint8_t>((options >> 4) & 0x03);
      if (req.qos == 3) return error(reason::kProtocolError, "subscription QoS 3");
      if (req.retain_handling == 3) return error(reason::kProtocolError, "retain handling 3");
    } else {
      // 3.1.1 MQTT-3-8.3-4: malformed when reserved bits are set or QoS is not 0, 1 or 2.
      if (options & 0xFC) return error(reason::kMalformed, "subscription options reserved bits set");
      if (req.qos == 3) return error(reason::kMalformed, "subscription QoS 3");
    }
    s.subscriptions.push_back(std::move(req));
  }
  if (s.subscriptions.empty()) return error(reason::kProtocolError, "SUBSCRIBE without topic filters");
  return s;
}

Result decodeUnsubscribe(Reader& r, bool v5) {
  Unsubscribe u;
  if (!r.u16(u.packet_id, "packet identifier")) return failed(r);
  if (u.packet_id == 0) return error(reason::kMalformed, "packet identifier 0");
  if (v5 && !readProperties(r, u.props, kInUnsubscribe)) return failed(r);
  while (!r.atEnd()) {
    std::string filter;
    if (!r.utf8(filter, "topic filter")) return failed(r);
    u.filters.push_back(std::move(filter));
  }
  if (u.filters.empty()) return error(reason::kProtocolError, "UNSUBSCRIBE without topic filters");
  return u;
}

// DISCONNECT (3.14.2) and AUTH (3.15.2): reason code and properties may be omitted.
template <class T>
Result decodeReasonAndProperties(Reader& r, std::uint16_t context, std::string_view what) {
  T t;
  if (!r.atEnd()) {
    if (!r.u8(t.reason, "reason code")) return failed(r);
    if (!r.atEnd() && !readProperties(r, t.props, context)) return failed(r);
  }
  if (!r.expectEnd(what)) return failed(r);
  return t;
}

// Fixed-header flags (2.1.3): PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010, the others 0.
std::uint8_t requiredFlags(PacketType type) {
  switch (type) {
    case PacketType::kPubrel:
    case PacketType::kSubscribe:
    case PacketType::kUnsubscribe: return 0x02;
    default: return 0x00;
  }
}

const char* packetName(PacketType type) {
  switch (type) {
    case PacketType::kConnect: return "CONNECT";
    case PacketType::kConnack: return "CONNACK";
    case PacketType::kPublish: return "PUBLISH";
    case PacketType::kPuback: return "PUBACK";
    case PacketType::kPubrec: return "PUBREC";
    case PacketType::kPubrel: return "PUBREL";
    case PacketType::kPubcomp: return "PUBCOMP";
    case PacketType::kSubscribe: return "SUBSCRIBE";
    case PacketType::kSuback: return "SUBACK";
    case PacketType::kUnsubscribe: return "UNSUBSCRIBE";
    case PacketType::kUnsuback: return "UNSUBACK";
    case PacketType::kPingreq: return "PINGREQ";
    case PacketType::kPingresp: return "PINGRESP";
    case PacketType::kDisconnect: return "DISCONNECT";
    case PacketType::kAuth: return "AUTH";
  }
  return "reserved packet type";
}

// ---- encoding ----

// Byte sinks: the encoder runs once with Counter to learn lengths and once with Appender.
struct Counter {
  std::size_t n = 0;
  void byte(std::uint8_t) { ++n; }
  void bytes(std::string_view s) { n += s.size(); }
};

struct Appender {
  std::string& out;
  void byte(std::uint8_t b) { out.push_back(static_cast<char>(b)); }
  void bytes(std::string_view s) { out.append(s); }
};

template <class W>
void putU16(W& w, std::uint16_t v) {
  w.byte(static_cast<std::uint8_t>(v >> 8));
  w.byte(static_cast<std::uint8_t>(v));
}

template <class W>
void putU32(W& w, std::uint32_t v) {
  w.byte(static_cast<std::uint8_t>(v >> 24));
  w.byte(static_cast<std::uint8_t>(v >> 16));
  w.byte(static_cast<std::uint8_t>(v >> 8));
  w.byte(static_cast<std::uint8_t>(v));
}

template <class W>
void putVarInt(W& w, std::uint32_t v) {
  v = std::min(v, kMaxVarInt);
  do {
    auto b = static_cast<std::uint8_t>(v & 0x7F);
    v >>= 7;
    if (v > 0) b |= 0x80;
    w.byte(b);
  } while (v > 0);
}

// A length computed by the Counter pass, as a variable byte integer.
template <class W>
void putLength(W& w, std::size_t n) {
  putVarInt(w, static_cast<std::uint32_t>(std::min<std::size_t>(n, kMaxVarInt)));
}

// Binary data and UTF-8 strings: two-byte length, then the bytes (cut at 65535).
template <class W>
void putString(W& w, std::string_view s) {
  s = s.substr(0, std::min(s.size(), kMaxString));
  putU16(w, static_cast<std::uint16_t>(s.size()));
  w.bytes(s);
}

template <class W>
void putPropertyList(W& w, const Properties& p, std::uint16_t context) {
  const auto has = [context](std::uint8_t id) { return allowedIn(id, context); };
  const auto byte_prop = [&](std::uint8_t id, const std::optional<std::uint8_t>& v) {
    if (v && has(id)) {
      w.byte(id);
      w.byte(*v);
    }
  };
  const auto u16_prop = [&](std::uint8_t id, const std::optional<std::uint16_t>& v) {
    if (v && has(id)) {
      w.byte(id);
      putU16(w, *v);
    }
  };
  const auto u32_prop = [&](std::uint8_t id, const std::optional<std::uint32_t>& v) {
    if (v && has(id)) {
      w.byte(id);
      putU32(w, *v);
    }
  };
  const auto string_prop = [&](std::uint8_t id, const std::optional<std::string>& v) {
    if (v && has(id)) {
      w.byte(id);
      putString(w, *v);
    }
  };
  byte_prop(kPayloadFormatIndicator, p.payload_format_indicator);
  u32_prop(kMessageExpiryInterval, p.message_expiry_interval);
  string_prop(kContentType, p.content_type);
  string_prop(kResponseTopic, p.response_topic);
  string_prop(kCorrelationData, p.correlation_data);
  if (has(kSubscriptionIdentifier)) {
    const std::size_t n = (context & kInPublish) ? p.subscription_identifiers.size()
                                                 : std::min<std::size_t>(p.subscription_identifiers.size(), 1);
    for (std::size_t i = 0; i < n; ++i) {
      w.byte(kSubscriptionIdentifier);
      putVarInt(w, p.subscription_identifiers[i]);
    }
  }
  u32_prop(kSessionExpiryInterval, p.session_expiry_interval);
  string_prop(kAssignedClientIdentifier, p.assigned_client_identifier);
  u16_prop(kServerKeepAlive, p.server_keep_alive);
  string_prop(kAuthenticationMethod, p.authentication_method);
  string_prop(kAuthenticationData, p.authentication_data);
  byte_prop(kRequestProblemInformation, p.request_problem_information);
  u32_prop(kWillDelayInterval, p.will_delay_interval);
  byte_prop(kRequestResponseInformation, p.request_response_information);
  string_prop(kResponseInformation, p.response_information);
  string_prop(kServerReference, p.server_reference);
  string_prop(kReasonString, p.reason_string);
  u16_prop(kReceiveMaximum, p.receive_maximum);
  u16_prop(kTopicAliasMaximum, p.topic_alias_maximum);
  u16_prop(kTopicAlias, p.topic_alias);
  byte_prop(kMaximumQos, p.maximum_qos);
  byte_prop(kRetainAvailable, p.retain_available);
  if (has(kUserProperty)) {
    for (const auto& [key, value] : p.user_properties) {
      w.byte(kUserProperty);
      putString(w, key);
      putString(w, value);
    }
  }
  u32_prop(kMaximumPacketSize, p.maximum_packet_size);
  byte_prop(kWildcardSubscriptionAvailable, p.wildcard_subscription_available);
  byte_prop(kSubscriptionIdentifierAvailable, p.subscription_identifier_available);
  byte_prop(kSharedSubscriptionAvailable, p.shared_subscription_available);
}

std::size_t propertyListSize(const Properties& p, std::uint16_t context) {
  Counter c;
  putPropertyList(c, p, context);
  return c.n;
}

template <class W>
void putProperties(W& w, const Properties& p, std::uint16_t context) {
  putLength(w, propertyListSize(p, context));
  putPropertyList(w, p, context);
}

// Reason code and properties that may be left out: nothing when both are defaults (and
// omit_zero_reason), the reason alone when there are no properties (if reason_alone_ok),
// otherwise both.
template <class W>
void putOptionalReasonAndProperties(W& w, std::uint8_t reason, const Properties& p, std::uint16_t context,
                                    bool reason_alone_ok) {
  const std::size_t props = propertyListSize(p, context);
  if (reason == 0 && props == 0) return;
  w.byte(reason);
  if (props == 0 && reason_alone_ok) return;
  putLength(w, props);
  putPropertyList(w, p, context);
}

std::uint8_t clampQos(std::uint8_t qos) {
  return std::min<std::uint8_t>(qos, 2);
}

PacketType ackType(const Ack& a) {
  switch (a.type) {
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp: return a.type;
    default: return PacketType::kPuback;
  }
}

std::uint8_t firstByte(const Packet& packet) {
  struct Visitor {
    std::uint8_t operator()(const Connect&) const { return 0x10; }
    std::uint8_t operator()(const Connack&) const { return 0x20; }
    std::uint8_t operator()(const Publish& p) const {
      const std::uint8_t qos = clampQos(p.qos);
      return static_cast<std::uint8_t>(0x30 | ((p.dup && qos > 0) ? 0x08 : 0) | (qos << 1) | (p.retain ? 0x01 : 0));
    }
    std::uint8_t operator()(const Ack& a) const {
      const PacketType type = ackType(a);
      return static_cast<std::uint8_t>((static_cast<std::uint8_t>(type) << 4) | requiredFlags(type));
    }
    std::uint8_t operator()(const Subscribe&) const { return 0x82; }
    std::uint8_t operator()(const Suback&) const { return 0x90; }
    std::uint8_t operator()(const Unsubscribe&) const { return 0xA2; }
    std::uint8_t operator()(const Unsuback&) const { return 0xB0; }
    std::uint8_t operator()(const Pingreq&) const { return 0xC0; }
    std::uint8_t operator()(const Pingresp&) const { return 0xD0; }
    std::uint8_t operator()(const Disconnect&) const { return 0xE0; }
    std::uint8_t operator()(const AuthPacket&) const { return 0xF0; }
  };
  return std::visit(Visitor{}, packet);
}

template <class W>
struct BodyWriter {
  W& w;
  bool v5;

  void operator()(const Connect& c) const {
    const bool cv5 = c.version == Version::k5;
    putString(w, "MQTT");
    w.byte(cv5 ? 5 : 4);
    std::uint8_t flags = c.clean_start ? 0x02 : 0;
    if (c.will) {
      flags |= static_cast<std::uint8_t>(0x04 | (clampQos(c.will->qos) << 3) | (c.will->retain ? 0x20 : 0));
    }
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    w.byte(flags);
    putU16(w, c.keep_alive);
    if (cv5) putProperties(w, c.props, kInConnect);
    putString(w, c.client_id);
    if (c.will) {
      if (cv5) putProperties(w, c.will->props, kInWill);
      putString(w, c.will->topic);
      putString(w, c.will->payload);
    }
    if (c.username) putString(w, *c.username);
    if (c.password) putString(w, *c.password);
  }
  void operator()(const Connack& c) const {
    w.byte(c.session_present ? 1 : 0);
    w.byte(c.reason);
    if (v5) putProperties(w, c.props, kInConnack);
  }
  void operator()(const Publish& p) const {
    putString(w, p.topic);
    if (clampQos(p.qos) > 0) putU16(w, p.packet_id);
    if (v5) putProperties(w, p.props, kInPublish);
    w.bytes(p.payload);
  }
  void operator()(const Ack& a) const {
    putU16(w, a.packet_id);
    if (v5) putOptionalReasonAndProperties(w, a.reason, a.props, kInAck, true);
  }
  void operator()(const Subscribe& s) const {
    putU16(w, s.packet_id);
    if (v5) putProperties(w, s.props, kInSubscribe);
    for (const auto& req : s.subscriptions) {
      putString(w, req.filter);
      auto options = static_cast<std::uint8_t>(req.qos & 0x03);
      if (v5) {
        options |= static_cast<std::uint8_t>((req.no_local ? 0x04 : 0) | (req.retain_as_published ? 0x08 : 0) |
                                             ((req.retain_handling & 0x03) << 4));
      }
      w.byte(options);
    }
  }
  void operator()(const Suback& s) const {
    putU16(w, s.packet_id);
    if (v5) putProperties(w, s.props, kInSuback);
    for (std::uint8_t code : s.reasons) w.byte(v5 || code < 0x80 ? code : 0x80);
  }
  void operator()(const Unsubscribe& u) const {
    putU16(w, u.packet_id);
    if (v5) putProperties(w, u.props, kInUnsubscribe);
    for (const auto& filter : u.filters) putString(w, filter);
  }
  void operator()(const Unsuback& u) const {
    putU16(w, u.packet_id);
    if (!v5) return;
    putProperties(w, u.props, kInUnsuback);
    for (std::uint8_t code : u.reasons) w.byte(code);
  }
  void operator()(const Pingreq&) const {}
  void operator()(const Pingresp&) const {}
  void operator()(const Disconnect& d) const {
    if (v5) putOptionalReasonAndProperties(w, d.reason, d.props, kInDisconnect, true);
  }
  void operator()(const AuthPacket& a) const {
    // Only v5 has AUTH; the reason code alone (without a property length) is not a form 3.15.2
    // allows, so a non-zero reason always comes with a property length.
    putOptionalReasonAndProperties(w, a.reason, a.props, kInAuth, false);
  }
};

std::size_t bodySize(const Packet& packet, bool v5) {
  Counter c;
  std::visit(BodyWriter<Counter>{c, v5}, packet);
  return c.n;
}

}  // namespace

FrameStatus parseFixedHeader(std::span<const std::uint8_t> data, FixedHeader& out) {
  if (data.empty()) return FrameStatus::kIncomplete;
  if ((data[0] >> 4) == 0) return FrameStatus::kMalformed;
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (data.size() < i + 2) return FrameStatus::kIncomplete;
    const std::uint8_t b = data[i + 1];
    value |= std::uint32_t{static_cast<std::uint8_t>(b & 0x7F)} << (7 * i);
    if ((b & 0x80) == 0) {
      if (i > 0 && b == 0) return FrameStatus::kMalformed;  // not the shortest form
      out.first_byte = data[0];
      out.remaining_length = value;
      out.header_size = static_cast<std::uint8_t>(i + 2);
      return FrameStatus::kComplete;
    }
  }
  return FrameStatus::kMalformed;
}

std::variant<Packet, DecodeError> decode(const FixedHeader& header, std::span<const std::uint8_t> body,
                                         Version version) {
  const PacketType type = header.type();
  const bool v5 = version == Version::k5;
  if (body.size() != header.remaining_length) {
    return error(reason::kMalformed, "body size differs from the remaining length");
  }
  switch (type) {
    case PacketType::kConnect:
    case PacketType::kPublish:
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
    case PacketType::kSubscribe:
    case PacketType::kUnsubscribe:
    case PacketType::kPingreq:
    case PacketType::kDisconnect: break;
    case PacketType::kAuth:
      if (!v5) return error(reason::kProtocolError, "AUTH in an MQTT 3.1.1 session");
      break;
    default:
      if (static_cast<std::uint8_t>(type) == 0) return error(reason::kMalformed, "reserved packet type 0");
      return error(reason::kProtocolError, std::string(packetName(type)) + " is not sent to a server");
  }
  const auto flags = static_cast<std::uint8_t>(header.first_byte & 0x0F);
  if (type != PacketType::kPublish && flags != requiredFlags(type)) {
    return error(reason::kMalformed, std::string(packetName(type)) + " with invalid fixed header flags");
  }

  Reader r(body);
  switch (type) {
    case PacketType::kConnect: return decodeConnect(r);
    case PacketType::kPublish: return decodePublish(header.first_byte, r, v5);
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp: return decodeAck(type, r, v5);
    case PacketType::kSubscribe: return decodeSubscribe(r, v5);
    case PacketType::kUnsubscribe: return decodeUnsubscribe(r, v5);
    case PacketType::kPingreq:
      if (!r.expectEnd("PINGREQ")) return failed(r);
      return Pingreq{};
    case PacketType::kDisconnect:
      if (!v5) {
        if (!r.expectEnd("DISCONNECT")) return failed(r);
        return Disconnect{};
      }
      return decodeReasonAndProperties<Disconnect>(r, kInDisconnect, "DISCONNECT");
    case PacketType::kAuth: return decodeReasonAndProperties<AuthPacket>(r, kInAuth, "AUTH");
    default: return error(reason::kProtocolError, "unexpected packet type");
  }
}

void encode(const Packet& packet, Version version, std::string& out) {
  const bool v5 = version == Version::k5;
  const std::size_t body = bodySize(packet, v5);
  out.reserve(out.size() + 1 + varIntSize(static_cast<std::uint32_t>(std::min<std::size_t>(body, kMaxVarInt))) + body);
  out.push_back(static_cast<char>(firstByte(packet)));
  Appender a{out};
  putLength(a, body);
  std::visit(BodyWriter<Appender>{a, v5}, packet);
}

std::size_t encodedSize(const Packet& packet, Version version) {
  const std::size_t body = bodySize(packet, version == Version::k5);
  return 1 + varIntSize(static_cast<std::uint32_t>(std::min<std::size_t>(body, kMaxVarInt))) + body;
}

void appendVarInt(std::uint32_t value, std::string& out) {
  Appender a{out};
  putVarInt(a, value);
}

std::size_t varIntSize(std::uint32_t value) {
  if (value < 128) return 1;
  if (value < 16'384) return 2;
  if (value < 2'097'152) return 3;
  return 4;
}

bool validMqttUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  const auto cont = [&](std::size_t at, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return at < n && s[at] >= lo && s[at] <= hi;
  };
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      if (c == 0) return false;  // U+0000, MQTT-1.5.4-2
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!cont(i + 1)) return false;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      // E0: no overlongs (A0..BF); ED: no surrogates U+D800..U+DFFF (80..9F), MQTT-1.5.4-1.
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2)) return false;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      // F0: no overlongs (90..BF); F4: nothing above U+10FFFF (80..8F).
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2) || !cont(i + 3)) return false;
      i += 4;
    } else {
      return false;  // continuation byte without a lead, C0/C1 overlongs, F5..FF
    }
  }
  return true;
}

}  // namespace sw::mqtt
