// Decoding and encoding of every MQTT 3.1.1 / 5.0 control packet (and 3.1's CONNECT).
//
// Decoders take the first byte of the fixed header (type and flags) and the packet body (what
// follows the Remaining Length; see framer.h to find it in a stream) and return a packet whose
// string views point into `body`. They validate every normative rule of the specification that can
// be checked on one packet; each failure carries the reason code the broker must answer with:
//   - kMalformedPacket (0x81): bad lengths, bad UTF-8, reserved bits/flags set, QoS 3, bad
//   properties;
//   - kProtocolError (0x82): well-formed but forbidden (packet id 0, duplicate property, empty
//     SUBSCRIBE, No Local on a shared subscription, ...);
//   - kUnsupportedProtocolVersion (0x84): CONNECT with an unknown protocol name or level;
//   - kTopicNameInvalid (0x90): PUBLISH topic with wildcards, or empty without a Topic Alias.
// Topic filter syntax in SUBSCRIBE/UNSUBSCRIBE is not checked here, because MQTT 5 answers it per
// filter in SUBACK (0x8F); the core calls ValidateTopicFilter (topic.h).
//
// Encoders: EncodedSize(packet, version) is the exact size of the whole packet (fixed header
// included); Encode(packet, version, out) writes it and returns that size, or 0 when `out` is too
// small or the packet exceeds the protocol's maximum size. For 3.1.1 the reason code of CONNACK is
// mapped to a return code (0x84 -> 1, 0x85 -> 2, 0x86/0x8C -> 4, 0x87/0x8A -> 5, other errors -> 3)
// and failure codes of SUBACK to 0x80; MQTT 5 fields are left out.
//
// Thread-safety: pure functions.
#ifndef RINGMQ_PROTO_CODEC_H_
#define RINGMQ_PROTO_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/packet.h"
#include "proto/result.h"

namespace ringmq::proto {

using Bytes = std::span<const uint8_t>;

// Checks the fixed-header flags of byte 0 for `version` (MQTT 5.0 section 2.1.3): PUBLISH QoS 3,
// reserved flags of other types, packet type 0, AUTH in 3.1.1. kSuccess when valid.
Error CheckFixedHeader(uint8_t byte0, Version version);

// The protocol level of a CONNECT body when it can be read, for choosing how to answer a CONNECT
// that fails to decode (3.1.1 and 5.0 CONNACKs differ). Defaults to kV311.
Version PeekConnectVersion(Bytes body);

Result<Connect> DecodeConnect(uint8_t byte0, Bytes body);
Result<Connack> DecodeConnack(uint8_t byte0, Bytes body, Version v);
Result<Publish> DecodePublish(uint8_t byte0, Bytes body, Version v);
Result<Ack> DecodeAck(uint8_t byte0, Bytes body, Version v);  // PUBACK, PUBREC, PUBREL, PUBCOMP
Result<Subscribe> DecodeSubscribe(uint8_t byte0, Bytes body, Version v);
Result<Suback> DecodeSuback(uint8_t byte0, Bytes body, Version v);
Result<Unsubscribe> DecodeUnsubscribe(uint8_t byte0, Bytes body, Version v);
Result<Unsuback> DecodeUnsuback(uint8_t byte0, Bytes body, Version v);
Result<Disconnect> DecodeDisconnect(uint8_t byte0, Bytes body, Version v);
Result<Auth> DecodeAuth(uint8_t byte0, Bytes body, Version v);

// Any packet, dispatched on the type in byte0 (CheckFixedHeader included). `v` is ignored for
// CONNECT, whose version is in the packet.
Result<Packet> Decode(uint8_t byte0, Bytes body, Version v);

size_t EncodedSize(const Connect& p, Version v);
size_t EncodedSize(const Connack& p, Version v);
size_t EncodedSize(const Publish& p, Version v);
size_t EncodedSize(const Ack& p, Version v);
size_t EncodedSize(const Subscribe& p, Version v);
size_t EncodedSize(const Suback& p, Version v);
size_t EncodedSize(const Unsubscribe& p, Version v);
size_t EncodedSize(const Unsuback& p, Version v);
size_t EncodedSize(const Pingreq& p, Version v);
size_t EncodedSize(const Pingresp& p, Version v);
size_t EncodedSize(const Disconnect& p, Version v);
size_t EncodedSize(const Auth& p, Version v);
size_t EncodedSize(const Packet& p, Version v);

size_t Encode(const Connect& p, Version v, std::span<uint8_t> out);
size_t Encode(const Connack& p, Version v, std::span<uint8_t> out);
size_t Encode(const Publish& p, Version v, std::span<uint8_t> out);
size_t Encode(const Ack& p, Version v, std::span<uint8_t> out);
size_t Encode(const Subscribe& p, Version v, std::span<uint8_t> out);
size_t Encode(const Suback& p, Version v, std::span<uint8_t> out);
size_t Encode(const Unsubscribe& p, Version v, std::span<uint8_t> out);
size_t Encode(const Unsuback& p, Version v, std::span<uint8_t> out);
size_t Encode(const Pingreq& p, Version v, std::span<uint8_t> out);
size_t Encode(const Pingresp& p, Version v, std::span<uint8_t> out);
size_t Encode(const Disconnect& p, Version v, std::span<uint8_t> out);
size_t Encode(const Auth& p, Version v, std::span<uint8_t> out);
size_t Encode(const Packet& p, Version v, std::span<uint8_t> out);

// The 3.1.1 CONNACK return code for a reason code (see above), and back.
uint8_t ConnackReturnCodeV311(ReasonCode reason);

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_CODEC_H_
