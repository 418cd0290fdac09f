// Router: publish -> delivery on one shard (DESIGN.md section 4). It owns the shard's subscriptions
// as routing sees them: the local trie of plain filters and the shared-subscription groups
// ($share/{group}/{filter}, MQTT 5.0 section 4.8.2), and keeps the global TopicIndex in step with
// them. A published message goes to every other interested shard (one post per shard, never per
// subscriber), to the local subscribers, to one member of every matching shared group, and to the
// owner of its retained topic.
//
// What happens to a message at a session (queue, send, drop) and how it crosses to another shard
// are the shard's business, reached through Router::Host; so the Router is tested in memory with a
// fake host (broker/router_test.cc).
//
// Thread-safety: owned by one shard; only that shard's thread calls it (asserted in debug builds
// against the shard's OwnerThread). The TopicIndex it updates is the one structure shared between
// shards, see route/topic_index.h.
// Invariants:
//   1. Every effective filter of every attached subscription is in the trie (plain filters) or in
//      its shared group (shared filters) exactly once per attachment, and counted once in the
//      TopicIndex for this shard; Detach undoes exactly one attachment.
//   2. A session attached here is detached before it is destroyed (the trie and the groups hold
//      raw Session pointers).
//   3. A shared group's member that is connected (Session::connection set) is also registered in
//      the TopicIndex under the group's live name (SetSharedLive keeps that true when it connects
//      or goes offline), so publishers prefer shards with connected members.
//   4. No walk over the trie or a group calls anything that changes them: Host::Deliver queues,
//      sends or drops, and a close it decides is queued (doc/threading.md, "Closing").
#ifndef RINGMQ_BROKER_ROUTER_H_
#define RINGMQ_BROKER_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/metrics.h"
#include "base/owner_thread.h"
#include "broker/session.h"
#include "broker/shard_msg.h"
#include "route/local_trie.h"
#include "route/message.h"
#include "route/topic_index.h"

namespace ringmq::broker {

class Router {
 public:
  // What the router needs from its shard.
  class Host {
   public:
    // Hands `msg` (kDeliver, kDeliverShared or kRetain) to shard `to`. A message posted with
    // `confirm` set (or an answer's tag) asks that shard to confirm once it handled it and what it
    // caused is durable; returns whether the post stayed so flagged (the shard logs nothing for
    // it and no refusal is asked for: the flag is dropped).
    virtual bool PostToShard(uint16_t to, ShardMsg msg) = 0;
    // Delivers to a session of this shard: queue, send or drop. Never changes the router's
    // subscriptions (invariant 4).
    virtual void Deliver(Session& s, Delivery d) = 0;
    // Stores (or, with an empty payload, erases) a retained message whose topic this shard owns.
    virtual void StoreRetained(const route::MessagePtr& m) = 0;
    // Cluster mode (broker/cluster_link.h): m was published on this node, for the other nodes;
    // this shard's first subscriber to a plain filter came (add) or its last one left.
    virtual void ToCluster(const route::MessagePtr& /*m*/) {}
    virtual void ClusterInterest(std::string_view /*filter*/, bool /*add*/) {}
    // Cluster mode: shared subscriptions span the nodes, so a message published here reaches
    // them through the cluster (kFromClusterShared), not from Publish; the first / last member on
    // this shard of a group is reported.
    virtual bool SharedAcrossNodes() const { return false; }
    virtual void ClusterSharedInterest(const SharedKey& /*key*/, bool /*add*/) {}

   protected:
    ~Host() = default;
  };

  struct PublishOptions {
    bool store_retained = true;  // false: a retained message is delivered but not stored
    bool await_durable = false;  // the publisher's answer waits for the shards it posts to
    uint64_t answer_tag = 0;     // ... and for their refusals (ShardMsg::value)
    bool to_cluster = true;      // false: this node's own news ($SYS), not for other nodes
  };

