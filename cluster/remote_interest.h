// RemoteInterest: what the other nodes of a cluster subscribe to, as this node learnt it from their
// heartbeats (cluster/nats_bridge.h): the MQTT filters their coarse subjects stand for
// (cluster/subject.h, SubjectFilter). A shard hands a message to NATS only when one matches, so
// traffic that stays on one node costs NATS nothing.
//
// Matching may say yes where no remote subscriber wants the message (the filters are coarse: one
// more NATS publish), never no where one does (subject.h invariant 3), provided the heartbeat that
// announced the filter arrived.
//
// Thread-safety: immutable once built; shared read-only by the shards (std::shared_ptr).
#ifndef RINGMQ_CLUSTER_REMOTE_INTEREST_H_
#define RINGMQ_CLUSTER_REMOTE_INTEREST_H_

#include <string>
#include <string_view>
#include <vector>

#include "route/local_trie.h"

namespace ringmq::cluster {

class RemoteInterest {
 public:
  // From coarse subjects of PREFIX.m. A subject that is not one (or ">" alone, "everything")
  // makes it match every topic.
  RemoteInterest(std::string_view prefix, const std::vector<std::string>& subjects);
  bool Matches(std::string_view topic) const;
  bool everything() const { return everything_; }

 private:
  bool everything_ = false;
  route::LocalTrie<char> trie_;
};

}  // namespace ringmq::cluster

#endif  // RINGMQ_CLUSTER_REMOTE_INTEREST_H_
