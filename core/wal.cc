// The WAL writer's write/fdatasync chain, snapshot files, the directory listing and recovery.
// Formats: doc/wal-format.md.
#include "core/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "core/crc32c.h"
#include "core/log.h"
#include "net/user_data.h"

namespace ringmq::core {

namespace {

constexpr uint32_t kSegmentMagic = 0x4C415752;   // bytes "RWAL"
constexpr uint32_t kSnapshotMagic = 0x504E5352;  // bytes "RSNP"
constexpr uint16_t kFileVersion = 1;
constexpr size_t kMaxWriteBytes = size_t{1} << 30;    // one write operation (a short write)
constexpr size_t kBatchEarlyBytes = size_t{4} << 20;  // kBatch writes before its interval past this
constexpr size_t kSnapshotBufferBytes = size_t{1} << 20;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

void StoreLe(uint64_t v, size_t n, char* p) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

uint64_t LoadLe(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

// magic u32 | version u16 | shard u16 | seq u64 | created wall ms u64 | reserved u32 | crc u32
std::string EncodeHeader(uint32_t magic, uint16_t shard, uint64_t seq) {
  std::string h(kWalFileHeaderSize, '\0');
  StoreLe(magic, 4, &h[0]);
  StoreLe(kFileVersion, 2, &h[4]);
  StoreLe(shard, 2, &h[6]);
  StoreLe(seq, 8, &h[8]);
  StoreLe(static_cast<uint64_t>(WallMs()), 8, &h[16]);
  StoreLe(Crc32c(h.data(), 28), 4, &h[28]);
  return h;
}

// Empty when the header is valid for (magic, shard, seq), else why not.
std::string CheckHeader(std::string_view data, uint32_t magic, uint16_t shard, uint64_t seq) {
  if (data.size() < kWalFileHeaderSize) return "file shorter than its header";
  const char* h = data.data();
  if (LoadLe(h + 28, 4) != Crc32c(h, 28)) return "header checksum mismatch";
  if (LoadLe(h, 4) != magic) return "bad magic";
  if (LoadLe(h + 4, 2) != kFileVersion) {
    return "unsupported version " + std::to_string(LoadLe(h + 4, 2));
  }
  if (LoadLe(h + 6, 2) != shard || LoadLe(h + 8, 8) != seq) return "header names another file";
  return "";
}

bool ReadFile(const std::string& path, std::string* out, std::string* error) {
  out->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = Errno("open " + path, errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0) out->reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = Errno("read " + path, errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool SyncDir(const std::string& dir, std::string* error) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    *error = Errno("fsync " + dir, errno);
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  return true;
}

bool MakeDir(const std::string& dir, std::string* error) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *error = Errno("mkdir " + dir, errno);
    return false;
  }
  return true;
}

// Parses "<prefix><shard>-<seq><suffix>".
bool ParseName(std::string_view name, std::string_view prefix, std::string_view suffix,
               uint16_t* shard, uint64_t* seq) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return false;
  }
  name = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  const char* end = name.data() + name.size();
  auto [p, ec] = std::from_chars(name.data(), end, *shard);
  if (ec != std::errc() || p == end || *p != '-') return false;
  auto [q, ec2] = std::from_chars(p + 1, end, *seq);
  return ec2 == std::errc() && q == end && *seq != 0;
}

std::string PaddedName(const char* prefix, uint16_t shard, uint64_t seq, const char* suffix) {
  std::string s = std::to_string(seq);
  if (s.size() < 12) s.insert(0, 12 - s.size(), '0');
  return prefix + std::to_string(shard) + "-" + s + suffix;
}

// Empty when `data` is a complete, valid snapshot for (shard, seq); else why not.
std::string CheckSnapshot(std::string_view data, uint16_t shard, uint64_t seq) {
  if (std::string why = CheckHeader(data, kSnapshotMagic, shard, seq); !why.empty()) return why;
  uint64_t records = 0;
  for (size_t off = kWalFileHeaderSize; off < data.size();) {
    WalFrame f{};
    if (ParseWalFrame(data.substr(off), &f) != WalFrameStatus::kOk) {
      return "bad record at offset " + std::to_string(off);
    }
    off += f.size;
    if (f.type == WalType::kSnapshotEnd) {
      WalSnapshotEnd end;
      if (!Decode(f.body, &end) || end.record_count != records || off != data.size()) {
        return "bad end record";
      }
      return "";
    }
    ++records;
  }
  return "no end record (incomplete)";
}

