// SpscRing<T, Capacity>: a bounded single-producer/single-consumer queue, and RingMatrix<T,
// Capacity>: the N x N matrix of such rings that carries every message between shard threads, with
// the "sleeping" flag protocol that tells a producer when the consumer must be woken. See
// doc/threading.md for how the shards use them.
//
// Thread-safety:
//   SpscRing: exactly one producer thread and one consumer thread at a time. Producer methods
//   (TryPush, TryPushBatch) must only be called by the producer, consumer methods (TryPop,
//   PopBatch, EmptyForConsumer, PublishedForConsumer) only by the consumer. Handing a role to
//   another thread requires a happens-before edge between the old and the new owner (e.g. a thread
//   join). RingMatrix: ring (from, to) is produced by shard `from` and consumed by shard `to`; the
//   methods take the calling shard's index and REQUIRE that the caller is that shard's thread.
//
// Invariants (SpscRing; head_ and tail_ are monotonic 64-bit counters, never wrapped):
//   1. head_ <= tail_ <= head_ + Capacity.
//   2. Slots [head_, tail_) (mod Capacity) hold constructed T; all other slots are raw storage.
//   3. Only the producer writes tail_ and cached_head_; only the consumer writes head_ and
//      cached_tail_. cached_head_ <= head_ and cached_tail_ <= tail_ at all times.
//   4. The producer publishes slot contents with a release store of tail_, the consumer acquires
//      them with an acquire load of tail_ (and symmetrically for freed slots via head_).
//
// Invariants (RingMatrix sleep/wake protocol, per consumer shard s with flag sleeping[s]):
//   5. A producer that pushes into ring (p, s) publishes tail with a seq_cst store and then reads
//      sleeping[s] with a seq_cst load. The consumer stores sleeping[s] = true (seq_cst) and then
//      reads the tails of all its inbound rings (seq_cst) before it blocks. By the single total
//      order of seq_cst operations, either the consumer sees the new item (and does not block), or
//      the producer sees sleeping[s] == true. So no wakeup is lost.
//   6. Of all producers that see sleeping[s] == true, exactly the one whose exchange(false) returns
//      true reports "needs wake"; at most one wake-up (a write to the consumer shard's eventfd)
//      per sleep is sent (spurious wakes are allowed, lost wakes are not).
//   7. The reverse direction, a producer p that waits for room in the full ring (p, s): p stores
//      wants_room[p][s] = true and then loads the ring's head, both seq_cst; the consumer frees
//      slots of (p, s) with a seq_cst store of head (Drain pops with HeadOrder::kSeqCst) and then
//      loads wants_room[p][s], seq_cst. The four accesses have a single total order, so either p
//      sees the freed slots (and does not block) or the consumer sees the flag and, if its
//      exchange(false) returns true, reports p in Drain's `wake_producers`. A full ring therefore
//      never leaves its producer spinning or asleep for good. (seq_cst accesses rather than
//      fences: ThreadSanitizer does not model fences.)
#ifndef RINGMQ_SMP_SPSC_RING_H_
#define RINGMQ_SMP_SPSC_RING_H_

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringmq::smp {

// A cache line on every CPU ringmq targets (x86-64, aarch64 servers). Not
// std::hardware_destructive_interference_size: g++ warns that its value is not ABI-stable.
inline constexpr std::size_t kCacheLine = 64;

// How TryPush/TryPushBatch publish the new tail. kRelease is enough to hand items to the consumer;
// kSeqCst is needed by the sleep/wake protocol of RingMatrix (invariant 5).
enum class TailOrder { kRelease, kSeqCst };
// How PopBatch frees slots: kRelease hands them back to the producer; kSeqCst also takes part in
// RingMatrix's wait-for-room protocol (invariant 7).
enum class HeadOrder { kRelease, kSeqCst };

template <typename T, std::size_t Capacity>
class SpscRing {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0,
                "Capacity must be a power of two");
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "T must be nothrow movable and destructible");

 public:
  static constexpr std::size_t kCapacity = Capacity;

  SpscRing() = default;
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;
  // REQUIRES: no concurrent producer or consumer.
  ~SpscRing() {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    for (uint64_t i = head_.load(std::memory_order_relaxed); i != tail; ++i) Slot(i)->~T();
  }

  // ---- Producer side -------------------------------------------------------------------------

  // Moves `item` in and returns true, or returns false (item untouched) when the ring is full.
  bool TryPush(T&& item, TailOrder order = TailOrder::kRelease) {
    return TryPushBatch(&item, 1, order) == 1;
  }

  // Moves up to `n` items from items[0..n) into the ring with a single publication of the tail.
  // Returns how many were moved (a prefix of `items`); the rest are untouched.
  std::size_t TryPushBatch(T* items, std::size_t n, TailOrder order = TailOrder::kRelease) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);  // own index
    std::size_t free_slots = Capacity - (tail - cached_head_);
    if (free_slots < n) {
      cached_head_ = AcquireHead();
      free_slots = Capacity - (tail - cached_head_);
    }
    if (n > free_slots) n = free_slots;
    if (n == 0) return 0;
    for (std::size_t i = 0; i < n; ++i) new (Slot(tail + i)) T(std::move(items[i]));
    if (order == TailOrder::kSeqCst) {
      SeqCstSetTail(tail + n);
    } else {
      ReleaseTail(tail + n);
    }
    return n;
  }

  // ---- Consumer side -------------------------------------------------------------------------

  std::optional<T> TryPop() {
    std::optional<T> out;
    PopBatch([&out](T&& item) { out.emplace(std::move(item)); }, 1);
    return out;
  }

  // Calls `fn(T&&)` for up to `max` items in FIFO order, then frees their slots with one store of
  // head_ (release, or seq_cst). Returns the number of items consumed. `fn` must not touch this
  // ring's consumer side (it may push into other rings).
  template <typename Fn>
  std::size_t PopBatch(Fn&& fn, std::size_t max = Capacity, HeadOrder order = HeadOrder::kRelease) {
    const uint64_t head = head_.load(std::memory_order_relaxed);  // own index
    // Touch the producer's line only when the cached view cannot fill the batch.
    if (cached_tail_ - head < max) {
      cached_tail_ = AcquireTail();
      if (cached_tail_ == head) return 0;
    }
    std::size_t n = static_cast<std::size_t>(cached_tail_ - head);
    if (n > max) n = max;
    for (std::size_t i = 0; i < n; ++i) {
      T* slot = Slot(head + i);
      fn(std::move(*slot));
      slot->~T();
    }
    if (order == HeadOrder::kSeqCst) {
      SeqCstSetHead(head + n);
    } else {
      ReleaseHead(head + n);
    }
    return n;
  }

  // Producer: true when every slot is taken, with a seq_cst load of head_: the re-check half of
  // RingMatrix's wait-for-room protocol (invariant 7).
  bool FullForProducer() {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);  // own index
    if (tail - cached_head_ < Capacity) return false;
    cached_head_ = head_.load(std::memory_order_seq_cst);
    return tail - cached_head_ >= Capacity;
  }

  // True when the consumer sees nothing to pop (acquire; may miss items being published).
  bool EmptyForConsumer() const { return head_.load(std::memory_order_relaxed) == AcquireTail(); }

  // True when at least one item is published, with a seq_cst load of the tail: the re-check half of
  // the sleep protocol (invariant 5).
  bool PublishedForConsumer() const {
    return head_.load(std::memory_order_relaxed) != SeqCstTail();
  }

  // Number of items, from any thread (metrics); approximate when called concurrently with either
  // side. Memory order: head_ is loaded first, with acquire, pairing with the consumer's
  // ReleaseHead. The consumer stored that head only after its AcquireTail had seen a tail >= head,
  // so by coherence the tail loaded afterwards here is >= the head loaded: the difference is never
  // negative and never above Capacity, only possibly stale by pushes or pops in between.
  std::size_t SizeApprox() const {
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint64_t tail = tail_.load(std::memory_order_acquire);
    return tail >= head ? static_cast<std::size_t>(tail - head) : 0;
  }

 private:
  // Named accessors (CONVENTIONS rule 4).
  // Acquire pairs with ReleaseHead: the consumer is done with the slots below head before the
  // producer reuses them.
  uint64_t AcquireHead() const { return head_.load(std::memory_order_acquire); }
  void ReleaseHead(uint64_t v) { head_.store(v, std::memory_order_release); }
  void SeqCstSetHead(uint64_t v) { head_.store(v, std::memory_order_seq_cst); }
  // Acquire pairs with ReleaseTail/SeqCstSetTail: the slot contents written before the tail store
  // are visible to the consumer after it reads the new tail.
  uint64_t AcquireTail() const { return tail_.load(std::memory_order_acquire); }
  void ReleaseTail(uint64_t v) { tail_.store(v, std::memory_order_release); }
  // seq_cst variants: take part in the total order used by the sleep/wake handshake.
  uint64_t SeqCstTail() const { return tail_.load(std::memory_order_seq_cst); }
  void SeqCstSetTail(uint64_t v) { tail_.store(v, std::memory_order_seq_cst); }

  T* Slot(uint64_t index) {
    return std::launder(reinterpret_cast<T*>(&slots_[index & (Capacity - 1)]));
  }

  struct alignas(T) Storage {
    std::byte bytes[sizeof(T)];
  };

  // Producer-written line.
  alignas(kCacheLine) std::atomic<uint64_t> tail_{0};
  uint64_t cached_head_ = 0;  // producer's last view of head_
  // Consumer-written line.
  alignas(kCacheLine) std::atomic<uint64_t> head_{0};
  uint64_t cached_tail_ = 0;  // consumer's last view of tail_
  alignas(kCacheLine) Storage slots_[Capacity];
};

