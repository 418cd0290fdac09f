// Spill files: the tail of a session's queue on disk, so that a queue of any length costs a
// bounded amount of memory (issue 14; doc/configuration.md, "Session queues on disk").
//
// A session keeps the oldest part of its queue in memory (up to QueueLimits::memory_bytes) and
// appends the rest, encoded, to its spill file; it reads entries back, in order, as its memory
// part drains. The file is created in `<data_dir>/spill` and unlinked at once: it is scratch
// space, never read by a restart (what must survive one is in the write-ahead log), and gone
// with the process whatever the way it ends. Space the reader has passed is returned to the file
// system as it goes (FALLOC_FL_PUNCH_HOLE), and the file is truncated when it empties.
//
// Written here rather than taken from a library: a FIFO of opaque byte strings in one unlinked
// file is ~200 lines; an embedded database (RocksDB, LMDB) would add a second write-ahead log and
// compaction for data that is written once, read once and never updated.
//
// Thread-safety: a SpillFile is used by its session's shard thread, except ReadFileRange, which
// a snapshot thread may call (pread only) on a range the shard pinned; the DiskBudget is shared
// by every shard (atomic).
// Invariants:
//   1. Entries lie back to back at logical offsets [0, end): [0, file_end_) in the file, the rest
//      in wbuf_; entries before read_ have been read.
//   2. Bytes of the file in [0, punched_) are returned to the file system; punched_ <= read_.
//   3. budget_taken_ = file_end_ - punched_: what the file holds on disk, as counted against the
//      budget (rounded to what punching could free, not to blocks).
//   4. While pinned, nothing below file_end_ changes: no punching, no truncation.
#ifndef RINGMQ_BROKER_SPILL_H_
#define RINGMQ_BROKER_SPILL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "route/message.h"
#include "wal/wal_records.h"

namespace ringmq::broker {

struct Delivery;

// Disk space that every spill file of the broker may use together (max_queue_disk_bytes).
class DiskBudget {
 public:
  explicit DiskBudget(uint64_t max_bytes) : max_(max_bytes) {}
  // Takes n bytes; false (nothing taken) when that would pass the maximum.
  bool Take(uint64_t n);
  void Give(uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t max() const { return max_; }

 private:
  const uint64_t max_;
  // Relaxed: a counter, not a synchronisation (Take's compare-and-swap keeps it at most max_).
  std::atomic<uint64_t> used_{0};
};

// What a shard gives its sessions to spill with. Used by the shard's thread only.
struct SpillContext {
  std::string dir;               // created on first use
  DiskBudget* budget = nullptr;  // required
  // The in-memory parts of the shard's queues together: memory_used is their sum (kept by the
  // sessions); past memory_max a queue keeps only its oldest message in memory (0: no bound).
  uint64_t memory_max = 0;
  uint64_t memory_used = 0;
};

class SpillFile {
 public:
  // Creates and unlinks a file in ctx.dir. nullptr (and *error) when it cannot.
  static std::unique_ptr<SpillFile> Create(const SpillContext& ctx, std::string* error);
  ~SpillFile();
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  // Appends one entry. False when it could not be taken (the disk budget is used up, or the disk
  // is full or failing: error() says which; the file is unchanged). Entries are buffered in
  // memory and written once the buffer holds kWriteBufferBytes.
  bool Append(std::string_view entry) {
    return AppendEncoded([entry](std::string* out) { out->append(entry); });
  }
  // Appends the entry that encode(std::string* out) appends to *out: encoded in place, no copy.
  template <typename F>
  bool AppendEncoded(F&& encode) {
    const size_t mark = wbuf_.size();
    wbuf_.append(kLengthBytes, '\0');
    std::forward<F>(encode)(&wbuf_);
    return FinishAppend(mark);
  }
  // The next unread entry, oldest first, as a view valid until the next call on this file; false
  // when none is left or the file cannot be read (error() is set: the unread entries are lost,
  // the file is empty afterwards).
  bool Next(std::string_view* entry);
  bool empty() const { return read_ == end(); }
  // Calls fn(std::string_view entry) for every unread entry, oldest first, without reading them.
  // False when the file cannot be read (error()).
  bool ForEachUnread(const std::function<void(std::string_view)>& fn) const;

  // For a snapshot thread: writes the buffer out, so that every unread entry is in the file at
  // [read_offset(), file_end()). False when it cannot be written (error()).
  bool Flush();
  uint64_t read_offset() const { return read_; }
  uint64_t file_end() const { return file_end_; }
  // While pinned (a count), the file's bytes below file_end() stay as they are (invariant 4).
  void Pin() { ++pins_; }
  void Unpin();
  // Calls fn(entry) for the entries in [begin, end) of the file. Any thread; the range must be
  // pinned. False on a read error or a malformed entry (*error).
  bool ReadFileRange(uint64_t begin, uint64_t end, const std::function<void(std::string_view)>& fn,
                     std::string* error) const;

  // Bytes this file holds on disk (counted against the budget).
  uint64_t disk_bytes() const { return budget_taken_; }
  const std::string& error() const { return error_; }

  static constexpr size_t kLengthBytes = 4;  // an entry's length prefix (u32 LE)
  static constexpr size_t kWriteBufferBytes = 64 << 10;
  static constexpr size_t kReadAheadBytes = 256 << 10;
  static constexpr uint64_t kPunchBytes = 1 << 20;  // space is returned in steps of at least this

 private:
  SpillFile(int fd, DiskBudget* budget) : fd_(fd), budget_(budget) {}
  uint64_t end() const { return file_end_ + wbuf_.size(); }
  // Writes the length of the entry appended at wbuf_[mark], and the buffer once it is full; takes
  // the entry out again when that write fails.
  bool FinishAppend(size_t mark);
  // *entry into last_: for the view Next returns when the buffer it lies in is released.
  void KeepLast(std::string_view* entry);
  void Reclaim();  // punch or truncate behind the reader (invariants 2, 3)
  bool Fail(const char* what, int err);

  int fd_ = -1;
  DiskBudget* budget_;
  std::string wbuf_;           // entries at [file_end_, end())
  uint64_t file_end_ = 0;      // bytes written to the file
  uint64_t read_ = 0;          // logical offset of the next unread entry
  uint64_t punched_ = 0;       // invariant 2
  uint64_t budget_taken_ = 0;  // invariant 3
  std::string rbuf_;  // read-ahead: file bytes at [rbuf_off_, +rbuf_.size()), freed once read
  uint64_t rbuf_off_ = 0;
  std::string last_;  // KeepLast
  int pins_ = 0;
  bool written_ = false;       // a write was attempted since the file was last truncated
  bool cannot_punch_ = false;  // the file system does not punch holes
  std::string error_;
};

// --- The entry codec: a Delivery as the bytes of one spill entry ---
//
//   entry = flags (u8) | [shared: group len (u16 LE) | group | filter len (u16 LE) | filter]
//           | a WalMessageQueued body (wal/wal_records.h; client id empty, message id = wal_id)
//
// Expiry deadlines stay on the steady clock (the file does not outlive the process).

void EncodeSpillEntry(const Delivery& d, std::string* out);
// False for bytes that are not an entry.
[[nodiscard]] bool DecodeSpillEntry(std::string_view entry, Delivery* d);
// The entry as the WAL's record (client id empty, expiry on the steady clock), without building
// a message (snapshot threads). *shared_group / *shared_filter are set when it has a shared key.
[[nodiscard]] bool DecodeSpillEntry(std::string_view entry, wal::WalMessageQueued* q,
                                    std::string* shared_group, std::string* shared_filter);

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_SPILL_H_
