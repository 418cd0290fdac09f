// The WAL directory listing, pruning and recovery (wal/wal.h): which snapshot to start from,
// salvaging a damaged one, continuity of the segments, torn tails and corrupt ranges.
// Formats and rules: doc/wal-format.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "base/log.h"
#include "wal/internal/wal_file.h"
#include "wal/wal.h"

namespace ringmq::wal {

namespace {

using wal_internal::CheckHeader;
using wal_internal::Errno;
using wal_internal::HeaderCheck;
using wal_internal::kBadSuffix;
using wal_internal::kSegmentMagic;
using wal_internal::kSnapshotMagic;
using wal_internal::MappedFile;
using wal_internal::ScanWalDir;
using wal_internal::SyncDir;
using wal_internal::WalDirEntry;
using wal_internal::WalFileKind;
using wal_internal::WalLink;

// Empty when `data` is a complete, valid snapshot for (shard, seq); else why not.
std::string CheckSnapshot(std::string_view data, uint16_t shard, uint64_t seq) {
  if (std::string why = CheckHeader(data, kSnapshotMagic, shard, seq).error; !why.empty()) {
    return why;
  }
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

// Whether a segment exists for every number in [from, to). `segments` is sorted by seq.
bool SegmentsPresent(const std::vector<WalSegmentFile>& segments, uint64_t from, uint64_t to) {
  uint64_t want = from;
  for (const WalSegmentFile& s : segments) {
    if (s.seq < want) continue;
    if (s.seq >= to || s.seq != want) break;
    ++want;
  }
  return want >= to;
}

struct SnapshotFile {
  uint64_t seq;
  std::string path;
  bool set_aside;  // snap-*.dat.bad: known to be damaged
};

// Lists the files and chooses the snapshot to start from (doc/wal-format.md, "Choosing the
// snapshot"); *snapshot_bytes receives it, mapped, when not null.
bool ListImpl(const std::string& dir, uint16_t shard, WalFileList* list, MappedFile* snapshot_bytes,
              std::string* error) {
  *list = WalFileList{};
  std::vector<WalDirEntry> files;
  if (!ScanWalDir(dir, &files, error)) return false;
  std::vector<WalSegmentFile> segments;
  std::vector<SnapshotFile> snapshots;
  uint64_t max_seq = 0;
  for (WalDirEntry& f : files) {
    if (f.shard != shard) continue;
    max_seq = std::max(max_seq, f.seq);  // set-aside snapshots too: numbers are never reused
    switch (f.kind) {
      case WalFileKind::kSegment:
        segments.push_back({f.seq, std::move(f.path)});
        break;
      case WalFileKind::kSnapshot:
      case WalFileKind::kBadSnapshot:
        snapshots.push_back({f.seq, std::move(f.path), f.kind == WalFileKind::kBadSnapshot});
        break;
      case WalFileKind::kTempSnapshot:
        list->obsolete.push_back(std::move(f.path));  // an interrupted snapshot
        break;
    }
  }
  list->next_seq = max_seq + 1;
  std::sort(segments.begin(), segments.end(),
            [](const WalSegmentFile& a, const WalSegmentFile& b) { return a.seq < b.seq; });
  // Newest first; at equal numbers the live file before the set-aside one.
  std::sort(snapshots.begin(), snapshots.end(), [](const SnapshotFile& a, const SnapshotFile& b) {
    return a.seq != b.seq ? a.seq > b.seq : !a.set_aside && b.set_aside;
  });

  // The newest valid snapshot from which a segment exists for every number up to the newest
  // snapshot's: it and the segments after it hold everything. If there is none, the newest
  // snapshot (even damaged) holds more than any older state, whose later segments are gone.
  size_t base = snapshots.size();
  MappedFile data;
  for (size_t i = 0; i < snapshots.size() && base == snapshots.size(); ++i) {
    if (i > 0 && !SegmentsPresent(segments, snapshots[i].seq, snapshots[0].seq)) break;
    if (snapshots[i].set_aside) continue;
    if (!data.Open(snapshots[i].path, error)) return false;
    const std::string why = CheckSnapshot(data.bytes(), shard, snapshots[i].seq);
    data.ReleaseBelow(data.bytes().size());  // read again by the replay, a slice at a time
    if (why.empty()) {
      base = i;
    } else {
      LOG_ERROR_S(kWal, "wal: snapshot {} is invalid ({})", snapshots[i].path, why);
    }
  }
  if (base == snapshots.size() && !snapshots.empty()) {
    base = 0;
    list->snapshot_damaged = true;
    if (!data.Open(snapshots[0].path, error)) return false;
    LOG_ERROR_S(kWal,
                "wal: shard {}: no valid snapshot that the segments continue without a gap; the "
                "valid records of {} will be salvaged",
                shard, snapshots[0].path);
  } else if (base > 0) {
    LOG_WARN_S(kWal,
               "wal: shard {}: using the older snapshot {}: every segment from it up to the newest "
               "snapshot is present, so nothing is lost",
               shard, snapshots[base].path);
  }
  if (base < snapshots.size()) {
    list->snapshot_seq = snapshots[base].seq;
    list->snapshot = snapshots[base].path;
    if (snapshot_bytes != nullptr) *snapshot_bytes = std::move(data);
    for (size_t i = 0; i < snapshots.size(); ++i) {
      if (i < base) {
        list->bad_snapshots.push_back(snapshots[i].path);
      } else if (i > base && !snapshots[i].set_aside && !list->snapshot_damaged) {
        list->obsolete.push_back(snapshots[i].path);  // older than the one chosen
      }
    }
  }
  for (WalSegmentFile& s : segments) {
    if (s.seq >= list->snapshot_seq) {
      list->segments.push_back(std::move(s));
    } else if (!list->snapshot_damaged) {
      list->obsolete.push_back(std::move(s.path));
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
  static constexpr size_t kReleaseBytes = 8 << 20;

  Recovery(const std::string& dir, uint16_t shard, const WalRecoverOptions& options,
           const WalRecordCallback& fn, WalRecoverStats* stats, std::string* error)
      : dir_(dir), shard_(shard), options_(options), fn_(fn), stats_(stats), error_(error) {}

  // Replays a snapshot: every record whose frame checks, the damaged ranges of an invalid one
  // reported and skipped. False when strict and something is corrupt.
  bool Snapshot(const std::string& file, uint64_t seq, const MappedFile& mapped) {
    const std::string_view data = mapped.bytes();
    const HeaderCheck h = CheckHeader(data, kSnapshotMagic, shard_, seq);
    if (!h.error.empty()) {
      if (!h.records_readable) {
        return Corrupt(file, 0, data.size(), "snapshot header: " + h.error + "; nothing usable");
      }
      if (!Corrupt(file, 0, kWalFileHeaderSize, "snapshot header: " + h.error)) return false;
    }
    const uint64_t before = stats_->records;
    const bool ok = Replay(file, mapped, FileKind::kSnapshot);
    stats_->snapshot_records = stats_->records - before;
    return ok;
  }

  // Replays a segment (its header already read into `h`).
  bool Segment(const WalSegmentFile& seg, const MappedFile& mapped, const HeaderCheck& h,
               bool last) {
    const std::string_view data = mapped.bytes();
    if (!h.error.empty()) {
      if (data.size() <= kWalFileHeaderSize) {
        // Created, then the process ended before its first write was durable: nothing lost.
        LOG_INFO_S(kWal, "wal: {}: empty segment ({}), skipped", seg.path, h.error);
        return true;
      }
      if (!h.records_readable) {
        return Corrupt(seg.path, 0, data.size(), "segment header: " + h.error);
      }
      if (!Corrupt(seg.path, 0, kWalFileHeaderSize, "segment header: " + h.error)) return false;
    }
    ++stats_->segments;
    return Replay(seg.path, mapped, last ? FileKind::kLastSegment : FileKind::kSegment);
  }

  // Segment `seq` comes next; `expected` is the number the state so far needs next (0: no state
  // yet). Reports what is missing in between (doc/wal-format.md, "Continuity").
  bool Continuity(uint64_t expected, uint64_t seq, WalLink link) {
    const std::string n = std::to_string(seq);
    if (expected == seq) return true;
    if (expected == 0) {
      if (link == WalLink::kLogStart || (link == WalLink::kUnknown && seq == 1)) return true;
      return Missing(link == WalLink::kAfterSegment ? SegmentPath(seq - 1) : SnapshotPath(seq),
                     "segment " + n + " continues an earlier state, but neither " +
                         WalSnapshotName(shard_, seq) + " nor " + WalSegmentName(shard_, seq - 1) +
                         " is in the directory: that state is lost");
    }
    const bool one = expected + 1 == seq;
    const std::string range =
        one ? "segment " + std::to_string(expected)
            : "segments " + std::to_string(expected) + " to " + std::to_string(seq - 1);
    if (link == WalLink::kAfterSnapshot) {
      return Missing(SnapshotPath(seq), "segment " + n +
                                            " continues this snapshot, which is missing, and so " +
                                            (one ? "is " : "are ") + range +
                                            ": the state before segment " + n + " is lost");
    }
    return Missing(SegmentPath(expected), range + (one ? " is" : " are") +
                                              " not in the directory (segment " + n +
                                              " follows): those records are lost");
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
  std::string SegmentPath(uint64_t seq) const {
    return wal_internal::JoinPath(dir_, WalSegmentName(shard_, seq));
  }
  std::string SnapshotPath(uint64_t seq) const {
    return wal_internal::JoinPath(dir_, WalSnapshotName(shard_, seq));
  }

  // A file recovery needs is not there: listed in stats->corrupt with an empty range.
  bool Missing(const std::string& file, const std::string& why) {
    LOG_ERROR_S(kWal, "wal: {}: missing file: {}{}", file, why,
                options_.strict ? "" : "; recovery goes on without it");
    stats_->corrupt.push_back({file, 0, 0, "missing file: " + why});
    if (options_.strict) {
      *error_ = "wal: " + file + ": missing file: " + why + " (strict recovery refuses to start)";
      return false;
    }
    return true;
  }

  // Replays the records of `data` (the whole file) after its header; in a snapshot, up to its end
  // record. False when strict and something is corrupt.
  bool Replay(const std::string& file, const MappedFile& mapped, FileKind kind) {
    const std::string_view data = mapped.bytes();
    const uint64_t records_before = stats_->records;
    const size_t corrupt_before = stats_->corrupt.size();
    size_t off = kWalFileHeaderSize;
    size_t released = 0;
    while (off < data.size()) {
      if (off - released >= kReleaseBytes) {  // what was replayed leaves the process's memory
        mapped.ReleaseBelow(off);
        released = off;
      }
      WalFrame f{};
      const WalFrameStatus st = ParseWalFrame(data.substr(off), &f);
      if (st == WalFrameStatus::kOk) {
        if (f.type == WalType::kSnapshotEnd && kind == FileKind::kSnapshot) {
          return SnapshotEnd(file, data, off, f, stats_->records - records_before,
                             stats_->corrupt.size() == corrupt_before);
        }
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
      const bool to_end = end == data.size() && kind == FileKind::kSnapshot;
      if (!Corrupt(file, off, end,
                   std::string(FrameError(st)) + (to_end ? "; no snapshot end record" : ""))) {
        return false;
      }
      if (to_end) return true;
      off = end;
    }
    if (kind != FileKind::kSnapshot) return true;
    return Corrupt(file, data.size(), data.size(), "no snapshot end record (incomplete snapshot)");
  }

  // The end record `f` at `off` of a snapshot from which `read` records were replayed; `intact`:
  // no range of it was skipped, so the count must match.
  bool SnapshotEnd(const std::string& file, std::string_view data, size_t off, const WalFrame& f,
                   uint64_t read, bool intact) {
    WalSnapshotEnd end;
    const size_t after = off + f.size;
    if (!Decode(f.body, &end)) {
      if (!Corrupt(file, off, after, "a snapshot end record that does not decode")) return false;
    } else if (intact && end.record_count != read) {
      if (!Corrupt(file, off, after,
                   "the snapshot end record counts " + std::to_string(end.record_count) +
                       " records, " + std::to_string(read) + " were read")) {
        return false;
      }
    }
    if (after == data.size()) return true;
    return Corrupt(file, after, data.size(), "bytes after the snapshot end record");
  }

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

  const std::string& dir_;
  const uint16_t shard_;
  const WalRecoverOptions& options_;
  const WalRecordCallback& fn_;
  WalRecoverStats* stats_;
  std::string* error_;
};

// Renames the damaged snapshots of `list` to <name>.bad, once: kept for inspection, never pruned,
// and never read again once a newer valid snapshot exists. Failures are logged, not fatal.
void SetAside(const std::string& dir, const WalFileList& list) {
  std::vector<std::string> damaged = list.bad_snapshots;
  if (list.snapshot_damaged) damaged.push_back(list.snapshot);
  bool renamed = false;
  for (const std::string& path : damaged) {
    if (path.ends_with(kBadSuffix)) continue;
    const std::string to = path + std::string(kBadSuffix);
    if (::rename(path.c_str(), to.c_str()) != 0) {
      const int err = errno;
      LOG_ERROR_S(kWal, "wal: cannot set {} aside as {}: {}", path, to, std::strerror(err));
      continue;
    }
    LOG_WARN_S(kWal, "wal: damaged snapshot {} set aside as {} (kept for inspection)", path, to);
    renamed = true;
  }
  std::string error;
  if (renamed && !SyncDir(dir, &error)) LOG_ERROR_S(kWal, "wal: {}", error);
}

}  // namespace

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
  std::vector<WalDirEntry> files;
  std::string error;
  if (!ScanWalDir(dir, &files, &error)) return shards;
  for (const WalDirEntry& f : files) {
    if (f.kind != WalFileKind::kTempSnapshot) shards.push_back(f.shard);
  }
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  return shards;
}

bool RecoverWal(const std::string& dir, uint16_t shard, const WalRecoverOptions& options,
                const WalRecordCallback& fn, WalRecoverStats* stats, std::string* error) {
  *stats = WalRecoverStats{};
  WalFileList list;
  MappedFile data;
  if (!ListImpl(dir, shard, &list, &data, error)) return false;
  stats->next_segment_seq = list.next_seq;
  Recovery rec(dir, shard, options, fn, stats, error);
  for (const std::string& bad : list.bad_snapshots) {
    struct stat st {};
    const uint64_t size = ::stat(bad.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    if (!rec.Corrupt(bad, 0, size,
                     "invalid snapshot, not used: snapshot " + std::to_string(list.snapshot_seq) +
                         " and the segments after it hold the same state")) {
      return false;
    }
  }
  if (list.snapshot_seq != 0) {
    stats->snapshot_seq = list.snapshot_seq;
    stats->snapshot_salvaged = list.snapshot_damaged;
    if (!rec.Snapshot(list.snapshot, list.snapshot_seq, data)) return false;
    data = MappedFile();
  }
  uint64_t expected = list.snapshot_seq;  // the segment the state needs next; 0: none yet
  for (size_t i = 0; i < list.segments.size(); ++i) {
    const WalSegmentFile& seg = list.segments[i];
    if (!data.Open(seg.path, error)) return false;
    const HeaderCheck h = CheckHeader(data.bytes(), kSegmentMagic, shard, seg.seq);
    if (!rec.Continuity(expected, seg.seq, h.link)) return false;
    expected = seg.seq + 1;
    if (!rec.Segment(seg, data, h, i + 1 == list.segments.size())) return false;
  }
  if (!options.strict && options.truncate_torn_tail) SetAside(dir, list);
  LOG_INFO_S(
      kWal,
      "wal shard {}: recovered {} records ({} bytes) from snapshot {}{} and {} segments; {} bytes "
      "of torn tail, {} corrupt ranges",
      shard, stats->records, stats->bytes, stats->snapshot_seq,
      stats->snapshot_salvaged ? " (salvaged)" : "", stats->segments, stats->truncated_bytes,
      stats->corrupt.size());
  return true;
}

}  // namespace ringmq::wal
