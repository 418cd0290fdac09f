// ShardLog through a real io_uring on a temp directory, with a fake shard (ShardLog::Host):
// snapshots captured and written by the background thread (spilled queues read from their pinned
// files), the log truncated behind them, a failed log reopened, answers released once durable or
// failed (broker/shard_log.h).
#include "broker/shard_log.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "broker/internal/spill_fixture.h"
#include "net/internal/test_util.h"
#include "net/user_data.h"

namespace ringmq::broker {
namespace {

constexpr uint8_t kWalKind = 5;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Delivery Logged(uint64_t wal_id, std::string payload) {
  auto m = std::make_shared<route::Message>();
  m->topic = "t";
  m->payload = std::move(payload);
  m->qos = 1;
  return Delivery{m, 1, false, {}, nullptr, wal_id};
}

// The shard: its state is a list of sessions (one record each) and, optionally, one session
// whose queue spilled; it counts the wake-ups the snapshot thread sends.
class FakeShard final : public ShardLog::Host {
 public:
  bool AddStateRecords(SnapshotRecords& out) override {
    ++captures;
    for (const std::string& id : sessions) out.Add(wal::WalSessionCreated{id, 60, 5, 0, 0});
    if (spilled != nullptr) return out.AddSpilled(spilled_id, *spilled);
    return readable;
  }
  void WakeFromAnyThread() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++wakes_;
    cv_.notify_all();
  }
  // Blocks until the snapshot thread has woken the loop `n` times in all (or 10 s passed).
  bool WaitForWakes(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return wakes_ >= n; });
  }

  std::vector<std::string> sessions;
  std::string spilled_id;
  const Session* spilled = nullptr;
  bool readable = true;
  int captures = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int wakes_ = 0;
};

class ShardLogTest : public internal::SpillFixture {
 protected:
  void SetUp() override {
    internal::SpillFixture::SetUp();
    cfg_.data_dir = root_;
    cfg_.durability = wal::WalDurability::kSync;
    cfg_.snapshot_interval_s = 0;
    cfg_.snapshot_log_bytes = 1;  // any record makes the next tick snapshot
  }
  // What recovering the shard's log yields: session ids and queued message ids, in order.
  std::vector<std::string> Recovered() {
    std::vector<std::string> got;
    wal::WalRecoverStats st;
    std::string error;
    EXPECT_TRUE(wal::RecoverWal(
        root_ + "/wal", 0, {},
        [&](const wal::WalRecord& r) {
          if (const auto* s = std::get_if<wal::WalSessionCreated>(&r)) got.push_back(s->client_id);
          if (const auto* q = std::get_if<wal::WalMessageQueued>(&r)) {
            got.push_back(q->client_id + "#" + std::to_string(q->message_id) + "=" +
                          q->message.payload);
          }
          if (const auto* c = std::get_if<wal::WalRetainedCleared>(&r)) got.push_back(c->topic);
        },
        &st, &error))
        << error;
    return got;
  }
  // Loop turns until the log has nothing in flight.
  static void Drain(net::Ring& ring, ShardLog& log) {
    for (int i = 0; i < 500 && !log.idle(); ++i) {
      log.Flush(ring, kWalKind, NowMs());
      (void)ring.SubmitAndWait(1, 20'000'000);
      ring.ForEachCqe([&](const net::Completion& c) { log.OnCompletion(c); });
    }
    ASSERT_TRUE(log.idle());
  }

  Config cfg_;
  base::OwnerThread owner_;
  FakeShard host_;
};

TEST_F(ShardLogTest, WithoutALogNothingIsAppendedAndAnswersDoNotWait) {
  ShardLog log(host_, 0, cfg_, owner_);
  log.Append(wal::WalRetainedCleared{"t"});
  EXPECT_FALSE(log.open());
  EXPECT_FALSE(log.answers_wait());
  EXPECT_EQ(log.appended_seq(), 0u);
  EXPECT_EQ(log.stats(), nullptr);
  EXPECT_EQ(log.next_flush_ms(42), 42);
  log.Tick(NowMs());  // no snapshot without a log
  EXPECT_EQ(host_.captures, 0);
}

