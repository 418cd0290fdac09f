// Tests of the session's QoS state machines, window and queue, without sockets.
#include "broker/session.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>

#include "broker/internal/spill_fixture.h"

namespace ringmq::broker {
namespace {

Delivery D(uint8_t qos, std::string payload = "x", int64_t expires_at_ms = 0) {
  auto m = std::make_shared<route::Message>();
  m->topic = "t";
  m->payload = std::move(payload);
  m->qos = qos;
  m->expires_at_ms = expires_at_ms;
  return Delivery{m, qos, false, {}, nullptr, 0};
}

Session::QueueLimits ByCount(uint32_t n,
                             Session::QueuePolicy policy = Session::QueuePolicy::kDropNew) {
  return Session::QueueLimits{UINT64_MAX, n, policy};
}

std::vector<uint16_t> PumpIds(Session& s, uint16_t window, int64_t now = 0) {
  std::vector<uint16_t> ids;
  s.Pump(window, now, [&](const Delivery&, uint16_t id) { ids.push_back(id); });
  return ids;
}

TEST(Session, Qos1WindowAndPuback) {
  Session s("c", ByCount(100));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s.Enqueue(D(1), true));
  EXPECT_EQ(PumpIds(s, 2), (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(s.inflight_count(), 2u);
  EXPECT_EQ(s.queued_count(), 3u);
  EXPECT_TRUE(PumpIds(s, 2).empty());  // window full
  EXPECT_TRUE(s.OnPuback(1));
  EXPECT_FALSE(s.OnPuback(1));  // unknown now
  EXPECT_EQ(PumpIds(s, 2), (std::vector<uint16_t>{3}));
}

TEST(Session, Qos2Handshake) {
  Session s("c", ByCount(100));
  ASSERT_TRUE(s.Enqueue(D(2), true));
  EXPECT_EQ(PumpIds(s, 10), (std::vector<uint16_t>{1}));
  EXPECT_FALSE(s.OnPuback(1));   // wrong ack for QoS 2
  EXPECT_FALSE(s.OnPubcomp(1));  // PUBCOMP before PUBREC
  EXPECT_TRUE(s.OnPubrec(1));
  EXPECT_TRUE(s.OnPubrec(1));  // a repeated PUBREC is answered again
  std::vector<Inflight::State> states;
  s.Resend([&](const Inflight& f) { states.push_back(f.state); });
  EXPECT_EQ(states, (std::vector<Inflight::State>{Inflight::State::kAwaitPubcomp}));
  EXPECT_TRUE(s.OnPubcomp(1));
  EXPECT_EQ(s.inflight_count(), 0u);
}

TEST(Session, ResendKeepsOrder) {
  Session s("c", ByCount(100));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.Enqueue(D(1, std::to_string(i)), true));
  (void)PumpIds(s, 10);
  std::vector<std::string> payloads;
  s.Resend([&](const Inflight& f) { payloads.push_back(f.delivery.msg->payload); });
  EXPECT_EQ(payloads, (std::vector<std::string>{"0", "1", "2"}));
}

TEST(Session, QueueBoundAndOfflineQos0) {
  Session s("c", ByCount(2));
  EXPECT_FALSE(s.Enqueue(D(0), false));  // QoS 0 is not queued offline
  EXPECT_TRUE(s.Enqueue(D(1), false));
  EXPECT_TRUE(s.Enqueue(D(1), false));
  EXPECT_FALSE(s.Enqueue(D(1), false));
  EXPECT_EQ(s.dropped(), 1u);
}

TEST(Session, DropOldestKeepsTheNewest) {
  Session s("c", ByCount(2, Session::QueuePolicy::kDropOldest));
  EXPECT_TRUE(s.Enqueue(D(1, "a"), false));
  EXPECT_TRUE(s.Enqueue(D(1, "b"), false));
  EXPECT_TRUE(s.Enqueue(D(1, "c"), false));  // queued, "a" made room
  EXPECT_EQ(s.dropped(), 1u);
  std::vector<std::string> sent;
  s.Pump(10, 0, [&](const Delivery& d, uint16_t) { sent.push_back(d.msg->payload); });
  EXPECT_EQ(sent, (std::vector<std::string>{"b", "c"}));
}

// max_session_queue_bytes: what a delivery counts (QueuedBytes), drop-new, drop-oldest making room
// for a larger message, a message larger than the limit alone, and the count back to 0 once the
// queue is sent, acknowledged, removed or dropped.
TEST(Session, QueueLimitInBytes) {
  const size_t small = QueuedBytes(D(1, std::string(100, 'a')));
  const size_t large = QueuedBytes(D(1, std::string(250, 'b')));
  EXPECT_EQ(large - small, 150u);
  {
    Session s("c", Session::QueueLimits{3 * small, 0, Session::QueuePolicy::kDropNew});
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.Enqueue(D(1, std::string(100, 'a')), false));
    EXPECT_EQ(s.queued_bytes(), 3 * small);
    EXPECT_FALSE(s.Enqueue(D(1, std::string(100, 'a')), false));
    EXPECT_EQ(s.queued_count(), 3u);
    EXPECT_EQ(s.dropped(), 1u);
    EXPECT_EQ(PumpIds(s, 10), (std::vector<uint16_t>{1, 2, 3}));
    EXPECT_EQ(s.queued_bytes(), 0u);
  }
  {
    Session s("c", Session::QueueLimits{3 * small, 0, Session::QueuePolicy::kDropOldest});
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.Enqueue(D(1, std::string(100, 'a')), false));
    // The large one needs two small ones' room.
    EXPECT_TRUE(s.Enqueue(D(1, std::string(250, 'b')), false));
    EXPECT_EQ(s.dropped(), 2u);
    EXPECT_EQ(s.queued_count(), 2u);
    EXPECT_EQ(s.queued_bytes(), small + large);
    // Larger than the whole limit: refused, nothing pushed out.
    EXPECT_FALSE(s.Enqueue(D(1, std::string(4 * small, 'c')), false));
    EXPECT_EQ(s.queued_count(), 2u);
    EXPECT_EQ(s.dropped(), 3u);
    std::vector<std::string> sent;
    s.Pump(10, 0, [&](const Delivery& d, uint16_t) { sent.push_back(d.msg->payload); });
    EXPECT_EQ(sent, (std::vector<std::string>{std::string(100, 'a'), std::string(250, 'b')}));
  }
  {
    // Restoring ignores the limits (the broker accepted those messages); removing counts down.
    Session s("c", Session::QueueLimits{small, 0, Session::QueuePolicy::kDropNew});
    for (uint64_t id = 1; id <= 3; ++id) {
      Delivery d = D(1, std::string(100, 'a'));
      d.wal_id = id;
      s.RestoreQueued(std::move(d));
    }
    EXPECT_EQ(s.queued_bytes(), 3 * small);
    s.RemoveQueued(2);
    EXPECT_EQ(s.queued_bytes(), 2 * small);
    EXPECT_TRUE(s.RestoreInflight(1, 7, Inflight::State::kAwaitPuback));
    EXPECT_EQ(s.queued_bytes(), small);
    EXPECT_EQ(s.DropDisallowed(false, [](const route::Message&) { return false; }), 1u);
    EXPECT_EQ(s.queued_bytes(), 0u);
  }
}

