#include "route/retained_quota.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ringmq::route {
namespace {

TEST(RetainedQuota, TracksCostsPerOwnerAndTheTotal) {
  smp::Qsbr qsbr(2);
  RetainedQuota q(qsbr);
  q.Update(0, 42, 0, 10);
  q.Update(1, 43, 0, 5);
  EXPECT_EQ(q.total(), 15u);
  EXPECT_EQ(q.CostOf(0, 42), 10u);
  EXPECT_EQ(q.CostOf(1, 42), 0u);  // another owner's table
  q.Update(0, 42, 10, 4);          // replaced by a smaller message
  EXPECT_EQ(q.CostOf(0, 42), 4u);
  EXPECT_EQ(q.total(), 9u);
  q.Update(0, 42, 4, 0);  // deleted
  EXPECT_EQ(q.CostOf(0, 42), 0u);
  EXPECT_EQ(q.total(), 5u);
  q.Update(0, 0, 0, 7);  // hash 0 is a valid hash too
  EXPECT_EQ(q.CostOf(0, 0), 7u);
}

TEST(RetainedQuota, WouldExceedJudgesAReplacementByWhatItAdds) {
  smp::Qsbr qsbr(1);
  RetainedQuota q(qsbr);
  q.Update(0, 1, 0, 60);
  q.Update(0, 2, 0, 40);                       // total 100, at the cap
  EXPECT_TRUE(q.WouldExceed(0, 3, 1, 100));    // a new topic does not fit
  EXPECT_FALSE(q.WouldExceed(0, 1, 60, 100));  // same size replacement
  EXPECT_FALSE(q.WouldExceed(0, 1, 10, 100));  // smaller replacement
  EXPECT_TRUE(q.WouldExceed(0, 1, 61, 100));   // larger replacement
  EXPECT_FALSE(q.WouldExceed(0, 3, 1, 101));
}

TEST(RetainedQuota, GrowsAndShrinksThroughManyTopics) {
  smp::Qsbr qsbr(1);
  RetainedQuota q(qsbr);
  for (uint64_t h = 1; h <= 10000; ++h) q.Update(0, h * 7919, 0, h);
  for (uint64_t h = 1; h <= 10000; ++h) ASSERT_EQ(q.CostOf(0, h * 7919), h);
  for (uint64_t h = 1; h <= 10000; h += 2) q.Update(0, h * 7919, h, 0);
  for (int round = 0; round < 3; ++round) {
    // Deleting and re-adding other topics exercises tombstones and rebuilds.
    for (uint64_t h = 20001; h <= 30000; ++h) q.Update(0, h * 7919, 0, 1);
    for (uint64_t h = 20001; h <= 30000; ++h) q.Update(0, h * 7919, 1, 0);
    qsbr.Quiescent(0);
  }
  for (uint64_t h = 1; h <= 10000; ++h) ASSERT_EQ(q.CostOf(0, h * 7919), h % 2 ? 0 : h);
  uint64_t even_sum = 0;
  for (uint64_t h = 2; h <= 10000; h += 2) even_sum += h;
  EXPECT_EQ(q.total(), even_sum);
}

// One owner writes (growing, deleting, rebuilding) while another shard reads: a reader never
// finds a wrong cost for a topic the owner does not touch, and never reads freed memory (run it
// under ThreadSanitizer / AddressSanitizer, doc/threading.md).
TEST(RetainedQuota, ReadersOnOtherShardsSeeStableEntriesDuringRebuilds) {
  smp::Qsbr qsbr(2);
  RetainedQuota q(qsbr);
  for (uint64_t h = 1; h <= 100; ++h) q.Update(0, h, 0, 1000 + h);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wrong{0};
  std::thread reader([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      for (uint64_t h = 1; h <= 100; ++h) {
        if (q.CostOf(0, h) != 1000 + h) wrong.fetch_add(1);
      }
      qsbr.Quiescent(1);
    }
    qsbr.Offline(1);
  });
  for (int round = 0; round < 200; ++round) {
    for (uint64_t h = 1000; h < 3000; ++h) q.Update(0, h * 31, 0, 1);
    for (uint64_t h = 1000; h < 3000; ++h) q.Update(0, h * 31, 1, 0);
    qsbr.Quiescent(0);
  }
  stop = true;
  reader.join();
  qsbr.Quiescent(0);
  qsbr.Quiescent(0);
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_EQ(qsbr.PendingForTest(0), 0u);  // every replaced table was freed
}

}  // namespace
}  // namespace ringmq::route
