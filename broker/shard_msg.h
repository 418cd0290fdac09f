// ShardMsg: what one shard sends another through the RingMatrix (DESIGN.md section 2). Each message
// is moved into the ring by the sender and out of it by the receiver, which then owns it.
// Thread-safety: a value type; its MessagePtr payload is immutable and reference-counted.
#ifndef RINGMQ_BROKER_SHARD_MSG_H_
#define RINGMQ_BROKER_SHARD_MSG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/connection.h"
#include "broker/session.h"
#include "route/message.h"

namespace ringmq::broker {

// A connection whose CONNECT was read by another shard than the client id's home shard.
struct Handoff {
  int fd = -1;
  std::string peer;
  std::vector<uint8_t> bytes;      // everything read so far, starting with the CONNECT packet
  std::string assigned_client_id;  // MQTT 5 empty client id: the id assigned by the first shard
  // TLS / WebSocket layers move with the connection, with the bytes the first shard had not sent.
  std::unique_ptr<Connection::Transport> transport;
};

// "Send me the retained messages matching `filter`" and its answer.
struct RetainQuery {
  std::string filter;      // without any $share prefix
  std::string client_id;   // the subscriber, on the asking shard
  std::string sub_filter;  // the subscription's full filter, to check it still exists
  SubOptions options;
  std::vector<route::MessagePtr> matches;  // filled by the answering shard
};

struct ShardMsg {
  enum class Kind : uint8_t {
    kDeliver,        // msg: match the local trie and deliver
    kDeliverShared,  // msg + shared: deliver to one local member of the shared subscription
    kRetain,         // msg: store (or clear, empty payload) in this shard's retained partition
    kHandoff,        // handoff: adopt this connection
    kRetainQuery,    // query: find matches, answer with kRetainReply
    kRetainReply,    // query: deliver the matches to the subscriber
    kDurable,        // value: the first `value` messages flagged `confirm` are handled here
                     // and their records durable
    kRefused,        // value: a session here refused the message of the answer with this tag
                     // (sent before the kDurable that confirms it)
    kFromCluster,    // msg: published on another node (from = shard_count: the cluster
                     // bridge, Broker::PushFromCluster); route it here (Router::PublishFromCluster)
    kFromClusterShared,  // msg + shared: NATS picked this node for one shared subscription's
                         // member; pick one here (Router::RouteShared with `only`)
  };
  Kind kind = Kind::kDeliver;
  uint16_t from = 0;
  // kDeliver / kDeliverShared / kRetain: the sender holds a PUBACK until this shard confirms
  // (kDurable) that it handled the message and that the records it caused are durable
  // (broker/ack_gate.h). Set by the router when the answer waits for durability; PostToShard
  // keeps it where the shard may log the message, and sets it where a tag asks for refusals.
  bool confirm = false;
  route::MessagePtr msg;
  std::unique_ptr<Handoff> handoff;
  std::unique_ptr<RetainQuery> query;
  SharedKeyPtr shared;
  // kDurable: the count. kDeliver / kDeliverShared: nonzero for an MQTT 5 QoS 1 answer's tag
  // (AckGate::NewTag), which says Quota exceeded when a session here refuses the message; kRefused:
  // that tag. (One field: the slot stays one cache line, 64 bytes.)
  uint64_t value = 0;
};
// A ring slot (broker/broker.h: N^2 rings of kShardRingCapacity slots): keep it to a cache line.
static_assert(sizeof(ShardMsg) <= 64);

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_SHARD_MSG_H_