bool ListImpl(const std::string& dir, uint16_t shard, WalFileList* list,
              std::string* snapshot_bytes, std::string* error) {
  *list = WalFileList{};
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return true;
    *error = Errno("opendir " + dir, errno);
    return false;
  }
  std::vector<WalSegmentFile> segments, snapshots;
  uint64_t max_seq = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    uint16_t s = 0;
    uint64_t seq = 0;
    if (ParseName(name, "wal-", ".log", &s, &seq) && s == shard) {
      segments.push_back({seq, JoinPath(dir, e->d_name)});
    } else if (ParseName(name, "snap-", ".dat", &s, &seq) && s == shard) {
      snapshots.push_back({seq, JoinPath(dir, e->d_name)});
    } else if (ParseName(name, "snap-", ".dat.tmp", &s, &seq) && s == shard) {
      list->obsolete.push_back(JoinPath(dir, e->d_name));  // an interrupted snapshot
    } else {
      continue;
    }
    max_seq = std::max(max_seq, seq);
  }
  ::closedir(d);
  list->next_seq = max_seq + 1;
  auto by_seq = [](const WalSegmentFile& a, const WalSegmentFile& b) { return a.seq < b.seq; };
  std::sort(segments.begin(), segments.end(), by_seq);
  std::sort(snapshots.rbegin(), snapshots.rend(), by_seq);  // newest first
  std::string data;
  for (const WalSegmentFile& s : snapshots) {
    if (list->snapshot_seq != 0) {
      list->obsolete.push_back(s.path);  // older than the one chosen
      continue;
    }
    std::string why;
    if (!ReadFile(s.path, &data, &why)) {
      *error = why;
      return false;
    }
    why = CheckSnapshot(data, shard, s.seq);
    if (why.empty()) {
      list->snapshot_seq = s.seq;
      list->snapshot = s.path;
      if (snapshot_bytes != nullptr) snapshot_bytes->swap(data);
    } else {
      LOG_ERROR_S(kWal, "wal: snapshot {} is invalid ({}); using an older state", s.path, why);
      list->bad_snapshots.push_back(s.path);
    }
  }
  for (WalSegmentFile& s : segments) {
    if (s.seq < list->snapshot_seq) {
      list->obsolete.push_back(std::move(s.path));
    } else {
      list->segments.push_back(std::move(s));
    }
  }
  return true;
}

// The offset of the next valid frame in data at or after `from`, or npos. Cheap checks first:
// a plausible type, a length that fits, a body starting with a plausible version byte.
size_t Resync(std::string_view data, size_t from) {
  for (size_t p = from; p + kWalFrameHeaderSize < data.size(); ++p) {
    const auto type = static_cast<uint8_t>(data[p + 4]);
    if (type == 0 || type > kWalTypeMax) continue;
    const uint32_t len = LoadWalLe32(data.data() + p);
    if (len == 0 || len > data.size() - p - kWalFrameHeaderSize) continue;
    const auto version = static_cast<uint8_t>(data[p + kWalFrameHeaderSize]);
    if (version == 0 || version > 64) continue;
    WalFrame f{};
    if (ParseWalFrame(data.substr(p), &f) == WalFrameStatus::kOk) return p;
  }
  return std::string_view::npos;
}

const char* FrameError(WalFrameStatus s) {
  switch (s) {
    case WalFrameStatus::kTruncated:
      return "incomplete record";
    case WalFrameStatus::kBadHeader:
      return "bad record header";
    case WalFrameStatus::kBadCrc:
      return "checksum mismatch";
    case WalFrameStatus::kOk:
      break;
  }
  return "ok";
}

enum class FileKind : uint8_t { kSnapshot, kSegment, kLastSegment };

