// MQTT 5 properties (MQTT 5.0 section 2.2.2): identifiers, types, where each may appear, and the
// Properties struct that carries them.
//
// Invariants:
//   1. Every property but User Property (0x26) and, in PUBLISH, Subscription Identifier (0x0B)
//      appears at most once; a duplicate is a Protocol Error (0x82).
//   2. A property in a packet that may not carry it, an unknown identifier, or a value that does
//   not
//      parse as its type is a Malformed Packet (0x81); a value outside its range (e.g. Receive
//      Maximum 0, a Byte property other than 0/1) is a Protocol Error (0x82).
//   3. User properties keep their order and may repeat.
//   4. String and binary values are views into the decoded buffer.
// Thread-safety: plain value types and pure functions.
#ifndef RINGMQ_PROTO_PROPERTIES_H_
#define RINGMQ_PROTO_PROPERTIES_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace ringmq::proto {

enum class PropertyId : uint8_t {
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
};

enum class PropertyType : uint8_t {
  kByte,
  kTwoByte,
  kFourByte,
  kVarint,
  kUtf8,
  kBinary,
  kUtf8Pair
};

// Where a property set appears: a packet type (1..15) or the will properties of CONNECT.
enum class PropertyContext : uint8_t {
  kWill = 0,
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
  kDisconnect = 14,
  kAuth = 15,
};

struct PropertyInfo {
  bool known = false;
  PropertyType type = PropertyType::kByte;
  uint16_t contexts = 0;  // bit (1 << PropertyContext)
  const char* name = "";
};

// Static description of identifier `id` (known == false for unassigned identifiers).
const PropertyInfo& GetPropertyInfo(uint8_t id);

// True when property `id` may appear in `ctx`.
inline bool PropertyAllowed(uint8_t id, PropertyContext ctx) {
  const PropertyInfo& info = GetPropertyInfo(id);
  return info.known && (info.contexts & (1u << static_cast<unsigned>(ctx))) != 0;
}

using UserProperty = std::pair<std::string_view, std::string_view>;

struct Properties {
  std::optional<uint8_t> payload_format_indicator;
  std::optional<uint32_t> message_expiry_interval;
  std::optional<std::string_view> content_type;
  std::optional<std::string_view> response_topic;
  std::optional<std::string_view> correlation_data;
  std::vector<uint32_t> subscription_identifiers;  // several only in server-to-client PUBLISH
  std::optional<uint32_t> session_expiry_interval;
  std::optional<std::string_view> assigned_client_identifier;
  std::optional<uint16_t> server_keep_alive;
  std::optional<std::string_view> authentication_method;
  std::optional<std::string_view> authentication_data;
  std::optional<uint8_t> request_problem_information;
  std::optional<uint32_t> will_delay_interval;
  std::optional<uint8_t> request_response_information;
  std::optional<std::string_view> response_information;
  std::optional<std::string_view> server_reference;
  std::optional<std::string_view> reason_string;
  std::optional<uint16_t> receive_maximum;
  std::optional<uint16_t> topic_alias_maximum;
  std::optional<uint16_t> topic_alias;
  std::optional<uint8_t> maximum_qos;
  std::optional<uint8_t> retain_available;
  std::vector<UserProperty> user_properties;
  std::optional<uint32_t> maximum_packet_size;
  std::optional<uint8_t> wildcard_subscription_available;
  std::optional<uint8_t> subscription_identifier_available;
  std::optional<uint8_t> shared_subscription_available;

  bool operator==(const Properties&) const = default;
};

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_PROPERTIES_H_
