// Names of reason codes and packet types, for logs and Reason Strings.
#include "proto/reason_code.h"

#include "proto/packet.h"

namespace ringmq::proto {

const char* ReasonCodeName(ReasonCode code) {
  using R = ReasonCode;
  switch (code) {
    case R::kSuccess:
      return "Success";
    case R::kGrantedQos1:
      return "Granted QoS 1";
    case R::kGrantedQos2:
      return "Granted QoS 2";
    case R::kDisconnectWithWillMessage:
      return "Disconnect with Will Message";
    case R::kNoMatchingSubscribers:
      return "No matching subscribers";
    case R::kNoSubscriptionExisted:
      return "No subscription existed";
    case R::kContinueAuthentication:
      return "Continue authentication";
    case R::kReAuthenticate:
      return "Re-authenticate";
    case R::kUnspecifiedError:
      return "Unspecified error";
    case R::kMalformedPacket:
      return "Malformed Packet";
    case R::kProtocolError:
      return "Protocol Error";
    case R::kImplementationSpecificError:
      return "Implementation specific error";
    case R::kUnsupportedProtocolVersion:
      return "Unsupported Protocol Version";
    case R::kClientIdentifierNotValid:
      return "Client Identifier not valid";
    case R::kBadUserNameOrPassword:
      return "Bad User Name or Password";
    case R::kNotAuthorized:
      return "Not authorized";
    case R::kServerUnavailable:
      return "Server unavailable";
    case R::kServerBusy:
      return "Server busy";
    case R::kBanned:
      return "Banned";
    case R::kServerShuttingDown:
      return "Server shutting down";
    case R::kBadAuthenticationMethod:
      return "Bad authentication method";
    case R::kKeepAliveTimeout:
      return "Keep Alive timeout";
    case R::kSessionTakenOver:
      return "Session taken over";
    case R::kTopicFilterInvalid:
      return "Topic Filter invalid";
    case R::kTopicNameInvalid:
      return "Topic Name invalid";
    case R::kPacketIdentifierInUse:
      return "Packet Identifier in use";
    case R::kPacketIdentifierNotFound:
      return "Packet Identifier not found";
    case R::kReceiveMaximumExceeded:
      return "Receive Maximum exceeded";
    case R::kTopicAliasInvalid:
      return "Topic Alias invalid";
    case R::kPacketTooLarge:
      return "Packet too large";
    case R::kMessageRateTooHigh:
      return "Message rate too high";
    case R::kQuotaExceeded:
      return "Quota exceeded";
    case R::kAdministrativeAction:
      return "Administrative action";
    case R::kPayloadFormatInvalid:
      return "Payload format invalid";
    case R::kRetainNotSupported:
      return "Retain not supported";
    case R::kQosNotSupported:
      return "QoS not supported";
    case R::kUseAnotherServer:
      return "Use another server";
    case R::kServerMoved:
      return "Server moved";
    case R::kSharedSubscriptionsNotSupported:
      return "Shared Subscriptions not supported";
    case R::kConnectionRateExceeded:
      return "Connection rate exceeded";
    case R::kMaximumConnectTime:
      return "Maximum connect time";
    case R::kSubscriptionIdentifiersNotSupported:
      return "Subscription Identifiers not supported";
    case R::kWildcardSubscriptionsNotSupported:
      return "Wildcard Subscriptions not supported";
  }
  return "Unknown reason code";
}

const char* PacketTypeName(PacketType type) {
  static constexpr const char* kNames[] = {"RESERVED",  "CONNECT",  "CONNACK",     "PUBLISH",
                                           "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                           "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                           "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
  return kNames[static_cast<uint8_t>(type) & 0x0F];
}

}  // namespace ringmq::proto