TEST(Session, DropDisallowedKeepsWhatTheClientHasAndReportsLoggedOnes) {
  Session s("c", ByCount(100));
  for (int i = 0; i < 6; ++i) {
    Delivery d = D(i == 1 ? 2 : 1, i % 2 == 0 ? "keep" : "drop");
    d.wal_id = 10 + i;
    ASSERT_TRUE(s.Enqueue(std::move(d), true));
  }
  ASSERT_EQ(PumpIds(s, 2), (std::vector<uint16_t>{1, 2}));  // "keep" and the QoS 2 "drop"
  ASSERT_TRUE(s.OnPubrec(2));                               // past PUBREC: only its id is left
  auto allowed = [](const route::Message& m) { return m.payload == "keep"; };
  EXPECT_EQ(s.DropDisallowed(/*inflight_too=*/false, allowed), 2u);  // queued 13 and 15
  EXPECT_EQ(s.inflight_count(), 2u);
  EXPECT_EQ(s.queued_count(), 2u);
  std::vector<uint64_t> done;
  s.DrainFinished([&](uint64_t id) { done.push_back(id); });
  EXPECT_EQ(done, (std::vector<uint64_t>{13, 15}));
  // Offline: in flight before PUBREC goes too; past PUBREC stays (PUBREL is still owed).
  ASSERT_TRUE(s.Enqueue(D(1, "drop"), false));
  (void)PumpIds(s, 10);  // in flight now, never acknowledged
  EXPECT_EQ(s.DropDisallowed(/*inflight_too=*/true, allowed), 1u);
  std::vector<uint16_t> left;
  s.Resend([&](const Inflight& f) { left.push_back(f.packet_id); });
  EXPECT_EQ(left, (std::vector<uint16_t>{1, 2, 3, 4}));
  EXPECT_EQ(s.DropDisallowed(true, [](const route::Message&) { return false; }), 3u);
  left.clear();
  s.Resend([&](const Inflight& f) { left.push_back(f.packet_id); });
  EXPECT_EQ(left, (std::vector<uint16_t>{2}));
}

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