TEST_F(ShardLogTest, CountsPersistentSessionsAndKeepsMessageIdsAboveRestoredOnes) {
  ShardLog log(host_, 0, cfg_, owner_);
  EXPECT_FALSE(log.may_persist());
  log.CountLogged(true);
  log.CountLogged(true);
  log.CountLogged(false);
  EXPECT_TRUE(log.may_persist());
  log.CountLogged(false);
  EXPECT_FALSE(log.may_persist());
  log.SeenMessageId(41);
  log.SeenMessageId(7);  // never lowers it
  EXPECT_EQ(log.NewMessageId(), 42u);
  EXPECT_EQ(log.NewMessageId(), 43u);
}

// The startup snapshot, records after it, then a periodic snapshot written by the thread: the
// segments it covers are deleted, so recovery yields the newest state only.
TEST_F(ShardLogTest, PeriodicSnapshotReplacesTheLogBehindIt) {
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  {
    ShardLog log(host_, 0, cfg_, owner_);
    host_.sessions = {"a"};
    std::string error;
    ASSERT_TRUE(log.WriteSnapshot(1, NowMs(), &error)) << error;
    log.Open(1, /*snapshot_written=*/true);
    EXPECT_TRUE(log.answers_wait());
    log.Append(wal::WalRetainedCleared{"r1"});
    Drain(ring, log);
    EXPECT_EQ(Recovered(), (std::vector<std::string>{"a", "r1"}));

    host_.sessions = {"b", "c"};
    log.Tick(NowMs());
    ASSERT_EQ(host_.captures, 2);
    log.Append(wal::WalRetainedCleared{"r2"});  // after the capture: in the next segment
    Drain(ring, log);
    ASSERT_TRUE(host_.WaitForWakes(1));  // the thread is done (it woke the loop last)
    EXPECT_EQ(Recovered(), (std::vector<std::string>{"b", "c", "r2"}));
    log.Tick(NowMs());  // joins it; r2 was logged since the capture: another snapshot
    EXPECT_EQ(host_.captures, 3);
    ASSERT_TRUE(host_.WaitForWakes(2));
    log.Tick(NowMs());  // joins it; nothing logged since: none
    EXPECT_EQ(host_.captures, 3);
    EXPECT_EQ(Recovered(), (std::vector<std::string>{"b", "c"}));
    log.Close(ring, kWalKind);  // one more at shutdown
    EXPECT_EQ(host_.captures, 4);
  }
  EXPECT_EQ(Recovered(), (std::vector<std::string>{"b", "c"}));
}

// A spilled queue is not copied by the loop: the capture pins its file and the thread reads the
// entries there; the ones acknowledged meanwhile (removed) are left out.
TEST_F(ShardLogTest, SnapshotThreadReadsTheSpilledQueueFromItsFile) {
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  Session::QueueLimits limits;
  limits.memory_bytes = QueuedBytes(Logged(1, "m1"));  // everything after the first one spills
  limits.spill = &ctx_;
  Session s("q", limits);
  for (uint64_t id = 1; id <= 5; ++id) {
    ASSERT_TRUE(s.Enqueue(Logged(id, "m" + std::to_string(id)), /*online=*/false));
  }
  ASSERT_EQ(s.spilled_count(), 4u);
  s.RemoveQueued(3);
  host_.spilled = &s;
  host_.spilled_id = "q";
  ShardLog log(host_, 0, cfg_, owner_);
  std::string error;
  ASSERT_TRUE(log.WriteSnapshot(1, NowMs(), &error)) << error;  // read by the loop (startup)
  EXPECT_EQ(Recovered(), (std::vector<std::string>{"q#2=m2", "q#4=m4", "q#5=m5"}));
  log.Open(1, true);
  log.Append(wal::WalRetainedCleared{"r"});
  Drain(ring, log);
  s.RemoveQueued(4);
  log.Tick(NowMs());
  ASSERT_TRUE(host_.WaitForWakes(1));
  log.Tick(NowMs());
  // (The host adds only the spilled part: the session's first message is in memory.)
  EXPECT_EQ(Recovered(), (std::vector<std::string>{"q#2=m2", "q#5=m5"}));
  log.Close(ring, kWalKind);
}

