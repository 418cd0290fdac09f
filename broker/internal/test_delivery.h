// Test helper: a delivery of a fresh message on topic "t" (for the session unit tests). Not part
// of the library (included by tests only).
#ifndef RINGMQ_BROKER_INTERNAL_TEST_DELIVERY_H_
#define RINGMQ_BROKER_INTERNAL_TEST_DELIVERY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "broker/session.h"

namespace ringmq::broker::internal {

inline Delivery D(uint8_t qos, std::string payload = "x", int64_t expires_at_ms = 0) {
  auto m = std::make_shared<route::Message>();
  m->topic = "t";
  m->payload = std::move(payload);
  m->qos = qos;
  m->expires_at_ms = expires_at_ms;
  return Delivery{m, qos, false, {}, nullptr, 0};
}

}  // namespace ringmq::broker::internal

#endif  // RINGMQ_BROKER_INTERNAL_TEST_DELIVERY_H_
