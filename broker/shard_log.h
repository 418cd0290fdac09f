// ShardLog: a shard's write-ahead log as the shard sees it (DESIGN.md section 7,
// doc/wal-format.md): the writer, the snapshots that truncate it (captured on the loop, written by
// a background thread), reopening it after it failed (a full or read-only disk) without a restart,
// and the answers that wait for it (AckGate). What goes into the log, and restoring from it, is
// the shard's (broker/persistence.cc): the shard appends records here and, for a snapshot, adds
// the records of its whole state to a SnapshotRecords (ShardLog::Host).
//
// Thread-safety: owned by one shard; only its thread calls it (asserted in debug builds against
// the shard's OwnerThread), except may_persist() and failed() (relaxed loads, from any shard) and
// the snapshot thread it starts itself, which touches only what it was given and snapshot_error_ /
// snapshot_done_ (release / acquire).
// Invariants:
//   1. At most one snapshot thread runs at a time; the spill files it reads stay pinned until
//      it is joined (FinishSnapshot), so the loop never copies a spilled message for it.
//   2. A snapshot holds the state after every record appended before the Roll() that named it
//      (wal.h invariant 4): it is captured on the loop right after that Roll(), in the same turn.
//   3. While the log has failed, a reopening attempt writes the whole state as a snapshot under a
//      number no file has (FreshSeq) and the new writer's records wait in memory until it is
//      committed; answers waiting for them wait with them.
//   4. Message ids (NewMessageId) are unique within the shard's log: restore raises the next one
//      above every id it read (SeenMessageId).
#ifndef RINGMQ_BROKER_SHARD_LOG_H_
#define RINGMQ_BROKER_SHARD_LOG_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/owner_thread.h"
#include "broker/ack_gate.h"
#include "broker/config.h"
#include "broker/session.h"
#include "broker/spill.h"
#include "net/ring.h"
#include "wal/wal.h"

namespace ringmq::broker {

// Where the records of a snapshot go: straight into a snapshot file (at startup and shutdown,
// when the loop is not serving), or framed into memory for the background thread (a capture on
// the loop). The host adds every record of its state (ShardLog::Host::AddStateRecords).
class SnapshotRecords {
 public:
  // Into a file: `writer` is open.
  SnapshotRecords(wal::WalSnapshotWriter* writer, int64_t clock_offset_ms)
      : writer_(writer), clock_offset_ms_(clock_offset_ms) {}
  // Into memory: the spill files of spilled queues are pinned, their ranges noted (spilled()).
  explicit SnapshotRecords(int64_t clock_offset_ms) : clock_offset_ms_(clock_offset_ms) {}
  ~SnapshotRecords();
  SnapshotRecords(const SnapshotRecords&) = delete;
  SnapshotRecords& operator=(const SnapshotRecords&) = delete;

  template <typename R>
  void Add(const R& record) {
    if (writer_ != nullptr) {
      writer_->Add(record);
    } else {
      wal::AppendWalRecord(record, &frames_);
      ++count_;
    }
  }
  // The queued messages of session `s` (client id `id`) that are in its spill file, after the
  // rest of its queue. False when they can be neither pinned nor read (a disk error): the
  // snapshot must not be used then.
  bool AddSpilled(const std::string& id, const Session& s);
  // Wall clock minus the shard's steady clock: message expiry is logged in wall time.
  int64_t clock_offset_ms() const { return clock_offset_ms_; }

  // A spilled queue the background thread reads from its spill file.
  struct Spilled {
    std::string client_id;
    std::shared_ptr<SpillFile> file;  // pinned until Unpin()
    uint64_t begin = 0;
    uint64_t end = 0;
    std::unordered_set<uint64_t> removed;  // Session::removed_spilled()
  };
  const std::string& frames() const { return frames_; }
  uint64_t count() const { return count_; }
  const std::vector<Spilled>& spilled() const { return spilled_; }
  // Lets go of the pinned spill files (the destructor does it too).
  void Unpin();

