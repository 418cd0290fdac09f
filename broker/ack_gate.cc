// AckGate bookkeeping (see broker/ack_gate.h).
#include "broker/ack_gate.h"

#include <iterator>

namespace ringmq::broker {

void AckGate::Resize(uint16_t shards) {
  sent_.assign(shards, 0);
  confirmed_.assign(shards, 0);
  received_.assign(shards, 0);
  marked_.assign(shards, 0);
  confirmed_up_to_.assign(shards, 0);
}

void AckGate::CloseTurn(uint64_t local_appended) {
  if (turn_acks_.empty()) {
    turn_local_ = false;
    turn_mask_ = 0;
    turn_durable_mask_ = 0;
    return;
  }
  Barrier b;
  b.local_seq = turn_local_ ? local_appended : 0;
  b.mask = turn_mask_;
  b.durable_mask = turn_durable_mask_;
  if (b.mask != 0) b.counts = sent_;
  b.acks.swap(turn_acks_);
  barriers_.push_back(std::move(b));
  turn_local_ = false;
  turn_mask_ = 0;
  turn_durable_mask_ = 0;
}

void AckGate::ApplyRefusal(PendingAck& a) {
  // Invariant 4: tags up to a.tag are released now or were before.
  const auto end = refused_.upper_bound(a.tag);
  if (end != refused_.begin() && *std::prev(end) == a.tag &&
      a.reason == proto::ReasonCode::kSuccess) {
    a.reason = proto::ReasonCode::kQuotaExceeded;
  }
  refused_.erase(refused_.begin(), end);
}

size_t AckGate::held() const {
  size_t n = turn_acks_.size();
  for (const Barrier& b : barriers_) n += b.acks.size();
  return n;
}

void AckGate::CloseReceiveTurn(uint64_t local_appended) {
  for (size_t p = 0; p < received_.size(); ++p) {  // one entry per shard: fits uint16_t
    if (received_[p] == marked_[p]) continue;
    marked_[p] = received_[p];
    marks_.push_back(ReceiveMark{static_cast<uint16_t>(p), received_[p], local_appended});
  }
}

}  // namespace ringmq::broker
