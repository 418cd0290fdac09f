// ClusterLink: what the broker tells the node's cluster bridge (cluster/nats_bridge.h) when it
// runs with --cluster (DESIGN.md section 8b, doc/cluster.md). broker/ does not link cluster/:
// app/main.cc builds the bridge and hands it to Broker::SetClusterLink. The other direction, a
// message from another node, enters through Broker::PushFromCluster.
//
// Thread-safety: every method is called on shard threads, concurrently from different shards;
// an implementation takes no lock shared between shards on Publish (the per-message path).
#ifndef RINGMQ_BROKER_CLUSTER_LINK_H_
#define RINGMQ_BROKER_CLUSTER_LINK_H_

#include <cstdint>
#include <string_view>

#include "route/message.h"

namespace ringmq::broker {

class ClusterLink {
 public:
  virtual ~ClusterLink() = default;
  // On shard `shard`'s thread: m was published on this node (a client's PUBLISH, a will, REST),
  // and every other node with a matching subscription must get it.
  virtual void Publish(uint16_t shard, const route::MessagePtr& m) = 0;
  // On shard `shard`'s thread: its first subscriber to the plain filter `filter` came
  // (add = true), or its last one left (add = false).
  virtual void Interest(uint16_t shard, std::string_view filter, bool add) = 0;
  // On shard `shard`'s thread: its first member of the shared subscription $share/group/filter
  // came (add = true), or its last one left. The nodes share such a group (NATS queue groups):
  // each message reaches one member of all nodes (ShardMsg::Kind::kFromClusterShared).
  virtual void SharedInterest(uint16_t shard, std::string_view group, std::string_view filter,
                              bool add) = 0;
  // On shard `shard`'s thread (the client id's home shard): a client connected here with this
  // client id at `stamp_ns` (wall clock). The other nodes close their connection with that id
  // if it is older (Shard::ClusterSessionClaimed): one connection per client id in the cluster.
  virtual void SessionClaimed(uint16_t shard, std::string_view client_id, int64_t stamp_ns) = 0;
  // This node's instance (random per process start): ties between equal stamps go to the
  // larger instance.
  virtual uint64_t instance() const = 0;
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_CLUSTER_LINK_H_
