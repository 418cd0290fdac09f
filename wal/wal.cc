// The WAL writer's write/fdatasync chain and the snapshot writer. Listing, pruning and recovery
// are in wal/wal_recovery.cc; formats in doc/wal-format.md.
#include "wal/wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "base/log.h"
#include "net/user_data.h"
#include "wal/internal/wal_file.h"

namespace ringmq::wal {

namespace {

using wal_internal::EncodeHeader;
using wal_internal::Errno;
using wal_internal::JoinPath;
using wal_internal::kSegmentMagic;
using wal_internal::kSnapshotMagic;
using wal_internal::MakeDir;
using wal_internal::PaddedName;
using wal_internal::ScanWalDir;
using wal_internal::SyncDir;
using wal_internal::WalDirEntry;
using wal_internal::WalFileKind;
using wal_internal::WalLink;

constexpr size_t kMaxWriteBytes = size_t{1} << 30;    // one write operation (a short write)
constexpr size_t kBatchEarlyBytes = size_t{4} << 20;  // kBatch syncs before its interval past this
constexpr size_t kSnapshotBufferBytes = size_t{1} << 20;

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What precedes a segment `seq` that Open creates (doc/wal-format.md, "Continuity"): the snapshot
// of that number (a broker start writes it first), the previous segment, nothing at all (a new
// log), or something else (unknown).
WalLink LinkAtOpen(const std::string& dir, uint16_t shard, uint64_t seq) {
  std::vector<WalDirEntry> files;
  std::string error;
  if (!ScanWalDir(dir, &files, &error)) return WalLink::kUnknown;
  bool any = false, previous = false;
  for (const WalDirEntry& f : files) {
    if (f.shard != shard) continue;
    if (f.kind == WalFileKind::kSnapshot && f.seq == seq) return WalLink::kAfterSnapshot;
    previous |= f.kind == WalFileKind::kSegment && f.seq + 1 == seq;
    any |= f.kind == WalFileKind::kSegment || f.kind == WalFileKind::kSnapshot;
  }
  return previous ? WalLink::kAfterSegment : any ? WalLink::kUnknown : WalLink::kLogStart;
}

}  // namespace

std::string WalSegmentName(uint16_t shard, uint64_t seq) {
  return PaddedName("wal-", shard, seq, ".log");
}

std::string WalSnapshotName(uint16_t shard, uint64_t seq) {
  return PaddedName("snap-", shard, seq, ".dat");
}

// ---- WalWriter ----------------------------------------------------------------------------------

WalWriter::~WalWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

void WalWriter::AssertOwner() const { assert(owner_ == std::this_thread::get_id()); }

bool WalWriter::Open(const WalWriterOptions& options, uint64_t first_seq, std::string* error) {
  Continue(options, 0, 0);
  return OpenAt(first_seq, 0, error);
}

void WalWriter::Continue(const WalWriterOptions& options, uint64_t appended_seq,
                         uint64_t durable_seq) {
  assert(fd_ < 0 && durable_seq <= appended_seq);
  options_ = options;
  owner_ = std::this_thread::get_id();
  appended_seq_ = appended_seq;
  written_seq_ = durable_seq_ = durable_seq;
}

bool WalWriter::OpenAt(uint64_t first_seq, uint64_t covered_seq, std::string* error) {
  AssertOwner();
  assert(fd_ < 0 && covered_seq <= appended_seq_);
  if (failed()) {
    *error = Errno("the log of shard " + std::to_string(options_.shard), error_);
    return false;
  }
  int err = 0;
  if (!MakeDir(options_.dir, error)) {
    err = errno != 0 ? errno : EIO;
  } else if (dir_fd_ < 0 &&
             (dir_fd_ = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    err = errno;
    *error = Errno("open " + options_.dir, err);
  } else {
    first_seq = std::max<uint64_t>(first_seq, 1);
    err = OpenSegment(first_seq, LinkAtOpen(options_.dir, options_.shard, first_seq), error);
  }
  if (err != 0) {
    SetFailed(err);
    return false;
  }
  written_seq_ = durable_seq_ = std::max(durable_seq_, covered_seq);
  return true;
}

int WalWriter::OpenSegment(uint64_t seq, wal_internal::WalLink link, std::string* error) {
  const std::string path = JoinPath(options_.dir, WalSegmentName(options_.shard, seq));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    *error = Errno("create " + path, err);
    return err;
  }
  // Into the page cache only: the segment's first fdatasync makes the header durable with the
  // first records, the directory fsync (through the ring) the file's name.
  const std::string header = EncodeHeader(kSegmentMagic, options_.shard, seq, link);
  if (::pwrite(fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    const int err = errno == 0 ? ENOSPC : errno;  // a short write of 32 bytes: the disk is full
    *error = Errno("write " + path, err);
    ::close(fd);
    ::unlink(path.c_str());
    return err;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  segment_seq_ = seq;
  segment_size_ = segment_offset_ = header.size();
  dir_sync_needed_ = options_.durability != WalDurability::kNone;
  ++stats_.segments;
  stats_.bytes += header.size();
  return 0;
}

uint64_t WalWriter::Append(WalType type, std::string_view body) {
  return AppendFramed([&](std::string* out) { AppendWalFrame(type, body, out); });
}

uint64_t WalWriter::Roll() {
  AssertOwner();
  // Everything appended so far stays in the current segment (a later Roll moves the boundary).
  roll_pending_ = true;
  roll_boundary_ = pending_.size();
  roll_boundary_seq_ = appended_seq_;
  return segment_seq_ + 1;
}

int64_t WalWriter::next_flush_ms() const {
  if (failed() || options_.durability != WalDurability::kBatch || written_seq_ == durable_seq_ ||
      syncing_ || awaiting_dir_) {
    return std::numeric_limits<int64_t>::max();
  }
  return last_sync_ms_ == std::numeric_limits<int64_t>::min()
             ? last_sync_ms_
             : last_sync_ms_ + options_.batch_interval_ms;
}

void WalWriter::TakeBatch() {
  if (roll_pending_ && roll_boundary_ < pending_.size()) {
    inflight_.assign(pending_, 0, roll_boundary_);
    pending_.erase(0, roll_boundary_);
    inflight_last_seq_ = roll_boundary_seq_;
  } else {
    inflight_.swap(pending_);
    pending_.clear();
    inflight_last_seq_ = appended_seq_;
  }
  roll_boundary_ = 0;
  inflight_written_ = 0;
  segment_size_ += inflight_.size();
}

bool WalWriter::SyncDue(int64_t now_ms) const {
  if (options_.durability == WalDurability::kNone || syncing_ || awaiting_dir_ ||
      written_seq_ == durable_seq_) {
    return false;
  }
  if (options_.durability == WalDurability::kSync) return true;
  // kBatch: on its interval; earlier when much is unsynced or a segment switch waits for it.
  const bool switch_waits = roll_pending_ && roll_boundary_ == 0 && inflight_.empty();
  return switch_waits || unsynced_bytes_ >= kBatchEarlyBytes ||
         last_sync_ms_ == std::numeric_limits<int64_t>::min() ||
         now_ms - last_sync_ms_ >= options_.batch_interval_ms;
}

void WalWriter::Flush(net::Ring& ring, uint8_t user_data_kind, int64_t now_ms) {
  AssertOwner();
  if (failed() || fd_ < 0) return;
  if (roll_pending_ && roll_boundary_ == 0 && inflight_.empty() && ops_in_flight_ == 0 &&
      durable_seq_ == written_seq_) {
    // Every byte of the current segment is durable (invariant 3): switch.
    roll_pending_ = false;
    std::string error;
    if (const int err = OpenSegment(segment_seq_ + 1, WalLink::kAfterSegment, &error); err != 0) {
      LOG_ERROR_S(kWal, "wal shard {}: {}", options_.shard, error);
      Fail(err, "opening a new segment");
      return;
    }
  }
  if (SyncDue(now_ms)) {
    // Covers every write completed so far (written_seq_), not the one that may be in flight.
    ring.PrepFsync(fd_, /*datasync=*/true, net::PackUserData(user_data_kind, 0, kOpDataSync));
    ++ops_in_flight_;
    syncing_ = true;
    sync_seq_ = written_seq_;
    unsynced_bytes_ = 0;
    last_sync_ms_ = now_ms;
    sync_submitted_ns_ = SteadyNs();
  }
  // kSync keeps write and fdatasync in one chain: a batch is durable before the next is written.
  if (writing_ || (options_.durability == WalDurability::kSync && (syncing_ || awaiting_dir_))) {
    return;
  }
  // Records past a pending segment switch wait for it.
  if (inflight_.empty() && !pending_.empty() && !(roll_pending_ && roll_boundary_ == 0)) {
    TakeBatch();
  }
  if (inflight_.empty()) return;
  const size_t len = std::min(inflight_.size() - inflight_written_, kMaxWriteBytes);
  ring.PrepWrite(fd_, inflight_.data() + inflight_written_, len,
                 net::PackUserData(user_data_kind, 0, kOpWrite), segment_offset_);
  ++ops_in_flight_;
  writing_ = true;
  if (dir_sync_needed_ && !dir_sync_in_flight_) {
    // Independent of the write: the directory entry exists since OpenSegment.
    ring.PrepFsync(dir_fd_, /*datasync=*/false, net::PackUserData(user_data_kind, 0, kOpDirSync));
    ++ops_in_flight_;
    dir_sync_in_flight_ = true;
  }
}

void WalWriter::OnCompletion(const net::Completion& c) {
  AssertOwner();
  assert(ops_in_flight_ > 0);
  --ops_in_flight_;
  const uint32_t op = net::UnpackUserData(c.user_data).index;
  if (op == kOpDirSync) dir_sync_in_flight_ = false;
  if (op == kOpWrite) writing_ = false;
  if (op == kOpDataSync) syncing_ = false;
  if (failed()) return;
  switch (op) {
    case kOpWrite:
      if (c.res == -EINTR || c.res == -EAGAIN) return;  // retried by the next Flush
      if (c.res <= 0) {
        Fail(c.res == 0 ? ENOSPC : -c.res, "write");
        return;
      }
      inflight_written_ += static_cast<size_t>(c.res);
      segment_offset_ += static_cast<uint64_t>(c.res);
      stats_.bytes += static_cast<uint64_t>(c.res);
      ++stats_.writes;
      // A short write: the rest goes next turn.
      if (inflight_written_ < inflight_.size()) return;
      written_seq_ = inflight_last_seq_;
      unsynced_bytes_ += inflight_.size();
      inflight_.clear();
      inflight_written_ = 0;
      if (options_.durability == WalDurability::kNone) durable_seq_ = written_seq_;
      return;
    case kOpDataSync:
      if (c.res < 0) {
        Fail(-c.res, "fdatasync");
        return;
      }
      ++stats_.syncs;
      stats_.fsync.Observe(static_cast<uint64_t>(SteadyNs() - sync_submitted_ns_));
      if (dir_sync_needed_) {
        awaiting_dir_ = true;  // the segment's name is not durable yet
      } else {
        durable_seq_ = sync_seq_;
      }
      return;
    case kOpDirSync:
      if (c.res < 0) {
        Fail(-c.res, "fsync of the WAL directory");
        return;
      }
      dir_sync_needed_ = false;
      if (awaiting_dir_) {
        awaiting_dir_ = false;
        durable_seq_ = sync_seq_;
      }
      return;
    default:
      assert(false && "unknown WAL operation");
  }
}

void WalWriter::Fail(int err, const char* what) {
  LOG_ERROR_S(kWal,
              "wal shard {}: {} failed on segment {}: {}; records after #{} will never be durable",
              options_.shard, what, segment_seq_, std::strerror(err), durable_seq_);
  SetFailed(err);
}

void WalWriter::SetFailed(int err) {
  error_ = err != 0 ? err : EIO;
  pending_.clear();
  pending_.shrink_to_fit();
  roll_pending_ = false;
  awaiting_dir_ = false;
}

// ---- WalSnapshotWriter --------------------------------------------------------------------------

WalSnapshotWriter::~WalSnapshotWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
  }
}

bool WalSnapshotWriter::Open(const std::string& dir, uint16_t shard, uint64_t seq,
                             std::string* error) {
  assert(fd_ < 0);
  if (!MakeDir(dir, error)) return false;
  dir_ = dir;
  final_path_ = JoinPath(dir, WalSnapshotName(shard, seq));
  tmp_path_ = final_path_ + ".tmp";
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *error = Errno("create " + tmp_path_, errno);
    return false;
  }
  buffer_ = EncodeHeader(kSnapshotMagic, shard, seq, WalLink::kUnknown);
  records_ = 0;
  error_ = 0;
  return true;
}