// The N x N matrix of rings between shards. Ring (from, to) exists for from != to.
template <typename T, std::size_t Capacity>
class RingMatrix {
 public:
  using Ring = SpscRing<T, Capacity>;

  struct PushResult {
    std::size_t pushed = 0;   // a prefix of the batch; the caller keeps the rest (ring full)
    bool needs_wake = false;  // the caller must wake shard `to` (Shard::WakeFromAnyThread)
  };

  // REQUIRES: 1 <= shards <= 64.
  explicit RingMatrix(std::size_t shards) : shards_(shards), rings_(shards * shards) {
    assert(shards >= 1 && shards <= 64);
    for (std::size_t from = 0; from < shards; ++from) {
      for (std::size_t to = 0; to < shards; ++to) {
        // Default-initialised: make_unique would zero every slot (value-initialisation) and so
        // make all N^2 rings resident at start; untouched slots stay untouched pages.
        if (from != to) rings_[from * shards + to] = std::make_unique_for_overwrite<Ring>();
      }
    }
    sleeping_ = std::make_unique<SleepFlag[]>(shards);
    wants_room_ = std::make_unique<SleepFlag[]>(shards * shards);
  }

  std::size_t shards() const { return shards_; }

  // Producer: pushes items[0..n) into ring (from, to) with one seq_cst tail store, then reports
  // whether `to` announced that it sleeps (invariants 5, 6).
  // REQUIRES: called by shard `from`; from != to.
  PushResult PushBatch(std::size_t from, std::size_t to, T* items, std::size_t n) {
    PushResult r;
    r.pushed = Get(from, to).TryPushBatch(items, n, TailOrder::kSeqCst);
    if (r.pushed != 0) r.needs_wake = ClaimWake(to);
    return r;
  }

