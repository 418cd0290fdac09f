// Durability on a shard (DESIGN.md section 7, doc/wal-format.md): what goes into the shard's
// write-ahead log while it runs, restoring that state at start, and the answers that wait for the
// log (broker/ack_gate.h), and the records of a snapshot of the whole state. The log itself, its
// snapshots and reopening it after a failure: broker/shard_log.h.
//
// Logged: persistent sessions (expiry interval > 0) with their subscriptions and the QoS 1/2
// messages queued or in flight for them, and every retained message. A message is logged when it
// enters a persistent session and marked done when the client acknowledged it (PUBACK, PUBREC) or
// it was dropped or expired. Clean sessions and QoS 0 never touch the disk.
#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <thread>
#include <utility>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/connect_rules.h"
#include "broker/internal/wal_fields.h"
#include "broker/shard.h"
#include "net/user_data.h"
#include "proto/topic.h"
#include "wal/wal.h"

namespace ringmq::broker {
using internal::FromLog;
using internal::OptionsByte;
using internal::PhaseOf;
using internal::QueuedRecord;
using internal::WallMs;

void Shard::SetLogged(Session& s, bool logged) {
  if (s.logged == logged) return;
  // Relaxed: ordered before the CONNACK / SUBACK that tell a client of the session by the ring
  // and the kernel, not by this store (may_persist() in broker/shard.h).
  s.logged = logged;
  log_.CountLogged(logged);
}

void Shard::LogSessionStart(Session& s) {
  if (s.expiry_interval_s == 0) return;
  const bool was_logged = s.logged;
  SetLogged(s, true);
  Log(wal::WalSessionCreated{s.client_id(), s.expiry_interval_s, static_cast<uint8_t>(s.version),
                             WallMs(), s.owner_token_id});
  if (!was_logged) {  // it became persistent: what it already has goes in too
    for (const auto& [filter, sub] : s.subscriptions()) LogSubscription(s, filter, &sub);
    s.ForEachDelivery([&](Delivery& d, const Inflight* f) {
      if (d.msg == nullptr || d.qos == 0 || d.wal_id != 0) return;  // (past PUBREC: not kept)
      LogQueued(s, d);
      if (f != nullptr) LogInflight(s, d.wal_id, f->packet_id, PhaseOf(f->state));
    });
  }
}

void Shard::LogSubscription(const Session& s, const std::string& filter, const Subscription* sub) {
  if (!s.logged) return;
  if (sub == nullptr) {
    Log(wal::WalSubscriptionRemoved{s.client_id(), filter});
    return;
  }
  Log(wal::WalSubscriptionAdded{s.client_id(), filter, sub->options.qos, OptionsByte(sub->options),
                                sub->options.subscription_id, sub->effective});
}

void Shard::LogSessionEnd(Session& s, bool removed) {
  if (!s.logged) return;
  if (removed) {
    Log(wal::WalSessionRemoved{s.client_id()});
    SetLogged(s, false);
  } else {
    Log(wal::WalSessionDisconnected{s.client_id(), WallMs(), s.expiry_interval_s});
  }
}

void Shard::LogQueued(Session& s, Delivery& d) {
  if (!s.logged || d.qos == 0 || !log_.open()) return;
  d.wal_id = log_.NewMessageId();
  Log(QueuedRecord(s.client_id(), d.wal_id, d, WallMs() - NowMs()));
}

void Shard::LogInflight(Session& s, uint64_t wal_id, uint16_t packet_id,
                        wal::WalInflightPhase phase) {
  if (!s.logged) return;
  Log(wal::WalInflightState{s.client_id(), wal_id, packet_id, phase});
  if (phase == wal::WalInflightPhase::kIncomingQos2) s.MarkIncomingQos2Logged(packet_id);
}

void Shard::LogFinished(Session& s) {
  s.DrainFinished([&](uint64_t id) {
    if (s.logged) Log(wal::WalMessageAcked{s.client_id(), id});
  });
}

void Shard::LogRetained(const route::Message& m) {
  if (m.payload.empty()) {
    Log(wal::WalRetainedCleared{m.topic});
  } else {
    Log(wal::WalRetainedSetRef{&m, WallMs() - NowMs()});
  }
}

void Shard::Restore(const wal::WalRecord& r) {
  const int64_t now = NowMs();
  auto session = [this](const std::string& id) { return sessions_.Find(id); };
  std::visit(
      [&](const auto& rec) {
        using T = std::decay_t<decltype(rec)>;
        if constexpr (std::is_same_v<T, wal::WalSessionCreated>) {
          Session* s = session(rec.client_id);
          if (s == nullptr) s = &sessions_.Create(rec.client_id, QueueLimitsOf(cfg_, &spill_));
          s->expiry_interval_s = rec.expiry_interval_s;
          s->version = static_cast<proto::Version>(rec.protocol_version);
          s->clean_start = false;
          s->owner_token_id = rec.owner_token_id;
          SetLogged(*s, true);
          s->offline_since_ms = now;  // the broker was down: the clock restarts from here
        } else if constexpr (std::is_same_v<T, wal::WalSessionRemoved>) {
          if (Session* s = session(rec.client_id)) {
            SetLogged(*s, false);
            sessions_.Destroy(*s);
          }
        } else if constexpr (std::is_same_v<T, wal::WalSessionDisconnected>) {
          if (Session* s = session(rec.client_id)) {
            s->expiry_interval_s = rec.expiry_interval_s;
            s->offline_since_ms = now - std::max<int64_t>(0, WallMs() - rec.disconnected_ms);
          }
        } else if constexpr (std::is_same_v<T, wal::WalSubscriptionAdded>) {
          if (Session* s = session(rec.client_id)) {
            auto it = s->subscriptions().find(rec.filter);
            if (it != s->subscriptions().end()) router_.Detach(*s, it->second);
            Subscription& sub = s->SubscriptionFor(rec.filter);
            sub.options = internal::SubOptionsOf(rec);
            sub.effective =
                rec.effective.empty() ? std::vector<std::string>{rec.filter} : rec.effective;
            router_.Attach(*s, sub);
          }
        } else if constexpr (std::is_same_v<T, wal::WalSubscriptionRemoved>) {
          if (Session* s = session(rec.client_id)) {
            auto it = s->subscriptions().find(rec.filter);
            if (it != s->subscriptions().end()) {
              router_.Detach(*s, it->second);
              s->subscriptions().erase(it);
            }
          }
        } else if constexpr (std::is_same_v<T, wal::WalMessageQueued>) {
          log_.SeenMessageId(rec.message_id);
          if (Session* s = session(rec.client_id)) {
            Delivery d;
            d.msg = FromLog(rec.message, now - WallMs());
            d.qos = rec.message.qos;
            d.retain = rec.message.retain;
            d.subscription_ids = rec.subscription_ids;
            d.wal_id = rec.message_id;
            s->RestoreQueued(std::move(d));
          }
        } else if constexpr (std::is_same_v<T, wal::WalMessageAcked>) {
          if (Session* s = session(rec.client_id)) s->RemoveQueued(rec.message_id);
        } else if constexpr (std::is_same_v<T, wal::WalInflightState>) {
          if (Session* s = session(rec.client_id)) RestoreInflight(*s, rec);
        } else if constexpr (std::is_same_v<T, wal::WalRetainedSet>) {
          if (rec.message.payload.empty()) {
            retained_.Erase(rec.message.topic);
          } else {
            retained_.Set(FromLog(rec.message, now - WallMs()));
          }
        } else if constexpr (std::is_same_v<T, wal::WalRetainedCleared>) {
          retained_.Erase(rec.topic);
        }
      },
      r);
}

void Shard::RestoreInflight(Session& s, const wal::WalInflightState& r) {
  switch (r.phase) {
    case wal::WalInflightPhase::kIncomingQos2:
      (void)s.OnIncomingQos2(r.packet_id);
      s.MarkIncomingQos2Logged(r.packet_id);
      return;
    case wal::WalInflightPhase::kIncomingDone:
      (void)s.OnPubrel(r.packet_id);
      return;
    case wal::WalInflightPhase::kAwaitPuback:
      (void)s.RestoreInflight(r.message_id, r.packet_id, Inflight::State::kAwaitPuback);
      return;
    case wal::WalInflightPhase::kAwaitPubrec:
      (void)s.RestoreInflight(r.message_id, r.packet_id, Inflight::State::kAwaitPubrec);
      return;
    case wal::WalInflightPhase::kAwaitPubcomp:
      (void)s.RestoreInflight(r.message_id, r.packet_id, Inflight::State::kAwaitPubcomp);
      return;
  }
}

void Shard::FinishRestore() {
  for (auto& [id, s] : sessions_) s->DropPlaceholders();
}

void Shard::AnswerPublish(Connection& c, proto::PacketType type, uint16_t packet_id,
                          proto::ReasonCode reason, bool must_wait, bool log_incoming_qos2,
                          uint64_t tag) {
  if (log_incoming_qos2 && !must_wait && c.session != nullptr) {
    LogInflight(*c.session, 0, packet_id, wal::WalInflightPhase::kIncomingQos2);
  }
  if (!must_wait && c.held_acks == 0) {
    c.Queue(proto::Ack{type, packet_id, reason, {}});
    MarkDirty(c);
    return;
  }
  // An earlier answer of this connection is held: this one waits behind it (answers leave in
  // PUBLISH order, MQTT 3.1.1 section 4.6).
  ++c.held_acks;
  log_.gate().Hold(PendingAck{c.slot, c.generation, type, packet_id, reason,
                              log_incoming_qos2 && must_wait, tag});
}

void Shard::EndTurnDurability() {
  log_.EndTurn([this](uint16_t to, uint64_t count) {
    ShardMsg msg;
    msg.kind = ShardMsg::Kind::kDurable;
    msg.from = id_;
    msg.value = count;
    PostToShard(to, std::move(msg));
  });
  log_.ReleaseAnswers(
      [this](uint16_t q) { return broker_.shard(q).wal_failed(); },
      [this](const PendingAck& a, bool not_durable) {
        Connection* c = conns_.Find(a.slot, a.generation);
        if (c == nullptr) return;  // gone: the client resends
        --c->held_acks;
        if (c->state == Connection::State::kClosing) return;
        proto::Ack ack{a.type, a.packet_id, a.reason, {}};
        if (not_durable) {
          stats_.unacknowledged_not_durable.Add();
          // The message is not the broker's: a QoS 2 id is forgotten, so that the client's next
          // PUBLISH with it (a resend, or a new message) is delivered again.
          if (a.type == proto::PacketType::kPubrec && c->session != nullptr &&
              c->session->OnPubrel(a.packet_id)) {
            LogInflight(*c->session, 0, a.packet_id, wal::WalInflightPhase::kIncomingDone);
          }
          // 3.1.1 has no negative acknowledgement, and PUBCOMP none that fits: the connection is
          // closed (queued: this walks the held answers), and the client resends when it
          // reconnects.
          if (c->version != proto::Version::kV5 || a.type == proto::PacketType::kPubcomp) {
            QueueClose(*c, proto::ReasonCode::kUnspecifiedError,
                       "not persisted: the write-ahead log failed");
            return;
          }
          ack.reason = proto::ReasonCode::kUnspecifiedError;
          if (c->request_problem_information) {
            ack.props.reason_string = "not persisted: the broker's write-ahead log failed";
          }
        } else if (a.log_incoming_qos2 && c->session != nullptr) {
          LogInflight(*c->session, 0, a.packet_id, wal::WalInflightPhase::kIncomingQos2);
        }
        c->Queue(ack);
        MarkDirty(*c);
      });
}

bool Shard::AddStateRecords(SnapshotRecords& out) {
  const int64_t now = NowMs();
  bool spilled_ok = true;
  for (const auto& entry : sessions_) {
    // Not a structured binding: the lambdas below capture the id (clang 14 cannot capture one).
    const std::string& id = entry.first;
    const std::unique_ptr<Session>& s = entry.second;
    if (s->expiry_interval_s == 0) continue;
    out.Add(wal::WalSessionCreated{id, s->expiry_interval_s, static_cast<uint8_t>(s->version),
                                   WallMs(), s->owner_token_id});
    if (s->connection == nullptr) {
      out.Add(wal::WalSessionDisconnected{id, WallMs() - (now - s->offline_since_ms),
                                          s->expiry_interval_s});
    }
    for (const auto& [filter, sub] : s->subscriptions()) {
      out.Add(wal::WalSubscriptionAdded{id, filter, sub.options.qos, OptionsByte(sub.options),
                                        sub.options.subscription_id, sub.effective});
    }
    // In flight first, in send order, each with its packet id state; then the queue.
    s->ForEachInflight([&](const Inflight& f) {
      const Delivery& d = f.delivery;
      if (d.qos == 0) return;
      const uint64_t mid = d.wal_id != 0 ? d.wal_id : log_.NewMessageId();
      // Past PUBREC the message itself is gone: only its packet id (for PUBREL) is kept.
      out.Add(QueuedRecord(id, mid, d, out.clock_offset_ms()));
      out.Add(wal::WalInflightState{id, mid, f.packet_id, PhaseOf(f.state)});
    });
    s->ForEachQueued([&](const Delivery& d) {
      if (d.msg == nullptr || d.qos == 0) return;
      const uint64_t mid = d.wal_id != 0 ? d.wal_id : log_.NewMessageId();
      out.Add(QueuedRecord(id, mid, d, out.clock_offset_ms()));
    });
    if (s->spilled_count() != 0) spilled_ok &= out.AddSpilled(id, *s);
    s->ForEachLoggedIncomingQos2([&](uint16_t pid) {
      out.Add(wal::WalInflightState{id, 0, pid, wal::WalInflightPhase::kIncomingQos2});
    });
  }
  for (const auto& [topic, m] : retained_) {
    if (!Expired(*m, now)) out.Add(wal::WalRetainedSetRef{m.get(), out.clock_offset_ms()});
  }
  return spilled_ok;
}

}  // namespace ringmq::broker
