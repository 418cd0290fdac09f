// Small rules shared by the MQTT handlers of a shard (broker/connect.cc, publish.cc, subscribe.cc,
// mqtt_handler.cc). Pure functions; no state.
#ifndef RINGMQ_BROKER_INTERNAL_MQTT_RULES_H_
#define RINGMQ_BROKER_INTERNAL_MQTT_RULES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "base/log.h"
#include "broker/config.h"
#include "broker/connection.h"
#include "proto/reason_code.h"

namespace ringmq::broker::internal {

inline bool IsV5(const Connection& c) { return c.version == proto::Version::kV5; }

// Topic depth and length limits of the configuration.
inline bool WithinTopicLimits(std::string_view topic, const Config& cfg) {
  return topic.size() <= cfg.max_topic_length &&
         static_cast<size_t>(std::count(topic.begin(), topic.end(), '/')) < cfg.max_topic_levels;
}

inline int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// "0x87": how reason codes appear in log events.
inline std::string ReasonCodeText(proto::ReasonCode code) {
  return fmt::format("0x{:02X}", static_cast<unsigned>(code));
}

}  // namespace ringmq::broker::internal

#endif  // RINGMQ_BROKER_INTERNAL_MQTT_RULES_H_
