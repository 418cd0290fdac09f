// A shard's write-ahead log (broker/shard_log.h): snapshots captured on the loop and written by a
// background thread, the log truncated behind them; opening the log, and reopening it after it
// failed without a restart.
#include "broker/shard_log.h"

#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "base/log.h"
#include "broker/internal/wal_fields.h"
#include "net/user_data.h"

namespace ringmq::broker {

using internal::kWalReopenFirstMs;
using internal::kWalReopenMaxMs;
using internal::QueuedRecord;
using internal::WallMs;

SnapshotRecords::~SnapshotRecords() { Unpin(); }

void SnapshotRecords::Unpin() {
  for (Spilled& s : spilled_) s.file->Unpin();
  spilled_.clear();
}

bool SnapshotRecords::AddSpilled(const std::string& id, const Session& s) {
  if (writer_ == nullptr) {
    SpillFile& f = *s.spill();
    if (f.Flush()) {  // every spilled entry is in the file: the thread reads them there
      f.Pin();
      spilled_.push_back(
          Spilled{id, s.spill(), f.read_offset(), f.file_end(), s.removed_spilled()});
      return true;
    }
    // The spill cannot write (a full disk): the loop copies them, as it does the rest.
  }
  // Every QoS 1/2 delivery of a logged session has its record (LogQueued, LogSessionStart): one
  // without is not the log's.
  return s.ForEachSpilled([&](const Delivery& d) {
    if (d.qos == 0 || d.wal_id == 0) return;
    Add(QueuedRecord(id, d.wal_id, d, clock_offset_ms_));
  });
}

ShardLog::~ShardLog() {
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
}

wal::WalWriterOptions ShardLog::Options() const {
  wal::WalWriterOptions o;
  o.dir = Dir();
  o.shard = shard_;
  o.durability = cfg_.durability;
  o.batch_interval_ms = cfg_.wal_batch_ms;
  return o;
}

bool ShardLog::WriteSnapshot(uint64_t seq, int64_t now_ms, std::string* error) {
  owner_.Check();
  wal::WalSnapshotWriter w;
  if (!w.Open(Dir(), shard_, seq, error)) return false;
  SnapshotRecords records(&w, WallMs() - now_ms);
  if (!host_.AddStateRecords(records)) {
    *error = "reading a spilled queue failed";
    return false;
  }
  return w.Commit(error);
}

void ShardLog::Open(uint64_t first_seq, bool snapshot_written) {
  owner_.Check();
  writer_ = std::make_unique<wal::WalWriter>();
  next_seq_ = first_seq + 1;
  if (!snapshot_written) {
    writer_->Continue(Options(), 0, 0);
    writer_->SetFailed(EIO);
    failure_logged_ = true;  // the broker logged why, and what it means
    return;
  }
  std::string error;
  if (!writer_->Open(Options(), first_seq, &error)) {
    LOG_ERROR_S(kWal, "shard {}: cannot open the write-ahead log: {}", shard_, error);
  }
}

void ShardLog::Close(net::Ring& ring, uint8_t op_kind) {
  owner_.Check();
  if (writer_ == nullptr) return;
  FinishSnapshot(/*wait=*/true);
  // A failed log's segments miss records: the snapshot gets a number above them.
  uint64_t seq = writer_->Roll();
  if (writer_->failed()) seq = std::max(seq, FreshSeq());
  for (int i = 0; i < 1000 && !writer_->idle(); ++i) {
    writer_->Flush(ring, op_kind, route::SteadyNowMs());
    ring.SubmitAndWait(1, 10'000'000);
    ring.ForEachCqe([&](const net::Completion& c) {
      if (net::UnpackUserData(c.user_data).kind == op_kind) writer_->OnCompletion(c);
    });
  }
  std::string error;
  size_t deleted = 0;
  if (!WriteSnapshot(seq, route::SteadyNowMs(), &error) ||
      !wal::DeleteObsoleteWalFiles(Dir(), shard_, &deleted, &error)) {
    LOG_ERROR_S(kWal, "shard {}: snapshot at shutdown failed: {} (the log is kept and replayed)",
                shard_, error);
  }
  if (writer_->idle()) writer_.reset();
}

void ShardLog::LogFailure() {
  failure_logged_ = true;
  LOG_ERROR_S(kWal,
              "shard {}: the write-ahead log failed ({}): messages for persistent sessions are no "
              "longer acknowledged (MQTT 5 publishers get 0x80); clean sessions are served; the "
              "log is reopened as soon as it can be written again (tried at once, then after {} "
              "s, at intervals doubling up to {} s)",
              shard_, std::strerror(writer_->error()), kWalReopenFirstMs / 1000,
              kWalReopenMaxMs / 1000);
}

std::unique_ptr<SnapshotRecords> ShardLog::Capture(int64_t now_ms) {
  auto cap = std::make_unique<SnapshotRecords>(WallMs() - now_ms);
  if (!host_.AddStateRecords(*cap)) return nullptr;  // (its destructor unpins)
  return cap;
}

void ShardLog::Tick(int64_t now) {
  owner_.Check();
  if (writer_ == nullptr) return;
  FinishSnapshot(/*wait=*/false);
  if (writer_->failed()) {
    MaybeReopen(now);
    return;
  }
  if (snapshot_thread_.joinable()) return;  // one at a time
  const wal::WalWriter::Stats& st = writer_->stats();
  if (st.records == snapshot_records_) return;  // nothing logged since the last one
  if (snapshot_due_ms_ == 0) snapshot_due_ms_ = now + int64_t{cfg_.snapshot_interval_s} * 1000;
  const bool by_size =
      cfg_.snapshot_log_bytes != 0 && st.bytes - snapshot_log_bytes_ >= cfg_.snapshot_log_bytes;
  const bool by_time = cfg_.snapshot_interval_s != 0 && now >= snapshot_due_ms_;
  if (!by_size && !by_time) return;
  // Records appended from here on go to segment `seq` and later; the snapshot holds the state
  // after every record before it (invariant 2), so it is captured now, on this thread.
  const uint64_t seq = writer_->Roll();
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<SnapshotRecords> cap = Capture(now);
  if (cap == nullptr) {  // the next tick tries again
    LOG_ERROR_S(kWal, "shard {}: snapshot {} skipped: a spilled session queue cannot be read",
                shard_, seq);
    return;
  }
  const auto capture_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
  LOG_DEBUG_S(kWal,
              "shard {}: snapshot {} captured: {} records, {} bytes, {} spilled queues in {} us",
              shard_, seq, cap->count(), cap->frames().size(), cap->spilled().size(), capture_us);
  snapshot_log_bytes_ = st.bytes;
  snapshot_records_ = st.records;
  snapshot_due_ms_ = 0;
  try {
    StartSnapshotThread(seq, std::move(cap));
  } catch (const std::system_error& e) {  // no thread to be had: the next tick tries again
    LOG_ERROR_S(kWal, "shard {}: cannot start the snapshot thread: {}", shard_, e.what());
  }
}

void ShardLog::StartSnapshotThread(uint64_t seq, std::unique_ptr<SnapshotRecords> capture) {
  snapshot_done_.store(false, std::memory_order_relaxed);
  snapshot_ = std::move(capture);
  // The thread reads the capture (owned by snapshot_ until it is joined) and writes only
  // snapshot_error_ and snapshot_done_.
  auto run = [this, dir = Dir(), seq, cap = snapshot_.get()] {
    pthread_setname_np(pthread_self(), ("ringmq-snap" + std::to_string(shard_)).c_str());
    wal::WalSnapshotWriter w;
    std::string error;
    size_t deleted = 0;
    bool ok = w.Open(dir, shard_, seq, &error);
    if (ok) {
      w.AddFramed(cap->frames(), cap->count());
      // The spilled queues, read from their pinned ranges (pread: the shard goes on using the
      // files meanwhile, above the ranges).
      for (const SnapshotRecords::Spilled& sp : cap->spilled()) {
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
              if (q.message.expires_at_ms != 0) q.message.expires_at_ms += cap->clock_offset_ms();
              w.Add(q);
            },
            &error);
        if (!ok) break;
      }
      ok = ok && w.Commit(&error) && wal::DeleteObsoleteWalFiles(dir, shard_, &deleted, &error);
    }
    snapshot_error_ = ok ? "" : error;
    // Release: the shard thread reads snapshot_error_ after an acquire load of the flag.
    snapshot_done_.store(true, std::memory_order_release);
    host_.WakeFromAnyThread();
  };
  try {
    snapshot_thread_ = std::thread(std::move(run));
  } catch (const std::system_error&) {
    snapshot_.reset();
    throw;
  }
}

