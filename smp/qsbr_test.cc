#include "smp/qsbr.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace ringmq::smp {
namespace {

struct Tracked {
  std::atomic<int>* freed;
};

void FreeTracked(void* p) {
  auto* t = static_cast<Tracked*>(p);
  t->freed->fetch_add(1);
  delete t;
}

TEST(Qsbr, FreesOnlyAfterEveryShardPassedAQuiescentPoint) {
  std::atomic<int> freed{0};
  Qsbr q(2);
  q.Retire(0, new Tracked{&freed}, &FreeTracked);
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 0);  // shard 1 may still read it
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 0);
  q.Quiescent(1);
  EXPECT_EQ(freed.load(), 0);  // freed by its retiring shard, on its next quiescent point
  EXPECT_EQ(q.PendingForTest(0), 1u);
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 1);
  EXPECT_EQ(q.PendingForTest(0), 0u);
}

TEST(Qsbr, QuiescentPointBeforeTheRetireDoesNotCount) {
  std::atomic<int> freed{0};
  Qsbr q(2);
  q.Quiescent(1);  // before the retire: must not count
  q.Retire(0, new Tracked{&freed}, &FreeTracked);
  q.Quiescent(0);
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 0);
  q.Quiescent(1);
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 1);
}

TEST(Qsbr, OfflineShardDoesNotBlockReclamationButOnlineShardDoes) {
  std::atomic<int> freed{0};
  Qsbr q(3);
  q.Offline(1);
  q.Offline(2);
  q.Retire(0, new Tracked{&freed}, &FreeTracked);
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 1);

  q.Online(2);
  q.Retire(0, new Tracked{&freed}, &FreeTracked);
  q.Quiescent(0);
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 1);  // shard 2 is online and has not passed a quiescent point
  q.Quiescent(2);
  q.Quiescent(0);
  EXPECT_EQ(freed.load(), 2);
}

TEST(Qsbr, DestructorFreesWhatIsLeft) {
  std::atomic<int> freed{0};
  {
    Qsbr q(2);
    q.Retire(0, new Tracked{&freed}, &FreeTracked);
    q.Retire(1, new Tracked{&freed}, &FreeTracked);
    q.Quiescent(0);
  }
  EXPECT_EQ(freed.load(), 2);
}

// Readers hold a pointer to the current object between quiescent points and check that it has not
// been "freed" meanwhile. The deleter does not free (that would make the check undefined): it marks
// the object and parks it; the test frees the park at the end. Shards randomly go offline.
TEST(Qsbr, ConcurrentReadersNeverSeeAFreedObject) {
  constexpr std::size_t kShards = 4;
  constexpr int kIters = 40'000;
  struct Obj;
  struct Park {
    std::mutex mu;  // test only
    std::vector<std::unique_ptr<Obj>> objs;
  };
  struct Obj {
    std::atomic<bool> dead{false};
    Park* park = nullptr;
  };
  Park local_park;

  Qsbr q(kShards);
  std::atomic<Obj*> current{new Obj{{false}, &local_park}};
  std::atomic<uint64_t> violations{0};

  auto shard = [&](std::size_t s) {
    std::mt19937 rng(static_cast<unsigned>(s));
    for (int i = 0; i < kIters; ++i) {
      Obj* o = current.load(std::memory_order_acquire);
      if (o->dead.load(std::memory_order_relaxed)) violations.fetch_add(1);
      if (rng() % 8 == 0) {  // writer: replace and retire
        auto* fresh = new Obj{{false}, &local_park};
        Obj* old = current.exchange(fresh, std::memory_order_acq_rel);
        q.Retire(s, old, [](void* p) {
          auto* obj = static_cast<Obj*>(p);
          obj->dead.store(true, std::memory_order_relaxed);
          std::lock_guard<std::mutex> lock(obj->park->mu);
          obj->park->objs.emplace_back(obj);
        });
      }
      // Still holding `o`: it must not have been reclaimed yet.
      if (o->dead.load(std::memory_order_relaxed)) violations.fetch_add(1);
      if (rng() % 64 == 0) {
        q.Offline(s);
        std::this_thread::yield();
        q.Online(s);
      } else {
        q.Quiescent(s);
      }
    }
    q.Offline(s);
  };
  std::vector<std::thread> threads;
  for (std::size_t s = 0; s < kShards; ++s) threads.emplace_back(shard, s);
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0u);
  {
    std::lock_guard<std::mutex> lock(local_park.mu);
    EXPECT_GT(local_park.objs.size(), 0u);  // reclamation made progress while running
  }
  delete current.load();
}

}  // namespace
}  // namespace ringmq::smp
