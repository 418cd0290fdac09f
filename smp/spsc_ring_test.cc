#include "smp/spsc_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <semaphore>
#include <thread>
#include <vector>

namespace ringmq::smp {
namespace {

TEST(SpscRing, PushPopFifoAndFull) {
  SpscRing<int, 4> ring;
  EXPECT_TRUE(ring.EmptyForConsumer());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ring.TryPush(int{i}));
  EXPECT_FALSE(ring.TryPush(99));  // full
  EXPECT_EQ(ring.SizeApprox(), 4u);
  for (int i = 0; i < 4; ++i) {
    auto v = ring.TryPop();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, i);
  }
  EXPECT_FALSE(ring.TryPop().has_value());
}

TEST(SpscRing, BatchPushIsPartialWhenFullAndWrapsAround) {
  SpscRing<int, 8> ring;
  std::vector<int> got;
  int next = 0;
  for (int round = 0; round < 100; ++round) {
    int batch[5];
    for (int& b : batch) b = next++;
    const std::size_t pushed = ring.TryPushBatch(batch, 5);
    next -= static_cast<int>(5 - pushed);  // unpushed items are retried next round
    ring.PopBatch([&got](int&& v) { got.push_back(v); }, 3);
  }
  ring.PopBatch([&got](int&& v) { got.push_back(v); });
  ASSERT_EQ(got.size(), static_cast<std::size_t>(next));
  for (int i = 0; i < next; ++i) ASSERT_EQ(got[i], i);
}

TEST(SpscRing, DestroysRemainingItemsAndMovesOwnership) {
  auto counter = std::make_shared<int>(0);
  {
    SpscRing<std::shared_ptr<int>, 4> ring;
    EXPECT_TRUE(ring.TryPush(std::shared_ptr<int>(counter)));
    EXPECT_TRUE(ring.TryPush(std::shared_ptr<int>(counter)));
    EXPECT_EQ(counter.use_count(), 3);
    auto one = ring.TryPop();
    EXPECT_EQ(counter.use_count(), 3);  // moved out, not copied
  }
  EXPECT_EQ(counter.use_count(), 1);  // ring destructor released the last item
}