  struct DrainResult {
    std::size_t items = 0;        // consumed, from every inbound ring
    uint64_t wake_producers = 0;  // bit p: shard p waits for room in (p, to); wake it (invariant 7)
  };

  // Consumer: pops up to `max_per_ring` items from every inbound ring of `to`, calling
  // fn(std::size_t from, T&&).
  // REQUIRES: called by shard `to`.
  template <typename Fn>
  DrainResult Drain(std::size_t to, Fn&& fn, std::size_t max_per_ring = Capacity) {
    DrainResult r;
    uint64_t popped = 0;  // bit p: ring (p, to) freed slots
    for (std::size_t from = 0; from < shards_; ++from) {
      if (from == to) continue;
      const std::size_t n = Get(from, to).PopBatch(
          [&fn, from](T&& item) { fn(from, std::move(item)); }, max_per_ring, HeadOrder::kSeqCst);
      r.items += n;
      if (n != 0) popped |= uint64_t{1} << from;
    }
    for (std::size_t from = 0; popped != 0 && from < shards_; ++from) {
      if ((popped >> from & 1) == 0) continue;
      std::atomic<bool>& f = wants_room_[from * shards_ + to].flag;  // invariant 7
      if (f.load(std::memory_order_seq_cst) && f.exchange(false, std::memory_order_seq_cst)) {
        r.wake_producers |= uint64_t{1} << from;
      }
    }
    return r;
  }

