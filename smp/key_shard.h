// The partitioning of the broker's state over shards (DESIGN.md sections 3 and 4): a client id
// lives on its home shard, a retained topic on its owner shard, both KeyHash(key) % shards.
// Thread-safety: pure functions.
#ifndef RINGMQ_SMP_KEY_SHARD_H_
#define RINGMQ_SMP_KEY_SHARD_H_

#include <cstdint>
#include <string_view>

namespace ringmq::smp {

// XXH3 of the key: the same on every shard and across restarts.
uint64_t KeyHash(std::string_view key);

// The shard that owns `key`: the home shard of a client id, the owner shard of a retained topic.
inline uint16_t ShardOfHash(uint64_t hash, uint16_t shards) {
  return static_cast<uint16_t>(hash % shards);
}
inline uint16_t ShardOfKey(std::string_view key, uint16_t shards) {
  return ShardOfHash(KeyHash(key), shards);
}

}  // namespace ringmq::smp

#endif  // RINGMQ_SMP_KEY_SHARD_H_