TEST(Session, ExpiredMessagesAreNotSent) {
  Session s("c", ByCount(10));
  ASSERT_TRUE(s.Enqueue(D(1, "old", 1000), true));
  ASSERT_TRUE(s.Enqueue(D(1, "new", 5000), true));
  std::vector<std::string> sent;
  s.Pump(10, 2000, [&](const Delivery& d, uint16_t) { sent.push_back(d.msg->payload); });
  EXPECT_EQ(sent, (std::vector<std::string>{"new"}));
}

TEST(Session, PacketIdsSkipZeroAndInflight) {
  Session s("c", ByCount(100));
  // Hold ids 1 and 2 in flight, then cycle the counter all the way round with a window of 3.
  ASSERT_TRUE(s.Enqueue(D(1), true));
  ASSERT_TRUE(s.Enqueue(D(1), true));
  EXPECT_EQ(PumpIds(s, 3), (std::vector<uint16_t>{1, 2}));
  for (uint32_t id = 3; id <= 65535; ++id) {
    ASSERT_TRUE(s.Enqueue(D(1), true));
    ASSERT_EQ(PumpIds(s, 3), (std::vector<uint16_t>{static_cast<uint16_t>(id)}));
    ASSERT_TRUE(s.OnPuback(static_cast<uint16_t>(id)));
  }
  ASSERT_TRUE(s.Enqueue(D(1), true));
  EXPECT_EQ(PumpIds(s, 3), (std::vector<uint16_t>{3}));  // wraps, skips 0, 1 and 2
}

// Acknowledgements in any order, some ids held for laps of the counter: every id given is non-zero
// and not in flight (checked against the ids actually in flight), including after the fast path
// gives way to the search.
TEST(Session, PacketIdsNeverCollideWithAcksOutOfOrder) {
  Session s("c", ByCount(1'000'000));
  std::mt19937 rng(7);
  std::vector<uint16_t> held;
  for (int step = 0; step < 300'000; ++step) {
    ASSERT_TRUE(s.Enqueue(D(1), true));
    std::set<uint16_t> in_flight;
    s.ForEachInflight([&](const Inflight& f) { in_flight.insert(f.packet_id); });
    for (uint16_t id : PumpIds(s, 64)) {
      ASSERT_NE(id, 0);
      ASSERT_TRUE(in_flight.insert(id).second) << "id " << id << " given twice, step " << step;
      held.push_back(id);
    }
    // Ack a random held id, but keep a few for a long time (they block ids laps later).
    if (held.size() > 48) {
      const size_t i = rng() % held.size();
      if (held[i] % 5000 != 7 || rng() % 100000 == 0) {
        ASSERT_TRUE(s.OnPuback(held[i]));
        held.erase(held.begin() + static_cast<ptrdiff_t>(i));
      }
    }
  }
}

TEST(Session, IncomingQos2ExactlyOnce) {
  Session s("c", ByCount(10));
  EXPECT_TRUE(s.OnIncomingQos2(5));
  EXPECT_FALSE(s.OnIncomingQos2(5));  // retransmitted PUBLISH: not delivered again
  EXPECT_TRUE(s.OnPubrel(5));
  EXPECT_FALSE(s.OnPubrel(5));
  EXPECT_TRUE(s.OnIncomingQos2(5));  // the id may be reused after PUBREL
}