 private:
  wal::WalSnapshotWriter* writer_ = nullptr;
  int64_t clock_offset_ms_ = 0;
  std::string frames_;
  uint64_t count_ = 0;
  std::vector<Spilled> spilled_;
};

class ShardLog {
 public:
  // What the log needs of its shard.
  class Host {
   public:
    // Adds every record of the shard's state (sessions, subscriptions, queued and in-flight
    // messages, retained messages) to `out`; false: a spilled queue could not be read.
    virtual bool AddStateRecords(SnapshotRecords& out) = 0;
    // From the snapshot thread, once it is done: the loop must come round (FinishSnapshot).
    virtual void WakeFromAnyThread() = 0;

   protected:
    ~Host() = default;
  };

  // `cfg` is the shard's configuration, read when used (a SIGHUP reload replaces it in place);
  // `owner` its thread check. Both outlive the log.
  ShardLog(Host& host, uint16_t shard, const Config& cfg, const base::OwnerThread& owner)
      : host_(host), shard_(shard), cfg_(cfg), owner_(owner) {}
  ~ShardLog();
  ShardLog(const ShardLog&) = delete;
  ShardLog& operator=(const ShardLog&) = delete;

  // --- Start and stop ---
  // Writes the state as snapshot `seq` (at startup, before the shard thread runs); `now_ms`: the
  // shard's steady clock, which message expiry is kept in.
  bool WriteSnapshot(uint64_t seq, int64_t now_ms, std::string* error);
  // Opens the log at segment first_seq, after the startup snapshot of that number, or (when it
  // could not be written, or the segment cannot be created) starts failed: the shard serves clean
  // sessions, refuses what needs the log and retries (Tick). From then on answers wait for it.
  void Open(uint64_t first_seq, bool snapshot_written);
  // At the end of the loop: lets the last records reach the disk (through `ring`), then writes
  // the state as a snapshot so that the next start replays little.
  void Close(net::Ring& ring, uint8_t op_kind);

