// The per-shard write-ahead log (DESIGN.md section 7, doc/wal-format.md): a directory of segment
// files `wal-<shard>-<seq>.log` written through the shard's io_uring with group commit, snapshot
// files `snap-<shard>-<seq>.dat` holding a full state, and recovery that replays a snapshot (the
// newest valid one, or a damaged one salvaged) and the segments after it, checking that none is
// missing.
//
//   WalWriter   the shard's appender: Append copies a record into an in-memory batch and returns
//               its sequence number; Flush (once per loop turn) writes the batch and fdatasyncs it
//               through the ring; written_seq() says what the kernel holds (survives a crash of
//               the process), durable_seq() what is on disk (survives a crash of the machine).
//   WalSnapshotWriter, ListWalFiles, DeleteObsoleteWalFiles
//               blocking file work for a background thread (or startup): a snapshot written to a
//               temp file, synced, renamed; then the segments it covers are deleted.
//   RecoverWal  blocking, at startup: snapshot + segments -> callback(record), torn tail
//               truncated, corruption and missing files reported (lenient) or refused (strict).
// Code: the writers in wal/wal.cc, listing and recovery in wal/wal_recovery.cc, names and
// headers in wal/internal/wal_file.h.
//
// Thread-safety: a WalWriter belongs to one shard thread (the thread that called Open) and only
// that thread calls it; debug builds assert it. WalSnapshotWriter is used by one thread at a time.
// The free functions touch only the files of the shard they are given; they may run on any thread
// but not concurrently with a WalSnapshotWriter or recovery of the same shard.
//
// Blocking: WalWriter never fsyncs on the calling thread. Its only plain syscalls are on segment
// changes (open + a 32-byte pwrite of the header + close, rare: once per segment_bytes) and in
// Open; every data write, fdatasync and the directory fsync for a new segment go through the ring.
// Everything else in this header blocks (read, write, fdatasync, rename) and must not run on a
// shard's loop, except at startup.
//
// Invariants:
//   1. Sequence numbers are 1, 2, 3, ... per WalWriter (one started with Continue goes on from
//      the numbers of the failed one it replaces); durable_seq() <= written_seq() <=
//      appended_seq(), and none of them decreases. Record n is written (its write completed: it
//      is in the page cache and survives a crash of the process) iff n <= written_seq(), and
//      durable (sync/batch: an fdatasync submitted after that write completed; none: written)
//      iff n <= durable_seq().
//   2. At most one write is in flight; records appended meanwhile wait for the next batch (group
//      commit). At most one fdatasync is in flight. kSync runs them one after the other (write,
//      fdatasync, next write); kBatch writes every turn while an fdatasync may be in flight, and
//      kNone never syncs.
//   3. Records reach the file in Append order; a segment receives its first write only after every
//      write to the previous segment is durable, so only the last segment can have a torn tail.
//   4. A snapshot `snap-<shard>-S.dat` holds the state after every record of segments < S; recovery
//      replays segments >= S on top of it. A snapshot is valid only with its end record.
//   5. After an I/O error the writer is failed(): written_seq() and durable_seq() stop and never
//      move again (a failed fdatasync cannot be retried safely: the kernel may have dropped the
//      dirty pages). The shard replaces a failed writer (Continue, OpenAt) after a snapshot.
//   6. After a snapshot S, the segments are S, S+1, ... without a gap; each segment header says
//      what precedes it (a roll: the previous segment; Open: the snapshot of its number, nothing
//      for a new log). Recovery reports a gap, or a first segment whose predecessor is missing.
//   7. A damaged snapshot that recovery has dealt with is renamed `snap-<shard>-S.dat.bad`: kept,
//      never pruned, and never read again once a newer valid snapshot exists. Its number still
//      counts for next_seq, so numbers are never reused.
#ifndef RINGMQ_WAL_WAL_H_
#define RINGMQ_WAL_WAL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/metrics.h"
#include "net/ring.h"
#include "wal/durability.h"
#include "wal/wal_records.h"