  // `dropped_no_member` counts shared deliveries that found their group empty on arrival;
  // `owner` is the shard's thread check. Both outlive the router.
  Router(uint16_t shard, uint16_t shard_count, route::TopicIndex& index, Host& host,
         base::Counter& dropped_no_member, const base::OwnerThread& owner);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // A message published on this node: delivers m to every subscriber (and hands it to the other
  // nodes of a cluster) and, when m->retain and options.store_retained, stores it on the shard
  // that owns its topic. Returns how many posts to other shards are to be confirmed.
  uint32_t Publish(route::MessagePtr m, PublishOptions options);
  // A message published on another node of the cluster: as Publish, but not handed back to the
  // cluster, and not to shared subscriptions (doc/cluster.md: not spanning nodes yet).
  void PublishFromCluster(route::MessagePtr m, bool store_retained);
  // Delivers m to this shard's plain subscribers (a kDeliver from another shard, or Publish).
  // Overlapping subscriptions of one session make one delivery: the highest QoS, every
  // subscription identifier (MQTT 5.0 section 3.3.4).
  void DeliverLocal(const route::MessagePtr& m);
  // Sends m to one member shard of every shared group matching its topic (only of `only` when
  // given: a message handed back by a member whose session ended). Returns how many posts to
  // other shards are to be confirmed (`options`: as in Publish, store_retained unused).
  uint32_t RouteShared(const route::MessagePtr& m, const SharedKey* only, PublishOptions options);
  uint32_t RouteShared(const route::MessagePtr& m, const SharedKey* only) {
    return RouteShared(m, only, PublishOptions{});
  }
  // Delivers m to one local member of `key`'s group (a kDeliverShared, or RouteShared).
  void DeliverShared(const route::MessagePtr& m, const SharedKeyPtr& key);

  // Subscribes / unsubscribes every effective filter of a subscription (invariant 1).
  void Attach(Session& s, const Subscription& sub);
  void Detach(Session& s, const Subscription& sub);
  // The session connected (live) or went offline: registers or withdraws its shared
  // subscriptions' live membership (invariant 3). Call it while s.connection says the same.
  void SetSharedLive(Session& s, bool live);

  // Once per tick: forgets (a bounded slice of) the round-robin entries of groups that no longer
  // have a member on any shard.
  void SweepSharedRoundRobin();
  // Groups this shard has published to and still remembers (for /metrics).
  size_t round_robin_entries() const { return shared_rr_.size(); }

 private:
  struct LocalSub {
    Session* session;
    SubOptions options;
  };
  struct SharedGroup {
    SharedKeyPtr key;
    std::vector<std::pair<Session*, SubOptions>> members;
    size_t next = 0;  // round robin
  };

  // Publish and PublishFromCluster: to the subscribers of every shard, the shared groups when
  // `shared`, the retained store.
  uint32_t Route(route::MessagePtr m, const PublishOptions& options, bool shared);
  void AddSharedMember(Session& s, const SharedKey& key, const SubOptions& o);
  void RemoveSharedMember(Session& s, const SharedKey& key);
  ShardMsg Post(ShardMsg::Kind kind, route::MessagePtr m) const;
  // A kDeliver / kDeliverShared carrying the publisher's confirmation request and answer tag.
  ShardMsg PostDelivery(ShardMsg::Kind kind, route::MessagePtr m,
                        const PublishOptions& options) const;

  const uint16_t shard_;
  const uint16_t shard_count_;
  route::TopicIndex& index_;
  Host& host_;
  base::Counter& dropped_no_member_;
  const base::OwnerThread& owner_;
  route::LocalTrie<LocalSub> trie_;
  std::vector<const LocalSub*> match_scratch_;  // capacity for DeliverLocal's local match list
  std::map<SharedKey, SharedGroup> shared_;
  // Round robin over member shards, as publisher: an entry per group published to, dropped by
  // SweepSharedRoundRobin once the group has no member on any shard.
  std::map<SharedKey, uint32_t> shared_rr_;
  SharedKey shared_rr_sweep_from_;  // where the next slice of the sweep begins
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_ROUTER_H_
