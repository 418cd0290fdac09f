// Decoders of every MQTT control packet (MQTT 5.0 chapter 3, MQTT 3.1.1 chapter 3, MQTT 3.1).
// Normative statement numbers are cited where a check implements one.
#include <algorithm>

#include "proto/codec.h"
#include "proto/internal/wire.h"

namespace ringmq::proto {

using internal::DecodeProperties;
using internal::IsOk;
using internal::kOk;
using internal::Reader;

namespace {

constexpr Error Malformed(const char* detail) { return {ReasonCode::kMalformedPacket, detail}; }
constexpr Error ProtocolError(const char* detail) { return {ReasonCode::kProtocolError, detail}; }

constexpr Error kTruncated = Malformed("packet shorter than its fields");
constexpr Error kTrailing = Malformed("bytes after the last field");
constexpr Error kBadUtf8 = Malformed("invalid UTF-8 string");
constexpr Error kZeroPacketId = ProtocolError("packet identifier 0");

bool IsV5(Version v) { return v == Version::kV5; }

// Reads a non-zero packet identifier.
Error ReadPacketId(Reader& in, uint16_t* id) {
  if (!in.U16(id)) return kTruncated;
  if (*id == 0) return kZeroPacketId;
  return kOk;
}

// Reads a string field that must be UTF-8: distinguishes truncation from bad encoding.
Error ReadUtf8(Reader& in, std::string_view* s) {
  if (!in.Binary(s)) return kTruncated;
  if (!base::IsValidMqttUtf8(*s)) return kBadUtf8;
  return kOk;
}

bool AllowedAckReason(PacketType type, ReasonCode r) {
  using R = ReasonCode;
  if (type == PacketType::kPubrel || type == PacketType::kPubcomp) {
    return r == R::kSuccess || r == R::kPacketIdentifierNotFound;
  }
  switch (r) {
    case R::kSuccess:
    case R::kNoMatchingSubscribers:
    case R::kUnspecifiedError:
    case R::kImplementationSpecificError:
    case R::kNotAuthorized:
    case R::kTopicNameInvalid:
    case R::kPacketIdentifierInUse:
    case R::kQuotaExceeded:
    case R::kPayloadFormatInvalid:
      return true;
    default:
      return false;
  }
}

bool AllowedDisconnectReason(ReasonCode r) {
  const auto c = static_cast<uint8_t>(r);
  // MQTT 5.0 section 3.14.2.1: every failure code except those only CONNACK or acks use.
  switch (c) {
    case 0x84:
    case 0x85:
    case 0x86:
    case 0x88:
    case 0x8A:
    case 0x8C:
    case 0x91:
    case 0x92:
      return false;
    default:
      return c == 0x00 || c == 0x04 || (c >= 0x80 && c <= 0xA2);
  }
}

}  // namespace

Error CheckFixedHeader(uint8_t byte0, Version version) {
  const auto type = static_cast<PacketType>(byte0 >> 4);
  const uint8_t flags = byte0 & 0x0F;
  switch (type) {
    case PacketType::kReserved:
      return Malformed("reserved packet type 0");
    case PacketType::kPublish:
      if ((flags & 0x06) == 0x06) return Malformed("PUBLISH with QoS 3");  // [MQTT-3.3.1-4]
      if ((flags & 0x08) && (flags & 0x06) == 0) {
        return Malformed("DUP set on a QoS 0 PUBLISH");  // [MQTT-3.3.1-2]
      }
      return kOk;
    case PacketType::kPubrel:
    case PacketType::kSubscribe:
    case PacketType::kUnsubscribe:
      // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]
      return flags == 0x02 ? kOk : Malformed("reserved fixed header flags must be 0010");
    case PacketType::kAuth:
      if (!IsV5(version)) return Malformed("AUTH does not exist before MQTT 5");
      [[fallthrough]];
    default:
      return flags == 0 ? kOk : Malformed("reserved fixed header flags must be 0000");
  }
}

Version PeekConnectVersion(Bytes body) {
  Reader in(body);
  std::string_view name;
  uint8_t level = 0;
  if (in.Binary(&name) && in.U8(&level) && level == 5) return Version::kV5;
  return Version::kV311;
}

Result<Connect> DecodeConnect(uint8_t byte0, Bytes body) {
  Error e = CheckFixedHeader(byte0, Version::kV311);
  if (!IsOk(e)) return e;
  Reader in(body);
  Connect c;
  std::string_view name;
  uint8_t level = 0;
  if (!in.Binary(&name) || !in.U8(&level)) return kTruncated;
  if (name == "MQTT" && (level == 4 || level == 5)) {
    c.version = static_cast<Version>(level);
  } else if (name == "MQIsdp" && level == 3) {
    c.version = Version::kV31;
  } else {
    // [MQTT-3.1.2-1], [MQTT-3.1.2-2]: CONNACK 0x84 (5.0) / return code 1 (3.1.1), then close.
    return Error{ReasonCode::kUnsupportedProtocolVersion, "unsupported protocol name or level"};
  }
  uint8_t flags = 0;
  if (!in.U8(&flags) || !in.U16(&c.keep_alive)) return kTruncated;
  if (flags & 0x01) return Malformed("CONNECT reserved flag set");  // [MQTT-3.1.2-3]
  c.clean_start = flags & 0x02;
  c.has_will = flags & 0x04;
  c.will.qos = (flags >> 3) & 0x03;
  c.will.retain = flags & 0x20;
  c.has_password = flags & 0x40;
  c.has_username = flags & 0x80;
  if (c.will.qos == 3) return Malformed("will QoS 3");  // [MQTT-3.1.2-12]
  if (!c.has_will && (c.will.qos != 0 || c.will.retain)) {
    return Malformed("will QoS or retain without will flag");  // [MQTT-3.1.2-11], [-13]
  }
  if (!IsV5(c.version) && c.has_password && !c.has_username) {
    return Malformed("password without user name");  // 3.1.1 [MQTT-3.1.2-22]
  }
  if (IsV5(c.version)) {
    e = DecodeProperties(in, PropertyContext::kConnect, &c.props);
    if (!IsOk(e)) return e;
  }
  e = ReadUtf8(in, &c.client_id);  // [MQTT-3.1.3-4]
  if (!IsOk(e)) return e;
  if (c.has_will) {
    if (IsV5(c.version)) {
      e = DecodeProperties(in, PropertyContext::kWill, &c.will.props);
      if (!IsOk(e)) return e;
    }
    e = ReadUtf8(in, &c.will.topic);
    if (!IsOk(e)) return e;
    if (c.will.topic.empty() || c.will.topic.find_first_of("+#") != std::string_view::npos) {
      return Error{IsV5(c.version) ? ReasonCode::kTopicNameInvalid : ReasonCode::kMalformedPacket,
                   "invalid will topic"};
    }
    if (!in.Binary(&c.will.payload)) return kTruncated;
  }
  if (c.has_username) {
    e = ReadUtf8(in, &c.username);  // [MQTT-3.1.3-11]
    if (!IsOk(e)) return e;
  }
  if (c.has_password && !in.Binary(&c.password)) return kTruncated;
  if (!in.empty()) return kTrailing;
  return c;
}

Result<Connack> DecodeConnack(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Reader in(body);
  Connack c;
  uint8_t flags = 0;
  uint8_t code = 0;
  if (!in.U8(&flags) || !in.U8(&code)) return kTruncated;
  if (flags & 0xFE) return Malformed("CONNACK reserved flags set");  // [MQTT-3.2.2-1]
  // MQTT 3.1 has no Session Present flag: the byte is reserved, so the bit means nothing there
  // (and encodes as 0: the codec agrees with itself).
  c.session_present = v != Version::kV31 && (flags & 0x01) != 0;
  if (IsV5(v)) {
    c.reason = static_cast<ReasonCode>(code);
    e = DecodeProperties(in, PropertyContext::kConnack, &c.props);
    if (!IsOk(e)) return e;
  } else {
    static constexpr ReasonCode kFromV311[] = {ReasonCode::kSuccess,
                                               ReasonCode::kUnsupportedProtocolVersion,
                                               ReasonCode::kClientIdentifierNotValid,
                                               ReasonCode::kServerUnavailable,
                                               ReasonCode::kBadUserNameOrPassword,
                                               ReasonCode::kNotAuthorized};
    if (code > 5) return ProtocolError("reserved CONNACK return code");
    c.reason = kFromV311[code];
  }
  if (!in.empty()) return kTrailing;
  return c;
}

Result<Publish> DecodePublish(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Publish p;
  p.dup = byte0 & 0x08;
  p.qos = (byte0 >> 1) & 0x03;
  p.retain = byte0 & 0x01;
  Reader in(body);
  e = ReadUtf8(in, &p.topic);
  if (!IsOk(e)) return e;
  if (p.qos > 0) {
    e = ReadPacketId(in, &p.packet_id);
    if (!IsOk(e)) return e;
  }
  if (IsV5(v)) {
    e = DecodeProperties(in, PropertyContext::kPublish, &p.props);
    if (!IsOk(e)) return e;
  }
  // [MQTT-3.3.2-2]: no wildcards; [MQTT-4.7.3-1]: non-empty unless a Topic Alias stands for it.
  if (p.topic.find_first_of("+#") != std::string_view::npos ||
      (p.topic.empty() && !p.props.topic_alias)) {
    return Error{ReasonCode::kTopicNameInvalid, "invalid topic name"};
  }
  p.payload = in.Rest();
  return p;
}

Result<Ack> DecodeAck(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Ack a;
  a.type = static_cast<PacketType>(byte0 >> 4);
  if (a.type < PacketType::kPuback || a.type > PacketType::kPubcomp) {
    return Malformed("not an acknowledgement packet");
  }
  Reader in(body);
  e = ReadPacketId(in, &a.packet_id);
  if (!IsOk(e)) return e;
  if (!IsV5(v)) {
    if (!in.empty()) return kTrailing;
    return a;
  }
  // MQTT 5: the reason code and properties may be left out ([MQTT-3.4.2.1], section 3.4.2.2.1).
  if (in.empty()) return a;
  uint8_t code = 0;
  (void)in.U8(&code);
  a.reason = static_cast<ReasonCode>(code);
  if (!AllowedAckReason(a.type, a.reason)) return ProtocolError("invalid reason code");
  if (in.empty()) return a;
  e = DecodeProperties(in, static_cast<PropertyContext>(a.type), &a.props);
  if (!IsOk(e)) return e;
  if (!in.empty()) return kTrailing;
  return a;
}

Result<Subscribe> DecodeSubscribe(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Subscribe s;
  Reader in(body);
  e = ReadPacketId(in, &s.packet_id);
  if (!IsOk(e)) return e;
  if (IsV5(v)) {
    e = DecodeProperties(in, PropertyContext::kSubscribe, &s.props);
    if (!IsOk(e)) return e;
  }
  while (!in.empty()) {
    Subscription sub;
    uint8_t opts = 0;
    e = ReadUtf8(in, &sub.filter);
    if (!IsOk(e)) return e;
    if (!in.U8(&opts)) return kTruncated;
    sub.qos = opts & 0x03;
    if (sub.qos == 3) return Malformed("subscription QoS 3");  // [MQTT-3.8.3-4] (3.1.1)
    if (IsV5(v)) {
      if (opts & 0xC0) return Malformed("reserved subscription option bits set");  // [MQTT-3.8.3-5]
      sub.no_local = opts & 0x04;
      sub.retain_as_published = opts & 0x08;
      sub.retain_handling = (opts >> 4) & 0x03;
      if (sub.retain_handling == 3) return ProtocolError("retain handling 3");
      // [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error.
      if (sub.no_local && sub.filter.starts_with("$share/")) {
        return ProtocolError("No Local on a shared subscription");
      }
    } else if (opts & 0xFC) {
      return Malformed("reserved subscription option bits set");  // 3.1.1 [MQTT-3-8.3-4]
    }
    s.subscriptions.push_back(sub);
  }
  if (s.subscriptions.empty()) {
    return ProtocolError("SUBSCRIBE without topic filters");  // [MQTT-3.8.3-2]
  }
  return s;
}

Result<Suback> DecodeSuback(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Suback s;
  Reader in(body);
  if (!in.U16(&s.packet_id)) return kTruncated;
  if (IsV5(v)) {
    e = DecodeProperties(in, PropertyContext::kSuback, &s.props);
    if (!IsOk(e)) return e;
  }
  uint8_t code = 0;
  while (in.U8(&code)) {
    if (!IsV5(v) && code > 2 && code != 0x80) return ProtocolError("invalid SUBACK return code");
    s.reasons.push_back(static_cast<ReasonCode>(code));
  }
  if (s.reasons.empty()) return ProtocolError("SUBACK without reason codes");
  return s;
}

Result<Unsubscribe> DecodeUnsubscribe(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Unsubscribe u;
  Reader in(body);
  e = ReadPacketId(in, &u.packet_id);
  if (!IsOk(e)) return e;
  if (IsV5(v)) {
    e = DecodeProperties(in, PropertyContext::kUnsubscribe, &u.props);
    if (!IsOk(e)) return e;
  }
  while (!in.empty()) {
    std::string_view filter;
    e = ReadUtf8(in, &filter);
    if (!IsOk(e)) return e;
    u.filters.push_back(filter);
  }
  if (u.filters.empty()) {
    return ProtocolError("UNSUBSCRIBE without topic filters");  // [MQTT-3.10.3-2]
  }
  return u;
}

Result<Unsuback> DecodeUnsuback(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Unsuback u;
  Reader in(body);
  if (!in.U16(&u.packet_id)) return kTruncated;
  if (!IsV5(v)) {
    if (!in.empty()) return kTrailing;
    return u;
  }
  e = DecodeProperties(in, PropertyContext::kUnsuback, &u.props);
  if (!IsOk(e)) return e;
  uint8_t code = 0;
  while (in.U8(&code)) u.reasons.push_back(static_cast<ReasonCode>(code));
  if (u.reasons.empty()) return ProtocolError("UNSUBACK without reason codes");
  return u;
}

namespace {

// PINGREQ and PINGRESP: no body at all.
template <typename T>
Result<T> DecodeEmpty(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  if (!body.empty()) return kTrailing;
  return T{};
}

}  // namespace

Result<Disconnect> DecodeDisconnect(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Disconnect d;
  Reader in(body);
  if (!IsV5(v)) {
    if (!in.empty()) return kTrailing;
    return d;
  }
  if (in.empty()) return d;  // Normal disconnection, no properties
  uint8_t code = 0;
  (void)in.U8(&code);
  d.reason = static_cast<ReasonCode>(code);
  if (!AllowedDisconnectReason(d.reason)) return ProtocolError("invalid DISCONNECT reason code");
  if (in.empty()) return d;
  e = DecodeProperties(in, PropertyContext::kDisconnect, &d.props);
  if (!IsOk(e)) return e;
  if (!in.empty()) return kTrailing;
  return d;
}

Result<Auth> DecodeAuth(uint8_t byte0, Bytes body, Version v) {
  Error e = CheckFixedHeader(byte0, v);
  if (!IsOk(e)) return e;
  Auth a;
  Reader in(body);
  if (in.empty()) return a;  // [MQTT-3.15.2-1]: 0x00 with no properties may be left out
  uint8_t code = 0;
  (void)in.U8(&code);
  a.reason = static_cast<ReasonCode>(code);
  if (code != 0x00 && code != 0x18 && code != 0x19) {
    return ProtocolError("invalid AUTH reason code");
  }
  if (in.empty()) return a;
  e = DecodeProperties(in, PropertyContext::kAuth, &a.props);
  if (!IsOk(e)) return e;
  if (!in.empty()) return kTrailing;
  return a;
}

namespace {

template <typename T>
Result<Packet> Wrap(Result<T> r) {
  if (!r.ok()) return r.error();
  return Packet(std::move(r.value()));
}

}  // namespace

Result<Packet> Decode(uint8_t byte0, Bytes body, Version v) {
  switch (static_cast<PacketType>(byte0 >> 4)) {
    case PacketType::kConnect:
      return Wrap(DecodeConnect(byte0, body));
    case PacketType::kConnack:
      return Wrap(DecodeConnack(byte0, body, v));
    case PacketType::kPublish:
      return Wrap(DecodePublish(byte0, body, v));
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return Wrap(DecodeAck(byte0, body, v));
    case PacketType::kSubscribe:
      return Wrap(DecodeSubscribe(byte0, body, v));
    case PacketType::kSuback:
      return Wrap(DecodeSuback(byte0, body, v));
    case PacketType::kUnsubscribe:
      return Wrap(DecodeUnsubscribe(byte0, body, v));
    case PacketType::kUnsuback:
      return Wrap(DecodeUnsuback(byte0, body, v));
    case PacketType::kPingreq:
      return Wrap(DecodeEmpty<Pingreq>(byte0, body, v));
    case PacketType::kPingresp:
      return Wrap(DecodeEmpty<Pingresp>(byte0, body, v));
    case PacketType::kDisconnect:
      return Wrap(DecodeDisconnect(byte0, body, v));
    case PacketType::kAuth:
      return Wrap(DecodeAuth(byte0, body, v));
    case PacketType::kReserved:
      break;
  }
  return Malformed("reserved packet type 0");
}

}  // namespace ringmq::proto
