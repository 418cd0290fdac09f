// RetainedStore: the retained messages one shard owns, those whose topic hashes to it
// (DESIGN.md section 4), by topic. It keeps the broker-wide RetainedQuota in step with every
// change (store, replacement, deletion, expiry) so that any shard can check max_retained_bytes.
//
// Thread-safety: owned by one shard and used only by its thread (before the shard threads start,
// by the thread that recovers the state). The quota it updates is the thread-safe part.
// Invariants:
//   1. bytes() == the sum of Cost(m) over the stored messages; the quota's table holds Cost(m)
//      for each stored topic's hash on this owner.
//   2. Every stored message has a non-empty payload (an empty retained message deletes).
//   3. expiries_ holds (expires_at_ms, topic) exactly for the stored messages with an expiry.
#ifndef RINGMQ_ROUTE_RETAINED_STORE_H_
#define RINGMQ_ROUTE_RETAINED_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "route/message.h"
#include "route/retained_quota.h"

namespace ringmq::route {

class RetainedStore {
 public:
  using Map = std::map<std::string, MessagePtr, std::less<>>;

  // `quota` must outlive the store; `owner` is the shard this store belongs to.
  RetainedStore(RetainedQuota& quota, uint16_t owner) : quota_(quota), owner_(owner) {}
  RetainedStore(const RetainedStore&) = delete;
  RetainedStore& operator=(const RetainedStore&) = delete;

  // What a retained message counts against max_retained_bytes: topic plus payload bytes.
  static uint64_t Cost(const Message& m) { return m.topic.size() + m.payload.size(); }

  // Stores m for its topic, replacing the message stored before. REQUIRES: m->payload not empty.
  void Set(MessagePtr m);
  // Removes the message of `topic`; false when there was none.
  bool Erase(std::string_view topic);
  // Removes the message at `it`; returns the next one.
  Map::const_iterator Erase(Map::const_iterator it);
  // Removes every message whose expiry passed at now_ms; returns how many.
  size_t EraseExpired(int64_t now_ms);

  const Map& messages() const { return map_; }
  Map::const_iterator begin() const { return map_.begin(); }
  Map::const_iterator end() const { return map_.end(); }
  size_t size() const { return map_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  void Forget(Map::const_iterator it);  // the quota and expiry side of an erase

  RetainedQuota& quota_;
  const uint16_t owner_;
  Map map_;
  std::set<std::pair<int64_t, const std::string*>> expiries_;  // points at map_'s keys
  uint64_t bytes_ = 0;
};

}  // namespace ringmq::route

#endif  // RINGMQ_ROUTE_RETAINED_STORE_H_
