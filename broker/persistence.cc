// Durability on a shard (DESIGN.md section 7, doc/wal-format.md): what goes into the shard's
// write-ahead log while it runs, the snapshot of its state, and restoring that state at start.
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
#include "broker/shard.h"
#include "net/user_data.h"
#include "proto/topic.h"
#include "wal/wal.h"

namespace ringmq::broker {
namespace {

// Between attempts to reopen a failed log: each captures the whole state on the loop, so the
// interval doubles while the disk stays full.
constexpr int64_t kWalReopenFirstMs = 1000;
constexpr int64_t kWalReopenMaxMs = 16'000;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

wal::WalInflightPhase PhaseOf(Inflight::State s) {
  switch (s) {
    case Inflight::State::kAwaitPuback:
      return wal::WalInflightPhase::kAwaitPuback;
    case Inflight::State::kAwaitPubrec:
      return wal::WalInflightPhase::kAwaitPubrec;
    case Inflight::State::kAwaitPubcomp:
      break;
  }
  return wal::WalInflightPhase::kAwaitPubcomp;
}

uint8_t OptionsByte(const SubOptions& o) {
  return static_cast<uint8_t>(
      (o.no_local ? wal::WalSubscriptionAdded::kNoLocal : 0) |
      (o.retain_as_published ? wal::WalSubscriptionAdded::kRetainAsPublished : 0) |
      (o.retain_handling << wal::WalSubscriptionAdded::kRetainHandlingShift));
}

}  // namespace

std::string Shard::WalDir() const { return cfg_.data_dir + "/wal"; }

wal::WalMessage Shard::ToWal(const route::Message& m, uint8_t qos, bool retain) const {
  wal::WalMessage w;
  w.topic = m.topic;
  w.payload = m.payload;
  w.qos = qos;
  w.retain = retain;
  w.payload_format_indicator = m.payload_format_indicator;
  if (m.expires_at_ms != 0) w.expires_at_ms = WallMs() + (m.expires_at_ms - NowMs());
  w.content_type = m.content_type;
  w.response_topic = m.response_topic;
  w.correlation_data = m.correlation_data;
  w.user_properties = m.user_properties;
  return w;
}

route::MessagePtr Shard::FromWal(const wal::WalMessage& w) const {
  auto m = std::make_shared<route::Message>();
  m->topic = w.topic;
  m->payload = w.payload;
  m->qos = w.qos;
  m->retain = w.retain;
  m->payload_format_indicator = w.payload_format_indicator;
  if (w.expires_at_ms != 0) m->expires_at_ms = NowMs() + (w.expires_at_ms - WallMs());
  m->content_type = w.content_type;
  m->response_topic = w.response_topic;
  m->correlation_data = w.correlation_data;
  m->user_properties = w.user_properties;
  return m;
}

void Shard::SetLogged(Session& s, bool logged) {
  if (s.logged == logged) return;
  // Relaxed: ordered before the CONNACK / SUBACK that tell a client of the session by the ring
  // and the kernel, not by this store (may_persist() in broker/shard.h).
  s.logged = logged;
  if (logged) {
    persistent_sessions_.fetch_add(1, std::memory_order_relaxed);
  } else {
    persistent_sessions_.fetch_sub(1, std::memory_order_relaxed);
  }
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
  if (!s.logged || d.qos == 0 || wal_ == nullptr) return;
  d.wal_id = next_message_id_++;
  Log(wal::WalMessageQueued{s.client_id(), d.wal_id, ToWal(*d.msg, d.qos, d.retain),
                            d.subscription_ids});
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
    Log(wal::WalRetainedSet{ToWal(m, m.qos, true)});
  }
}