namespace ringmq::wal {

namespace wal_internal {
enum class WalLink : uint32_t;  // wal/internal/wal_file.h
}  // namespace wal_internal

// Every mode writes each loop turn's records to the kernel, so a crash of the process loses
// nothing written; they differ in what a crash of the machine (power loss, kernel panic) can lose.
struct WalWriterOptions {
  std::string dir;  // created if missing
  uint16_t shard = 0;
  uint64_t segment_bytes = uint64_t{64} << 20;  // roll to a new segment past this size
  WalDurability durability = WalDurability::kSync;
  int64_t batch_interval_ms = 10;  // kBatch only: between fdatasyncs
};

// File names and the 32-byte header of segments and snapshots (doc/wal-format.md).
inline constexpr size_t kWalFileHeaderSize = 32;
std::string WalSegmentName(uint16_t shard, uint64_t seq);   // wal-<shard>-<seq>.log
std::string WalSnapshotName(uint16_t shard, uint64_t seq);  // snap-<shard>-<seq>.dat

class WalWriter {
 public:
  struct Stats {
    uint64_t records = 0;  // appended
    uint64_t bytes = 0;    // written to segments, headers included
    uint64_t writes = 0;   // write operations completed
    uint64_t syncs = 0;    // fdatasyncs completed
    uint64_t segments = 0;
    base::LatencyHistogram
        fsync;  // each data fdatasync, from its submission (Flush) to its completion
  };

