// Envelope: a message as one node sends it to the others over NATS (doc/cluster.md).
//
//   [1 byte version = 1][8 bytes instance, little endian][2 bytes shard, little endian]
//   [the body of a WAL message-queued record: client id = the publisher's client id (No Local),
//    message id = the sequence number, the message with its QoS, retain flag, MQTT 5 properties
//    and, when it has one, its expiry as the milliseconds left (nodes share no steady clock)]
//
// One representation per concept: the message's bytes are the write-ahead log's
// (wal/wal_records.h), not a second encoding. `instance` is random per process start: a node
// skips its own messages, and (instance, shard, seq) lets a receiver drop the copies NATS
// delivers once per overlapping subscription (seq grows by one per message of that shard).
//
// Thread-safety: pure functions.
// Invariants:
//   1. DecodeEnvelope(EncodeEnvelope(e)) gives e back (the expiry up to the clock's movement).
//   2. DecodeEnvelope reads nothing outside its input, whatever the input; a message it returns
//      has a valid topic name and QoS <= 2.
#ifndef RINGMQ_CLUSTER_ENVELOPE_H_
#define RINGMQ_CLUSTER_ENVELOPE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "route/message.h"

namespace ringmq::cluster {

struct Envelope {
  uint64_t instance = 0;  // the sending process
  uint16_t shard = 0;     // the sending shard
  uint64_t seq = 0;       // per (instance, shard), from 1
  route::MessagePtr msg;
};

// Appends the envelope of m to *out. `now_ms` is route::SteadyNowMs(). REQUIRES: m not expired.
void EncodeEnvelope(uint64_t instance, uint16_t shard, uint64_t seq, const route::Message& m,
                    int64_t now_ms, std::string* out);

// The envelope in `bytes`, or nullopt when they are not one (invariant 2). `age_ms`: how long it
// was stored on its way (JetStream), taken off the message's time left.
std::optional<Envelope> DecodeEnvelope(std::string_view bytes, int64_t now_ms, int64_t age_ms = 0);

// A node's claim of a client id (broker::ClusterLink::SessionClaimed), on the subject PREFIX.c:
//   [1 byte version = 1][8 bytes instance][8 bytes stamp, ns of the wall clock][client id]
// (little endian). DecodeClaim(EncodeClaim(c)) gives c back; it reads nothing outside its input.
struct Claim {
  uint64_t instance = 0;
  int64_t stamp_ns = 0;
  std::string client_id;
  bool operator==(const Claim&) const = default;
};
void EncodeClaim(const Claim& claim, std::string* out);
std::optional<Claim> DecodeClaim(std::string_view bytes);

}  // namespace ringmq::cluster

#endif  // RINGMQ_CLUSTER_ENVELOPE_H_
