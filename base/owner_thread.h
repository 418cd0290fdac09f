// OwnerThread: the debug-build check of "touched only by its own thread" (doc/threading.md). A
// shard owns one and asserts it at every entry point of the objects it owns; the objects hold a
// reference to it, so that one Rebind hands them all to the shard thread when it starts.
//
//   OwnerThread owner;          // unbound: the first Check binds it to the calling thread
//   owner.Check();              // assert: called on the owner thread (release builds: nothing)
//   owner.Rebind();             // the calling thread owns it from now on (a shard thread starts)
//
// Thread-safety: Check and Rebind may be called from any thread: that is what they check. The
// owner is an atomic so that a wrong thread's Check reads it without a data race and fails.
// Invariants:
//   1. With NDEBUG, OwnerThread is empty and every call compiles to nothing.
//   2. Without NDEBUG, Check aborts (assert) when a thread other than the bound one calls it.
#ifndef RINGMQ_BASE_OWNER_THREAD_H_
#define RINGMQ_BASE_OWNER_THREAD_H_

#include <atomic>
#include <cassert>
#include <thread>

namespace ringmq::base {

#ifdef NDEBUG
class OwnerThread {
 public:
  void Check() const {}
  void Rebind() {}
  bool IsOwner() const { return true; }
};
#else
class OwnerThread {
 public:
  void Check() const { assert(IsOwner() && "called off the owner thread (doc/threading.md)"); }
  void Rebind() { owner_.store(std::this_thread::get_id(), std::memory_order_relaxed); }
  // True on the owner thread; binds an unbound checker to the calling thread.
  bool IsOwner() const {
    const std::thread::id self = std::this_thread::get_id();
    std::thread::id expected{};
    return owner_.compare_exchange_strong(expected, self, std::memory_order_relaxed) ||
           expected == self;
  }

 private:
  mutable std::atomic<std::thread::id> owner_{};
};
#endif

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_OWNER_THREAD_H_
