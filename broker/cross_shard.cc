// Messages between shards (doc/threading.md "Between shards"): what a shard posts waits in its
// outbox for room in the ring to the other shard; the inbox is drained once per loop turn.
//
// Backpressure, not loss: nothing posted is ever dropped. When the messages waiting for one
// other shard reach kOutboxHigh, the shard stops handling PUBLISH packets (PauseInput: their
// bytes stay in the connection's input and its receive is cancelled, so TCP holds the publisher
// back) until every outbox is down to kOutboxLow (ResumeInput). A full ring does not make the
// loop spin: it sleeps, and the consumer wakes it once it frees slots (smp/spsc_ring.h,
// invariant 7).
#include <unistd.h>

#include <algorithm>
#include <bit>

#include "broker/broker.h"
#include "broker/shard.h"
#include "net/user_data.h"

namespace ringmq::broker {

namespace {

// Messages waiting for room in the ring to one other shard: input of PUBLISH packets pauses at
// kOutboxHigh and resumes when every outbox is at kOutboxLow or below. The high mark is a few
// rings' worth, so that a consumer that is merely slower than this shard for a moment (a burst)
// costs no pause; the low mark is one ring, so that the loop that resumes still has work queued.
constexpr size_t kOutboxHigh = 4 * kShardRingCapacity;
constexpr size_t kOutboxLow = kShardRingCapacity;

}  // namespace

bool Shard::PostToShard(uint16_t to, ShardMsg msg) {
  const bool delivery =
      msg.kind == ShardMsg::Kind::kDeliver || msg.kind == ShardMsg::Kind::kDeliverShared;
  const bool persist = msg.confirm && (msg.kind == ShardMsg::Kind::kRetain ||
                                       (delivery && broker_.shard(to).may_persist()));
  msg.confirm = persist || (delivery && msg.value != 0);  // value: the answer's tag
  if (msg.confirm) log_.gate().NoteRemote(to, persist);
  const bool confirm = msg.confirm;
  std::vector<ShardMsg>& box = outbox_[to];
  box.push_back(std::move(msg));
  if (box.size() >= kOutboxHigh && !outbox_backlogged_) {
    outbox_backlogged_ = true;
    backlog_since_ns_ = MonoNs();
  }
  return confirm;
}

void Shard::FlushOutbox() {
  ShardRings& rings = broker_.rings();
  size_t largest = 0;
  // NOLINTNEXTLINE(bugprone-too-small-loop-variable): one box per shard, at most 64 shards.
  for (uint16_t to = 0; to < outbox_.size(); ++to) {
    std::vector<ShardMsg>& box = outbox_[to];
    if (box.empty()) continue;
    const ShardRings::PushResult r = rings.PushBatch(id_, to, box.data(), box.size());
    if (r.needs_wake) broker_.shard(to).WakeFromAnyThread();
    // A full ring keeps the rest for the next turn: the loop waits for room (OutboxMayWait).
    box.erase(box.begin(), box.begin() + static_cast<ptrdiff_t>(r.pushed));
    largest = std::max(largest, box.size());
  }
  if (outbox_backlogged_ && largest <= kOutboxLow) ResumeInput();
}

bool Shard::OutboxMayWait() {
  ShardRings& rings = broker_.rings();
  // NOLINTNEXTLINE(bugprone-too-small-loop-variable): one box per shard, at most 64 shards.
  for (uint16_t to = 0; to < outbox_.size(); ++to) {
    if (!outbox_[to].empty() && !rings.PrepareToWaitForRoom(id_, to)) return false;
  }
  return true;
}

void Shard::PauseInput(Connection& c) {
  if (c.input_paused) return;
  c.input_paused = true;
  paused_.push_back(ConnectionRef{c.slot, c.generation});
  stats_.input_pauses.Add();
  // Stop reading: the socket's receive buffer fills and TCP holds the client back. What the
  // receive completed before the cancel lands is kept in c.in (OnRecv).
  if (c.recv_armed) {
    ring_.PrepCancel(net::PackUserData(kOpRecv, c.generation, c.slot),
                     net::PackUserData(kOpCancel, c.generation, c.slot));
  }
}

void Shard::ResumeInput() {
  outbox_backlogged_ = false;
  stats_.input_paused_ns.Add(static_cast<uint64_t>(MonoNs() - backlog_since_ns_));
  std::vector<ConnectionRef> paused;
  paused.swap(paused_);
  const int64_t now = NowMs();
  for (const ConnectionRef& r : paused) {
    Connection* c = conns_.Find(r.slot, r.generation);
    if (c == nullptr || !c->input_paused) continue;
    c->input_paused = false;
    c->last_rx_ms = std::max(c->last_rx_ms, now);  // the pause was ours, not the client's silence
    if (!c->closing()) ContinueInput(*c);
  }
}

void Shard::ContinueInput(Connection& c) {
  if (!HandleInput(c) || c.input_paused) return;
  if (c.transport_ended) {
    EndTransport(c, c.peer_closed);
  } else if (c.peer_closed != nullptr) {
    CloseConnection(c, c.peer_closed);
  } else if (!c.recv_armed) {
    ArmRecv(c);
  }
}

void Shard::ReportRefusal(const ShardMsg& m, uint64_t refused_before) {
  // Posted before the kDurable that confirms m (same ring): the answer is still held there.
  if (m.value == 0 || refused_deliveries_ == refused_before) return;  // value: the tag
  ShardMsg reply;
  reply.kind = ShardMsg::Kind::kRefused;
  reply.from = id_;
  reply.value = m.value;
  PostToShard(m.from, std::move(reply));
}

void Shard::DrainInbox() {
  const ShardRings::DrainResult r = broker_.rings().Drain(id_, [this](size_t, ShardMsg&& m) {
    if (m.confirm) log_.gate().NoteReceived(m.from);  // counted before: handling may post it on
    const uint64_t refused_before = refused_deliveries_;
    switch (m.kind) {
      case ShardMsg::Kind::kDeliver:
        router_.DeliverLocal(m.msg);
        ReportRefusal(m, refused_before);
        break;
      case ShardMsg::Kind::kDeliverShared:
        router_.DeliverShared(m.msg, m.shared);
        ReportRefusal(m, refused_before);
        break;
      case ShardMsg::Kind::kRetain:
        StoreRetained(m.msg);
        break;
      case ShardMsg::Kind::kFromCluster: {
        // Checked by the publisher's node against its own store; this node keeps its own limit.
        const bool store =
            m.msg->retain && !RetainedQuotaExceeded(m.msg->topic, m.msg->payload.size());
        router_.PublishFromCluster(std::move(m.msg), store);
        break;
      }
      case ShardMsg::Kind::kFromClusterShared:
        (void)router_.RouteShared(m.msg, m.shared.get());
        break;
      case ShardMsg::Kind::kHandoff:
        if (stopping_) {
          ::close(m.handoff->fd);
        } else {
          AdoptHandoff(std::move(m.handoff));
        }
        break;
      case ShardMsg::Kind::kRetainQuery: {
        AnswerRetainQuery(*m.query);
        ShardMsg reply;
        reply.kind = ShardMsg::Kind::kRetainReply;
        reply.from = id_;
        reply.query = std::move(m.query);
        PostToShard(m.from, std::move(reply));
        break;
      }
      case ShardMsg::Kind::kDurable:
        log_.gate().OnConfirm(m.from, m.value);
        break;
      case ShardMsg::Kind::kRefused:
        log_.gate().OnRefused(m.value);
        break;
      case ShardMsg::Kind::kRetainReply: {
        if (Session* s = sessions_.Find(m.query->client_id)) {
          SendRetained(*s, m.query->sub_filter, m.query->options, m.query->matches);
        }
        break;
      }
    }
  });
  for (uint64_t w = r.wake_producers; w != 0; w &= w - 1) {
    // (The cluster bridge, producer shard_count(), never waits for room this way.)
    const auto p = static_cast<uint16_t>(std::countr_zero(w));
    if (p < broker_.shard_count()) broker_.shard(p).WakeFromAnyThread();
  }
}

}  // namespace ringmq::broker