  WalWriter() = default;
  // Closes the files. REQUIRES: idle(), or the ring has been destroyed (in-flight operations
  // point into this object's buffers).
  ~WalWriter();
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Creates the directory if needed and segment `first_seq` (RecoverWal's next_segment_seq); the
  // calling thread becomes the owner. The header records whether snapshot `first_seq` or segment
  // `first_seq - 1` exists (a broker writes its startup snapshot before Open) or the shard has no
  // file yet (a new log). Plain syscalls. REQUIRES: not yet open.
  // When it returns false the writer is failed() (Append drops records; see invariant 5).
  [[nodiscard]] bool Open(const WalWriterOptions& options, uint64_t first_seq, std::string* error);

  // Reopening a log that failed (a full disk freed again): the shard captures its state as
  // snapshot S, starts a new writer with Continue (the numbering of the failed one goes on: its
  // appended_seq() and durable_seq()), whose records wait in memory, and once the snapshot is
  // committed calls OpenAt(S, covered): segment S is created after it, and every record up to
  // `covered` (the appended_seq() at the capture, held by the snapshot) counts as written and
  // durable. If the snapshot failed: SetFailed. The calling thread of Continue becomes the owner.
  // REQUIRES (Continue): not yet open; (OpenAt): after Continue, not yet open.
  void Continue(const WalWriterOptions& options, uint64_t appended_seq, uint64_t durable_seq);
  [[nodiscard]] bool OpenAt(uint64_t first_seq, uint64_t covered_seq, std::string* error);
  // Fails the writer for good (invariant 5), e.g. before it was ever opened.
  void SetFailed(int err);

  // Copies one record into the batch and returns its sequence number. After failed() the record is
  // dropped (the number is still returned, and never becomes durable).
  // REQUIRES: open; body.size() <= kWalMaxBodySize.
  uint64_t Append(WalType type, std::string_view body);
  template <typename R>
  uint64_t Append(const R& record) {
    return AppendFramed([&](std::string* out) { AppendWalRecord(record, out); });
  }

  // Once per loop turn, after the handlers ran and before SubmitAndWait: advances the write /
  // fdatasync chain: when no write is in flight (kSync: and no fdatasync) and records are
  // pending, submits them as the next batch; submits an fdatasync of what was written (kSync:
  // at once; kBatch: once the interval has passed since the last one). Completions are tagged
  // PackUserData(user_data_kind, 0, op); hand them to OnCompletion. now_ms: any monotonic clock.
  void Flush(net::Ring& ring, uint8_t user_data_kind, int64_t now_ms);

  // Handles one completion tagged with the kind given to Flush. Never submits (Flush does).
  void OnCompletion(const net::Completion& c);

  // Records appended from now on go to a new segment, whose number is returned: a snapshot of the
  // state as of now is named with it (invariant 4). The switch happens in a later Flush.
  uint64_t Roll();

  uint64_t appended_seq() const { return appended_seq_; }
  uint64_t written_seq() const { return written_seq_; }
  uint64_t durable_seq() const { return durable_seq_; }
  // What an acknowledgement may vouch for: durable_seq() in kSync, written_seq() otherwise.
  uint64_t ack_seq() const {
    return options_.durability == WalDurability::kSync ? durable_seq_ : written_seq_;
  }
  // Nothing pending, everything written durable, nothing in flight (e.g. before shutdown or
  // destruction). After failed(): no operation in flight any more.
  bool idle() const {
    return ops_in_flight_ == 0 &&
           (failed() || (pending_.empty() && inflight_.empty() && !roll_pending_ &&
                         durable_seq_ == written_seq_ && !awaiting_dir_));
  }
  // kBatch: when the fdatasync of what was written is due (for the loop's sleep), while none is
  // in flight. Otherwise max(): whatever else the writer waits for, a completion wakes the loop
  // (or the next Append and Flush start it).
  int64_t next_flush_ms() const;
  bool failed() const { return error_ != 0; }
  bool open() const { return fd_ >= 0; }  // a segment is open (else records wait in memory)
  int error() const { return error_; }    // errno of the failure, 0 when healthy
  uint64_t segment_seq() const { return segment_seq_; }
  const Stats& stats() const { return stats_; }

 private:
  enum Op : uint32_t { kOpWrite = 0, kOpDataSync = 1, kOpDirSync = 2 };

  template <typename F>
  uint64_t AppendFramed(F&& append) {
    AssertOwner();
    ++appended_seq_;
    if (failed()) return appended_seq_;
    append(&pending_);
    ++stats_.records;
    if (!roll_pending_ && segment_size_ + pending_.size() >= options_.segment_bytes) Roll();
    return appended_seq_;
  }
  // Creates segment `seq` (its header saying what precedes it) and makes it current; 0, or the
  // errno with *error.
  int OpenSegment(uint64_t seq, wal_internal::WalLink link, std::string* error);
  void TakeBatch();
  // Whether Flush submits an fdatasync of what was written now.
  bool SyncDue(int64_t now_ms) const;
  void Fail(int err, const char* what);
  void AssertOwner() const;

  WalWriterOptions options_;
  int dir_fd_ = -1;
  int fd_ = -1;
  uint64_t segment_seq_ = 0;
  uint64_t segment_size_ = 0;     // bytes assigned to the current segment (header included)
  uint64_t segment_offset_ = 0;   // bytes written to it
  bool dir_sync_needed_ = false;  // the current segment's directory entry is not yet synced
  bool dir_sync_in_flight_ = false;

  std::string pending_;   // framed records not yet handed to the kernel
  std::string inflight_;  // the batch being written (empty: none)
  size_t inflight_written_ = 0;
  uint64_t inflight_last_seq_ = 0;
  bool writing_ = false;         // a write of inflight_ is in flight
  bool syncing_ = false;         // an fdatasync is in flight
  bool awaiting_dir_ = false;    // synced; the directory fsync of the segment is in flight
  uint64_t sync_seq_ = 0;        // what the fdatasync in flight (or awaiting_dir_) covers
  uint64_t unsynced_bytes_ = 0;  // written since the last fdatasync was submitted
  bool roll_pending_ = false;
  size_t roll_boundary_ = 0;  // bytes of pending_ that still belong to the current segment
  uint64_t roll_boundary_seq_ = 0;
  unsigned ops_in_flight_ = 0;
  int64_t last_sync_ms_ = std::numeric_limits<int64_t>::min();  // when one was last submitted
  int64_t sync_submitted_ns_ = 0;  // steady clock, of the data fdatasync in flight

  uint64_t appended_seq_ = 0;
  uint64_t written_seq_ = 0;
  uint64_t durable_seq_ = 0;
  int error_ = 0;
  Stats stats_;
  std::thread::id owner_;
};

// Writes a snapshot: records into `snap-<shard>-<seq>.dat.tmp`, then on Commit the end record,
// fdatasync, rename to the final name, fsync of the directory. Blocking: a background thread or
// startup. Destroying it without Commit removes the temp file.
class WalSnapshotWriter {
 public:
  WalSnapshotWriter() = default;
  ~WalSnapshotWriter();
  WalSnapshotWriter(const WalSnapshotWriter&) = delete;
  WalSnapshotWriter& operator=(const WalSnapshotWriter&) = delete;

  // seq: the value WalWriter::Roll returned when the state was captured.
  [[nodiscard]] bool Open(const std::string& dir, uint16_t shard, uint64_t seq, std::string* error);
  template <typename R>
  void Add(const R& record) {
    AppendWalRecord(record, &buffer_);
    AfterAdd();
  }
  void Add(WalType type, std::string_view body);
  // Adds `count` records already framed (AppendWalRecord) by whoever captured the state, e.g. a
  // shard that captures on its loop and lets a background thread write.
  void AddFramed(std::string_view frames, uint64_t count);
  // REQUIRES: open. After Commit the writer is closed whatever the result.
  [[nodiscard]] bool Commit(std::string* error);