TEST(Session, RestoredInflightKeepsPacketIdsAndOrder) {
  // A restart replays: queued 10, 11, 12; 10 sent as id 7 (QoS 1), 11 as id 8 past PUBREC.
  Session s("c", ByCount(10));
  for (uint64_t w : {10, 11, 12}) {
    Delivery d = D(w == 10 ? 1 : 2);
    d.wal_id = w;
    ASSERT_TRUE(s.Enqueue(std::move(d), false));
  }
  EXPECT_TRUE(s.RestoreInflight(10, 7, Inflight::State::kAwaitPuback));
  EXPECT_TRUE(s.RestoreInflight(11, 8, Inflight::State::kAwaitPubrec));
  EXPECT_TRUE(s.RestoreInflight(11, 8, Inflight::State::kAwaitPubcomp));  // a later state
  EXPECT_FALSE(s.RestoreInflight(99, 9, Inflight::State::kAwaitPuback));
  std::vector<std::pair<uint16_t, Inflight::State>> resent;
  s.Resend([&](const Inflight& f) { resent.emplace_back(f.packet_id, f.state); });
  EXPECT_EQ(resent, (std::vector<std::pair<uint16_t, Inflight::State>>{
                        {7, Inflight::State::kAwaitPuback}, {8, Inflight::State::kAwaitPubcomp}}));
  EXPECT_EQ(s.queued_count(), 1u);
  EXPECT_EQ(PumpIds(s, 10), (std::vector<uint16_t>{9}));  // new ids continue after them
  // PUBCOMP finishes the record of a delivery past PUBREC; an acknowledged record is removed.
  EXPECT_TRUE(s.OnPubcomp(8));
  std::vector<uint64_t> done;
  s.DrainFinished([&](uint64_t id) { done.push_back(id); });
  EXPECT_EQ(done, std::vector<uint64_t>{11});
  s.RemoveQueued(10);
  EXPECT_EQ(s.inflight_count(), 1u);
}

TEST(Session, LoggedQos2RecordLivesUntilPubcomp) {
  Session s("c", ByCount(10));
  Delivery d = D(2);
  d.wal_id = 5;
  ASSERT_TRUE(s.Enqueue(std::move(d), true));
  EXPECT_EQ(PumpIds(s, 10), std::vector<uint16_t>{1});
  uint64_t wal_id = 0;
  EXPECT_TRUE(s.OnPubrec(1, &wal_id));
  EXPECT_EQ(wal_id, 5u);
  std::vector<uint64_t> done;
  s.DrainFinished([&](uint64_t id) { done.push_back(id); });
  EXPECT_TRUE(done.empty());            // the packet id still matters: PUBREL after a restart
  EXPECT_TRUE(s.OnPubrec(1, &wal_id));  // a repeated PUBREC changes nothing
  EXPECT_EQ(wal_id, 0u);
  EXPECT_TRUE(s.OnPubcomp(1));
  s.DrainFinished([&](uint64_t id) { done.push_back(id); });
  EXPECT_EQ(done, std::vector<uint64_t>{5});
}

TEST(Session, OnlyLoggedIncomingQos2IdsGoIntoSnapshots) {
  Session s("c", ByCount(10));
  EXPECT_TRUE(s.OnIncomingQos2(1));
  EXPECT_TRUE(s.OnIncomingQos2(2));
  s.MarkIncomingQos2Logged(2);  // 1 still waits for other shards' records
  std::vector<uint16_t> logged;
  s.ForEachLoggedIncomingQos2([&](uint16_t id) { logged.push_back(id); });
  EXPECT_EQ(logged, std::vector<uint16_t>{2});
  EXPECT_FALSE(s.OnIncomingQos2(1));  // still known as received
}

TEST(Session, RestorePastPubrecKeepsOnlyTheIdAndDropsLostPlaceholders) {
  Session s("c", ByCount(10));
  for (uint64_t w : {1, 2}) {
    Delivery d = D(2, "");
    d.msg = std::make_shared<route::Message>();  // a snapshot's placeholder: empty topic
    d.wal_id = w;
    ASSERT_TRUE(s.Enqueue(std::move(d), false));
  }
  EXPECT_TRUE(s.RestoreInflight(1, 4, Inflight::State::kAwaitPubcomp));
  s.DropPlaceholders();  // 2 lost its packet id state: never sent as an empty PUBLISH
  EXPECT_EQ(s.queued_count(), 0u);
  std::vector<bool> has_message;
  s.Resend([&](const Inflight& f) { has_message.push_back(f.delivery.msg != nullptr); });
  EXPECT_EQ(has_message, std::vector<bool>{false});
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
