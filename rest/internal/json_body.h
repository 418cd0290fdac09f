// The outer shape of the REST bodies that create things (POST /mqtt/messages, POST
// /mqtt/sessions, POST .../subscriptions): one JSON object, or a non-empty array of at most
// max_items of them. Each item is handed to a callback with its path ("" for a lone object,
// "[3]" in an array) so that errors name it; "body: empty array", "body: more than 1000
// sessions" and "malformed JSON" are the errors of the shape itself.
//
// Thread-safety: pure functions (each call uses its own simdjson parser).
#ifndef RINGMQ_REST_INTERNAL_JSON_BODY_H_
#define RINGMQ_REST_INTERNAL_JSON_BODY_H_

#include <simdjson.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace ringmq::rest {

// item(element, path) returns false (having set *error) to stop.
using JsonItem = std::function<bool(simdjson::dom::element item, const std::string& path)>;

// Parses `body`, then as ForEachJsonItem with an empty prefix.
[[nodiscard]] bool ForEachBodyItem(std::string_view body, size_t max_items, std::string_view what,
                                   std::string* error, const JsonItem& item);

// `root` as an object or an array of them; paths are `prefix` + "[i]" (prefix "" names "body"
// in the shape errors). `what` names the items in "more than N <what>".
[[nodiscard]] bool ForEachJsonItem(simdjson::dom::element root, size_t max_items,
                                   std::string_view what, const std::string& prefix,
                                   std::string* error, const JsonItem& item);

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_INTERNAL_JSON_BODY_H_
