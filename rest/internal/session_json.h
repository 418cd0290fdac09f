// The JSON objects of GET /mqtt/sessions and GET /mqtt/sessions/{sel}/subscriptions
// (doc/rest-api.md), shared by rest/api_mqtt.cc (where they are defined) and
// rest/api_sessions.cc. Thread-safety: pure functions.
#ifndef RINGMQ_REST_INTERNAL_SESSION_JSON_H_
#define RINGMQ_REST_INTERNAL_SESSION_JSON_H_

#include <string>

#include "admin_api/broker_hooks.h"

namespace ringmq::rest {

std::string SessionJson(const admin_api::SessionInfo& s);
std::string SubscriptionJson(const admin_api::SubscriptionInfo& s);

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_INTERNAL_SESSION_JSON_H_
