// NatsBridge: this node's link to the other nodes of a cluster, through NATS (DESIGN.md section
// 8b, doc/cluster.md). Built by app/main.cc when --cluster is given; the broker reaches it as its
// ClusterLink (broker/cluster_link.h).
//
// Connections. One NATS connection per shard, on which only that shard publishes: nats.c's
// connection mutex is then shared with nats.c's own flusher thread, never between shards. One
// more connection carries the subscriptions; nats.c delivers all of their messages on one thread
// of its global delivery pool (pool size 1), the *delivery thread*, in the order they arrived.
//
// Outbound (Publish, on shard s): the envelope (cluster/envelope.h) on the subject
// PREFIX.m.<topic>, or PREFIX.r.<topic> for a retained message (cluster/subject.h).
//
// Retained messages: the JetStream stream PREFIX_RETAINED keeps the last message of every
// PREFIX.r.> subject (replicated on `replicas` NATS servers). Every node reads it through an
// ordered consumer that starts with the last message per subject: what the stream held when the
// node subscribed (stream sequence <= retained_backlog_last_) is only stored (a kRetain to the
// topic's owner shard), what comes after is routed like any message and stored; both go to the
// owner shard, so one topic's retained messages are applied in stream order. A node whose NATS
// has no JetStream falls back to a plain subscription (retained messages then reach only the
// nodes running when they are published; said at start).
//
// Inbound (delivery thread): a node skips its own messages (the envelope's instance) and the
// copies NATS delivers once per overlapping subscription (per sender (instance, shard), the
// highest sequence number seen: a sender's messages reach a connection in the order it sent
// them, each one's copies before the next), then hands the message to the shard chosen for its
// sender (Broker::PushFromCluster), which routes it as a local publish would (to the subscribers
// of every shard and the retained store): a publisher's messages keep their order, as on one
// node. A full ring makes the delivery thread wait and retry:
// nothing is dropped here; meanwhile nats.c queues what arrives, up to its pending limits
// (kPendingMessages / kPendingBytes per subscription), past which the NATS client drops messages
// and counts them (ringmq_cluster_dropped_total).
//
// Interest (shards' first subscriber / last one leaving, on shard threads): the coarse subjects
// of the filter (cluster/subject.h) are counted under mu_ (the subscribe path only); a count
// going 0 -> 1 subscribes to the subject, 1 -> 0 unsubscribes.
//
// Shared subscriptions ($share/g/f) span the nodes: a node with a member of (g, f) subscribes to
// the coarse subjects of f in the NATS queue group QueueName(g, f), the same on every node, so
// NATS hands each message to one node of the group (its own node too: a node takes its own
// messages from a queue subscription) and that node picks one member (kFromClusterShared).
// A shard therefore leaves shared groups out when it routes a message published on this node,
// and publishes to NATS every message a shared group of any node matches.
//
// Client ids. A node that accepts a connection publishes a claim of its client id (PREFIX.c,
// with the wall-clock time); every other node posts it to the id's home shard, which closes a
// connection with that id that claimed it earlier (MQTT 5: 0x8E Session taken over), so a client
// id has one connection in the whole cluster, the latest. Its session stays where it was.
//
// Nodes. Every second each node publishes a heartbeat on PREFIX.n.<node> (its id, instance,
// connected clients, shards, start time, and its coarse subjects with their version; at once
// when it gains one); every node keeps a table of those it heard in the last kNodeTimeoutS
// seconds (GET /cluster, ringmq_cluster_nodes).
//
// Remote interest. From the other nodes' subjects each node builds a RemoteInterest
// (cluster/remote_interest.h) and hands it to every shard (a task on the shard's thread sets
// its PerShard::interest): a plain message that no other node's filters match is not published
// to NATS at all. Until kWarmUpMs after Activate (every live node heard from) PerShard::interest
// is null and everything is published.
//
// Thread-safety: Publish touches only its shard's PerShard (shard thread); Interest,
// SharedInterest, the node
// table and the subscriptions are under mu_; counters are base::Counter (single writer each);
// HealthJson, NodesJson and MetricsText may be called on any thread.
// Invariants:
//   1. interest_[s].count is the number of (shard, filter) pairs with a live subscriber whose
//      coarse subjects include s; interest_[s].sub is non-null while the count is non-zero and
//      the bridge is connected.
//   2. last_seq_[(instance, shard)] only grows; a message with seq <= it is a copy and skipped.
#ifndef RINGMQ_CLUSTER_NATS_BRIDGE_H_
#define RINGMQ_CLUSTER_NATS_BRIDGE_H_

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/metrics.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "cluster/remote_interest.h"

