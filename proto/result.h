// Result<T>: a value or a protocol error carrying the MQTT reason code the broker must answer with.
//
// The codec never throws; every decoder returns a Result. `detail` is a static string for logs.
// Thread-safety: a plain value type.
#ifndef RINGMQ_PROTO_RESULT_H_
#define RINGMQ_PROTO_RESULT_H_

#include <cassert>
#include <utility>

#include "proto/reason_code.h"

namespace ringmq::proto {

struct Error {
  ReasonCode code = ReasonCode::kMalformedPacket;
  const char* detail = "";  // static storage, never null
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)), ok_(true) {}  // NOLINT: implicit by design
  Result(Error error) : error_(error), ok_(false) {}        // NOLINT: implicit by design

  bool ok() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }
  T& value() {
    assert(ok_);
    return value_;
  }
  const T& value() const {
    assert(ok_);
    return value_;
  }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  T value_{};
  Error error_{};
  bool ok_;
};

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_RESULT_H_
