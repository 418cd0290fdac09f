// Encoders of every MQTT control packet. Each packet is sized first (Body*Size), then written in
// one pass into the caller's buffer.
#include <algorithm>

#include "proto/codec.h"
#include "proto/internal/wire.h"

namespace ringmq::proto {

using internal::BinarySize;
using internal::PropertiesBlockSize;
using internal::PropertiesContentSize;
using internal::WriteProperties;
using internal::Writer;

namespace {

bool IsV5(Version v) { return v == Version::kV5; }

uint8_t Byte0(PacketType type, uint8_t flags = 0) {
  return static_cast<uint8_t>(static_cast<uint8_t>(type) << 4 | flags);
}

// Size of a whole packet with a body of `body` bytes, or 0 when the body is too long for MQTT.
size_t PacketSize(size_t body) {
  if (body > kMaxVarint) return 0;
  return 1 + VarintSize(static_cast<uint32_t>(body)) + body;
}

// Bodies: each returns the body size; the matching Write* writes exactly that many bytes.

size_t ConnectBody(const Connect& p) {
  const bool v5 = IsV5(p.version);
  size_t n = (p.version == Version::kV31 ? BinarySize("MQIsdp") : BinarySize("MQTT")) + 1 + 1 + 2;
  if (v5) n += PropertiesBlockSize(p.props);
  n += BinarySize(p.client_id);
  if (p.has_will) {
    if (v5) n += PropertiesBlockSize(p.will.props);
    n += BinarySize(p.will.topic) + BinarySize(p.will.payload);
  }
  if (p.has_username) n += BinarySize(p.username);
  if (p.has_password) n += BinarySize(p.password);
  return n;
}

void WriteConnect(Writer& w, const Connect& p) {
  const bool v5 = IsV5(p.version);
  w.Binary(p.version == Version::kV31 ? "MQIsdp" : "MQTT");
  w.U8(static_cast<uint8_t>(p.version));
  uint8_t flags = 0;
  if (p.clean_start) flags |= 0x02;
  if (p.has_will)
    flags |= 0x04 | static_cast<uint8_t>((p.will.qos & 3) << 3) | (p.will.retain ? 0x20 : 0);
  if (p.has_password) flags |= 0x40;
  if (p.has_username) flags |= 0x80;
  w.U8(flags);
  w.U16(p.keep_alive);
  if (v5) WriteProperties(w, p.props, PropertiesContentSize(p.props));
  w.Binary(p.client_id);
  if (p.has_will) {
    if (v5) WriteProperties(w, p.will.props, PropertiesContentSize(p.will.props));
    w.Binary(p.will.topic);
    w.Binary(p.will.payload);
  }
  if (p.has_username) w.Binary(p.username);
  if (p.has_password) w.Binary(p.password);
}

size_t ConnackBody(const Connack& p, Version v) {
  return 2 + (IsV5(v) ? PropertiesBlockSize(p.props) : 0);
}

void WriteConnack(Writer& w, const Connack& p, Version v) {
  // MQTT 3.1 has no Session Present flag: its first byte is reserved and always 0.
  w.U8(p.session_present && v != Version::kV31 ? 1 : 0);
  if (IsV5(v)) {
    w.U8(static_cast<uint8_t>(p.reason));
    WriteProperties(w, p.props, PropertiesContentSize(p.props));
  } else {
    w.U8(ConnackReturnCodeV311(p.reason));
  }
}

size_t PublishBody(const Publish& p, Version v) {
  return BinarySize(p.topic) + (p.qos ? 2 : 0) + (IsV5(v) ? PropertiesBlockSize(p.props) : 0) +
         p.payload.size();
}

uint8_t PublishFlags(const Publish& p) {
  return static_cast<uint8_t>((p.dup ? 0x08 : 0) | (p.qos & 3) << 1 | (p.retain ? 1 : 0));
}

void WritePublish(Writer& w, const Publish& p, Version v) {
  w.Binary(p.topic);
  if (p.qos) w.U16(p.packet_id);
  if (IsV5(v)) WriteProperties(w, p.props, PropertiesContentSize(p.props));
  w.Bytes(p.payload);
}

// MQTT 5 acks, DISCONNECT and AUTH leave out what is default: no properties, then a success code.
bool NeedsProps(const Properties& p) { return PropertiesContentSize(p) != 0; }

size_t AckBody(const Ack& p, Version v) {
  if (!IsV5(v)) return 2;
  if (NeedsProps(p.props)) return 3 + PropertiesBlockSize(p.props);
  return p.reason == ReasonCode::kSuccess ? 2 : 3;
}

void WriteAck(Writer& w, const Ack& p, Version v, size_t body) {
  w.U16(p.packet_id);
  if (body >= 3) w.U8(static_cast<uint8_t>(p.reason));
  if (body > 3) WriteProperties(w, p.props, PropertiesContentSize(p.props));
  (void)v;
}

size_t SubscribeBody(const Subscribe& p, Version v) {
  size_t n = 2 + (IsV5(v) ? PropertiesBlockSize(p.props) : 0);
  for (const Subscription& s : p.subscriptions) n += BinarySize(s.filter) + 1;
  return n;
}

void WriteSubscribe(Writer& w, const Subscribe& p, Version v) {
  w.U16(p.packet_id);
  if (IsV5(v)) WriteProperties(w, p.props, PropertiesContentSize(p.props));
  for (const Subscription& s : p.subscriptions) {
    w.Binary(s.filter);
    uint8_t opts = s.qos & 3;
    if (IsV5(v)) {
      opts |= (s.no_local ? 0x04 : 0) | (s.retain_as_published ? 0x08 : 0) |
              static_cast<uint8_t>((s.retain_handling & 3) << 4);
    }
    w.U8(opts);
  }
}

size_t SubackBody(const Suback& p, Version v) {
  return 2 + (IsV5(v) ? PropertiesBlockSize(p.props) : 0) + p.reasons.size();
}

void WriteSuback(Writer& w, const Suback& p, Version v) {
  w.U16(p.packet_id);
  if (IsV5(v)) WriteProperties(w, p.props, PropertiesContentSize(p.props));
  for (ReasonCode r : p.reasons) {
    w.U8(IsV5(v) || !IsError(r) ? static_cast<uint8_t>(r) : 0x80);
  }
}

size_t UnsubscribeBody(const Unsubscribe& p, Version v) {
  size_t n = 2 + (IsV5(v) ? PropertiesBlockSize(p.props) : 0);
  for (std::string_view f : p.filters) n += BinarySize(f);
  return n;
}

void WriteUnsubscribe(Writer& w, const Unsubscribe& p, Version v) {
  w.U16(p.packet_id);
  if (IsV5(v)) WriteProperties(w, p.props, PropertiesContentSize(p.props));
  for (std::string_view f : p.filters) w.Binary(f);
}

size_t UnsubackBody(const Unsuback& p, Version v) {
  return IsV5(v) ? 2 + PropertiesBlockSize(p.props) + p.reasons.size() : 2;
}

void WriteUnsuback(Writer& w, const Unsuback& p, Version v) {
  w.U16(p.packet_id);
  if (!IsV5(v)) return;
  WriteProperties(w, p.props, PropertiesContentSize(p.props));
  for (ReasonCode r : p.reasons) w.U8(static_cast<uint8_t>(r));
}

// DISCONNECT and AUTH: reason code and properties, both optional in MQTT 5.
template <typename T>
size_t ReasonBody(const T& p, Version v) {
  if (!IsV5(v)) return 0;
  if (NeedsProps(p.props)) return 1 + PropertiesBlockSize(p.props);
  return p.reason == ReasonCode::kSuccess ? 0 : 1;
}

template <typename T>
void WriteReasonBody(Writer& w, const T& p, size_t body) {
  if (body >= 1) w.U8(static_cast<uint8_t>(p.reason));
  if (body > 1) WriteProperties(w, p.props, PropertiesContentSize(p.props));
}

// Writes the fixed header and then the body through `write`; returns the packet size or 0.
template <typename F>
size_t Frame(uint8_t byte0, size_t body, std::span<uint8_t> out, F&& write) {
  const size_t total = PacketSize(body);
  if (total == 0 || total > out.size()) return 0;
  Writer w(out.data());
  w.U8(byte0);
  w.Varint(static_cast<uint32_t>(body));
  write(w);
  return total;
}

}  // namespace

uint8_t ConnackReturnCodeV311(ReasonCode reason) {
  switch (reason) {
    case ReasonCode::kSuccess:
      return 0;
    case ReasonCode::kUnsupportedProtocolVersion:
      return 1;
    case ReasonCode::kClientIdentifierNotValid:
      return 2;
    case ReasonCode::kBadUserNameOrPassword:
    case ReasonCode::kBadAuthenticationMethod:
      return 4;
    case ReasonCode::kNotAuthorized:
    case ReasonCode::kBanned:
      return 5;
    default:
      return 3;  // Server unavailable
  }
}

size_t EncodedSize(const Connect& p, Version) { return PacketSize(ConnectBody(p)); }
size_t EncodedSize(const Connack& p, Version v) { return PacketSize(ConnackBody(p, v)); }
size_t EncodedSize(const Publish& p, Version v) { return PacketSize(PublishBody(p, v)); }
size_t EncodedSize(const Ack& p, Version v) { return PacketSize(AckBody(p, v)); }
size_t EncodedSize(const Subscribe& p, Version v) { return PacketSize(SubscribeBody(p, v)); }
size_t EncodedSize(const Suback& p, Version v) { return PacketSize(SubackBody(p, v)); }
size_t EncodedSize(const Unsubscribe& p, Version v) { return PacketSize(UnsubscribeBody(p, v)); }
size_t EncodedSize(const Unsuback& p, Version v) { return PacketSize(UnsubackBody(p, v)); }
size_t EncodedSize(const Pingreq&, Version) { return 2; }
size_t EncodedSize(const Pingresp&, Version) { return 2; }
size_t EncodedSize(const Disconnect& p, Version v) { return PacketSize(ReasonBody(p, v)); }
size_t EncodedSize(const Auth& p, Version v) { return PacketSize(ReasonBody(p, v)); }
size_t EncodedSize(const Packet& p, Version v) {
  return std::visit([v](const auto& x) { return EncodedSize(x, v); }, p);
}

// CONNECT is encoded in its own version (p.version); `v` is only there for overload symmetry.
size_t Encode(const Connect& p, Version, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kConnect), ConnectBody(p), out,
               [&](Writer& w) { WriteConnect(w, p); });
}
size_t Encode(const Connack& p, Version v, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kConnack), ConnackBody(p, v), out,
               [&](Writer& w) { WriteConnack(w, p, v); });
}
size_t Encode(const Publish& p, Version v, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kPublish, PublishFlags(p)), PublishBody(p, v), out,
               [&](Writer& w) { WritePublish(w, p, v); });
}
size_t Encode(const Ack& p, Version v, std::span<uint8_t> out) {
  const size_t body = AckBody(p, v);
  return Frame(Byte0(p.type, p.type == PacketType::kPubrel ? 0x02 : 0), body, out,
               [&](Writer& w) { WriteAck(w, p, v, body); });
}
size_t Encode(const Subscribe& p, Version v, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kSubscribe, 0x02), SubscribeBody(p, v), out,
               [&](Writer& w) { WriteSubscribe(w, p, v); });
}
size_t Encode(const Suback& p, Version v, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kSuback), SubackBody(p, v), out,
               [&](Writer& w) { WriteSuback(w, p, v); });
}
size_t Encode(const Unsubscribe& p, Version v, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kUnsubscribe, 0x02), UnsubscribeBody(p, v), out,
               [&](Writer& w) { WriteUnsubscribe(w, p, v); });
}
size_t Encode(const Unsuback& p, Version v, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kUnsuback), UnsubackBody(p, v), out,
               [&](Writer& w) { WriteUnsuback(w, p, v); });
}
size_t Encode(const Pingreq&, Version, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kPingreq), 0, out, [](Writer&) {});
}
size_t Encode(const Pingresp&, Version, std::span<uint8_t> out) {
  return Frame(Byte0(PacketType::kPingresp), 0, out, [](Writer&) {});
}
size_t Encode(const Disconnect& p, Version v, std::span<uint8_t> out) {
  const size_t body = ReasonBody(p, v);
  return Frame(Byte0(PacketType::kDisconnect), body, out,
               [&](Writer& w) { WriteReasonBody(w, p, body); });
}
size_t Encode(const Auth& p, Version v, std::span<uint8_t> out) {
  const size_t body = ReasonBody(p, v);
  return Frame(Byte0(PacketType::kAuth), body, out,
               [&](Writer& w) { WriteReasonBody(w, p, body); });
}
size_t Encode(const Packet& p, Version v, std::span<uint8_t> out) {
  return std::visit([v, out](const auto& x) { return Encode(x, v, out); }, p);
}

}  // namespace ringmq::proto
