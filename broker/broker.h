// Broker: owns the configuration, the shared topic index, the shard-to-shard ring matrix and the
// shards with their threads. Start binds every listener once per shard (SO_REUSEPORT), prints
// "listening SCHEME://HOST:PORT" for each, and starts the pinned shard threads; Stop asks every
// shard to shut down (MQTT 5 clients get DISCONNECT 0x8B) and joins them.
//
// Thread-safety: Start and Stop are called by the main thread. Shards read config() and use
// index(), qsbr(), rings(), connection_quota() and retained_quota() concurrently; those are built
// before the threads start and are thread-safe as their headers say.
#ifndef RINGMQ_BROKER_BROKER_H_
#define RINGMQ_BROKER_BROKER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "acl/credentials.h"
#include "broker/cluster_link.h"
#include "broker/config.h"
#include "broker/connection_quota.h"
#include "broker/shard_msg.h"
#include "broker/spill.h"
#include "net/websocket.h"
#include "route/retained_quota.h"
#include "route/topic_index.h"
#include "smp/qsbr.h"
#include "smp/spsc_ring.h"

namespace ringmq::broker {

class Shard;

inline constexpr size_t kShardRingCapacity = 1024;
using ShardRings = smp::RingMatrix<ShardMsg, kShardRingCapacity>;

class Broker {
 public:
  explicit Broker(const Config& config);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Binds listeners, prints them, starts the shards. False with *error on failure.
  bool Start(std::string* error);
  // Start's first step: constructs and initialises the shards, starts nothing. Tests call it
  // alone to drive a shard in memory (broker/shard_test.cc).
  bool CreateShards(std::string* error);
  // Graceful shutdown; returns when every shard thread has exited.
  void Stop();
  // SIGHUP: applies the reloadable settings of `fresh` (limits, log level, anonymous mode, TLS
  // certificates) to every shard without dropping connections. Listeners, shards and the data
  // directory need a restart: a change of them is reported and ignored.
  void Reload(Config fresh);

  // Asks the token store for the compiled ACL of the token that `credentials` name (a key, or an
  // id and key prefix); `reply` is called exactly once, on any thread, with the ACL and the
  // token's key, or nullptr and "" for unknown credentials or an invalid token.
  using TokenReply = std::function<void(acl::AclPtr, std::string key)>;
  using TokenLookup = std::function<void(const acl::Credentials& credentials, TokenReply reply)>;
  // REQUIRES: before Start. Without a lookup every token is unknown.
  void SetTokenLookup(TokenLookup lookup) { token_lookup_ = std::move(lookup); }
  const TokenLookup& token_lookup() const { return token_lookup_; }
  // Receives, every few seconds from each shard, the token keys its live connections use (so a
  // token with a ttl stays valid while in use). Called on shard threads. REQUIRES: before Start.
  using TokenTouch = std::function<void(std::vector<std::string> keys)>;
  void SetTokenTouch(TokenTouch touch) { token_touch_ = std::move(touch); }
  const TokenTouch& token_touch() const { return token_touch_; }
  // Cluster mode: the bridge to the other nodes (broker/cluster_link.h). REQUIRES: before Start;
  // the link outlives Stop.
  void SetClusterLink(ClusterLink* link) { cluster_link_ = link; }
  ClusterLink* cluster_link() const { return cluster_link_; }
  // Cluster mode: hands messages from other nodes (ShardMsg::Kind::kFromCluster) to shard `to`
  // and wakes it if it sleeps; returns how many of the n fitted in the ring (the caller keeps the
  // rest and tries again: nothing is dropped here). The bridge is producer shard_count() of the
  // ring matrix. REQUIRES: Config::cluster set; always called by the same one thread.
  size_t PushFromCluster(uint16_t to, ShardMsg* msgs, size_t n);
  // Runs fn on every shard's thread (control plane).
  void ForEachShard(const std::function<void(Shard&)>& fn);

  const Config& config() const { return config_; }
  // The WebSocket settings of listener i (immutable, shared by every shard).
  const net::WebSocketConfig& ws_config(size_t i) const { return ws_configs_[i]; }
  uint16_t shard_count() const { return static_cast<uint16_t>(shards_.size()); }
  Shard& shard(uint16_t i) { return *shards_[i]; }
  smp::Qsbr& qsbr() { return qsbr_; }
  route::TopicIndex& index() { return index_; }
  ShardRings& rings() { return rings_; }
  // Connected clients, in total and per token (max_connections, max_connections_per_token).
  ConnectionQuota& connection_quota() { return connection_quota_; }
  // Bytes of retained messages, in total and per topic (max_retained_bytes).
  route::RetainedQuota& retained_quota() { return retained_quota_; }
  // The disk space of every shard's spill files together (max_queue_disk_bytes).
  DiskBudget& queue_disk() { return queue_disk_; }

 private:
  // Replays every shard's write-ahead log into the shards (before their threads start) and
  // returns the first segment number each shard's WalWriter opens, and whether the startup
  // snapshot of that number could be written (if not, the shard starts with its log failed).
  bool RecoverState(std::vector<uint64_t>* first_seq, std::vector<bool>* snapshot_written,
                    std::string* error);

  Config config_;
  smp::Qsbr qsbr_;
  route::TopicIndex index_;
  route::RetainedQuota retained_quota_;  // after qsbr_, which must outlive it
  DiskBudget queue_disk_;
  ConnectionQuota connection_quota_;
  ShardRings rings_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::vector<net::WebSocketConfig> ws_configs_;
  TokenLookup token_lookup_;
  TokenTouch token_touch_;
  ClusterLink* cluster_link_ = nullptr;
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_BROKER_H_
