// AckGate: holds a shard's PUBACK / PUBREC answers until the write-ahead log records they vouch
// for are durable, on this shard and on the other shards the message went to (DESIGN.md section
// 7, doc/wal-format.md "Acknowledgements"). "Durable" is WalWriter::ack_seq(): fdatasynced with
// `durability = sync`, written to the kernel with `batch` and `none`.
//
// Two roles, both on every shard:
//   Publisher side. While a QoS 1/2 PUBLISH is handled, the shard notes whether it appended to
//   its own log (NoteLocal) and which other shards received the message with a request to confirm
//   (NoteRemote; the ShardMsg carries `confirm`): for durability, or for the refusals of an MQTT 5
//   QoS 1 answer (its tag, NewTag, travels with the message; a shard whose session refused it
//   reports the tag, OnRefused, before it confirms). Its answer is then held (Hold) instead of
//   sent. Once per loop turn CloseTurn turns the answers held during the turn into one barrier:
//   "the local log durable up to seq L, and shard q confirmed its c-th flagged message, for every
//   q noted". Release hands out the answers of every barrier that is satisfied, oldest first (a
//   refused tag's answer says Quota exceeded), or fails them when a log they wait for can no
//   longer become durable.
//   Receiver side. For every flagged message from shard p the shard calls NoteReceived(p) after
//   handling it (which appended its records); once per loop turn CloseReceiveTurn pairs each
//   sender's count with the log's appended seq, and Confirm reports to each sender the highest
//   count whose records are durable (sent back as a kDurable ShardMsg).
//
// Thread-safety: owned by one shard; only its thread calls it.
// Invariants:
//   1. Barriers are released in the order they were closed, so the answers of one connection
//      leave in the order of its PUBLISHes (MQTT 3.1.1 section 4.6); the caller keeps a connection
//      whose earlier answer is held from sending a later one directly (Hold it too).
//   2. Counts per peer only grow: sent(q) is the number of flagged messages posted to q,
//      confirmed(q) <= sent(q) the highest count q reported durable; messages between two shards
//      stay in order (one SPSC ring), so q's n-th flagged message is the sender's n-th.
//   3. A barrier is satisfied iff local_durable >= its local seq and, for every q in its mask,
//      confirmed(q) >= its count for q. When q's log failed, a barrier that needs q's records
//      durable (durable_mask) fails; one that only waits for q's refusals stops waiting for them
//      (q confirms nothing until its log is back).
//   4. Tags grow in the order answers are held, hence in the order they are released; a refusal
//      reaches the gate before the confirmation that covers it (one ring from q), so it is in
//      refused_ when its answer is released, and every tag up to a released one is dropped.
#ifndef RINGMQ_BROKER_ACK_GATE_H_
#define RINGMQ_BROKER_ACK_GATE_H_

#include <cstdint>
#include <deque>
#include <set>
#include <utility>
#include <vector>

#include "proto/packet.h"

namespace ringmq::broker {

// An answer waiting for durability.
struct PendingAck {
  uint32_t slot = 0;  // the publisher's connection
  uint32_t generation = 0;
  proto::PacketType type = proto::PacketType::kPuback;  // or kPubrec
  uint16_t packet_id = 0;
  proto::ReasonCode reason = proto::ReasonCode::kSuccess;
  bool log_incoming_qos2 = false;  // PUBREC: log the packet id as received once released
  uint64_t tag = 0;                // NewTag: the shards it went to report its refusals
};

class AckGate {
 public:
  explicit AckGate(uint16_t shards = 0) { Resize(shards); }
  void Resize(uint16_t shards);

  // --- Publisher side ---
  // The message being handled appended to this shard's log.
  void NoteLocal() { turn_local_ = true; }
  // The message being handled was posted to shard q, flagged for confirmation; `durable`: the
  // answer needs q's records durable (not only q's refusals).
  void NoteRemote(uint16_t q, bool durable = true) {
    ++sent_[q];
    turn_mask_ |= uint64_t{1} << q;
    if (durable) turn_durable_mask_ |= uint64_t{1} << q;
  }
  // A tag for an MQTT 5 QoS 1 answer, whose message the other shards may refuse (PendingAck::tag).
  uint64_t NewTag() { return ++last_tag_; }
  // A session on another shard refused the message of the answer tagged `tag`.
  void OnRefused(uint64_t tag) { refused_.insert(tag); }
  void Hold(const PendingAck& a) { turn_acks_.push_back(a); }
  // Closes the turn: the answers held since the last call wait for local records up to
  // `local_appended` (when NoteLocal was called) and for the remote counts noted so far.
  void CloseTurn(uint64_t local_appended);
  // Shard q reports its first `count` flagged messages from us durable.
  void OnConfirm(uint16_t q, uint64_t count) {
    if (count > confirmed_[q]) confirmed_[q] = count;
  }
  // Hands out answers: release(const PendingAck&, bool failed) for every barrier that is
  // satisfied (failed = false) or that waits for a log that failed (failed = true):
  // local_failed for this shard, remote_failed(q) for shard q (invariant 3). A refused tag's
  // answer is handed out with reason Quota exceeded.
  template <typename Failed, typename F>
  void Release(uint64_t local_durable, bool local_failed, Failed&& remote_failed, F&& release);
  bool idle() const { return barriers_.empty() && turn_acks_.empty(); }
  size_t held() const;

