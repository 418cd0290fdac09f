#include "smp/qsbr.h"

#include <cassert>

namespace ringmq::smp {

Qsbr::Qsbr(std::size_t shards) : shards_(shards), state_(std::make_unique<ShardState[]>(shards)) {
  assert(shards >= 1 && shards <= 64);
  const uint64_t g = global_.load(std::memory_order_relaxed);
  for (std::size_t s = 0; s < shards; ++s) state_[s].local.store(g, std::memory_order_relaxed);
}

Qsbr::~Qsbr() {
  for (std::size_t s = 0; s < shards_; ++s) {
    ShardState& st = state_[s];
    for (std::size_t i = st.tagged_head; i < st.tagged.size(); ++i) {
      st.tagged[i].deleter(st.tagged[i].ptr);
    }
    for (const Retired& r : st.untagged) r.deleter(r.ptr);
  }
}

void Qsbr::Retire(std::size_t shard, void* ptr, Deleter deleter) {
  assert(shard < shards_);
  assert(state_[shard].local.load(std::memory_order_relaxed) != kOffline);
  state_[shard].untagged.push_back(Retired{ptr, deleter, 0});
}

void Qsbr::Quiescent(std::size_t shard) {
  assert(shard < shards_);
  ShardState& st = state_[shard];
  assert(st.local.load(std::memory_order_relaxed) != kOffline);
  if (!st.untagged.empty()) {
    // One advance for all objects unlinked since the last quiescent point. acq_rel: the release
    // half orders the unlinks before the new epoch (invariant 1); the acquire half lets the
    // advance read after Online()'s RMW see that shard's store of 0 (invariant 4).
    const uint64_t tag = global_.fetch_add(1, std::memory_order_acq_rel);
    for (Retired& r : st.untagged) {
      r.tag = tag;
      st.tagged.push_back(r);
    }
    st.untagged.clear();
  }
  // Acquire: see every unlink published before the epoch we read (invariant 1). Release: our reads
  // before this point happen before any free that a reclaimer does after reading this value
  // (invariant 3).
  st.local.store(global_.load(std::memory_order_acquire), std::memory_order_release);
  if (st.tagged_head != st.tagged.size()) Reclaim(st);
}

void Qsbr::Offline(std::size_t shard) {
  assert(shard < shards_);
  ShardState& st = state_[shard];
  // Tag and maybe free what we retired, so it does not wait for our wake-up needlessly.
  Quiescent(shard);
  // Release: our earlier reads happen before a free by a reclaimer that sees kOffline.
  st.local.store(kOffline, std::memory_order_release);
}

void Qsbr::Online(std::size_t shard) {
  assert(shard < shards_);
  ShardState& st = state_[shard];
  assert(st.local.load(std::memory_order_relaxed) == kOffline);
  // Invariant 4: the 0 is visible to any reclaimer whose epoch advance comes after our RMW below.
  st.local.store(0, std::memory_order_release);
  const uint64_t g = global_.fetch_add(0, std::memory_order_acq_rel);
  st.local.store(g, std::memory_order_release);
}

std::size_t Qsbr::PendingForTest(std::size_t shard) const {
  const ShardState& st = state_[shard];
  return st.untagged.size() + (st.tagged.size() - st.tagged_head);
}

uint64_t Qsbr::MinLocalEpoch() const {
  uint64_t min = kOffline;
  for (std::size_t s = 0; s < shards_; ++s) {
    // Acquire pairs with the release stores in Quiescent/Offline/Online (invariant 3).
    const uint64_t e = state_[s].local.load(std::memory_order_acquire);
    if (e < min) min = e;
  }
  return min;
}

void Qsbr::Reclaim(ShardState& st) {
  const uint64_t min = MinLocalEpoch();
  // Free every object tagged E with E + 1 <= min, i.e. E < min (invariant 3); a prefix
  // (invariant 5).
  std::size_t i = st.tagged_head;
  while (i < st.tagged.size() && st.tagged[i].tag < min) {
    st.tagged[i].deleter(st.tagged[i].ptr);
    ++i;
  }
  st.tagged_head = i;
  if (st.tagged_head == st.tagged.size()) {
    st.tagged.clear();
    st.tagged_head = 0;
  } else if (st.tagged_head > 64 && st.tagged_head * 2 > st.tagged.size()) {
    st.tagged.erase(st.tagged.begin(), st.tagged.begin() + static_cast<std::ptrdiff_t>(i));
    st.tagged_head = 0;
  }
}

}  // namespace ringmq::smp
