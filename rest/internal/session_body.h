// The bodies and the subscription selector of the REST endpoints that create sessions and
// subscriptions (doc/rest-api.md, "MQTT sessions"):
//   - POST /mqtt/sessions: one session object or a non-empty array of at most max_items, each
//     {client_id, expiry_interval, token_id, clean (false if given), subscriptions: [...]};
//   - POST /mqtt/sessions/{sel}/subscriptions: one subscription object or a non-empty array, each
//     {topic, qos, no_local, retain_as_published, retain_handling, subscription_id};
//   - {sub-sel} of .../subscriptions/{sub-sel}: `all` or a comma list of percent-encoded filters.
// Parsed and validated completely: field types and ranges, unknown and duplicate fields, valid
// client ids (MQTT UTF-8, 1 to 65535 bytes) and topic filters, no_local not on a shared
// subscription [MQTT-3.8.3-4], no client id or filter twice. On failure *error names the item
// and field ("[1].subscriptions[0].topic: invalid topic filter"). Token ids are only parsed:
// whether they exist is the Api's business. Defined in rest/session_body.cc; the fuzz target is
// rest/fuzz/session_body_fuzz.cc.
//
// Thread-safety: pure functions (each call uses its own simdjson parser).
#ifndef RINGMQ_REST_INTERNAL_SESSION_BODY_H_
#define RINGMQ_REST_INTERNAL_SESSION_BODY_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "admin_api/broker_hooks.h"

namespace ringmq::rest {

// Fills client_id, expiry_interval, token_id and subscriptions of each session (not token_key,
// acl).
[[nodiscard]] bool ParseSessionsBody(std::string_view body, size_t max_items,
                                     std::vector<admin_api::NewSession>* sessions,
                                     std::string* error);

[[nodiscard]] bool ParseSubscriptionsBody(std::string_view body, size_t max_items,
                                          std::vector<admin_api::NewSubscription>* subscriptions,
                                          std::string* error);

// `all`, or a comma list of percent-encoded names: the decoded, distinct names in out->ids, each
// one valid(name), at most max_items. The errors name `what` ("client ids", "filters") and say
// `expected`.
[[nodiscard]] bool ParseNameList(std::string_view sel, size_t max_items, std::string_view what,
                                 std::string_view expected,
                                 const std::function<bool(const std::string&)>& valid,
                                 admin_api::IdSet* out, std::string* error);

// `all`, or the decoded filters in out->ids (at most max_items, each a valid topic filter).
[[nodiscard]] bool ParseFilterSelector(std::string_view sel, size_t max_items,
                                       admin_api::IdSet* out, std::string* error);

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_INTERNAL_SESSION_BODY_H_
