// The JSON objects of GET /mqtt/sessions and GET /mqtt/sessions/{sel}/subscriptions
// (doc/rest-api.md), shared by rest/api_mqtt.cc (where they are defined) and
// rest/api_sessions.cc. Thread-safety: pure functions.
#ifndef RINGMQ_REST_INTERNAL_SESSION_JSON_H_
#define RINGMQ_REST_INTERNAL_SESSION_JSON_H_

#include <string>

#include "rest/broker_hooks.h"

namespace ringmq::rest {

std::string SessionJson(const SessionInfo& s);
std::string SubscriptionJson(const SubscriptionInfo& s);

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_INTERNAL_SESSION_JSON_H_
