// MQTT reason codes (MQTT 5.0 section 2.4) as one named enum.
//
// MQTT 3.1.1 has no reason codes; its CONNACK return codes and SUBACK failure code are derived from
// these by the encoder (see codec.h), so the core always speaks in ReasonCode.
// Thread-safety: constants and pure functions only.
#ifndef RINGMQ_PROTO_REASON_CODE_H_
#define RINGMQ_PROTO_REASON_CODE_H_

#include <cstdint>

namespace ringmq::proto {

enum class ReasonCode : uint8_t {
  kSuccess = 0x00,  // also Normal Disconnection and Granted QoS 0
  kGrantedQos1 = 0x01,
  kGrantedQos2 = 0x02,
  kDisconnectWithWillMessage = 0x04,
  kNoMatchingSubscribers = 0x10,
  kNoSubscriptionExisted = 0x11,
  kContinueAuthentication = 0x18,
  kReAuthenticate = 0x19,
  kUnspecifiedError = 0x80,
  kMalformedPacket = 0x81,
  kProtocolError = 0x82,
  kImplementationSpecificError = 0x83,
  kUnsupportedProtocolVersion = 0x84,
  kClientIdentifierNotValid = 0x85,
  kBadUserNameOrPassword = 0x86,
  kNotAuthorized = 0x87,
  kServerUnavailable = 0x88,
  kServerBusy = 0x89,
  kBanned = 0x8A,
  kServerShuttingDown = 0x8B,
  kBadAuthenticationMethod = 0x8C,
  kKeepAliveTimeout = 0x8D,
  kSessionTakenOver = 0x8E,
  kTopicFilterInvalid = 0x8F,
  kTopicNameInvalid = 0x90,
  kPacketIdentifierInUse = 0x91,
  kPacketIdentifierNotFound = 0x92,
  kReceiveMaximumExceeded = 0x93,
  kTopicAliasInvalid = 0x94,
  kPacketTooLarge = 0x95,
  kMessageRateTooHigh = 0x96,
  kQuotaExceeded = 0x97,
  kAdministrativeAction = 0x98,
  kPayloadFormatInvalid = 0x99,
  kRetainNotSupported = 0x9A,
  kQosNotSupported = 0x9B,
  kUseAnotherServer = 0x9C,
  kServerMoved = 0x9D,
  kSharedSubscriptionsNotSupported = 0x9E,
  kConnectionRateExceeded = 0x9F,
  kMaximumConnectTime = 0xA0,
  kSubscriptionIdentifiersNotSupported = 0xA1,
  kWildcardSubscriptionsNotSupported = 0xA2,
};

// Short English name of a code ("Malformed Packet"), for logs and Reason Strings.
const char* ReasonCodeName(ReasonCode code);

// True for codes >= 0x80 (failures).
constexpr bool IsError(ReasonCode code) { return static_cast<uint8_t>(code) >= 0x80; }

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_REASON_CODE_H_