class Recovery {
 public:
  Recovery(const WalRecoverOptions& options, const WalRecordCallback& fn, WalRecoverStats* stats,
           std::string* error)
      : options_(options), fn_(fn), stats_(stats), error_(error) {}

  // Replays the records of `data` (the whole file) after its header, up to a snapshot end record.
  // False when strict and something is corrupt.
  bool Replay(const std::string& file, std::string_view data, FileKind kind) {
    size_t off = kWalFileHeaderSize;
    while (off < data.size()) {
      WalFrame f{};
      const WalFrameStatus st = ParseWalFrame(data.substr(off), &f);
      if (st == WalFrameStatus::kOk) {
        if (f.type == WalType::kSnapshotEnd && kind == FileKind::kSnapshot) return true;
        std::optional<WalRecord> rec = f.type == WalType::kSnapshotEnd
                                           ? std::nullopt  // never in a segment
                                           : DecodeWalRecord(f.type, f.body);
        if (!rec) {
          if (!Corrupt(file, off, off + f.size,
                       std::string("a ") + WalTypeName(f.type) + " record that does not decode")) {
            return false;
          }
        } else {
          fn_(*rec);
          ++stats_->records;
          stats_->bytes += f.size;
        }
        off += f.size;
        continue;
      }
      const size_t next = Resync(data, off + 1);
      if (next == std::string_view::npos && kind == FileKind::kLastSegment) {
        TornTail(file, off, data.size());
        return true;
      }
      const size_t end = next == std::string_view::npos ? data.size() : next;
      if (!Corrupt(file, off, end, FrameError(st))) return false;
      off = end;
    }
    return true;
  }

  bool Corrupt(const std::string& file, uint64_t begin, uint64_t end, const std::string& why) {
    LOG_ERROR_S(kWal, "wal: {}: corrupt bytes [{}, {}): {}{}", file, begin, end, why,
                options_.strict ? "" : "; skipped, the records around them are kept");
    stats_->corrupt.push_back({file, begin, end, why});
    if (options_.strict) {
      *error_ = "wal: " + file + ": corrupt bytes [" + std::to_string(begin) + ", " +
                std::to_string(end) + "): " + why + " (strict recovery refuses to start)";
      return false;
    }
    return true;
  }

 private:
  void TornTail(const std::string& file, size_t off, size_t size) {
    stats_->truncated_bytes += size - off;
    if (!options_.truncate_torn_tail) {
      LOG_WARN_S(kWal, "wal: {}: torn tail of {} bytes at offset {} ignored", file, size - off,
                 off);
      return;
    }
    LOG_WARN_S(kWal, "wal: {}: torn tail of {} bytes at offset {} truncated", file, size - off,
               off);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(off)) != 0 || ::fdatasync(fd) != 0) {
      LOG_ERROR_S(kWal, "wal: {}: cannot truncate: {}", file, std::strerror(errno));
    }
    if (fd >= 0) ::close(fd);
  }

  const WalRecoverOptions& options_;
  const WalRecordCallback& fn_;
  WalRecoverStats* stats_;
  std::string* error_;
};

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
  assert(fd_ < 0);
  options_ = options;
  owner_ = std::this_thread::get_id();
  if (!MakeDir(options_.dir, error)) return false;
  dir_fd_ = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) {
    *error = Errno("open " + options_.dir, errno);
    return false;
  }
  return OpenSegment(std::max<uint64_t>(first_seq, 1), error) == 0;
}

int WalWriter::OpenSegment(uint64_t seq, std::string* error) {
  const std::string path = JoinPath(options_.dir, WalSegmentName(options_.shard, seq));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    *error = Errno("create " + path, err);
    return err;
  }
  // Into the page cache only: the segment's first fdatasync makes the header durable with the
  // first records, the directory fsync (through the ring) the file's name.
  const std::string header = EncodeHeader(kSegmentMagic, options_.shard, seq);
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
  if (pending_.empty() || failed()) return std::numeric_limits<int64_t>::max();
  if (options_.durability != WalDurability::kBatch) return std::numeric_limits<int64_t>::min();
  return last_batch_ms_ == std::numeric_limits<int64_t>::min()
             ? last_batch_ms_
             : last_batch_ms_ + options_.batch_interval_ms;
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
  state_ = State::kWriteReady;
}

