// Snapshots of a shard's state (DESIGN.md section 7, doc/wal-format.md): captured on the loop,
// written by a background thread, the log truncated behind them; opening the shard's log, and
// reopening it after it failed (a full or read-only disk) without a restart.
#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/internal/shard_log.h"
#include "broker/shard.h"
#include "wal/wal.h"

namespace ringmq::broker {

using internal::kWalReopenFirstMs;
using internal::kWalReopenMaxMs;
using internal::OptionsByte;
using internal::PhaseOf;
using internal::WallMs;

template <typename F, typename G>
void Shard::ForEachSnapshotRecord(F&& add, G&& spilled) {
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
      add(QueuedRecord(id, mid, d));
    });
    if (s->spilled_count() != 0) spilled(id, *s);
    s->ForEachLoggedIncomingQos2([&](uint16_t pid) {
      add(wal::WalInflightState{id, 0, pid, wal::WalInflightPhase::kIncomingQos2});
    });
  }
  for (const auto& [topic, m] : retained_) {
    if (!Expired(*m, now)) add(wal::WalRetainedSet{ToWal(*m, m->qos, true)});
  }
}

bool Shard::WriteSnapshot(uint64_t seq, std::string* error) {
  wal::WalSnapshotWriter w;
  if (!w.Open(WalDir(), id_, seq, error)) return false;
  bool spill_ok = true;
  ForEachSnapshotRecord([&w](const auto& r) { w.Add(r); },
                        [&](const std::string& id, const Session& s) {
                          // Every QoS 1/2 delivery of a logged session has its record (LogQueued,
                          // LogSessionStart): one without is not the log's.
                          spill_ok &= s.ForEachSpilled([&](const Delivery& d) {
                            if (d.qos == 0 || d.wal_id == 0) return;
                            w.Add(QueuedRecord(id, d.wal_id, d));
                          });
                        });
  if (!spill_ok) {
    *error = "reading a spilled queue failed";
    return false;
  }
  return w.Commit(error);
}

std::optional<Shard::SnapshotCapture> Shard::CaptureSnapshot() {
  SnapshotCapture cap;
  bool readable = true;
  cap.clock_offset_ms = WallMs() - NowMs();
  auto add = [&cap](const auto& r) {
    wal::AppendWalRecord(r, &cap.frames);
    ++cap.count;
  };
  ForEachSnapshotRecord(add, [&](const std::string& id, const Session& s) {
    SpillFile& f = *s.spill();
    if (f.Flush()) {  // every spilled entry in the file: the thread reads them there
      f.Pin();
      snapshot_pins_.push_back(s.spill());
      cap.spilled.push_back(SnapshotCapture::Spilled{id, s.spill(), f.read_offset(), f.file_end(),
                                                     s.removed_spilled()});
      return;
    }
    // The spill cannot write (a full disk): the loop copies them, as it does the rest.
    readable &= s.ForEachSpilled([&](const Delivery& d) {
      if (d.qos == 0 || d.wal_id == 0) return;
      add(QueuedRecord(id, d.wal_id, d));
    });
  });
  if (readable) return cap;
  // A snapshot without them would let their records be deleted with the segments it covers.
  for (const std::shared_ptr<SpillFile>& f : snapshot_pins_) f->Unpin();
  snapshot_pins_.clear();
  return std::nullopt;
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
  std::optional<SnapshotCapture> cap = CaptureSnapshot();
  if (!cap) {  // the next tick tries again
    LOG_ERROR_S(kWal, "shard {}: snapshot {} skipped: a spilled session queue cannot be read", id_,
                seq);
    return;
  }
  const auto capture_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
  LOG_DEBUG_S(kWal,
              "shard {}: snapshot {} captured: {} records, {} bytes, {} spilled queues in {} us",
              id_, seq, cap->count, cap->frames.size(), cap->spilled.size(), capture_us);
  snapshot_log_bytes_ = st.bytes;
  snapshot_records_ = st.records;
  snapshot_due_ms_ = 0;
  snapshot_done_.store(false, std::memory_order_relaxed);
  try {
    StartSnapshotThread(seq, std::move(*cap));
  } catch (const std::system_error& e) {  // no thread to be had: the next tick tries again
    LOG_ERROR_S(kWal, "shard {}: cannot start the snapshot thread: {}", id_, e.what());
  }
}

void Shard::StartSnapshotThread(uint64_t seq, SnapshotCapture capture) {
  auto cap = std::make_shared<SnapshotCapture>(std::move(capture));
  auto run = [this, dir = WalDir(), seq, cap] {
    pthread_setname_np(pthread_self(), ("ringmq-snap" + std::to_string(id_)).c_str());
    wal::WalSnapshotWriter w;
    std::string error;
    size_t deleted = 0;
    bool ok = w.Open(dir, id_, seq, &error);
    if (ok) {
      w.AddFramed(cap->frames, cap->count);
      // The spilled queues, read from their pinned ranges (pread: the shard goes on using the
      // files meanwhile, above the ranges).
      for (const SnapshotCapture::Spilled& sp : cap->spilled) {
        ok = sp.file->ReadFileRange(
            sp.begin, sp.end,
            [&](std::string_view entry) {
              wal::WalMessageQueued q;
              std::string group, filter;
              if (!DecodeSpillEntry(entry, &q, &group, &filter) || q.message_id == 0 ||
                  q.message.qos == 0 || sp.removed.contains(q.message_id)) {
                return;
              }
              q.client_id = sp.client_id;
              if (q.message.expires_at_ms != 0) q.message.expires_at_ms += cap->clock_offset_ms;
              w.Add(q);
            },
            &error);
        if (!ok) break;
      }
      ok = ok && w.Commit(&error) && wal::DeleteObsoleteWalFiles(dir, id_, &deleted, &error);
    }
    snapshot_error_ = ok ? "" : error;
    // Release: the shard thread reads snapshot_error_ after an acquire load of the flag.
    snapshot_done_.store(true, std::memory_order_release);
    WakeFromAnyThread();
  };
  try {
    snapshot_thread_ = std::thread(std::move(run));
  } catch (const std::system_error&) {
    for (const std::shared_ptr<SpillFile>& f : snapshot_pins_) f->Unpin();
    snapshot_pins_.clear();
    throw;
  }
}

void Shard::FinishSnapshot(bool wait) {
  if (!snapshot_thread_.joinable()) return;
  if (!wait && !snapshot_done_.load(std::memory_order_acquire)) return;
  snapshot_thread_.join();
  for (const std::shared_ptr<SpillFile>& f : snapshot_pins_) f->Unpin();
  snapshot_pins_.clear();
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
  std::optional<SnapshotCapture> cap = CaptureSnapshot();
  if (!cap) {  // (a spilled queue cannot be read) the next attempt after the delay
    wal_->SetFailed(EIO);
    return;
  }
  wal_reopen_seq_ = seq;
  wal_reopen_covered_ = wal_->appended_seq();
  snapshot_log_bytes_ = 0;
  snapshot_records_ = 0;
  snapshot_due_ms_ = 0;
  snapshot_done_.store(false, std::memory_order_relaxed);
  try {
    StartSnapshotThread(seq, std::move(*cap));
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

}  // namespace ringmq::broker
