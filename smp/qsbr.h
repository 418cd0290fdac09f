// Qsbr: quiescent-state-based reclamation for the shard threads (DESIGN.md section 2).
// See doc/threading.md.
//
// A shard that unlinks an object from a shared structure (the topic index) cannot free it at once:
// other shards may still be reading it. It hands the object to Retire(); the object is freed, by
// the shard that retired it, once every shard has passed a quiescent point (a moment at which it
// holds no reference into the shared structures) after the unlink. Each shard calls Quiescent()
// once per event-loop turn; a shard about to block calls Offline() and Online() when it resumes, so
// that a sleeping shard never holds reclamation up.
//
// Thread-safety: the shard-indexed methods (Retire, Quiescent, Offline, Online, PendingForTest) are
// called only by the thread of that shard (a single thread per shard index at a time). Readers of
// the shared structures need nothing from this class while they are online: no per-read cost.
//
// Definitions: `global` is an epoch counter; each shard s publishes `local[s]`, the value of
// `global` it read at its last quiescent point, or kOffline. A retired object gets the tag E, where
// global was advanced from E to E+1 (by a release RMW) after the object was unlinked.
//
// Invariants:
//   1. `global` is only modified by RMWs (fetch_add), so every modification continues the release
//      sequence: a shard that reads global >= E+1 with acquire synchronizes with the advance from
//      E, hence with the unlink, and can no longer find the object.
//   2. While online, a shard holds references into shared structures only between two quiescent
//      points; at Quiescent() and while Offline it holds none.
//   3. An object tagged E is freed only when every shard has local[s] >= E+1 (read with acquire;
//      so the shard's earlier reads of the object happen before the free) or local[s] == kOffline.
//   4. Online() first stores local[s] = 0 ("online, no epoch yet"), then reads global with an RMW.
//      Either that RMW comes after the advance from E (the shard synchronizes with the unlink and
//      cannot find the object), or it comes before it, in which case the store of 0 happens before
//      the reclaimer's scan, which then sees 0 (or later) and does not treat the shard as offline.
//   5. Tags of one shard's retired list are non-decreasing, so reclamation frees a prefix.
//   6. Shards start online (local = the initial epoch): a shard that has not started yet holds no
//      references but delays reclamation until its first Quiescent() or Offline().
//
// Objects retired by a shard are freed by that shard (during its Quiescent()) or by ~Qsbr. A shard
// that stays offline with a non-empty retire list keeps that memory until it runs again.
#ifndef RINGMQ_SMP_QSBR_H_
#define RINGMQ_SMP_QSBR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "smp/spsc_ring.h"  // kCacheLine

namespace ringmq::smp {

class Qsbr {
 public:
  using Deleter = void (*)(void*);

  // REQUIRES: 1 <= shards <= 64.
  explicit Qsbr(std::size_t shards);
  Qsbr(const Qsbr&) = delete;
  Qsbr& operator=(const Qsbr&) = delete;
  // Frees everything still retired. REQUIRES: no shard thread uses the protected structures.
  ~Qsbr();

  std::size_t shards() const { return shards_; }

  // Hands `ptr` (already unlinked from every shared structure) to reclamation; `deleter(ptr)` runs
  // on this shard once every shard passed a quiescent point. No atomic operation.
  // REQUIRES: called by shard `shard`, online.
  void Retire(std::size_t shard, void* ptr, Deleter deleter);

  template <typename T>
  void RetireObject(std::size_t shard, T* ptr) {
    Retire(shard, ptr, [](void* p) { delete static_cast<T*>(p); });
  }

  // Shard `shard` holds no reference into shared structures. Call once per loop turn. Cheap when
  // the shard has nothing retired: one acquire load and one release store.
  // REQUIRES: called by shard `shard`, online.
  void Quiescent(std::size_t shard);

  // Shard `shard` is about to block (or to stop) and holds no references until Online().
  // REQUIRES: called by shard `shard`, online.
  void Offline(std::size_t shard);

  // Shard `shard` resumes reading shared structures. REQUIRES: called by shard `shard`, offline.
  void Online(std::size_t shard);

  // Objects retired by `shard` and not yet freed. REQUIRES: called by shard `shard` or quiescent
  // system.
  std::size_t PendingForTest(std::size_t shard) const;

 private:
  static constexpr uint64_t kOffline = UINT64_MAX;

  struct Retired {
    void* ptr;
    Deleter deleter;
    uint64_t tag;
  };

  struct alignas(kCacheLine) ShardState {
    std::atomic<uint64_t> local{0};  // written by the shard, read by every reclaimer
    // Shard-private from here.
    std::vector<Retired> untagged;  // retired since the last Quiescent(): no tag yet
    std::vector<Retired> tagged;    // waiting for a grace period, tags non-decreasing
    std::size_t tagged_head = 0;    // tagged[0, tagged_head) already freed (compacted lazily)
  };

  uint64_t MinLocalEpoch() const;
  void Reclaim(ShardState& st);

  std::size_t shards_;
  alignas(kCacheLine) std::atomic<uint64_t> global_{1};
  std::unique_ptr<ShardState[]> state_;
};

}  // namespace ringmq::smp

#endif  // RINGMQ_SMP_QSBR_H_