void WalWriter::Flush(net::Ring& ring, uint8_t user_data_kind, int64_t now_ms) {
  AssertOwner();
  if (failed() || fd_ < 0) return;
  if (state_ == State::kIdle) {
    if (roll_pending_ && roll_boundary_ == 0) {
      // Every byte of the current segment is durable (invariant 3): switch.
      roll_pending_ = false;
      std::string error;
      if (const int err = OpenSegment(segment_seq_ + 1, &error); err != 0) {
        LOG_ERROR_S(kWal, "wal shard {}: {}", options_.shard, error);
        Fail(err, "opening a new segment");
        return;
      }
    }
    if (pending_.empty()) return;
    if (options_.durability == WalDurability::kBatch && now_ms < next_flush_ms() &&
        pending_.size() < kBatchEarlyBytes) {
      return;
    }
    last_batch_ms_ = now_ms;
    TakeBatch();
  }
  if (state_ == State::kWriteReady) {
    const size_t len = std::min(inflight_.size() - inflight_written_, kMaxWriteBytes);
    ring.PrepWrite(fd_, inflight_.data() + inflight_written_, len,
                   net::PackUserData(user_data_kind, 0, kOpWrite), segment_offset_);
    ++ops_in_flight_;
    state_ = State::kWriting;
    if (dir_sync_needed_ && !dir_sync_in_flight_) {
      // Independent of the write: the directory entry exists since OpenSegment.
      ring.PrepFsync(dir_fd_, /*datasync=*/false, net::PackUserData(user_data_kind, 0, kOpDirSync));
      ++ops_in_flight_;
      dir_sync_in_flight_ = true;
    }
  } else if (state_ == State::kSyncReady) {
    ring.PrepFsync(fd_, /*datasync=*/true, net::PackUserData(user_data_kind, 0, kOpDataSync));
    ++ops_in_flight_;
    state_ = State::kSyncing;
    sync_submitted_ns_ = SteadyNs();
  }
}

void WalWriter::OnCompletion(const net::Completion& c) {
  AssertOwner();
  assert(ops_in_flight_ > 0);
  --ops_in_flight_;
  const uint32_t op = net::UnpackUserData(c.user_data).index;
  if (op == kOpDirSync) dir_sync_in_flight_ = false;
  if (failed()) return;
  switch (op) {
    case kOpWrite:
      assert(state_ == State::kWriting);
      if (c.res == -EINTR || c.res == -EAGAIN) {
        state_ = State::kWriteReady;  // retried by the next Flush
      } else if (c.res <= 0) {
        Fail(c.res == 0 ? ENOSPC : -c.res, "write");
      } else {
        inflight_written_ += static_cast<size_t>(c.res);
        segment_offset_ += static_cast<uint64_t>(c.res);
        stats_.bytes += static_cast<uint64_t>(c.res);
        ++stats_.writes;
        if (inflight_written_ < inflight_.size()) {
          state_ = State::kWriteReady;  // a short write: the rest goes next turn, then the sync
        } else if (options_.durability == WalDurability::kNone) {
          Complete();
        } else {
          state_ = State::kSyncReady;
        }
      }
      return;
    case kOpDataSync:
      assert(state_ == State::kSyncing);
      if (c.res < 0) {
        Fail(-c.res, "fdatasync");
      } else {
        ++stats_.syncs;
        stats_.fsync.Observe(static_cast<uint64_t>(SteadyNs() - sync_submitted_ns_));
        if (dir_sync_in_flight_) {
          state_ = State::kAwaitingDir;
        } else {
          Complete();
        }
      }
      return;
    case kOpDirSync:
      if (c.res < 0) {
        Fail(-c.res, "fsync of the WAL directory");
      } else {
        dir_sync_needed_ = false;
        if (state_ == State::kAwaitingDir) Complete();
      }
      return;
    default:
      assert(false && "unknown WAL operation");
  }
}

