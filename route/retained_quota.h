// RetainedQuota: what the broker's retained messages cost, for max_retained_bytes
// (doc/configuration.md, doc/threading.md). One instance lives in the Broker.
//
// The cost of a retained message is its topic plus payload bytes. Retained messages live on the
// shard that owns hash(topic) (route/retained_store.h), but the publisher's shard must decide
// before its acknowledgement whether a new retained message fits: it needs the broker-wide total
// and, because a replacement is judged by how much it adds, the cost of the message the topic
// holds now. Both are kept here, written by the owner shards, readable by every shard:
//   - total(): one atomic counter, updated by owners with relaxed fetch_add / fetch_sub (it
//     publishes no other data; a reader may see a slightly old value);
//   - per owner shard, a hash table topic hash -> cost with a single writer (that owner) and
//     lock-free readers: open addressing, linear probing, slots never move; a removed topic keeps
//     its slot with cost 0 until the table is rebuilt. A slot's cost is stored before its key, the
//     key with release; readers load the key with acquire, so a reader that finds the key sees a
//     cost at least as new as the one stored first. A rebuilt table is published with a release
//     store and the old one is retired to Qsbr, so readers never lock and never see freed memory.
//
// The cap is approximate: a publisher checks what owners have stored so far, so messages still on
// their way from publisher shards to owner shards are not counted yet, and two topics whose 64-bit
// hashes collide share one entry. The total may exceed the cap by at most those in flight.
//
// Thread-safety: Update(owner, ...) is called only by shard `owner` (or, before the shard
// threads start, by the thread that recovers the state); CostOf, WouldExceed and total() by any
// shard thread online in the Qsbr (they hold no pointer past their return).
// Invariants:
//   1. total() == the sum of every owner table's costs (once all Updates returned).
//   2. A table is at most 3/4 full (tombstones included), so every probe ends at an empty slot.
//   3. A key, once stored in a slot of a table, never changes; key 0 means an empty slot.
#ifndef RINGMQ_ROUTE_RETAINED_QUOTA_H_
#define RINGMQ_ROUTE_RETAINED_QUOTA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "smp/qsbr.h"
#include "smp/spsc_ring.h"  // kCacheLine

namespace ringmq::route {

class RetainedQuota {
 public:
  // Uses `qsbr` (which must outlive this object); qsbr.shards() is the number of owner shards.
  explicit RetainedQuota(smp::Qsbr& qsbr);
  RetainedQuota(const RetainedQuota&) = delete;
  RetainedQuota& operator=(const RetainedQuota&) = delete;
  // REQUIRES: no concurrent use.
  ~RetainedQuota();

  // The retained message of the topic with hash `hash` changed cost from old_cost to new_cost
  // (0: none). REQUIRES: called by shard `owner`, the owner of the topic.
  void Update(size_t owner, uint64_t hash, uint64_t old_cost, uint64_t new_cost);

  // The cost of the retained message stored for `hash` on shard `owner` (0: none).
  uint64_t CostOf(size_t owner, uint64_t hash) const;

  // Would storing a retained message of `cost` for the topic (hash, owner) take the total above
  // `max`? A message that costs no more than the one it replaces always fits.
  bool WouldExceed(size_t owner, uint64_t hash, uint64_t cost, uint64_t max) const;

  // Bytes of every retained message stored, broker-wide.
  uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};  // the topic hash (0 never: see Key()), 0 = empty
    std::atomic<uint64_t> cost{0};
  };
  struct Table {
    explicit Table(size_t capacity);
    size_t mask;
    std::unique_ptr<Slot[]> slots;
  };
  struct alignas(smp::kCacheLine) Owner {
    std::atomic<Table*> table{nullptr};
    // Owner-private.
    size_t used = 0;  // slots with a key, tombstones included
    size_t live = 0;  // slots with a cost
  };

  static uint64_t Key(uint64_t hash) { return hash == 0 ? 1 : hash; }
  void Rebuild(size_t owner, Owner& o);

  smp::Qsbr& qsbr_;
  alignas(smp::kCacheLine) std::atomic<uint64_t> total_{0};
  size_t shards_;
  std::unique_ptr<Owner[]> owners_;
};

}  // namespace ringmq::route

#endif  // RINGMQ_ROUTE_RETAINED_QUOTA_H_