void Shard::Restore(const wal::WalRecord& r) {
  const int64_t now = NowMs();
  auto session = [this](const std::string& id) -> Session* {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
  };
  std::visit(
      [&](const auto& rec) {
        using T = std::decay_t<decltype(rec)>;
        if constexpr (std::is_same_v<T, wal::WalSessionCreated>) {
          Session* s = session(rec.client_id);
          if (s == nullptr) {
            auto owned = std::make_unique<Session>(rec.client_id, cfg_.max_queued_messages);
            s = owned.get();
            sessions_.emplace(rec.client_id, std::move(owned));
          }
          s->expiry_interval_s = rec.expiry_interval_s;
          s->version = static_cast<proto::Version>(rec.protocol_version);
          s->clean_start = false;
          s->owner_token_id = rec.owner_token_id;
          SetLogged(*s, true);
          s->offline_since_ms = now;  // the broker was down: the clock restarts from here
        } else if constexpr (std::is_same_v<T, wal::WalSessionRemoved>) {
          if (Session* s = session(rec.client_id)) {
            SetLogged(*s, false);
            DestroySession(*s);
          }
        } else if constexpr (std::is_same_v<T, wal::WalSessionDisconnected>) {
          if (Session* s = session(rec.client_id)) {
            s->expiry_interval_s = rec.expiry_interval_s;
            s->offline_since_ms = now - std::max<int64_t>(0, WallMs() - rec.disconnected_ms);
          }
        } else if constexpr (std::is_same_v<T, wal::WalSubscriptionAdded>) {
          if (Session* s = session(rec.client_id)) {
            SubOptions o{rec.qos, (rec.options & wal::WalSubscriptionAdded::kNoLocal) != 0,
                         (rec.options & wal::WalSubscriptionAdded::kRetainAsPublished) != 0,
                         static_cast<uint8_t>(
                             (rec.options >> wal::WalSubscriptionAdded::kRetainHandlingShift) & 3),
                         rec.subscription_id};
            auto it = s->subscriptions().find(rec.filter);
            if (it != s->subscriptions().end()) router_.Detach(*s, it->second);
            Subscription& sub = s->subscriptions()[rec.filter];
            sub.options = o;
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
          next_message_id_ = std::max(next_message_id_, rec.message_id + 1);
          if (Session* s = session(rec.client_id)) {
            Delivery d;
            d.msg = FromWal(rec.message);
            d.qos = rec.message.qos;
            d.retain = rec.message.retain;
            d.subscription_ids = rec.subscription_ids;
            d.wal_id = rec.message_id;
            (void)s->Enqueue(std::move(d), /*online=*/false);
          }
        } else if constexpr (std::is_same_v<T, wal::WalMessageAcked>) {
          if (Session* s = session(rec.client_id)) s->RemoveQueued(rec.message_id);
        } else if constexpr (std::is_same_v<T, wal::WalInflightState>) {
          if (Session* s = session(rec.client_id)) RestoreInflight(*s, rec);
        } else if constexpr (std::is_same_v<T, wal::WalRetainedSet>) {
          if (rec.message.payload.empty()) {
            retained_.Erase(rec.message.topic);
          } else {
            retained_.Set(FromWal(rec.message));
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

template <typename F>
void Shard::ForEachSnapshotRecord(F&& add) {
  const int64_t now = NowMs();
  for (const auto& entry : sessions_) {
    // Not a structured binding: the lambdas below capture the id (clang 14 cannot capture one).
    const std::string& id = entry.first;
    const std::unique_ptr<Session>& s = entry.second;
    if (s->expiry_interval_s == 0) continue;
    add(wal::WalSessionCreated{id, s->expiry_interval_s, static_cast<uint8_t>(s->version), WallMs(),
                               s->owner_token_id});
    if (s->connection == nullptr) {
      add(wal::WalSessionDisconnected{id, WallMs() - (now - s->offline_since_ms),
                                      s->expiry_interval_s});
    }
    for (const auto& [filter, sub] : s->subscriptions()) {
      add(wal::WalSubscriptionAdded{id, filter, sub.options.qos, OptionsByte(sub.options),
                                    sub.options.subscription_id, sub.effective});
    }
    // In flight first, in send order, each with its packet id state; then the queue.
    s->ForEachInflight([&](const Inflight& f) {
      const Delivery& d = f.delivery;
      if (d.qos == 0) return;
      const uint64_t mid = d.wal_id != 0 ? d.wal_id : next_message_id_++;
      // Past PUBREC the message itself is gone: only its packet id (for PUBREL) is kept.
      wal::WalMessage m = d.msg != nullptr ? ToWal(*d.msg, d.qos, d.retain) : wal::WalMessage{};
      m.qos = d.qos;
      add(wal::WalMessageQueued{id, mid, std::move(m), d.subscription_ids});
      add(wal::WalInflightState{id, mid, f.packet_id, PhaseOf(f.state)});
    });
    s->ForEachQueued([&](const Delivery& d) {
      if (d.msg == nullptr || d.qos == 0) return;
      const uint64_t mid = d.wal_id != 0 ? d.wal_id : next_message_id_++;
      add(wal::WalMessageQueued{id, mid, ToWal(*d.msg, d.qos, d.retain), d.subscription_ids});
    });
    s->ForEachLoggedIncomingQos2([&](uint16_t pid) {
      add(wal::WalInflightState{id, 0, pid, wal::WalInflightPhase::kIncomingQos2});
    });
  }
  for (const auto& [topic, m] : retained_) {
    if (!Expired(*m, now)) add(wal::WalRetainedSet{ToWal(*m, m->qos, true)});
  }
}

void Shard::FinishRestore() {
  for (auto& [id, s] : sessions_) s->DropPlaceholders();
}

bool Shard::WriteSnapshot(uint64_t seq, std::string* error) {
  wal::WalSnapshotWriter w;
  if (!w.Open(WalDir(), id_, seq, error)) return false;
  ForEachSnapshotRecord([&w](const auto& r) { w.Add(r); });
  return w.Commit(error);
}

void Shard::MaybeSnapshot(int64_t now) {
  if (wal_ == nullptr) return;
  FinishSnapshot(/*wait=*/false);
  if (wal_->failed()) {
    MaybeReopenWal(now);
    return;
  }
  if (snapshot_thread_.joinable()) return;  // one at a time
  const wal::WalWriter::Stats& st = wal_->stats();
  if (st.records == snapshot_records_) return;  // nothing logged since the last one
  if (snapshot_due_ms_ == 0) snapshot_due_ms_ = now + int64_t{cfg_.snapshot_interval_s} * 1000;
  const bool by_size =
      cfg_.snapshot_log_bytes != 0 && st.bytes - snapshot_log_bytes_ >= cfg_.snapshot_log_bytes;
  const bool by_time = cfg_.snapshot_interval_s != 0 && now >= snapshot_due_ms_;
  if (!by_size && !by_time) return;
  // Records appended from here on go to segment `seq` and later; the snapshot holds the state
  // after every record before it (wal.h invariant 4), so it is captured now, on this thread.
  const uint64_t seq = wal_->Roll();
  const auto started = std::chrono::steady_clock::now();
  std::string frames;
  uint64_t count = 0;
  ForEachSnapshotRecord([&](const auto& r) {
    wal::AppendWalRecord(r, &frames);
    ++count;
  });
  const auto capture_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
  LOG_DEBUG_S(kWal, "shard {}: snapshot {} captured: {} records, {} bytes in {} us", id_, seq,
              count, frames.size(), capture_us);
  snapshot_log_bytes_ = st.bytes;
  snapshot_records_ = st.records;
  snapshot_due_ms_ = 0;
  snapshot_done_.store(false, std::memory_order_relaxed);
  try {
    StartSnapshotThread(seq, count, std::move(frames));
  } catch (const std::system_error& e) {  // no thread to be had: the next tick tries again
    LOG_ERROR_S(kWal, "shard {}: cannot start the snapshot thread: {}", id_, e.what());
  }
}

void Shard::StartSnapshotThread(uint64_t seq, uint64_t count, std::string frames) {
  snapshot_thread_ = std::thread([this, dir = WalDir(), seq, count, frames = std::move(frames)] {
    pthread_setname_np(pthread_self(), ("ringmq-snap" + std::to_string(id_)).c_str());
    wal::WalSnapshotWriter w;
    std::string error;
    size_t deleted = 0;
    bool ok = w.Open(dir, id_, seq, &error);
    if (ok) {
      w.AddFramed(frames, count);
      ok = w.Commit(&error) && wal::DeleteObsoleteWalFiles(dir, id_, &deleted, &error);
    }
    snapshot_error_ = ok ? "" : error;
    // Release: the shard thread reads snapshot_error_ after an acquire load of the flag.
    snapshot_done_.store(true, std::memory_order_release);
    WakeFromAnyThread();
  });
}

void Shard::FinishSnapshot(bool wait) {
  if (!snapshot_thread_.joinable()) return;
  if (!wait && !snapshot_done_.load(std::memory_order_acquire)) return;
  snapshot_thread_.join();
  if (const uint64_t reopen = std::exchange(wal_reopen_seq_, 0); reopen != 0) {
    std::string error = snapshot_error_;
    if (!error.empty()) {
      wal_->SetFailed(EIO);
    } else if (wal_->OpenAt(reopen, wal_reopen_covered_, &error)) {
      wal_failure_logged_ = false;
      wal_reopen_delay_ms_ = 0;  // the next failure is retried at once, then after 1 s
      next_wal_reopen_ms_ = 0;
      LOG_INFO_S(kWal,
                 "shard {}: the write-ahead log is writable again (snapshot {} holds the state): "
                 "messages for persistent sessions are acknowledged again",
                 id_, reopen);
      return;
    }
    LOG_DEBUG_S(kWal, "shard {}: the write-ahead log is still not writable: {}", id_, error);
    return;
  }
  if (!snapshot_error_.empty()) {
    LOG_ERROR_S(kWal, "shard {}: background snapshot failed: {} (the log is kept and replayed)",
                id_, snapshot_error_);
  } else {
    LOG_DEBUG_S(kWal, "shard {}: snapshot written, covered segments deleted", id_);
  }
}

wal::WalWriterOptions Shard::WalOptions() const {
  wal::WalWriterOptions o;
  o.dir = WalDir();
  o.shard = id_;
  o.durability = cfg_.durability;
  o.batch_interval_ms = cfg_.wal_batch_ms;
  return o;
}

void Shard::OpenWal(uint64_t first_seq, bool snapshot_written) {
  wal_ = std::make_unique<wal::WalWriter>();
  // Every mode: an answer waits until the records it vouches for survive a crash of the process
  // (batch, none: written to the kernel) or of the machine (sync: fdatasynced).
  sync_acks_ = true;
  next_wal_seq_ = first_seq + 1;
  if (!snapshot_written) {
    wal_->Continue(WalOptions(), 0, 0);
    wal_->SetFailed(EIO);
    wal_failure_logged_ = true;  // the broker logged why, and what it means
    return;
  }
  std::string error;
  if (!wal_->Open(WalOptions(), first_seq, &error)) {
    LOG_ERROR_S(kWal, "shard {}: cannot open the write-ahead log: {}", id_, error);
  }
}

uint64_t Shard::FreshWalSeq() const {
  // Roll() names a snapshot segment_seq() + 1 before that segment exists.
  return std::max(next_wal_seq_, wal_ != nullptr ? wal_->segment_seq() + 2 : 1);
}

void Shard::MaybeReopenWal(int64_t now) {
  // One attempt at a time, once the failed writer has nothing in flight (it is destroyed here).
  if (!wal_->failed() || !wal_->idle() || snapshot_thread_.joinable() ||
      now < next_wal_reopen_ms_) {
    return;
  }
  wal_reopen_delay_ms_ = std::clamp(wal_reopen_delay_ms_ * 2, kWalReopenFirstMs, kWalReopenMaxMs);
  next_wal_reopen_ms_ = now + wal_reopen_delay_ms_;
  const uint64_t seq = FreshWalSeq();
  next_wal_seq_ = seq + 1;
  // The new writer's records wait in memory until the snapshot is committed; the answers that
  // wait for them wait with them (ack_seq stays at what the failed writer made durable).
  auto fresh = std::make_unique<wal::WalWriter>();
  fresh->Continue(WalOptions(), wal_->appended_seq(), wal_->durable_seq());
  wal_ = std::move(fresh);
  std::string frames;
  uint64_t count = 0;
  ForEachSnapshotRecord([&](const auto& r) {
    wal::AppendWalRecord(r, &frames);
    ++count;
  });
  wal_reopen_seq_ = seq;
  wal_reopen_covered_ = wal_->appended_seq();
  snapshot_log_bytes_ = 0;
  snapshot_records_ = 0;
  snapshot_due_ms_ = 0;
  snapshot_done_.store(false, std::memory_order_relaxed);
  try {
    StartSnapshotThread(seq, count, std::move(frames));
  } catch (const std::system_error& e) {
    LOG_ERROR_S(kWal, "shard {}: cannot start the snapshot thread: {}", id_, e.what());
    wal_reopen_seq_ = 0;
    wal_->SetFailed(EAGAIN);
  }
}

void Shard::CloseWal() {
  if (wal_ == nullptr) return;
  FinishSnapshot(/*wait=*/true);
  // Let the last records reach the disk, then write the state as a snapshot so the next start
  // replays little. A failed log's segments miss records: the snapshot gets a number above them.
  uint64_t seq = wal_->Roll();
  if (wal_->failed()) seq = std::max(seq, FreshWalSeq());
  for (int i = 0; i < 1000 && !wal_->idle(); ++i) {
    wal_->Flush(ring_, kOpWal, NowMs());
    ring_.SubmitAndWait(1, 10'000'000);
    ring_.ForEachCqe([this](const net::Completion& c) {
      if (net::UnpackUserData(c.user_data).kind == kOpWal) wal_->OnCompletion(c);
    });
  }
  std::string error;
  size_t deleted = 0;
  if (!WriteSnapshot(seq, &error) ||
      !wal::DeleteObsoleteWalFiles(WalDir(), id_, &deleted, &error)) {
    LOG_ERROR_S(kWal, "shard {}: snapshot at shutdown failed: {} (the log is kept and replayed)",
                id_, error);
  }
  if (wal_->idle()) wal_.reset();
}

void Shard::AnswerPublish(Connection& c, proto::PacketType type, uint16_t packet_id,
                          proto::ReasonCode reason, bool must_wait, bool log_incoming_qos2) {
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
  ack_gate_.Hold(
      PendingAck{c.slot, c.generation, type, packet_id, reason, log_incoming_qos2 && must_wait});
}

void Shard::EndTurnDurability() {
  const uint64_t appended = wal_ != nullptr ? wal_->appended_seq() : 0;
  const uint64_t durable = wal_ != nullptr ? wal_->ack_seq() : 0;
  const bool failed = wal_ != nullptr && wal_->failed();
  if (failed != wal_failed_.load(std::memory_order_relaxed)) {
    wal_failed_.store(failed, std::memory_order_relaxed);
    // (false again: an attempt to reopen it is under way, MaybeReopenWal.)
    if (failed && !wal_failure_logged_) {
      wal_failure_logged_ = true;
      LOG_ERROR_S(
          kWal,
          "shard {}: the write-ahead log failed ({}): messages for persistent sessions are no "
          "longer acknowledged (MQTT 5 publishers get 0x80); clean sessions are served; the log "
          "is reopened as soon as it can be written again (tried at once, then after {} s, at "
          "intervals doubling up to {} s)",
          id_, std::strerror(wal_->error()), kWalReopenFirstMs / 1000, kWalReopenMaxMs / 1000);
    }
  }
  ack_gate_.CloseReceiveTurn(appended);
  ack_gate_.CloseTurn(appended);
  ack_gate_.Confirm(durable, [this](uint16_t to, uint64_t count) {
    ShardMsg msg;
    msg.kind = ShardMsg::Kind::kDurable;
    msg.from = id_;
    msg.count = count;
    PostToShard(to, std::move(msg));
  });
  ack_gate_.Release(
      durable, failed, [this](uint16_t q) { return broker_.shard(q).wal_failed(); },
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

}  // namespace ringmq::broker
