// MQTT 5 property table and the property codec (MQTT 5.0 section 2.2.2 and table 2-4).
#include "proto/properties.h"

#include <array>

#include "proto/internal/wire.h"

namespace ringmq::proto {
namespace {

constexpr uint16_t Ctx(std::initializer_list<PropertyContext> list) {
  uint16_t mask = 0;
  for (PropertyContext c : list) mask |= static_cast<uint16_t>(1u << static_cast<unsigned>(c));
  return mask;
}

using C = PropertyContext;
using T = PropertyType;

constexpr uint16_t kPubWill = Ctx({C::kPublish, C::kWill});
constexpr uint16_t kReasonStringCtx =
    Ctx({C::kConnack, C::kPuback, C::kPubrec, C::kPubrel, C::kPubcomp, C::kSuback, C::kUnsuback,
         C::kDisconnect, C::kAuth});
constexpr uint16_t kEverywhere =
    Ctx({C::kWill, C::kConnect, C::kConnack, C::kPublish, C::kPuback, C::kPubrec, C::kPubrel,
         C::kPubcomp, C::kSubscribe, C::kSuback, C::kUnsubscribe, C::kUnsuback, C::kDisconnect,
         C::kAuth});

constexpr std::array<PropertyInfo, 256> MakeTable() {
  std::array<PropertyInfo, 256> t{};
  auto set = [&t](PropertyId id, PropertyType type, uint16_t ctx, const char* name) {
    t[static_cast<uint8_t>(id)] = PropertyInfo{true, type, ctx, name};
  };
  using P = PropertyId;
  set(P::kPayloadFormatIndicator, T::kByte, kPubWill, "Payload Format Indicator");
  set(P::kMessageExpiryInterval, T::kFourByte, kPubWill, "Message Expiry Interval");
  set(P::kContentType, T::kUtf8, kPubWill, "Content Type");
  set(P::kResponseTopic, T::kUtf8, kPubWill, "Response Topic");
  set(P::kCorrelationData, T::kBinary, kPubWill, "Correlation Data");
  set(P::kSubscriptionIdentifier, T::kVarint, Ctx({C::kPublish, C::kSubscribe}),
      "Subscription Identifier");
  set(P::kSessionExpiryInterval, T::kFourByte, Ctx({C::kConnect, C::kConnack, C::kDisconnect}),
      "Session Expiry Interval");
  set(P::kAssignedClientIdentifier, T::kUtf8, Ctx({C::kConnack}), "Assigned Client Identifier");
  set(P::kServerKeepAlive, T::kTwoByte, Ctx({C::kConnack}), "Server Keep Alive");
  set(P::kAuthenticationMethod, T::kUtf8, Ctx({C::kConnect, C::kConnack, C::kAuth}),
      "Authentication Method");
  set(P::kAuthenticationData, T::kBinary, Ctx({C::kConnect, C::kConnack, C::kAuth}),
      "Authentication Data");
  set(P::kRequestProblemInformation, T::kByte, Ctx({C::kConnect}), "Request Problem Information");
  set(P::kWillDelayInterval, T::kFourByte, Ctx({C::kWill}), "Will Delay Interval");
  set(P::kRequestResponseInformation, T::kByte, Ctx({C::kConnect}), "Request Response Information");
  set(P::kResponseInformation, T::kUtf8, Ctx({C::kConnack}), "Response Information");
  set(P::kServerReference, T::kUtf8, Ctx({C::kConnack, C::kDisconnect}), "Server Reference");
  set(P::kReasonString, T::kUtf8, kReasonStringCtx, "Reason String");
  set(P::kReceiveMaximum, T::kTwoByte, Ctx({C::kConnect, C::kConnack}), "Receive Maximum");
  set(P::kTopicAliasMaximum, T::kTwoByte, Ctx({C::kConnect, C::kConnack}), "Topic Alias Maximum");
  set(P::kTopicAlias, T::kTwoByte, Ctx({C::kPublish}), "Topic Alias");
  set(P::kMaximumQos, T::kByte, Ctx({C::kConnack}), "Maximum QoS");
  set(P::kRetainAvailable, T::kByte, Ctx({C::kConnack}), "Retain Available");
  set(P::kUserProperty, T::kUtf8Pair, kEverywhere, "User Property");
  set(P::kMaximumPacketSize, T::kFourByte, Ctx({C::kConnect, C::kConnack}), "Maximum Packet Size");
  set(P::kWildcardSubscriptionAvailable, T::kByte, Ctx({C::kConnack}),
      "Wildcard Subscription Available");
  set(P::kSubscriptionIdentifierAvailable, T::kByte, Ctx({C::kConnack}),
      "Subscription Identifier Available");
  set(P::kSharedSubscriptionAvailable, T::kByte, Ctx({C::kConnack}),
      "Shared Subscription Available");
  return t;
}

constexpr std::array<PropertyInfo, 256> kTable = MakeTable();

}  // namespace

const PropertyInfo& GetPropertyInfo(uint8_t id) { return kTable[id]; }

namespace internal {
namespace {

constexpr Error kMalformed{ReasonCode::kMalformedPacket, "malformed property"};
constexpr Error kDuplicate{ReasonCode::kProtocolError, "duplicate property"};
constexpr Error kBadValue{ReasonCode::kProtocolError, "property value out of range"};
constexpr Error kNotAllowed{ReasonCode::kMalformedPacket, "property not allowed in this packet"};

// Stores v into an optional field, refusing a second occurrence.
template <typename V, typename F>
Error Store(std::optional<F>& field, V v) {
  if (field.has_value()) return kDuplicate;
  field = v;
  return kOk;
}

// Byte properties whose only legal values are 0 and 1.
Error StoreBool(std::optional<uint8_t>& field, uint8_t v) {
  if (v > 1) return kBadValue;
  return Store(field, v);
}

Error DecodeOne(Reader& in, PropertyContext ctx, Properties* p) {
  uint32_t id32 = 0;
  // The identifier is a Variable Byte Integer, though every assigned one fits in one byte.
  if (!in.Varint(&id32)) return kMalformed;
  if (id32 > 0xFF || !PropertyAllowed(static_cast<uint8_t>(id32), ctx)) {
    return GetPropertyInfo(static_cast<uint8_t>(id32)).known && id32 <= 0xFF
               ? kNotAllowed
               : Error{ReasonCode::kMalformedPacket, "unknown property identifier"};
  }
  const auto id = static_cast<PropertyId>(id32);
  uint8_t b = 0;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  std::string_view s;
  switch (GetPropertyInfo(static_cast<uint8_t>(id32)).type) {
    case PropertyType::kByte:
      if (!in.U8(&b)) return kMalformed;
      break;
    case PropertyType::kTwoByte:
      if (!in.U16(&u16)) return kMalformed;
      break;
    case PropertyType::kFourByte:
      if (!in.U32(&u32)) return kMalformed;
      break;
    case PropertyType::kVarint:
      if (!in.Varint(&u32)) return kMalformed;
      break;
    case PropertyType::kUtf8:
      if (!in.Utf8(&s)) return kMalformed;
      break;
    case PropertyType::kBinary:
      if (!in.Binary(&s)) return kMalformed;
      break;
    case PropertyType::kUtf8Pair: {
      std::string_view value;
      if (!in.Utf8(&s) || !in.Utf8(&value)) return kMalformed;
      p->user_properties.emplace_back(s, value);
      return kOk;
    }
  }
  using P = PropertyId;
  switch (id) {
    case P::kPayloadFormatIndicator:
      return StoreBool(p->payload_format_indicator, b);
    case P::kMessageExpiryInterval:
      return Store(p->message_expiry_interval, u32);
    case P::kContentType:
      return Store(p->content_type, s);
    case P::kResponseTopic:
      // A Response Topic is a Topic Name: no wildcards [MQTT-3.3.2-14].
      if (s.empty() || s.find_first_of("+#") != std::string_view::npos) return kBadValue;
      return Store(p->response_topic, s);
    case P::kCorrelationData:
      return Store(p->correlation_data, s);
    case P::kSubscriptionIdentifier:
      if (u32 == 0) return kBadValue;
      if (ctx == PropertyContext::kSubscribe && !p->subscription_identifiers.empty()) {
        return kDuplicate;
      }
      p->subscription_identifiers.push_back(u32);
      return kOk;
    case P::kSessionExpiryInterval:
      return Store(p->session_expiry_interval, u32);
    case P::kAssignedClientIdentifier:
      return Store(p->assigned_client_identifier, s);
    case P::kServerKeepAlive:
      return Store(p->server_keep_alive, u16);
    case P::kAuthenticationMethod:
      return Store(p->authentication_method, s);
    case P::kAuthenticationData:
      return Store(p->authentication_data, s);
    case P::kRequestProblemInformation:
      return StoreBool(p->request_problem_information, b);
    case P::kWillDelayInterval:
      return Store(p->will_delay_interval, u32);
    case P::kRequestResponseInformation:
      return StoreBool(p->request_response_information, b);
    case P::kResponseInformation:
      return Store(p->response_information, s);
    case P::kServerReference:
      return Store(p->server_reference, s);
    case P::kReasonString:
      return Store(p->reason_string, s);
    case P::kReceiveMaximum:
      if (u16 == 0) return kBadValue;
      return Store(p->receive_maximum, u16);
    case P::kTopicAliasMaximum:
      return Store(p->topic_alias_maximum, u16);
    case P::kTopicAlias:
      if (u16 == 0) return kBadValue;
      return Store(p->topic_alias, u16);
    case P::kMaximumQos:
      return StoreBool(p->maximum_qos, b);
    case P::kRetainAvailable:
      return StoreBool(p->retain_available, b);
    case P::kUserProperty:
      return kOk;  // handled above
    case P::kMaximumPacketSize:
      if (u32 == 0) return kBadValue;
      return Store(p->maximum_packet_size, u32);
    case P::kWildcardSubscriptionAvailable:
      return StoreBool(p->wildcard_subscription_available, b);
    case P::kSubscriptionIdentifierAvailable:
      return StoreBool(p->subscription_identifier_available, b);
    case P::kSharedSubscriptionAvailable:
      return StoreBool(p->shared_subscription_available, b);
  }
  return kMalformed;
}

}  // namespace

Error DecodeProperties(Reader& in, PropertyContext ctx, Properties* out) {
  uint32_t len = 0;
  std::string_view block;
  if (!in.Varint(&len) || !in.Bytes(len, &block)) {
    return Error{ReasonCode::kMalformedPacket, "property length exceeds packet"};
  }
  Reader props(std::span(reinterpret_cast<const uint8_t*>(block.data()), block.size()));
  while (!props.empty()) {
    Error e = DecodeOne(props, ctx, out);
    if (!IsOk(e)) return e;
  }
  return kOk;
}

size_t PropertiesContentSize(const Properties& p) {
  size_t n = 0;
  auto byte = [&n](const auto& f) { n += f ? 2 : 0; };
  auto two = [&n](const auto& f) { n += f ? 3 : 0; };
  auto four = [&n](const auto& f) { n += f ? 5 : 0; };
  auto str = [&n](const std::optional<std::string_view>& f) { n += f ? 3 + f->size() : 0; };
  byte(p.payload_format_indicator);
  four(p.message_expiry_interval);
  str(p.content_type);
  str(p.response_topic);
  str(p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) n += 1 + VarintSize(id);
  four(p.session_expiry_interval);
  str(p.assigned_client_identifier);
  two(p.server_keep_alive);
  str(p.authentication_method);
  str(p.authentication_data);
  byte(p.request_problem_information);
  four(p.will_delay_interval);
  byte(p.request_response_information);
  str(p.response_information);
  str(p.server_reference);
  str(p.reason_string);
  two(p.receive_maximum);
  two(p.topic_alias_maximum);
  two(p.topic_alias);
  byte(p.maximum_qos);
  byte(p.retain_available);
  for (const auto& [k, v] : p.user_properties) n += 1 + BinarySize(k) + BinarySize(v);
  four(p.maximum_packet_size);
  byte(p.wildcard_subscription_available);
  byte(p.subscription_identifier_available);
  byte(p.shared_subscription_available);
  return n;
}

void WriteProperties(Writer& out, const Properties& p, size_t content_size) {
  out.Varint(static_cast<uint32_t>(content_size));
  using P = PropertyId;
  auto id = [&out](P pid) { out.U8(static_cast<uint8_t>(pid)); };
  auto byte = [&](P pid, const std::optional<uint8_t>& f) {
    if (f) id(pid), out.U8(*f);
  };
  auto two = [&](P pid, const std::optional<uint16_t>& f) {
    if (f) id(pid), out.U16(*f);
  };
  auto four = [&](P pid, const std::optional<uint32_t>& f) {
    if (f) id(pid), out.U32(*f);
  };
  auto str = [&](P pid, const std::optional<std::string_view>& f) {
    if (f) id(pid), out.Binary(*f);
  };
  byte(P::kPayloadFormatIndicator, p.payload_format_indicator);
  four(P::kMessageExpiryInterval, p.message_expiry_interval);
  str(P::kContentType, p.content_type);
  str(P::kResponseTopic, p.response_topic);
  str(P::kCorrelationData, p.correlation_data);
  for (uint32_t sid : p.subscription_identifiers) id(P::kSubscriptionIdentifier), out.Varint(sid);
  four(P::kSessionExpiryInterval, p.session_expiry_interval);
  str(P::kAssignedClientIdentifier, p.assigned_client_identifier);
  two(P::kServerKeepAlive, p.server_keep_alive);
  str(P::kAuthenticationMethod, p.authentication_method);
  str(P::kAuthenticationData, p.authentication_data);
  byte(P::kRequestProblemInformation, p.request_problem_information);
  four(P::kWillDelayInterval, p.will_delay_interval);
  byte(P::kRequestResponseInformation, p.request_response_information);
  str(P::kResponseInformation, p.response_information);
  str(P::kServerReference, p.server_reference);
  str(P::kReasonString, p.reason_string);
  two(P::kReceiveMaximum, p.receive_maximum);
  two(P::kTopicAliasMaximum, p.topic_alias_maximum);
  two(P::kTopicAlias, p.topic_alias);
  byte(P::kMaximumQos, p.maximum_qos);
  byte(P::kRetainAvailable, p.retain_available);
  for (const auto& [k, v] : p.user_properties) id(P::kUserProperty), out.Binary(k), out.Binary(v);
  four(P::kMaximumPacketSize, p.maximum_packet_size);
  byte(P::kWildcardSubscriptionAvailable, p.wildcard_subscription_available);
  byte(P::kSubscriptionIdentifierAvailable, p.subscription_identifier_available);
  byte(P::kSharedSubscriptionAvailable, p.shared_subscription_available);
}

}  // namespace internal
}  // namespace ringmq::proto