TEST(SpscRing, TwoThreadsMoveMillionsInOrder) {
  constexpr uint64_t kItems = 4'000'000;
  auto ring = std::make_unique<SpscRing<uint64_t, 1024>>();
  std::thread producer([&] {
    uint64_t batch[32];
    uint64_t next = 0;
    while (next < kItems) {
      std::size_t n = 0;
      for (; n < 32 && next + n < kItems; ++n) batch[n] = next + n;
      const std::size_t pushed = ring->TryPushBatch(batch, n);
      next += pushed;
      if (pushed == 0) std::this_thread::yield();
    }
  });
  uint64_t expected = 0;
  uint64_t out_of_order = 0;
  while (expected < kItems) {
    const std::size_t n = ring->PopBatch(
        [&](uint64_t&& v) {
          if (v != expected) ++out_of_order;
          expected = v + 1;
        },
        256);
    if (n == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(expected, kItems);
  EXPECT_TRUE(ring->EmptyForConsumer());
}

TEST(RingMatrix, WakeIsReportedOnceAndSleepIsRefusedWithPendingItems) {
  RingMatrix<int, 16> m(3);
  EXPECT_TRUE(m.PrepareToSleep(2));
  int a[1] = {1};
  auto r = m.PushBatch(0, 2, a, 1);
  EXPECT_EQ(r.pushed, 1u);
  EXPECT_TRUE(r.needs_wake);
  int b[1] = {2};
  r = m.PushBatch(1, 2, b, 1);
  EXPECT_FALSE(r.needs_wake);  // shard 0 already claimed the wake
  m.Awake(2);
  // Items are still there: the consumer must not sleep.
  EXPECT_FALSE(m.PrepareToSleep(2));
  EXPECT_FALSE(m.SleepingForTest(2));
  std::vector<std::pair<std::size_t, int>> got;
  EXPECT_EQ(m.Drain(2, [&](std::size_t from, int&& v) { got.emplace_back(from, v); }).items, 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(std::size_t{0}, 1));
  EXPECT_EQ(got[1], std::make_pair(std::size_t{1}, 2));
  // Awake consumer: no wake needed.
  r = m.PushBatch(0, 2, a, 1);
  EXPECT_FALSE(r.needs_wake);
}

// Two producers, one consumer that sleeps whenever it finds nothing. A wake is "sent" by releasing
// the consumer's semaphore, standing in for the shard's eventfd. Each producer pushes a small batch
// and then waits until the consumer has taken it, so the consumer goes to sleep between batches and
// a lost wakeup cannot be hidden by a later push: it leaves the consumer blocked with items in its
// rings, which the consumer's timed wait detects.
TEST(RingMatrix, SleepWakeStressLosesNoWakeup) {
  constexpr std::size_t kShards = 3;
  constexpr std::size_t kConsumer = 2;
  constexpr uint64_t kPerProducer = 30'000;
  RingMatrix<uint64_t, 64> m(kShards);
  std::counting_semaphore<> wake(0);
  std::atomic<uint64_t> wakes_sent{0};
  std::atomic<uint64_t> consumed[2] = {0, 0};

  auto produce = [&](std::size_t self) {
    uint64_t next = 0;
    uint64_t batch[8];
    while (next < kPerProducer) {
      const std::size_t want = 1 + next % 8;
      std::size_t n = 0;
      for (; n < want && next + n < kPerProducer; ++n) batch[n] = next + n;
      const auto r = m.PushBatch(self, kConsumer, batch, n);
      next += r.pushed;
      if (r.needs_wake) {
        wakes_sent.fetch_add(1, std::memory_order_relaxed);
        wake.release();
      }
      while (consumed[self].load(std::memory_order_acquire) != next) std::this_thread::yield();
    }
  };
  std::thread p0(produce, 0);
  std::thread p1(produce, 1);

  uint64_t expected[2] = {0, 0};
  uint64_t disorder = 0;
  uint64_t sleeps = 0;
  uint64_t announcements = 0;
  uint64_t lost = 0;
  while (expected[0] + expected[1] < 2 * kPerProducer) {
    const std::size_t n = m.Drain(kConsumer, [&](std::size_t from, uint64_t&& v) {
                             if (v != expected[from]) ++disorder;
                             expected[from] = v + 1;
                             consumed[from].store(v + 1, std::memory_order_release);
                           }).items;
    if (n != 0) continue;
    ++announcements;
    if (!m.PrepareToSleep(kConsumer)) continue;
    ++sleeps;
    if (!wake.try_acquire_for(std::chrono::seconds(2))) {
      // Producers only wait for us, so a timeout with items pending is a lost wakeup.
      bool pending = false;
      for (std::size_t from = 0; from < 2; ++from) {
        pending |= !m.Get(from, kConsumer).EmptyForConsumer();
      }
      if (pending) ++lost;
    }
    m.Awake(kConsumer);
  }
  p0.join();
  p1.join();
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(disorder, 0u);
  EXPECT_EQ(expected[0], kPerProducer);
  EXPECT_EQ(expected[1], kPerProducer);
  EXPECT_GT(sleeps, 0u);
  EXPECT_GT(wakes_sent.load(), 0u);
  // At most one wake per announcement (invariant 6), even with two producers.
  EXPECT_LE(wakes_sent.load(), announcements);
}

TEST(RingMatrix, FullRingReportsItsWaitingProducer) {
  RingMatrix<int, 2> m(2);
  int a[3] = {1, 2, 3};
  EXPECT_EQ(m.PushBatch(0, 1, a, 3).pushed, 2u);  // full
  EXPECT_TRUE(m.PrepareToWaitForRoom(0, 1));
  // A drain that frees nothing of ring (0, 1) reports nobody.
  EXPECT_EQ(m.Drain(0, [](std::size_t, int&&) {}).wake_producers, 0u);
  auto r = m.Drain(
      1, [](std::size_t, int&&) {}, 1);
  EXPECT_EQ(r.items, 1u);
  EXPECT_EQ(r.wake_producers, uint64_t{1} << 0);
  // Reported once: the flag was claimed.
  EXPECT_EQ(m.Drain(1, [](std::size_t, int&&) {}).wake_producers, 0u);
  // Room already: no wait, and no report later.
  EXPECT_FALSE(m.PrepareToWaitForRoom(0, 1));
  EXPECT_EQ(m.PushBatch(0, 1, a, 1).pushed, 1u);
  EXPECT_EQ(m.Drain(1, [](std::size_t, int&&) {}).wake_producers, 0u);
}

// One producer that blocks whenever its ring is full, one consumer that drains in small slices and
// "wakes" the producer (a semaphore standing in for the eventfd) when Drain reports it. A lost
// wake-up leaves the producer blocked with room in its ring, which its timed wait detects.
TEST(RingMatrix, WaitForRoomStressLosesNoWakeup) {
  constexpr uint64_t kItems = 200'000;
  RingMatrix<uint64_t, 8> m(2);
  std::counting_semaphore<> room(0);
  uint64_t lost = 0;
  uint64_t waits = 0;
  std::thread producer([&] {
    uint64_t next = 0;
    while (next < kItems) {
      uint64_t v = next;
      if (m.PushBatch(0, 1, &v, 1).pushed == 1) {
        ++next;
        continue;
      }
      if (!m.PrepareToWaitForRoom(0, 1)) continue;
      ++waits;
      if (!room.try_acquire_for(std::chrono::seconds(2)) && !m.Get(0, 1).FullForProducer()) {
        ++lost;
      }
    }
  });
  uint64_t expected = 0;
  uint64_t disorder = 0;
  while (expected < kItems) {
    const auto r = m.Drain(
        1,
        [&](std::size_t, uint64_t&& v) {
          if (v != expected) ++disorder;
          expected = v + 1;
        },
        3);
    if ((r.wake_producers & 1) != 0) room.release();
    if (r.items == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(disorder, 0u);
  EXPECT_GT(waits, 0u);
}

}  // namespace
}  // namespace ringmq::smp