namespace ringmq::cluster {

class NatsBridge final : public broker::ClusterLink {
 public:
  struct Options {
    std::vector<std::string> servers;  // nats://HOST:PORT
    std::string node_id;
    std::string prefix = "ringmq";
    unsigned subject_levels = 1;
    unsigned replicas = 3;  // of the retained messages' stream (1 when NATS cannot hold more)
  };
  // Splits "nats://a:4222,nats://b:4222" into URLs (empty entries dropped).
  static std::vector<std::string> ParseServers(std::string_view list);

  NatsBridge(Options options, broker::Broker& broker);
  ~NatsBridge() override;  // Close()
  NatsBridge(const NatsBridge&) = delete;
  NatsBridge& operator=(const NatsBridge&) = delete;

  // Connects to NATS (every connection) and subscribes to the retained messages and heartbeats.
  // Before Broker::Start (which recovers sessions and so calls Interest). False with *error when
  // NATS cannot be reached.
  bool Connect(std::string* error);
  // After Broker::Start: messages from other nodes go to the shards from now on (until then the
  // delivery thread waits, nats.c queueing), and heartbeats start.
  void Activate();
  // Before Broker::Stop: the delivery thread stops handing messages to shards (it drops them).
  void StopInbound();
  // After Broker::Stop: flushes what the shards published, closes every connection and waits
  // for nats.c's threads to end (nats_CloseAndWait: one bridge per process). Idempotent.
  void Close();

  // broker::ClusterLink.
  void Publish(uint16_t shard, const route::MessagePtr& m) override;
  void Interest(uint16_t shard, std::string_view filter, bool add) override;
  void SharedInterest(uint16_t shard, std::string_view group, std::string_view filter,
                      bool add) override;
  void SessionClaimed(uint16_t shard, std::string_view client_id, int64_t stamp_ns) override;
  uint64_t instance() const override { return instance_; }

  // For the REST API (any thread): whether the subscription connection is up, with a JSON object
  // {"node_id", "nats", "server", "nodes"}.
  bool HealthJson(std::string* json) const;
  // One JSON object per node heard from in the last kNodeTimeoutS seconds, this one included.
  std::vector<std::string> NodesJson() const;
  // Prometheus text: ringmq_cluster_* families.
  std::string MetricsText() const;

 private:
  static constexpr int64_t kPendingMessages = 1'000'000;
  static constexpr int64_t kPendingBytes = 512LL << 20;
  static constexpr int kNodeTimeoutS = 5;
  static constexpr int64_t kJetStreamWaitMs = 15000;          // at start, for a JetStream cluster
  static constexpr int64_t kWarmUpMs = 2500;                  // > 2 heartbeat periods
  static constexpr size_t kMaxHeartbeatSubjects = 256 << 10;  // bytes; past it: everything

  struct alignas(64) PerShard {
    natsConnection* conn = nullptr;
    uint64_t seq = 0;  // the last sequence number sent
    std::string buf;   // envelope scratch (this shard's thread only)
    // What other nodes want (null: everything); set by a task on this shard's thread.
    std::shared_ptr<const RemoteInterest> interest;
    base::Counter published;
    base::Counter errors;
    base::Counter unwanted;  // not published: no other node's filter matches
  };
  struct InterestEntry {
    uint32_t count = 0;
    natsSubscription* sub = nullptr;
  };
  // A shared subscription this node has members of: one queue subscription per coarse subject.
  struct SharedEntry {
    uint32_t count = 0;  // shards with a member
    broker::SharedKeyPtr key;
    std::vector<std::string> subjects;
    std::vector<natsSubscription*> subs;
  };
  struct NodeInfo {
    std::string node_id;
    uint64_t instance = 0;
    uint64_t clients = 0;
    uint32_t shards = 0;
    int64_t started = 0;    // Unix seconds
    int64_t last_seen = 0;  // Unix seconds
    uint64_t interest_version = 0;
    std::vector<std::string> subjects;  // its coarse subjects (">" alone: everything)
  };
  struct SenderKey {
    uint64_t instance;
    uint16_t shard;
    bool operator==(const SenderKey&) const = default;
  };
  struct SenderHash {
    size_t operator()(const SenderKey& k) const { return k.instance ^ (uint64_t{k.shard} << 48); }
  };