  // Producer: shard `from` is about to block while ring (from, to) is full. Announces it, then
  // re-checks. Returns true when `from` may block (the consumer will report it in
  // DrainResult::wake_producers once it frees a slot); false when there is room already (the flag
  // is withdrawn). REQUIRES: called by shard `from`; from != to.
  bool PrepareToWaitForRoom(std::size_t from, std::size_t to) {
    std::atomic<bool>& f = wants_room_[from * shards_ + to].flag;
    f.store(true, std::memory_order_seq_cst);  // invariant 7
    if (Get(from, to).FullForProducer()) return true;
    f.store(false, std::memory_order_relaxed);
    return false;
  }

  // Consumer: announces that shard `s` is about to block, then re-checks its inbound rings.
  // Returns true when `s` may block (every producer that pushes from now on will see the flag);
  // false when an item is already there, in which case the flag is withdrawn and `s` must not
  // block. REQUIRES: called by shard `s`; after a true return, call Awake(s) when the wait returns.
  bool PrepareToSleep(std::size_t s) {
    sleeping_[s].flag.store(true, std::memory_order_seq_cst);
    for (std::size_t from = 0; from < shards_; ++from) {
      if (from != s && Get(from, s).PublishedForConsumer()) {
        sleeping_[s].flag.store(false, std::memory_order_relaxed);
        return false;
      }
    }
    return true;
  }

  // Consumer: shard `s` is running again (its wait returned, for whatever reason).
  // Relaxed suffices: a stale `true` seen by a producer only causes a spurious wake.
  void Awake(std::size_t s) { sleeping_[s].flag.store(false, std::memory_order_relaxed); }

  // Whether shard `s` currently announces that it sleeps (for tests and metrics).
  bool SleepingForTest(std::size_t s) const {
    return sleeping_[s].flag.load(std::memory_order_seq_cst);
  }

  // The fill of ring (from, to), from any thread (SpscRing::SizeApprox).
  // REQUIRES: from != to, both < shards().
  std::size_t SizeApprox(std::size_t from, std::size_t to) const {
    assert(from != to && from < shards_ && to < shards_);
    return rings_[from * shards_ + to]->SizeApprox();
  }

  // Direct access to one ring. REQUIRES: from != to, both < shards().
  Ring& Get(std::size_t from, std::size_t to) {
    assert(from != to && from < shards_ && to < shards_);
    return *rings_[from * shards_ + to];
  }

 private:
  struct alignas(kCacheLine) SleepFlag {
    std::atomic<bool> flag{false};
  };

  // seq_cst load (invariant 5), then an exchange so that one producer only sends the wake
  // (invariant 6). The load first keeps the common case (consumer awake) free of a locked RMW.
  bool ClaimWake(std::size_t to) {
    std::atomic<bool>& f = sleeping_[to].flag;
    return f.load(std::memory_order_seq_cst) && f.exchange(false, std::memory_order_seq_cst);
  }

  std::size_t shards_;
  std::vector<std::unique_ptr<Ring>> rings_;  // rings_[from * shards_ + to]
  std::unique_ptr<SleepFlag[]> sleeping_;
  std::unique_ptr<SleepFlag[]> wants_room_;  // [from * shards_ + to]: invariant 7
};

}  // namespace ringmq::smp

#endif  // RINGMQ_SMP_SPSC_RING_H_
