// Tests of the session's QoS state machines, window and queue, without sockets.
#include "broker/session.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>

#include "broker/internal/test_delivery.h"

namespace ringmq::broker {
namespace {

using internal::D;

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

}  // namespace
}  // namespace ringmq::broker