void ShardLog::FinishSnapshot(bool wait) {
  if (!snapshot_thread_.joinable()) return;
  if (!wait && !snapshot_done_.load(std::memory_order_acquire)) return;
  snapshot_thread_.join();
  snapshot_.reset();  // unpins its spill files
  if (const uint64_t reopen = std::exchange(reopen_seq_, 0); reopen != 0) {
    std::string error = snapshot_error_;
    if (!error.empty()) {
      writer_->SetFailed(EIO);
    } else if (writer_->OpenAt(reopen, reopen_covered_, &error)) {
      failure_logged_ = false;
      reopen_delay_ms_ = 0;  // the next failure is retried at once, then after 1 s
      next_reopen_ms_ = 0;
      LOG_INFO_S(kWal,
                 "shard {}: the write-ahead log is writable again (snapshot {} holds the state): "
                 "messages for persistent sessions are acknowledged again",
                 shard_, reopen);
      return;
    }
    LOG_DEBUG_S(kWal, "shard {}: the write-ahead log is still not writable: {}", shard_, error);
    return;
  }
  if (!snapshot_error_.empty()) {
    LOG_ERROR_S(kWal, "shard {}: background snapshot failed: {} (the log is kept and replayed)",
                shard_, snapshot_error_);
  } else {
    LOG_DEBUG_S(kWal, "shard {}: snapshot written, covered segments deleted", shard_);
  }
}

