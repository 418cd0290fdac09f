// Tests of a session whose queue spills to disk (broker/spill.h): order, the shard-wide memory
// bound, queue policies reaching into the spill, restore, ACL changes, the disk budget.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "broker/internal/spill_fixture.h"
#include "broker/internal/test_delivery.h"
#include "broker/session.h"

namespace ringmq::broker {
namespace {

using internal::D;

// A session whose queue keeps `memory` bytes in memory and spills the rest to a temp folder.
class SpilledSession : public internal::SpillFixture {
 protected:
  Session::QueueLimits Limits(uint64_t memory,
                              Session::QueuePolicy policy = Session::QueuePolicy::kDropNew,
                              uint64_t max_bytes = UINT64_MAX) {
    Session::QueueLimits l;
    l.max_bytes = max_bytes;
    l.policy = policy;
    l.memory_bytes = memory;
    l.spill = &ctx_;
    return l;
  }
  // Pumps and acknowledges everything, returning the payloads in the order sent.
  static std::vector<std::string> DrainAll(Session& s) {
    std::vector<std::string> got;
    for (;;) {
      std::vector<uint16_t> ids;
      s.Pump(100, 0, [&](const Delivery& d, uint16_t id) {
        got.push_back(d.msg->payload);
        ids.push_back(id);
      });
      if (ids.empty()) return got;
      for (uint16_t id : ids) EXPECT_TRUE(s.OnPuback(id));
    }
  }
};

TEST_F(SpilledSession, QueueBeyondMemoryComesBackInOrder) {
  const size_t one = QueuedBytes(D(1, "00000"));
  Session s("c", Limits(/*memory=*/10 * one));
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    char p[16];
    snprintf(p, sizeof p, "%05d", i);
    ASSERT_TRUE(s.Enqueue(D(1, p), /*online=*/false));
  }
  EXPECT_EQ(s.queued_count(), size_t{n});
  EXPECT_EQ(s.queued_bytes(), n * one);
  EXPECT_EQ(s.spilled_count(), size_t{n - 10});  // all but the memory window
  ASSERT_NE(s.spill(), nullptr);
  EXPECT_GT(budget_.used() + s.spill()->disk_bytes(), 0u);
  const std::vector<std::string> got = DrainAll(s);
  ASSERT_EQ(got.size(), size_t{n});
  for (int i = 0; i < n; ++i) {
    char p[16];
    snprintf(p, sizeof p, "%05d", i);
    ASSERT_EQ(got[i], p);
  }
  EXPECT_EQ(s.queued_count(), 0u);
  EXPECT_EQ(s.queued_bytes(), 0u);
  EXPECT_EQ(budget_.used(), 0u);  // the file emptied: space given back
  EXPECT_EQ(s.spill(), nullptr);  // ... and closed
}

TEST_F(SpilledSession, TheShardBoundKeepsManyQueuesSmallInMemory) {
  // Each queue may keep 10 messages in memory, the shard 15 for all of them: the first queue
  // takes 10, the second 5, the third only its oldest (the queue moves on whatever the bounds).
  const size_t one = QueuedBytes(D(1, "00000"));
  ctx_.memory_max = 15 * one;
  {
    std::vector<std::unique_ptr<Session>> sessions;
    for (int k = 0; k < 3; ++k) {
      sessions.push_back(std::make_unique<Session>("c" + std::to_string(k), Limits(10 * one)));
      for (int i = 0; i < 100; ++i) {
        char p[16];
        snprintf(p, sizeof p, "%05d", i);
        ASSERT_TRUE(sessions.back()->Enqueue(D(1, p), /*online=*/false));
      }
    }
    EXPECT_EQ(sessions[0]->spilled_count(), 90u);
    EXPECT_EQ(sessions[1]->spilled_count(), 95u);
    EXPECT_EQ(sessions[2]->spilled_count(), 99u);
    EXPECT_EQ(ctx_.memory_used, 16 * one);
    // Draining one gives its memory back to the others, and every queue comes back in order.
    for (auto& s : sessions) {
      const std::vector<std::string> got = DrainAll(*s);
      ASSERT_EQ(got.size(), 100u);
      for (int i = 0; i < 100; ++i) {
        char p[16];
        snprintf(p, sizeof p, "%05d", i);
        ASSERT_EQ(got[i], p);
      }
      EXPECT_LE(ctx_.memory_used, 16 * one);
    }
    EXPECT_EQ(ctx_.memory_used, 0u);
    // A session that goes away with a queue gives its memory back too.
    sessions[0]->Enqueue(D(1, "x"), false);
    EXPECT_GT(ctx_.memory_used, 0u);
  }
  EXPECT_EQ(ctx_.memory_used, 0u);
}

TEST_F(SpilledSession, DropOldestReachesIntoTheSpill) {
  const size_t one = QueuedBytes(D(1, "0000"));
  Session s("c", Limits(2 * one, Session::QueuePolicy::kDropOldest, /*max_bytes=*/5 * one));
  for (int i = 0; i < 9; ++i) {
    Delivery d = D(1, "000" + std::to_string(i));
    d.wal_id = 100 + i;
    ASSERT_TRUE(s.Enqueue(std::move(d), false));
  }
  EXPECT_EQ(s.dropped(), 4u);
  std::vector<uint64_t> done;
  s.DrainFinished([&](uint64_t id) { done.push_back(id); });
  EXPECT_EQ(done, (std::vector<uint64_t>{100, 101, 102, 103}));
  EXPECT_EQ(DrainAll(s), (std::vector<std::string>{"0004", "0005", "0006", "0007", "0008"}));
}

TEST_F(SpilledSession, DropOldestDropsNothingForAMessageTheSpillRefuses) {
  DiskBudget none(0);
  ctx_.budget = &none;
  const size_t one = QueuedBytes(D(1, std::string(100, 'x')));
  Session s("c", Limits(2 * one, Session::QueuePolicy::kDropOldest, /*max_bytes=*/5 * one));
  int taken = 0;
  for (int i = 0; i < 2000 && s.disk_refused() == 0; ++i) {
    taken += s.Enqueue(D(1, std::string(100, 'x')), false) ? 1 : 0;
  }
  // Full (5), then the write buffer cannot be flushed: refused, and nothing older dropped for it.
  const uint64_t dropped = s.dropped();
  const size_t queued = s.queued_count();
  ASSERT_EQ(s.disk_refused(), 1u);
  EXPECT_FALSE(s.Enqueue(D(1, std::string(100, 'x')), false));
  EXPECT_EQ(s.dropped(), dropped);
  EXPECT_EQ(s.queued_count(), queued);
  EXPECT_EQ(size_t(taken) - dropped, queued);
}

TEST_F(SpilledSession, RestoreAcksAndInflightReachSpilledDeliveries) {
  const size_t one = QueuedBytes(D(1, "p"));
  Session s("c", Limits(4 * one));
  for (int i = 0; i < 100; ++i) {
    Delivery d = D(1, std::to_string(i));
    d.wal_id = 1 + i;
    s.RestoreQueued(std::move(d));
  }
  ASSERT_EQ(s.spilled_count(), 96u);
  s.RemoveQueued(50);  // on disk: skipped when read back
  s.RemoveQueued(1);   // in memory
  // Sent before the restart: found by reading the spill up to it, in send order.
  ASSERT_TRUE(s.RestoreInflight(2, 7, Inflight::State::kAwaitPuback));
  ASSERT_TRUE(s.RestoreInflight(30, 8, Inflight::State::kAwaitPuback));
  EXPECT_FALSE(s.RestoreInflight(1000, 9, Inflight::State::kAwaitPuback));
  std::vector<uint16_t> resent;
  s.Resend([&](const Inflight& f) { resent.push_back(f.packet_id); });
  EXPECT_EQ(resent, (std::vector<uint16_t>{7, 8}));
  ASSERT_TRUE(s.OnPuback(7));
  ASSERT_TRUE(s.OnPuback(8));
  std::vector<std::string> got = DrainAll(s);
  std::vector<std::string> want;
  for (int i = 2; i < 100; ++i) {
    if (i != 29 && i != 49) want.push_back(std::to_string(i));  // wal ids 30 and 50
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(s.queued_bytes(), 0u);
}

// Topics ok/x and no/x alternating, 10 deliveries, 2 of them in memory; the token narrowed to
// ok/#.
std::unique_ptr<Session> WithNarrowedAcl(Session::QueueLimits limits) {
  auto s = std::make_unique<Session>("c", limits);
  for (int i = 0; i < 10; ++i) {
    Delivery d = D(1, std::to_string(i));
    auto m = std::make_shared<route::Message>(*d.msg);
    m->topic = i % 2 == 0 ? "ok/x" : "no/x";
    d.msg = m;
    d.wal_id = 1 + i;
    EXPECT_TRUE(s->Enqueue(std::move(d), false));
  }
  acl::Token t;
  t.id = 1;
  t.key = "k";
  t.access.type = acl::AccessType::kAcl;
  t.access.acl = {{"ok/#", acl::kActionSubscribe, 0}};
  s->acl = acl::CompiledAcl::Compile(t, 1);
  return s;
}

TEST_F(SpilledSession, AclChangeRewritesTheSpill) {
  const size_t one = QueuedBytes(D(1, "p"));
  auto s = WithNarrowedAcl(Limits(2 * one + 6));  // (topics 3 bytes longer than "t")
  const size_t dropped =
      s->DropDisallowed(true, [&](const route::Message& m) { return s->acl->CanReceive(m.topic); });
  EXPECT_EQ(dropped, 5u);  // at once, on disk too: counted and logged now
  EXPECT_EQ(s->queued_count(), 5u);
  EXPECT_EQ(s->queued_bytes(), 5 * (one + 3));
  std::vector<uint64_t> done;
  s->DrainFinished([&](uint64_t id) { done.push_back(id); });
  std::sort(done.begin(), done.end());
  EXPECT_EQ(done, (std::vector<uint64_t>{2, 4, 6, 8, 10}));
  EXPECT_EQ(DrainAll(*s), (std::vector<std::string>{"0", "2", "4", "6", "8"}));
  EXPECT_EQ(s->acl_dropped(), 0u);
}

TEST_F(SpilledSession, AclChangeWithoutDiskChecksTheSpillAsItIsRead) {
  const size_t one = QueuedBytes(D(1, "p"));
  auto s = WithNarrowedAcl(Limits(2 * one + 6));
  ctx_.dir = "/proc/no-such-dir";  // no new spill file can be made
  const size_t dropped =
      s->DropDisallowed(true, [&](const route::Message& m) { return s->acl->CanReceive(m.topic); });
  EXPECT_EQ(dropped, 1u);  // the one in memory; the spilled ones on reading
  EXPECT_EQ(DrainAll(*s), (std::vector<std::string>{"0", "2", "4", "6", "8"}));
  EXPECT_EQ(s->acl_dropped(), 4u);
  EXPECT_EQ(s->queued_bytes(), 0u);
  std::vector<uint64_t> done;
  s->DrainFinished([&](uint64_t id) { done.push_back(id); });
  std::sort(done.begin(), done.end());
  EXPECT_EQ(done, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));  // acked or refused
}

TEST_F(SpilledSession, DiskBudgetRefusesNewDeliveriesAndCountsThem) {
  DiskBudget none(0);
  ctx_.budget = &none;
  const size_t one = QueuedBytes(D(1, "p"));
  Session s("c", Limits(2 * one));
  int taken = 0;
  for (int i = 0; i < 2000; ++i) taken += s.Enqueue(D(1, std::string(100, 'x')), false) ? 1 : 0;
  // Two in memory, the write buffer's worth in the spill, the rest refused.
  EXPECT_GT(taken, 2);
  EXPECT_LT(taken, 2000);
  EXPECT_EQ(s.disk_refused(), uint64_t(2000 - taken));
  EXPECT_NE(s.spill_error().find("max_queue_disk_bytes"), std::string::npos);
  EXPECT_EQ(DrainAll(s).size(), size_t(taken));
}

TEST_F(SpilledSession, UndeliveredIncludesTheSpill) {
  const size_t one = QueuedBytes(D(1, "p"));
  Session s("c", Limits(2 * one));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(s.Enqueue(D(1, std::to_string(i)), false));
  std::vector<std::string> seen;
  s.ForEachUndelivered([&](const Delivery& d) { seen.push_back(d.msg->payload); });
  EXPECT_EQ(seen, (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(s.queued_count(), 6u);  // only looked at
}

TEST_F(SpilledSession, DrainsOneAcknowledgementAtATimeAcrossRefills) {
  Session s("c", Limits(1 << 20));
  const int n = 30000;  // ~3 MB: the 1 MiB in memory refilled a few times
  for (int i = 0; i < n; ++i) {
    Delivery d = D(1, std::to_string(i) + "-xxxxxxxxxxxxxxxxxxxx");
    d.wal_id = i + 1;
    ASSERT_TRUE(s.Enqueue(std::move(d), false));
  }
  std::deque<uint16_t> inflight;
  int got = 0;
  s.Pump(256, 0, [&](const Delivery& d, uint16_t id) {
    ASSERT_EQ(d.msg->payload, std::to_string(got) + "-xxxxxxxxxxxxxxxxxxxx");
    ++got;
    inflight.push_back(id);
  });
  while (!inflight.empty()) {
    ASSERT_TRUE(s.OnPuback(inflight.front()));
    inflight.pop_front();
    s.DrainFinished([](uint64_t) {});
    s.Pump(256, 0, [&](const Delivery& d, uint16_t id) {
      ASSERT_EQ(d.msg->payload, std::to_string(got) + "-xxxxxxxxxxxxxxxxxxxx");
      ++got;
      inflight.push_back(id);
    });
  }
  EXPECT_EQ(got, n) << s.queued_count() << " queued, " << s.spilled_count() << " spilled";
}

}  // namespace
}  // namespace ringmq::broker