  static void OnMessage(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure);
  static void OnSharedMessage(natsConnection* nc, natsSubscription* sub, natsMsg* msg,
                              void* closure);
  void HandleSharedMessage(natsSubscription* sub, natsMsg* msg);
  // Hands m to shard `to` (waits for room, never drops; drops only once inbound stopped).
  void Push(uint16_t to, broker::ShardMsg m);
  // The shard that takes a plain message of a sender: one per sender keeps its order.
  uint16_t ShardOfSender(uint64_t instance, uint16_t shard) const {
    return static_cast<uint16_t>((instance % 65521 + shard) % shard_count_);
  }
  // Subscribes the queue subscriptions of `e`. REQUIRES: mu_ held, connected.
  void SubscribeSharedLocked(SharedEntry& e);
  // This node's subjects: those of its plain filters and of its shared groups. REQUIRES: mu_.
  std::vector<std::string> OwnSubjectsLocked() const;
  static void OnDisconnected(natsConnection* nc, void* closure);
  static void OnReconnected(natsConnection* nc, void* closure);
  static void OnError(natsConnection* nc, natsSubscription* sub, natsStatus err, void* closure);
  void HandleMessage(natsMsg* msg);
  void HandleHeartbeat(std::string_view data);
  // Another node's claim of a client id: to the id's home shard (Shard::ClusterSessionClaimed).
  void HandleClaim(std::string_view data);
  void HeartbeatLoop();
  std::string HeartbeatTextLocked() const;
  // Builds the union of the other nodes' interest and hands it to the shards (once warm).
  // REQUIRES: mu_ held.
  void ShareInterestLocked();
  natsStatus SubscribeLocked(const std::string& subject, natsSubscription** sub);
  bool ConnectOne(const std::string& name, bool subscriber, natsConnection** out,
                  std::string* error);

  const Options options_;
  broker::Broker& broker_;
  const uint64_t instance_;
  const int64_t started_;
  std::unique_ptr<PerShard[]> shards_;
  const uint16_t shard_count_;
  std::string node_subject_;     // this node's heartbeat subject
  std::string node_prefix_;      // PREFIX.n.
  std::string retained_prefix_;  // PREFIX.r.
  std::string claims_subject_;   // PREFIX.c: client id claims (envelope.h, Claim)

  // Creates the retained stream if missing and subscribes to it (or, without JetStream, to the
  // subjects); sets retained_backlog_last_ first. REQUIRES: mu_ held, connected.
  bool SubscribeRetainedLocked(std::string* error);

  natsConnection* sub_conn_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* retained_sub_ = nullptr;
  uint64_t retained_backlog_last_ = 0;  // set before retained_sub_ exists, then read-only
  natsSubscription* nodes_sub_ = nullptr;
  natsSubscription* claims_sub_ = nullptr;

  mutable std::mutex mu_;
  bool connected_ = false;                           // guarded by mu_: subscriptions may be made
  std::map<std::string, InterestEntry> interest_;    // guarded by mu_ (invariant 1)
  std::map<broker::SharedKey, SharedEntry> shared_;  // guarded by mu_
  std::unordered_map<int64_t, broker::SharedKeyPtr> shared_by_sub_;  // NATS sub id; under mu_
  std::map<uint64_t, NodeInfo> nodes_;                               // by instance, guarded by mu_
  std::condition_variable stop_cv_;                                  // heartbeat's sleep, under mu_
  bool stop_heartbeat_ = false;                                      // guarded by mu_
  bool heartbeat_now_ = false;     // guarded by mu_: a subject was added
  uint64_t interest_version_ = 0;  // guarded by mu_: grows with interest_
  int64_t activated_ms_ = 0;       // guarded by mu_ (steady ms; 0: not yet)
  bool warm_ = false;              // guarded by mu_
  std::thread heartbeat_;

  bool closed_ = false;  // Close ran (main thread only)
  std::atomic<bool> active_{false};
  std::atomic<bool> inbound_stopped_{false};

  // Delivery thread only.
  std::unordered_map<SenderKey, uint64_t, SenderHash> last_seq_;  // invariant 2
  base::Counter received_;
  base::Counter shared_received_;
  base::Counter claims_received_;  // other nodes' client id claims
  base::Counter duplicates_;
  base::Counter invalid_;
  base::Counter ring_waits_;
  base::Counter dropped_stopping_;
};

}  // namespace ringmq::cluster

#endif  // RINGMQ_CLUSTER_NATS_BRIDGE_H_