void WalSnapshotWriter::Add(WalType type, std::string_view body) {
  AppendWalFrame(type, body, &buffer_);
  AfterAdd();
}

void WalSnapshotWriter::AddFramed(std::string_view frames, uint64_t count) {
  if (WriteBuffer()) WriteAll(frames);
  records_ += count;
}

void WalSnapshotWriter::AfterAdd() {
  ++records_;
  if (buffer_.size() >= kSnapshotBufferBytes) WriteBuffer();
}

bool WalSnapshotWriter::WriteBuffer() {
  WriteAll(buffer_);
  buffer_.clear();
  return error_ == 0;
}

void WalSnapshotWriter::WriteAll(std::string_view bytes) {
  for (size_t done = 0; error_ == 0 && done < bytes.size();) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : ENOSPC;
    } else {
      done += static_cast<size_t>(n);
    }
  }
}

bool WalSnapshotWriter::Commit(std::string* error) {
  assert(fd_ >= 0);
  AppendWalRecord(WalSnapshotEnd{records_}, &buffer_);
  if (WriteBuffer() && ::fdatasync(fd_) != 0) error_ = errno;
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && error_ == 0) error_ = errno;
  if (error_ == 0 && ::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) error_ = errno;
  if (error_ != 0) {
    *error = Errno("snapshot " + final_path_, error_);
    ::unlink(tmp_path_.c_str());
    return false;
  }
  return SyncDir(dir_, error);
}

}  // namespace ringmq::wal
