// Topic names and topic filters (MQTT 5.0 section 4.7, MQTT 3.1.1 section 4.7).
//
// Pure functions over string views; no allocation except where a std::string is returned.
// Thread-safety: none needed (pure).
//
// Rules implemented here, used by every layer of the broker:
//   1. A topic name is non-empty, valid UTF-8 (see utf8.h) and has no '+' or '#'.
//   2. A topic filter is non-empty; '#' only as a whole last level; '+' only as a whole level.
//   3. A shared subscription is "$share/{group}/{filter}": group non-empty, without '/', '+', '#';
//      filter a valid non-empty filter.
//   4. A filter whose first character is a wildcard never matches a topic whose name starts with
//   '$'.
//   5. Length limits (65535 bytes) are the codec's; the broker applies its own smaller limits.
//   6. Topics starting with "$SYS" are the broker's own: no client publishes there (IsSysTopic).
#ifndef RINGMQ_PROTO_TOPIC_H_
#define RINGMQ_PROTO_TOPIC_H_

#include <optional>
#include <string>
#include <string_view>

#include "proto/reason_code.h"

namespace ringmq::proto {

// kSuccess, or kTopicNameInvalid (wildcards, empty) / kMalformedPacket (bad UTF-8).
ReasonCode ValidateTopicName(std::string_view topic);

// kSuccess, or kTopicFilterInvalid (bad wildcard placement, empty, bad $share syntax) /
// kMalformedPacket (bad UTF-8). Accepts "$share/g/f" forms.
ReasonCode ValidateTopicFilter(std::string_view filter);

// A "$share/{group}/{filter}" subscription split in parts. Views into the argument.
struct SharedFilter {
  std::string_view group;
  std::string_view filter;
};

// If `filter` starts with "$share/", returns its parts (REQUIRES: ValidateTopicFilter succeeded);
// otherwise std::nullopt.
std::optional<SharedFilter> ParseSharedFilter(std::string_view filter);

// Rule 6: true when `topic` starts with "$SYS" ("$SYS", "$SYS/broker/uptime", ...).
inline bool IsSysTopic(std::string_view topic) { return topic.starts_with("$SYS"); }

// True when `topic` (a valid topic name) matches `filter` (a valid, non-shared filter), with
// rule 4.
bool Matches(std::string_view filter, std::string_view topic);

// The filter that matches exactly the topics matched by both `a` and `b` (valid, non-shared
// filters), or std::nullopt when no topic matches both. Matches(*Intersect(a, b), t) ==
// Matches(a, t) && Matches(b, t) for every topic t.
std::optional<std::string> Intersect(std::string_view a, std::string_view b);

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_TOPIC_H_
