// SUBSCRIBE and UNSUBSCRIBE (MQTT 5.0 sections 3.8-3.11, 3.1.1 sections 3.8-3.11) as functions over
// a session and a small context, so that their rules are tested in memory
// (broker/subscriptions_test.cc): filter validity and the configured topic limits, the token's ACL
// (a subscription becomes its intersections with what the token may subscribe to; none: 0x87),
// max_subscriptions (0x97), an identical filter replacing the old subscription [MQTT-3.8.4-3],
// which retained messages a new subscription asks for (Retain Handling; never on a shared
// subscription, MQTT 5.0 section 4.8.2), and 3.1.1 clients getting none of the MQTT 5 options.
//
// Thread-safety: called on the session's home shard only.
#ifndef RINGMQ_BROKER_SUBSCRIPTIONS_H_
#define RINGMQ_BROKER_SUBSCRIPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/session.h"
#include "proto/packet.h"

namespace ringmq::broker {

// What the handlers change besides the session itself.
class SubscriptionSink {
 public:
  // A subscription's effective filters enter / leave routing (the shard's Router).
  virtual void Attach(Session& s, const Subscription& sub) = 0;
  virtual void Detach(Session& s, const Subscription& sub) = 0;
  // The session's subscription to `filter` is now `sub` (nullptr: removed); a persistent session
  // logs it.
  virtual void LogSubscription(const Session& s, const std::string& filter,
                               const Subscription* sub) = 0;

 protected:
  ~SubscriptionSink() = default;
};

// A retained-message query of a new subscription: its requested filter, one effective filter.
struct RetainedWanted {
  std::string requested;
  std::string filter;
  SubOptions options;
};

struct SubscribeResult {
  proto::Suback suback;
  // To ask every shard for, after the SUBACK is queued [MQTT-3.3.1-6].
  std::vector<RetainedWanted> retained;
};

// Applies `sub` from a client speaking `version` to s. `shard` names the shard in log lines.
SubscribeResult Subscribe(Session& s, proto::Version version, const proto::Subscribe& sub,
                          const Config& cfg, SubscriptionSink& sink, uint16_t shard);

// Applies `u` to s: each filter is removed (0x00) or was not there (0x11).
proto::Unsuback Unsubscribe(Session& s, const proto::Unsubscribe& u, SubscriptionSink& sink);

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_SUBSCRIPTIONS_H_
