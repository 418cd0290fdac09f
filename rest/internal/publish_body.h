// The body of POST /mqtt/messages (doc/rest-api.md): one message object or a non-empty array of at
// most max_items, each with topic, payload (text or base64 by `encoding`), qos, retain and MQTT 5
// properties. Parsed and validated completely (topic names, UTF-8 where the payload format
// indicator says so, base64); on failure *error names the item and field. A message expiry
// interval becomes a deadline from now (route::SteadyNowMs); empty string properties are none.
// Defined in rest/api_mqtt.cc; declared here for the fuzz target (rest/fuzz/publish_body_fuzz.cc).
//
// Thread-safety: a pure function (each call uses its own simdjson parser).
#ifndef RINGMQ_REST_INTERNAL_PUBLISH_BODY_H_
#define RINGMQ_REST_INTERNAL_PUBLISH_BODY_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "route/message.h"

namespace ringmq::rest {

bool ParsePublishBody(std::string_view body, size_t max_items,
                      std::vector<route::MessagePtr>* messages, std::string* error);

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_INTERNAL_PUBLISH_BODY_H_