// An unreadable spilled queue: no snapshot (its records would be deleted with the segments).
TEST_F(ShardLogTest, UnreadableStateWritesNoSnapshot) {
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  ShardLog log(host_, 0, cfg_, owner_);
  host_.readable = false;
  std::string error;
  EXPECT_FALSE(log.WriteSnapshot(1, NowMs(), &error));
  EXPECT_EQ(error, "reading a spilled queue failed");
  host_.readable = true;
  host_.sessions = {"a"};
  ASSERT_TRUE(log.WriteSnapshot(1, NowMs(), &error)) << error;
  log.Open(1, true);
  log.Append(wal::WalRetainedCleared{"r"});
  Drain(ring, log);
  host_.readable = false;
  host_.sessions = {"lost"};
  log.Tick(NowMs());  // captured, not used: nothing is written or deleted
  EXPECT_EQ(host_.captures, 3);
  EXPECT_EQ(Recovered(), (std::vector<std::string>{"a", "r"}));
  host_.readable = true;
  log.Close(ring, kWalKind);
}

// A log that could not be opened at start: answers fail until the reopening snapshot is written;
// then the new segment takes records and answers are positive again.
TEST_F(ShardLogTest, FailedLogIsReopenedBehindASnapshot) {
  net::Ring ring;
  RINGMQ_INIT_RING_OR_SKIP(ring, 64, 0);
  ShardLog log(host_, 0, cfg_, owner_);
  host_.sessions = {"a"};
  log.Open(3, /*snapshot_written=*/false);
  log.gate().Hold(PendingAck{.packet_id = 7});
  log.gate().NoteLocal();
  log.Append(wal::WalRetainedCleared{"early"});
  log.EndTurn([](uint16_t, uint64_t) {});
  EXPECT_TRUE(log.failed());
  std::vector<std::pair<uint16_t, bool>> released;
  auto release = [&](const PendingAck& a, bool not_durable) {
    released.emplace_back(a.packet_id, not_durable);
  };
  log.ReleaseAnswers([](uint16_t) { return false; }, release);
  EXPECT_EQ(released, (std::vector<std::pair<uint16_t, bool>>{{7, true}}));

  log.Tick(NowMs());  // at once: a snapshot of the state under a fresh number
  ASSERT_EQ(host_.captures, 1);
  log.EndTurn([](uint16_t, uint64_t) {});
  EXPECT_FALSE(log.failed());  // an attempt is under way
  ASSERT_TRUE(host_.WaitForWakes(1));
  log.Tick(NowMs());  // the snapshot is there: the new writer opens the segment after it
  log.gate().Hold(PendingAck{.packet_id = 8});
  log.gate().NoteLocal();
  log.Append(wal::WalRetainedCleared{"late"});
  log.EndTurn([](uint16_t, uint64_t) {});
  released.clear();
  for (int i = 0; i < 500 && released.empty(); ++i) {
    log.Flush(ring, kWalKind, NowMs());
    (void)ring.SubmitAndWait(1, 20'000'000);
    ring.ForEachCqe([&](const net::Completion& c) { log.OnCompletion(c); });
    log.ReleaseAnswers([](uint16_t) { return false; }, release);
  }
  EXPECT_EQ(released, (std::vector<std::pair<uint16_t, bool>>{{8, false}}));
  EXPECT_FALSE(log.failed());
  EXPECT_EQ(Recovered(), (std::vector<std::string>{"a", "late"}));
  log.Close(ring, kWalKind);
}

}  // namespace
}  // namespace ringmq::broker
