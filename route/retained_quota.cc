#include "route/retained_quota.h"

namespace ringmq::route {

namespace {
constexpr size_t kMinCapacity = 16;
}  // namespace

RetainedQuota::Table::Table(size_t capacity)
    : mask(capacity - 1), slots(std::make_unique<Slot[]>(capacity)) {}

RetainedQuota::RetainedQuota(smp::Qsbr& qsbr)
    : qsbr_(qsbr), shards_(qsbr.shards()), owners_(std::make_unique<Owner[]>(qsbr.shards())) {}

RetainedQuota::~RetainedQuota() {
  for (size_t i = 0; i < shards_; ++i) delete owners_[i].table.load(std::memory_order_relaxed);
}

void RetainedQuota::Update(size_t owner, uint64_t hash, uint64_t old_cost, uint64_t new_cost) {
  if (new_cost > old_cost) {
    total_.fetch_add(new_cost - old_cost, std::memory_order_relaxed);
  } else if (new_cost < old_cost) {
    total_.fetch_sub(old_cost - new_cost, std::memory_order_relaxed);
  }
  Owner& o = owners_[owner];
  // The owner is the only writer: its own earlier stores are visible to it with relaxed loads.
  Table* t = o.table.load(std::memory_order_relaxed);
  if (t == nullptr) {
    if (new_cost == 0) return;
    t = new Table(kMinCapacity);
    o.table.store(t, std::memory_order_release);
  }
  const uint64_t key = Key(hash);
  for (size_t i = key & t->mask;; i = (i + 1) & t->mask) {
    Slot& s = t->slots[i];
    const uint64_t k = s.key.load(std::memory_order_relaxed);
    if (k == key) {
      const uint64_t before = s.cost.load(std::memory_order_relaxed);
      s.cost.store(new_cost, std::memory_order_relaxed);
      if (before == 0 && new_cost != 0) ++o.live;
      if (before != 0 && new_cost == 0) --o.live;
      return;
    }
    if (k == 0) {
      if (new_cost == 0) return;  // nothing stored for this topic
      s.cost.store(new_cost, std::memory_order_relaxed);
      s.key.store(key, std::memory_order_release);  // publishes the cost with the key
      ++o.used;
      ++o.live;
      if (o.used * 4 > (t->mask + 1) * 3) Rebuild(owner, o);  // invariant 2
      return;
    }
  }
}

void RetainedQuota::Rebuild(size_t owner, Owner& o) {
  // Room for twice the live entries: tombstones are dropped, and the table grows or shrinks.
  size_t capacity = kMinCapacity;
  while (capacity < o.live * 2) capacity *= 2;
  Table* old = o.table.load(std::memory_order_relaxed);
  auto* fresh = new Table(capacity);
  for (size_t i = 0; i <= old->mask; ++i) {
    const uint64_t cost = old->slots[i].cost.load(std::memory_order_relaxed);
    if (cost == 0) continue;
    const uint64_t key = old->slots[i].key.load(std::memory_order_relaxed);
    size_t j = key & fresh->mask;
    while (fresh->slots[j].key.load(std::memory_order_relaxed) != 0) j = (j + 1) & fresh->mask;
    fresh->slots[j].cost.store(cost, std::memory_order_relaxed);
    fresh->slots[j].key.store(key, std::memory_order_relaxed);
  }
  o.used = o.live;
  // Release: a reader that loads the new pointer (acquire) sees every slot written above.
  o.table.store(fresh, std::memory_order_release);
  qsbr_.RetireObject(owner, old);
}

uint64_t RetainedQuota::CostOf(size_t owner, uint64_t hash) const {
  const Table* t = owners_[owner].table.load(std::memory_order_acquire);
  if (t == nullptr) return 0;
  const uint64_t key = Key(hash);
  for (size_t i = key & t->mask;; i = (i + 1) & t->mask) {
    const uint64_t k = t->slots[i].key.load(std::memory_order_acquire);
    if (k == key) return t->slots[i].cost.load(std::memory_order_relaxed);
    if (k == 0) return 0;
  }
}

bool RetainedQuota::WouldExceed(size_t owner, uint64_t hash, uint64_t cost, uint64_t max) const {
  const uint64_t old = CostOf(owner, hash);
  if (cost <= old) return false;
  return total() + (cost - old) > max;
}

}  // namespace ringmq::route
