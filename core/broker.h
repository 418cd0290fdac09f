// Broker: owns the configuration, the shared topic index, the shard-to-shard ring matrix and the
// shards with their threads. Start binds every listener once per shard (SO_REUSEPORT), prints
// "listening SCHEME://HOST:PORT" for each, and starts the pinned shard threads; Stop asks every
// shard to shut down (MQTT 5 clients get DISCONNECT 0x8B) and joins them.
//
// Thread-safety: Start and Stop are called by the main thread. Shards read config() and use
// index(), qsbr() and matrix() concurrently; those are built before the threads start and are
// thread-safe as their headers say.
#ifndef RINGMQ_CORE_BROKER_H_
#define RINGMQ_CORE_BROKER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/qsbr.h"
#include "core/shard_msg.h"
#include "core/spsc_ring.h"
#include "core/topic_index.h"

namespace ringmq::core {

class Shard;

inline constexpr size_t kShardRingCapacity = 1024;
using ShardRings = RingMatrix<ShardMsg, kShardRingCapacity>;

class Broker {
 public:
  explicit Broker(const Config& config);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Binds listeners, prints them, starts the shards. False with *error on failure.
  bool Start(std::string* error);
  // Graceful shutdown; returns when every shard thread has exited.
  void Stop();

  const Config& config() const { return config_; }
  uint16_t shard_count() const { return static_cast<uint16_t>(shards_.size()); }
  Shard& shard(uint16_t i) { return *shards_[i]; }
  Qsbr& qsbr() { return qsbr_; }
  TopicIndex& index() { return index_; }
  ShardRings& rings() { return rings_; }

 private:
  Config config_;
  Qsbr qsbr_;
  TopicIndex index_;
  ShardRings rings_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
};

}  // namespace ringmq::core

#endif  // RINGMQ_CORE_BROKER_H_
