#include "broker/ack_gate.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringmq::broker {
namespace {

struct Released {
  std::vector<uint16_t> ids;
  std::vector<bool> failed;
  std::vector<proto::ReasonCode> reasons;
};

void Release(AckGate& g, uint64_t durable, Released* out, bool local_failed = false,
             uint16_t failed_shard = 0xFFFF) {
  g.Release(
      durable, local_failed, [&](uint16_t q) { return q == failed_shard; },
      [&](const PendingAck& a, bool failed) {
        out->ids.push_back(a.packet_id);
        out->failed.push_back(failed);
        out->reasons.push_back(a.reason);
      });
}

PendingAck Ack(uint16_t id, uint64_t tag = 0) {
  PendingAck a{0, 1, proto::PacketType::kPuback, id};
  a.tag = tag;
  return a;
}

TEST(AckGate, LocalRecordsHoldUntilDurable) {
  AckGate g(2);
  g.NoteLocal();
  g.Hold(Ack(1));
  g.CloseTurn(/*local_appended=*/7);
  Released r;
  Release(g, 6, &r);
  EXPECT_TRUE(r.ids.empty());
  Release(g, 7, &r);
  EXPECT_EQ(r.ids, std::vector<uint16_t>{1});
  EXPECT_TRUE(g.idle());
}

TEST(AckGate, AnswersWithNothingToWaitForStillKeepTheirOrder) {
  AckGate g(1);
  g.NoteLocal();
  g.Hold(Ack(1));
  g.CloseTurn(5);
  g.Hold(Ack(2));  // held only because 1 is held
  g.CloseTurn(9);
  Released r;
  Release(g, 4, &r);
  EXPECT_TRUE(r.ids.empty());  // 2 needs nothing, but may not overtake 1
  Release(g, 5, &r);
  EXPECT_EQ(r.ids, (std::vector<uint16_t>{1, 2}));
}

TEST(AckGate, RemoteShardsMustConfirmTheirCount) {
  AckGate g(3);
  g.NoteRemote(1);
  g.NoteRemote(2);
  g.Hold(Ack(1));
  g.CloseTurn(0);
  g.NoteRemote(1);
  g.Hold(Ack(2));
  g.CloseTurn(0);
  Released r;
  g.OnConfirm(1, 1);
  Release(g, 0, &r);
  EXPECT_TRUE(r.ids.empty());  // shard 2 has not confirmed
  g.OnConfirm(2, 1);
  Release(g, 0, &r);
  EXPECT_EQ(r.ids, std::vector<uint16_t>{1});
  g.OnConfirm(1, 2);
  Release(g, 0, &r);
  EXPECT_EQ(r.ids, (std::vector<uint16_t>{1, 2}));
}

TEST(AckGate, AFailedLogFailsTheAnswersWaitingForIt) {
  AckGate g(2);
  g.NoteLocal();
  g.Hold(Ack(1));
  g.CloseTurn(3);
  g.NoteRemote(1);
  g.Hold(Ack(2));
  g.CloseTurn(3);
  Released r;
  Release(g, 2, &r, /*local_failed=*/true);
  EXPECT_EQ(r.ids, std::vector<uint16_t>{1});
  EXPECT_EQ(r.failed, std::vector<bool>{true});
  Release(g, 3, &r, false, /*failed_shard=*/1);
  EXPECT_EQ(r.ids, (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(r.failed, (std::vector<bool>{true, true}));
}

TEST(AckGate, ARefusalOnAnotherShardMakesItsAnswerQuotaExceeded) {
  AckGate g(2);
  const uint64_t first = g.NewTag(), second = g.NewTag(), third = g.NewTag();
  EXPECT_LT(first, second);
  for (uint64_t tag : {first, second, third}) {
    g.NoteRemote(1, /*durable=*/false);
    g.Hold(Ack(static_cast<uint16_t>(tag), tag));
  }
  g.CloseTurn(0);
  g.OnRefused(second);  // shard 1 reports it before it confirms the three
  Released r;
  Release(g, 0, &r);
  EXPECT_TRUE(r.ids.empty());  // the refusals of the others may still come
  g.OnConfirm(1, 3);
  Release(g, 0, &r);
  EXPECT_EQ(r.reasons, (std::vector<proto::ReasonCode>{proto::ReasonCode::kSuccess,
                                                       proto::ReasonCode::kQuotaExceeded,
                                                       proto::ReasonCode::kSuccess}));
  EXPECT_EQ(r.failed, (std::vector<bool>{false, false, false}));
  EXPECT_TRUE(g.idle());
}

TEST(AckGate, AnAnswerWaitingOnlyForRefusalsDoesNotFailWithThatShardsLog) {
  // Shard 1's log failed: it confirms nothing until the log is back. An answer that needs its
  // records durable fails; one that only waited for its refusals is released as it is.
  AckGate g(2);
  g.NoteRemote(1, /*durable=*/false);
  g.Hold(Ack(1, g.NewTag()));
  g.CloseTurn(0);
  g.NoteRemote(1, /*durable=*/true);
  g.Hold(Ack(2, g.NewTag()));
  g.CloseTurn(0);
  Released r;
  Release(g, 0, &r, false, /*failed_shard=*/1);
  EXPECT_EQ(r.ids, (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(r.failed, (std::vector<bool>{false, true}));
}

TEST(AckGate, RefusalsOfReleasedAnswersAreForgotten) {
  AckGate g(2);
  const uint64_t early = g.NewTag();
  g.OnRefused(early);  // its answer was released without waiting (invariant 3's failed log)
  g.NoteRemote(1, false);
  g.Hold(Ack(5, g.NewTag()));
  g.CloseTurn(0);
  g.OnConfirm(1, 1);
  Released r;
  Release(g, 0, &r);
  EXPECT_EQ(r.reasons, std::vector<proto::ReasonCode>{proto::ReasonCode::kSuccess});
  // A later answer with a new tag is not mistaken for the early one either.
  g.NoteRemote(1, false);
  g.Hold(Ack(6, g.NewTag()));
  g.CloseTurn(0);
  g.OnConfirm(1, 2);
  Release(g, 0, &r);
  EXPECT_EQ(r.reasons.back(), proto::ReasonCode::kSuccess);
}

TEST(AckGate, ReceiverConfirmsTheLastDurableCountPerSender) {
  AckGate g(3);
  g.NoteReceived(0);
  g.NoteReceived(0);
  g.NoteReceived(2);
  g.CloseReceiveTurn(10);
  g.NoteReceived(0);
  g.CloseReceiveTurn(20);
  g.CloseReceiveTurn(25);  // nothing new: no mark
  std::vector<std::pair<uint16_t, uint64_t>> sent;
  auto confirm = [&](uint16_t p, uint64_t n) { sent.emplace_back(p, n); };
  g.Confirm(9, confirm);
  EXPECT_TRUE(sent.empty());
  g.Confirm(10, confirm);
  EXPECT_EQ(sent, (std::vector<std::pair<uint16_t, uint64_t>>{{0, 2}, {2, 1}}));
  sent.clear();
  g.Confirm(30, confirm);
  EXPECT_EQ(sent, (std::vector<std::pair<uint16_t, uint64_t>>{{0, 3}}));
}

}  // namespace
}  // namespace ringmq::broker