uint64_t ShardLog::FreshSeq() const {
  // Roll() names a snapshot segment_seq() + 1 before that segment exists.
  return std::max(next_seq_, writer_ != nullptr ? writer_->segment_seq() + 2 : 1);
}

void ShardLog::MaybeReopen(int64_t now) {
  // One attempt at a time, once the failed writer has nothing in flight (it is destroyed here).
  if (!writer_->failed() || !writer_->idle() || snapshot_thread_.joinable() ||
      now < next_reopen_ms_) {
    return;
  }
  reopen_delay_ms_ = std::clamp(reopen_delay_ms_ * 2, kWalReopenFirstMs, kWalReopenMaxMs);
  next_reopen_ms_ = now + reopen_delay_ms_;
  const uint64_t seq = FreshSeq();
  next_seq_ = seq + 1;
  // The new writer's records wait in memory until the snapshot is committed; the answers that
  // wait for them wait with them (ack_seq stays at what the failed writer made durable).
  auto fresh = std::make_unique<wal::WalWriter>();
  fresh->Continue(Options(), writer_->appended_seq(), writer_->durable_seq());
  writer_ = std::move(fresh);
  std::unique_ptr<SnapshotRecords> cap = Capture(now);
  if (cap == nullptr) {  // (a spilled queue cannot be read) the next attempt after the delay
    writer_->SetFailed(EIO);
    return;
  }
  reopen_seq_ = seq;
  reopen_covered_ = writer_->appended_seq();
  snapshot_log_bytes_ = 0;
  snapshot_records_ = 0;
  snapshot_due_ms_ = 0;
  try {
    StartSnapshotThread(seq, std::move(cap));
  } catch (const std::system_error& e) {
    LOG_ERROR_S(kWal, "shard {}: cannot start the snapshot thread: {}", shard_, e.what());
    reopen_seq_ = 0;
    writer_->SetFailed(EAGAIN);
  }
}

}  // namespace ringmq::broker