  // --- Receiver side ---
  void NoteReceived(uint16_t p) { ++received_[p]; }
  // Pairs every sender's count with `local_appended`, the log position covering those messages.
  void CloseReceiveTurn(uint64_t local_appended);
  // confirm(uint16_t p, uint64_t count) for each sender with newly durable messages.
  template <typename F>
  void Confirm(uint64_t local_durable, F&& confirm);

 private:
  struct Barrier {
    uint64_t local_seq = 0;        // 0: no local records to wait for
    uint64_t mask = 0;             // shards to wait for
    uint64_t durable_mask = 0;     // those whose records must be durable (a subset)
    std::vector<uint64_t> counts;  // per shard (only the masked entries matter)
    std::vector<PendingAck> acks;
  };
  struct ReceiveMark {
    uint16_t from;
    uint64_t count;
    uint64_t seq;
  };
  // Satisfied, failed (needs a log that failed) or still waiting (invariant 3).
  enum class State : uint8_t { kSatisfied, kFailed, kWaiting };
  template <typename Failed>
  State StateOf(const Barrier& b, uint64_t local_durable, bool local_failed,
                Failed& remote_failed) const;
  void ApplyRefusal(PendingAck& a);

  std::vector<uint64_t> sent_, confirmed_;
  std::vector<PendingAck> turn_acks_;
  bool turn_local_ = false;
  uint64_t turn_mask_ = 0, turn_durable_mask_ = 0;
  std::deque<Barrier> barriers_;
  uint64_t last_tag_ = 0;
  std::set<uint64_t> refused_;  // reported tags not yet released (few: refusals are rare)

  std::vector<uint64_t> received_,
      marked_;                             // marked_: the count of the last ReceiveMark per sender
  std::vector<uint64_t> confirmed_up_to_;  // scratch of Confirm
  std::deque<ReceiveMark> marks_;
};

template <typename Failed, typename F>
void AckGate::Release(uint64_t local_durable, bool local_failed, Failed&& remote_failed,
                      F&& release) {
  while (!barriers_.empty()) {
    Barrier& b = barriers_.front();
    const State state = StateOf(b, local_durable, local_failed, remote_failed);
    if (state == State::kWaiting) return;
    for (PendingAck& a : b.acks) {
      if (a.tag != 0 && !refused_.empty()) ApplyRefusal(a);
      release(std::as_const(a), state == State::kFailed);
    }
    barriers_.pop_front();
  }
}

template <typename Failed>
AckGate::State AckGate::StateOf(const Barrier& b, uint64_t local_durable, bool local_failed,
                                Failed& remote_failed) const {
  bool waiting = false;
  if (b.local_seq > local_durable) {
    if (local_failed) return State::kFailed;
    waiting = true;
  }
  for (uint64_t m = b.mask; m != 0; m &= m - 1) {
    const auto q = static_cast<uint16_t>(__builtin_ctzll(m));
    if (confirmed_[q] >= b.counts[q]) continue;
    if (!remote_failed(q)) {
      waiting = true;
    } else if ((b.durable_mask & (uint64_t{1} << q)) != 0) {
      return State::kFailed;
    }  // else: only q's refusals were awaited, and q confirms nothing while its log is down
  }
  return waiting ? State::kWaiting : State::kSatisfied;
}

template <typename F>
void AckGate::Confirm(uint64_t local_durable, F&& confirm) {
  // Of several marks of one sender that became durable, only the last one is reported.
  uint64_t ready = 0;  // bit p: report confirmed_up_to_[p]
  while (!marks_.empty() && marks_.front().seq <= local_durable) {
    const ReceiveMark& m = marks_.front();
    confirmed_up_to_[m.from] = m.count;
    ready |= uint64_t{1} << m.from;
    marks_.pop_front();
  }
  for (; ready != 0; ready &= ready - 1) {
    const auto p = static_cast<uint16_t>(__builtin_ctzll(ready));
    confirm(p, confirmed_up_to_[p]);
  }
}

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_ACK_GATE_H_