 private:
  void AfterAdd();
  bool WriteBuffer();
  void WriteAll(std::string_view bytes);  // sets error_ on failure

  std::string dir_;
  std::string tmp_path_;
  std::string final_path_;
  int fd_ = -1;
  std::string buffer_;
  uint64_t records_ = 0;
  int error_ = 0;
};

struct WalSegmentFile {
  uint64_t seq = 0;
  std::string path;
};

// The WAL files of one shard in a directory, and the snapshot recovery starts from: the newest
// valid snapshot from which a segment exists for every number up to the newest snapshot's;
// failing that, the newest snapshot even if damaged (doc/wal-format.md, "Choosing the snapshot").
struct WalFileList {
  uint64_t snapshot_seq = 0;      // the snapshot to start from; 0: none
  std::string snapshot;           // its path (ends in .bad if an earlier recovery set it aside)
  bool snapshot_damaged = false;  // it failed validation: recovery salvages its valid records
  std::vector<WalSegmentFile> segments;  // seq >= snapshot_seq, ascending: to replay
  // Segments < snapshot_seq, older snapshots, temp files; only temp files when snapshot_damaged.
  // Never a set-aside (.bad) snapshot.
  std::vector<std::string> obsolete;
  std::vector<std::string> bad_snapshots;  // damaged snapshots newer than the one used (kept)
  uint64_t next_seq = 1;  // above every segment and snapshot number seen, set-aside ones included
};

// Lists (and validates the snapshots of) one shard's files. A missing directory is empty.
[[nodiscard]] bool ListWalFiles(const std::string& dir, uint16_t shard, WalFileList* list,
                                std::string* error);
// Deletes what ListWalFiles calls obsolete and syncs the directory; *deleted counts the files.
// Call after a snapshot is committed. REQUIRES: no WalSnapshotWriter of this shard is open.
[[nodiscard]] bool DeleteObsoleteWalFiles(const std::string& dir, uint16_t shard, size_t* deleted,
                                          std::string* error);
// The shard numbers that have WAL files in `dir` (to rehome sessions when the shard count changed).
std::vector<uint16_t> ListWalShards(const std::string& dir);

struct WalRecoverOptions {
  bool strict = false;             // fail on corruption instead of skipping it
  bool truncate_torn_tail = true;  // cut a torn tail off the last segment (false: read only)
};

struct WalCorruptRange {
  std::string file;
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive
  std::string reason;
};

struct WalRecoverStats {
  uint64_t snapshot_seq = 0;       // 0: no snapshot used
  bool snapshot_salvaged = false;  // it was damaged: its valid records were replayed
  uint64_t snapshot_records = 0;
  uint64_t segments = 0;                 // replayed
  uint64_t records = 0;                  // handed to the callback, snapshot included
  uint64_t bytes = 0;                    // of those records' frames
  uint64_t truncated_bytes = 0;          // torn tail removed from the last segment
  std::vector<WalCorruptRange> corrupt;  // a missing file: begin == end == 0
  uint64_t next_segment_seq = 1;         // open the WalWriter with this
};

using WalRecordCallback = std::function<void(const WalRecord&)>;

// Replays one shard's snapshot (WalFileList: the newest valid one, or a damaged one whose valid
// records are salvaged), then its segments in order, calling `fn` for every record (never for the
// snapshot end record). A torn tail (an incomplete or bad record with no valid record after it, at
// the end of the last segment) is truncated and logged. Other corruption (a damaged snapshot, a
// bad record with valid ones after it, a bad header, a record that does not decode) and missing
// files (a gap in the segment numbers, a first segment whose snapshot or previous segment is
// gone) are logged and listed in stats->corrupt, and the valid records around them are kept; with
// options.strict it fails instead, with *error naming the file (and range). Lenient recovery
// (not strict, truncate_torn_tail) renames the damaged snapshots it met to <name>.bad (invariant
// 7). A missing directory is a fresh start. Blocking: startup only.
[[nodiscard]] bool RecoverWal(const std::string& dir, uint16_t shard,
                              const WalRecoverOptions& options, const WalRecordCallback& fn,
                              WalRecoverStats* stats, std::string* error);

}  // namespace ringmq::wal

#endif  // RINGMQ_WAL_WAL_H_
