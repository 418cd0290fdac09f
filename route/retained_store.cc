#include "route/retained_store.h"

#include "smp/key_shard.h"

namespace ringmq::route {

void RetainedStore::Set(MessagePtr m) {
  const uint64_t cost = Cost(*m);
  auto [it, inserted] = map_.try_emplace(m->topic);
  uint64_t old_cost = 0;
  if (!inserted) {
    const Message& old = *it->second;
    old_cost = Cost(old);
    if (old.expires_at_ms != 0) expiries_.erase({old.expires_at_ms, &it->first});
  }
  if (m->expires_at_ms != 0) expiries_.emplace(m->expires_at_ms, &it->first);
  bytes_ += cost - old_cost;  // unsigned wrap-around cancels out when it shrinks
  quota_.Update(owner_, smp::KeyHash(it->first), old_cost, cost);
  it->second = std::move(m);
}

bool RetainedStore::Erase(std::string_view topic) {
  auto it = map_.find(topic);
  if (it == map_.end()) return false;
  Erase(it);
  return true;
}

RetainedStore::Map::const_iterator RetainedStore::Erase(Map::const_iterator it) {
  Forget(it);
  return map_.erase(it);
}

void RetainedStore::Forget(Map::const_iterator it) {
  const Message& m = *it->second;
  const uint64_t cost = Cost(m);
  if (m.expires_at_ms != 0) expiries_.erase({m.expires_at_ms, &it->first});
  bytes_ -= cost;
  quota_.Update(owner_, smp::KeyHash(it->first), cost, 0);
}

size_t RetainedStore::EraseExpired(int64_t now_ms) {
  size_t n = 0;
  while (!expiries_.empty() && expiries_.begin()->first <= now_ms) {
    const std::string* topic = expiries_.begin()->second;
    Erase(map_.find(*topic));  // removes the expiries_ entry too
    ++n;
  }
  return n;
}

}  // namespace ringmq::route