void WalWriter::Complete() {
  durable_seq_ = inflight_last_seq_;
  inflight_.clear();
  inflight_written_ = 0;
  state_ = State::kIdle;
}

void WalWriter::Fail(int err, const char* what) {
  error_ = err;
  LOG_ERROR_S(kWal,
              "wal shard {}: {} failed on segment {}: {}; records after #{} will never be durable",
              options_.shard, what, segment_seq_, std::strerror(err), durable_seq_);
  pending_.clear();
  pending_.shrink_to_fit();
  roll_pending_ = false;
  state_ = State::kIdle;
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
  buffer_ = EncodeHeader(kSnapshotMagic, shard, seq);
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

// ---- Listing and pruning ------------------------------------------------------------------------

bool ListWalFiles(const std::string& dir, uint16_t shard, WalFileList* list, std::string* error) {
  return ListImpl(dir, shard, list, nullptr, error);
}

bool DeleteObsoleteWalFiles(const std::string& dir, uint16_t shard, size_t* deleted,
                            std::string* error) {
  *deleted = 0;
  WalFileList list;
  if (!ListImpl(dir, shard, &list, nullptr, error)) return false;
  for (const std::string& path : list.obsolete) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      *error = Errno("unlink " + path, errno);
      return false;
    }
    ++*deleted;
  }
  return *deleted == 0 || SyncDir(dir, error);
}

std::vector<uint16_t> ListWalShards(const std::string& dir) {
  std::vector<uint16_t> shards;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return shards;
  while (const dirent* e = ::readdir(d)) {
    uint16_t shard = 0;
    uint64_t seq = 0;
    if (ParseName(e->d_name, "wal-", ".log", &shard, &seq) ||
        ParseName(e->d_name, "snap-", ".dat", &shard, &seq)) {
      shards.push_back(shard);
    }
  }
  ::closedir(d);
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  return shards;
}

// ---- Recovery -----------------------------------------------------------------------------------

bool RecoverWal(const std::string& dir, uint16_t shard, const WalRecoverOptions& options,
                const WalRecordCallback& fn, WalRecoverStats* stats, std::string* error) {
  *stats = WalRecoverStats{};
  WalFileList list;
  std::string data;
  if (!ListImpl(dir, shard, &list, &data, error)) return false;
  stats->next_segment_seq = list.next_seq;
  Recovery rec(options, fn, stats, error);
  for (const std::string& bad : list.bad_snapshots) {
    struct stat st {};
    const uint64_t size = ::stat(bad.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    if (!rec.Corrupt(bad, 0, size, "invalid snapshot")) return false;
  }
  if (list.snapshot_seq != 0) {
    stats->snapshot_seq = list.snapshot_seq;
    const uint64_t before = stats->records;
    if (!rec.Replay(list.snapshot, data, FileKind::kSnapshot)) return false;
    stats->snapshot_records = stats->records - before;
  }
  for (size_t i = 0; i < list.segments.size(); ++i) {
    const WalSegmentFile& seg = list.segments[i];
    if (!ReadFile(seg.path, &data, error)) return false;
    const std::string why = CheckHeader(data, kSegmentMagic, shard, seg.seq);
    if (!why.empty()) {
      if (data.size() <= kWalFileHeaderSize) {
        // Created, then the process ended before its first write was durable: nothing lost.
        LOG_INFO_S(kWal, "wal: {}: empty segment ({}), skipped", seg.path, why);
        continue;
      }
      if (!rec.Corrupt(seg.path, 0, data.size(), "segment header: " + why)) return false;
      continue;
    }
    ++stats->segments;
    const bool last = i + 1 == list.segments.size();
    if (!rec.Replay(seg.path, data, last ? FileKind::kLastSegment : FileKind::kSegment)) {
      return false;
    }
  }
  LOG_INFO_S(
      kWal,
      "wal shard {}: recovered {} records ({} bytes) from snapshot {} and {} segments; {} bytes of "
      "torn tail, {} corrupt ranges",
      shard, stats->records, stats->bytes, stats->snapshot_seq, stats->segments,
      stats->truncated_bytes, stats->corrupt.size());
  return true;
}

}  // namespace ringmq::core
