// Client: the state of one MQTT connection of the load generator, driven by its Worker.
//
// State machine: kWaiting -> kTcpConnecting -> kMqttConnecting (CONNECT sent) -> [kSubscribing
// (SUBSCRIBE sent), subscribers only] -> kReady -> kDisconnecting (DISCONNECT queued) -> kClosed.
// Any state may go to kClosed on an error. A client is never reused, so completions that arrive
// after kClosed are recognised by the state and ignored.
// Thread-safety: owned by one Worker thread.
// Invariants:
//   1. At most one send in flight (`send_in_flight`); `sending` is its buffer and stays untouched
//      until the send completes; everything queued meanwhile goes to `out`.
//   2. Publishers: inflight <= window; packet ids are handed out in sequence and each is acked once
//      before it comes round again (window < 65535).
#ifndef RINGMQ_TOOLS_BENCH_CLIENT_H_
#define RINGMQ_TOOLS_BENCH_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "tools/bench/scenario.h"
#include "tools/bench/seq_tracker.h"
#include "tools/bench/transport.h"

namespace ringmq::bench {

struct Client {
  enum class State : uint8_t {
    kWaiting,
    kTcpConnecting,
    kMqttConnecting,
    kSubscribing,
    kReady,
    kDisconnecting,
    kClosed,
  };

  const ClientSpec* spec = nullptr;
  uint32_t slot = 0;  // index in the worker's client table (io_uring user_data)
  State state = State::kWaiting;
  int fd = -1;
  std::unique_ptr<Transport> transport;

  // I/O.
  bool recv_armed = false;
  bool send_in_flight = false;
  bool dirty = false;                 // in the worker's flush list
  std::vector<uint8_t> in;            // bytes of an incomplete packet carried to the next receive
  std::vector<uint8_t> out;           // MQTT bytes queued this turn
  std::vector<uint8_t> wire_pending;  // transport bytes (handshake) that go before `out`
  std::vector<uint8_t> sending;
  size_t sending_offset = 0;
  int64_t connect_start_ns = 0;
  int64_t subscribe_start_ns = 0;
  int64_t last_tx_ns = 0;

  // Publisher: a pre-encoded PUBLISH patched per message (packet id, payload header).
  std::vector<uint8_t> publish_template;
  size_t payload_offset = 0;
  size_t packet_id_offset = 0;
  uint64_t seq = 0;
  uint32_t inflight = 0;
  // When each publish in flight was sent (its payload timestamp), oldest first: a broker
  // acknowledges QoS 1 and completes QoS 2 in the order of the PUBLISHes [MQTT-4.6.0-2/3], so
  // the front is the one the next PUBACK / PUBCOMP / refusing PUBREC answers.
  std::deque<int64_t> sent_ns;
  uint32_t window = 0;
  uint16_t next_packet_id = 1;
  bool publishing_done = false;

  // Subscriber: one tracker per publisher heard, with a one-entry cache for the common case of a
  // run of messages from the same publisher.
  std::unordered_map<uint32_t, SeqTracker> streams;
  uint32_t cached_publisher = UINT32_MAX;
  SeqTracker* cached_stream = nullptr;
  uint64_t retained_received = 0;
  bool retained_complete = false;

  uint16_t NextPacketId() {
    const uint16_t id = next_packet_id;
    next_packet_id = next_packet_id == 65535 ? 1 : next_packet_id + 1;
    return id;
  }
  SeqTracker& StreamOf(uint32_t publisher) {
    if (publisher != cached_publisher) {
      cached_stream = &streams[publisher];
      cached_publisher = publisher;
    }
    return *cached_stream;
  }
};

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_CLIENT_H_
