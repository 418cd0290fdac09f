#include "broker/connection_quota.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ringmq::broker {
namespace {

using Verdict = ConnectionQuota::Verdict;
constexpr ConnectionQuota::Takeover kNew{};

TEST(ConnectionQuota, TotalLimitRefusesBeyondItAndFreesOnRelease) {
  ConnectionQuota q;
  EXPECT_EQ(q.Acquire("", 2, 0, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("k", 2, 0, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("", 2, 0, kNew), Verdict::kTotalExceeded);
  EXPECT_EQ(q.total(), 2u);  // a refusal leaves nothing counted
  q.Release("");
  EXPECT_EQ(q.Acquire("", 2, 0, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("", 0, 0, kNew), Verdict::kAccepted);  // 0: unlimited
  EXPECT_EQ(q.total(), 3u);
}

TEST(ConnectionQuota, PerKeyLimitCountsEachKeyAlone) {
  ConnectionQuota q;
  EXPECT_EQ(q.Acquire("a", 0, 2, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("a", 0, 2, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("a", 0, 2, kNew), Verdict::kKeyExceeded);
  EXPECT_EQ(q.Acquire("b", 0, 2, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("", 0, 1, kNew), Verdict::kAccepted);  // anonymous: no key to count
  EXPECT_EQ(q.Acquire("", 0, 1, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.ForKey("a"), 2u);
  EXPECT_EQ(q.ForKey("b"), 1u);
  EXPECT_EQ(q.total(), 5u);  // the refused one was taken back from the total
  q.Release("a");
  EXPECT_EQ(q.Acquire("a", 0, 2, kNew), Verdict::kAccepted);
  // Keys are counted even without a limit, so a limit set later (SIGHUP) sees the truth.
  EXPECT_EQ(q.Acquire("a", 0, 0, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.ForKey("a"), 3u);
  EXPECT_EQ(q.Acquire("a", 0, 3, kNew), Verdict::kKeyExceeded);
}

TEST(ConnectionQuota, TakeoverIsNotRefusedForTheConnectionItReplaces) {
  ConnectionQuota q;
  EXPECT_EQ(q.Acquire("a", 1, 1, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("a", 1, 1, kNew), Verdict::kTotalExceeded);
  // The same client id again: the old connection is counted and released right after.
  EXPECT_EQ(q.Acquire("a", 1, 1, {.total = true, .key = true}), Verdict::kAccepted);
  q.Release("a");
  EXPECT_EQ(q.total(), 1u);
  EXPECT_EQ(q.ForKey("a"), 1u);
  // A takeover with another token: the allowance is for the total only.
  EXPECT_EQ(q.Acquire("b", 0, 1, kNew), Verdict::kAccepted);
  EXPECT_EQ(q.Acquire("b", 0, 1, {.total = true, .key = false}), Verdict::kKeyExceeded);
}

TEST(ConnectionQuota, ConcurrentAcquiresNeverOvershootAndAllReleasesReturnToZero) {
  constexpr uint32_t kMax = 50;
  constexpr int kThreads = 4;
  ConnectionQuota q;
  // Accepted and not yet released (total() also counts reservations about to be taken back).
  std::atomic<uint32_t> held_now{0};
  std::atomic<uint32_t> peak{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = t % 2 ? "odd" : "even";
      std::vector<bool> held;
      for (int i = 0; i < 20000; ++i) {
        if (!held.empty() && (i % 3 == 0)) {
          held_now.fetch_sub(1);
          q.Release(key);
          held.pop_back();
          continue;
        }
        if (q.Acquire(key, kMax, 30, kNew) != Verdict::kAccepted) continue;
        held.push_back(true);
        uint32_t now = held_now.fetch_add(1) + 1;
        uint32_t p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
      }
      for (size_t i = 0; i < held.size(); ++i) {
        held_now.fetch_sub(1);
        q.Release(key);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(peak.load(), kMax);
  EXPECT_GT(peak.load(), 0u);
  EXPECT_EQ(q.total(), 0u);
  EXPECT_EQ(q.ForKey("odd"), 0u);
  EXPECT_EQ(q.ForKey("even"), 0u);
}

}  // namespace
}  // namespace ringmq::broker
