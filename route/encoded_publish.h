// EncodedPublish: the bytes of one message's PUBLISH, encoded once per (protocol, QoS, retain) and
// copied to every subscriber that needs nothing of its own (DESIGN.md section 4, "encode once").
// Only the packet id differs between them: it is patched into the copy (PatchPacketId).
//
// A shard keeps one and asks it for each delivery of the message being fanned out; a subscriber
// that needs its own bytes (MQTT 5 subscription identifiers, a topic alias, a message expiry that
// counts down) is encoded as before, and so is a message past kMaxCachedBytes (encoding costs
// little next to copying its payload, and the cache would hold it).
//
// Thread-safety: owned by one shard; only its thread calls it.
// Invariants:
//   1. Every valid entry holds the encoding of *message_ with its key's (v5, qos, retain), packet
//      id 1 standing in for the subscriber's (qos > 0) at id_offset.
//   2. message_ keeps the message alive, so a new message can never have the cached one's address.
#ifndef RINGMQ_ROUTE_ENCODED_PUBLISH_H_
#define RINGMQ_ROUTE_ENCODED_PUBLISH_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "proto/packet.h"
#include "route/message.h"

namespace ringmq::route {

class EncodedPublish {
 public:
  static constexpr size_t kMaxCachedBytes = 64 * 1024;

  struct Bytes {
    std::span<const uint8_t> packet;  // empty: encode it yourself
    size_t id_offset = 0;             // of the packet id in `packet` (qos > 0)
  };

  // The PUBLISH of m for (version, qos, retain), packet id 0. Valid until the next call.
  // REQUIRES: m has no expiry (expires_at_ms == 0); the caller adds no per-subscriber property.
  Bytes Get(const MessagePtr& m, proto::Version version, uint8_t qos, bool retain);

  // Writes `packet_id` into a copy of Bytes::packet at `id_offset` (big-endian).
  static void PatchPacketId(std::span<uint8_t> packet, size_t id_offset, uint16_t packet_id);

 private:
  struct Entry {
    bool valid = false;
    std::vector<uint8_t> bytes;
    size_t id_offset = 0;
  };
  static size_t Index(proto::Version version, uint8_t qos, bool retain) {
    return (version == proto::Version::kV5 ? 6 : 0) + qos * 2u + (retain ? 1 : 0);
  }

  MessagePtr message_;             // invariant 2
  std::array<Entry, 12> entries_;  // Index: {3.1 and 3.1.1, 5} x QoS 0-2 x retain
};

}  // namespace ringmq::route

#endif  // RINGMQ_ROUTE_ENCODED_PUBLISH_H_
