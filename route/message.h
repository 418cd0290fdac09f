// Message: one published application message, immutable once built, shared by reference count
// between every session and shard that delivers it.
//
// Thread-safety: immutable after MakeMessage returns; the shared_ptr control block is atomic, so a
// MessagePtr may be copied on any shard and is freed by whichever shard drops the last reference.
// Invariants:
//   1. topic is a valid topic name (never empty: a Topic Alias is resolved before building).
//   2. expires_at_ms is 0 (never) or a steady-clock deadline in milliseconds.
#ifndef RINGMQ_ROUTE_MESSAGE_H_
#define RINGMQ_ROUTE_MESSAGE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proto/packet.h"

namespace ringmq::route {

struct Message {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  // MQTT 5 properties that travel with the message unchanged.
  std::optional<uint8_t> payload_format_indicator;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<std::pair<std::string, std::string>> user_properties;
  int64_t expires_at_ms = 0;
  std::string origin_client_id;  // for No Local
  bool operator==(const Message&) const = default;
};

using MessagePtr = std::shared_ptr<const Message>;

// The clock of expires_at_ms (invariant 2): steady milliseconds, the same on every thread.
inline int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Builds a message from a received PUBLISH (topic already resolved from any alias).
MessagePtr MakeMessage(const proto::Publish& p, std::string_view topic,
                       std::string_view origin_client_id, int64_t now_ms);

// True when the message's expiry interval has passed.
inline bool Expired(const Message& m, int64_t now_ms) {
  return m.expires_at_ms != 0 && now_ms >= m.expires_at_ms;
}

// The PUBLISH that delivers `m` with the given per-subscriber fields. Views into `m`; the remaining
// expiry interval is filled in (MQTT 5.0 section 3.3.2.3.3).
proto::Publish ToPublish(const Message& m, uint8_t qos, bool retain, uint16_t packet_id,
                         int64_t now_ms);

}  // namespace ringmq::route

#endif  // RINGMQ_ROUTE_MESSAGE_H_