  // --- Records ---
  bool open() const { return writer_ != nullptr; }
  // A no-op without a log.
  template <typename R>
  void Append(const R& record) {
    owner_.Check();
    if (writer_ != nullptr) (void)writer_->Append(record);
  }
  // The sequence number of the last record appended (0 without a log): an answer waits when
  // handling its packet moved it.
  uint64_t appended_seq() const { return writer_ != nullptr ? writer_->appended_seq() : 0; }
  uint64_t NewMessageId() { return next_message_id_++; }
  void SeenMessageId(uint64_t id) { next_message_id_ = std::max(next_message_id_, id + 1); }
  // Session::logged went up (true) or down: may_persist() counts the logged sessions.
  void CountLogged(bool up) {
    // Relaxed: ordered before the CONNACK / SUBACK that tell a client of the session by the ring
    // and the kernel, not by this store (Shard::may_persist).
    if (up) {
      persistent_sessions_.fetch_add(1, std::memory_order_relaxed);
    } else {
      persistent_sessions_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  // Any thread, relaxed (Shard::may_persist explains why that suffices).
  bool may_persist() const { return persistent_sessions_.load(std::memory_order_relaxed) != 0; }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }

  // --- The loop ---
  // Answers to QoS 1/2 PUBLISH, PUBREL wait for the log (a log is open, in every durability mode).
  bool answers_wait() const { return writer_ != nullptr; }
  AckGate& gate() { return gate_; }
  void OnCompletion(const net::Completion& cqe) {
    if (writer_ != nullptr) writer_->OnCompletion(cqe);
  }
  void Flush(net::Ring& ring, uint8_t op_kind, int64_t now_ms) {
    if (writer_ != nullptr) writer_->Flush(ring, op_kind, now_ms);
  }
  // When the loop must wake for the log's next fdatasync (max() when none is due).
  int64_t next_flush_ms(int64_t otherwise) const {
    return writer_ != nullptr ? std::min(otherwise, writer_->next_flush_ms()) : otherwise;
  }
  // Periodic work: finishes a snapshot whose thread is done, starts one when the log grew by
  // snapshot_log_bytes or snapshot_interval passed, or tries to reopen a failed log.
  void Tick(int64_t now_ms);
  // Once per loop turn: notes whether the log failed (logged once per failure), closes the gate's
  // turns and reports to each sender the count of its messages whose records are durable:
  // post(to, count) (a kDurable message).
  template <typename Post>
  void EndTurn(Post&& post);
  // Then hands out the held answers that may leave: release(answer, not_durable).
  // peer_failed(q): shard q's log failed.
  template <typename PeerFailed, typename Release>
  void ReleaseAnswers(PeerFailed&& peer_failed, Release&& release) {
    gate_.Release(ack_seq(), writer_ != nullptr && writer_->failed(), peer_failed, release);
  }
  // Nothing appended waits to be written or synced (also true without a log, or when it failed).
  bool idle() const { return writer_ == nullptr || writer_->idle(); }
  // For /metrics: nullptr without a log.
  const wal::WalWriter::Stats* stats() const {
    return writer_ != nullptr ? &writer_->stats() : nullptr;
  }

 private:
  std::string Dir() const { return cfg_.data_dir + "/wal"; }
  wal::WalWriterOptions Options() const;
  uint64_t ack_seq() const { return writer_ != nullptr ? writer_->ack_seq() : 0; }
  // A snapshot of the state captured on the loop; nullptr when a spilled queue can be neither
  // flushed nor read (nothing stays pinned then).
  std::unique_ptr<SnapshotRecords> Capture(int64_t now_ms);
  void StartSnapshotThread(uint64_t seq, std::unique_ptr<SnapshotRecords> capture);
  void FinishSnapshot(bool wait);
  void MaybeReopen(int64_t now_ms);
  // A segment / snapshot number no file of this shard has, nor will get from the current writer.
  uint64_t FreshSeq() const;
  void LogFailure();

  Host& host_;
  const uint16_t shard_;
  const Config& cfg_;
  const base::OwnerThread& owner_;
  std::unique_ptr<wal::WalWriter> writer_;
  AckGate gate_;
  uint64_t next_message_id_ = 1;
  // Sessions with Session::logged; written by the shard's thread only.
  std::atomic<uint32_t> persistent_sessions_{0};
  std::atomic<bool> failed_{false};
  bool failure_logged_ = false;
  std::thread snapshot_thread_;
  std::atomic<bool> snapshot_done_{false};
  std::string snapshot_error_;  // written by the snapshot thread before snapshot_done_
  // The capture the snapshot thread writes; owned here so that its pins are released on this
  // thread (FinishSnapshot).
  std::unique_ptr<SnapshotRecords> snapshot_;
  uint64_t snapshot_log_bytes_ = 0;  // writer stats().bytes when the last snapshot was captured
  uint64_t snapshot_records_ = 0;    // stats().records then
  int64_t snapshot_due_ms_ = 0;      // the time trigger, once something was logged
  uint64_t next_seq_ = 1;            // no file of this shard is numbered this or higher
  uint64_t reopen_seq_ = 0;          // the snapshot a reopening of the log is writing (0: none)
  uint64_t reopen_covered_ = 0;      // the records that snapshot holds (appended_seq then)
  int64_t next_reopen_ms_ = 0;
  int64_t reopen_delay_ms_ = 0;  // the last interval between attempts (0: none failed yet)
};

template <typename Post>
void ShardLog::EndTurn(Post&& post) {
  owner_.Check();
  const uint64_t appended = appended_seq();
  const bool failed = writer_ != nullptr && writer_->failed();
  if (failed != failed_.load(std::memory_order_relaxed)) {
    failed_.store(failed, std::memory_order_relaxed);
    // (false again: an attempt to reopen it is under way, MaybeReopen.)
    if (failed && !failure_logged_) LogFailure();
  }
  gate_.CloseReceiveTurn(appended);
  gate_.CloseTurn(appended);
  gate_.Confirm(ack_seq(), post);
}

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_SHARD_LOG_H_
