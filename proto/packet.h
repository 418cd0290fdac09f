// Plain structs for every MQTT 3.1.1 / 5.0 control packet (MQTT 5.0 chapter 3).
//
// Decoded packets hold string views into the caller's input buffer: nothing is copied, so a packet
// is valid only while that buffer is. The same structs are the encoder's input. Fields that exist
// only in MQTT 5 (properties, reason codes) are ignored when encoding for 3.1.1 / 3.1.
// Thread-safety: plain value types.
#ifndef RINGMQ_PROTO_PACKET_H_
#define RINGMQ_PROTO_PACKET_H_

#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "proto/properties.h"
#include "proto/reason_code.h"

namespace ringmq::proto {

// Protocol level byte of CONNECT: 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0.
enum class Version : uint8_t { kV31 = 3, kV311 = 4, kV5 = 5 };

enum class PacketType : uint8_t {
  kReserved = 0,
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

const char* PacketTypeName(PacketType type);

struct Will {
  uint8_t qos = 0;
  bool retain = false;
  std::string_view topic;
  std::string_view payload;  // binary
  Properties props;          // MQTT 5 will properties

  bool operator==(const Will&) const = default;
};

struct Connect {
  Version version = Version::kV5;
  bool clean_start = true;  // Clean Session in 3.1.1
  uint16_t keep_alive = 0;  // seconds
  Properties props;
  std::string_view client_id;
  bool has_will = false;
  Will will;
  bool has_username = false;
  std::string_view username;
  bool has_password = false;
  std::string_view password;  // binary

  bool operator==(const Connect&) const = default;
};

// In 3.1.1 the reason is the CONNACK return code mapped to its MQTT 5 equivalent (see codec.h).
struct Connack {
  bool session_present = false;
  ReasonCode reason = ReasonCode::kSuccess;
  Properties props;

  bool operator==(const Connack&) const = default;
};

struct Publish {
  bool dup = false;
  uint8_t qos = 0;
  bool retain = false;
  std::string_view topic;  // may be empty in MQTT 5 when a Topic Alias is given
  uint16_t packet_id = 0;  // only when qos > 0
  Properties props;
  std::string_view payload;

  bool operator==(const Publish&) const = default;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
struct Ack {
  PacketType type = PacketType::kPuback;
  uint16_t packet_id = 0;
  ReasonCode reason = ReasonCode::kSuccess;
  Properties props;

  bool operator==(const Ack&) const = default;
};

// One topic filter of a SUBSCRIBE with its options (MQTT 5.0 section 3.8.3.1).
struct Subscription {
  std::string_view filter;
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;  // 0 send, 1 send if new subscription, 2 do not send

  bool operator==(const Subscription&) const = default;
};

struct Subscribe {
  uint16_t packet_id = 0;
  Properties props;
  std::vector<Subscription> subscriptions;  // at least one

  bool operator==(const Subscribe&) const = default;
};

// SUBACK and (with MQTT 5) UNSUBACK: one reason code per requested filter, in order.
struct Suback {
  uint16_t packet_id = 0;
  Properties props;
  std::vector<ReasonCode> reasons;

  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  Properties props;
  std::vector<std::string_view> filters;  // at least one

  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  uint16_t packet_id = 0;
  Properties props;
  std::vector<ReasonCode> reasons;  // MQTT 5 only; empty for 3.1.1

  bool operator==(const Unsuback&) const = default;
};

struct Pingreq {
  bool operator==(const Pingreq&) const = default;
};
struct Pingresp {
  bool operator==(const Pingresp&) const = default;
};

struct Disconnect {
  ReasonCode reason = ReasonCode::kSuccess;  // Normal disconnection
  Properties props;

  bool operator==(const Disconnect&) const = default;
};

struct Auth {
  ReasonCode reason = ReasonCode::kSuccess;
  Properties props;

  bool operator==(const Auth&) const = default;
};

using Packet = std::variant<Connect, Connack, Publish, Ack, Subscribe, Suback, Unsubscribe,
                            Unsuback, Pingreq, Pingresp, Disconnect, Auth>;

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_PACKET_H_
