// Stream framing: finds complete MQTT packets in bytes that arrive in arbitrary pieces.
//
// NextFrame looks at the start of `data` and reports one of: a complete packet (its first byte,
// body span and total size), "need more bytes", a malformed Remaining Length (0x81), or a packet
// larger than `max_packet_size` (0x95, reported as soon as the Remaining Length is known, before
// the body arrives, so an oversized packet is never buffered). Nothing is copied; the caller
// consumes `frame.size` bytes and calls again for the next packet. Thread-safety: pure function.
#ifndef RINGMQ_PROTO_FRAMER_H_
#define RINGMQ_PROTO_FRAMER_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringmq::proto {

enum class FrameStatus : uint8_t { kComplete, kIncomplete, kMalformed, kTooLarge };

struct Frame {
  uint8_t byte0 = 0;              // packet type (high nibble) and flags (low nibble)
  std::span<const uint8_t> body;  // variable header and payload
  size_t size = 0;                // whole packet: fixed header + body
};

// REQUIRES: max_packet_size >= 2.
FrameStatus NextFrame(std::span<const uint8_t> data, uint32_t max_packet_size, Frame* frame);

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_FRAMER_H_
