// The files of the write-ahead log (doc/wal-format.md): their names, the 32-byte header of
// segments and snapshots, and the small blocking file helpers shared by the writer (wal/wal.cc)
// and the listing and recovery (wal/wal_recovery.cc). Internal to wal/.
//
// Thread-safety: no shared state; the functions touch only the paths they are given.
// Invariants:
//   1. EncodeHeader(m, shard, seq, link) passes CheckHeader(., m, shard, seq) with that link.
//   2. A header whose checksum fails is reported with records_readable: only its own 32 bytes
//      are known to be damaged. A header with a valid checksum that names another magic, shard,
//      seq or version is a file that is not what its name says: its records are not readable.
#ifndef RINGMQ_WAL_INTERNAL_WAL_FILE_H_
#define RINGMQ_WAL_INTERNAL_WAL_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::wal::wal_internal {

inline constexpr uint32_t kSegmentMagic = 0x4C415752;   // bytes "RWAL"
inline constexpr uint32_t kSnapshotMagic = 0x504E5352;  // bytes "RSNP"
inline constexpr uint16_t kFileVersion = 1;
inline constexpr std::string_view kBadSuffix = ".bad";  // a snapshot set aside by recovery

// Header bytes 24..27 of a segment: what the state before its first record is (doc/wal-format.md,
// "Continuity"). Snapshots write kUnknown. Values not listed here read as kUnknown.
enum class WalLink : uint32_t {
  kUnknown = 0,        // written before this field existed
  kLogStart = 1,       // the log starts here: the shard had no snapshot or segment at Open
  kAfterSegment = 2,   // created by a roll: continues segment seq - 1
  kAfterSnapshot = 3,  // opened next to snapshot seq (a broker start): continues it
};

std::string EncodeHeader(uint32_t magic, uint16_t shard, uint64_t seq, WalLink link);

struct HeaderCheck {
  std::string error;              // empty: the header is valid
  bool records_readable = false;  // with an error: only the header's bytes are damaged
  WalLink link = WalLink::kUnknown;
};
HeaderCheck CheckHeader(std::string_view data, uint32_t magic, uint16_t shard, uint64_t seq);

enum class WalFileKind : uint8_t {
  kSegment,       // wal-<shard>-<seq>.log
  kSnapshot,      // snap-<shard>-<seq>.dat
  kBadSnapshot,   // snap-<shard>-<seq>.dat.bad
  kTempSnapshot,  // snap-<shard>-<seq>.dat.tmp
};

struct WalDirEntry {
  WalFileKind kind;
  uint16_t shard;
  uint64_t seq;
  std::string path;
};

// Every WAL file in `dir`, of every shard, in directory order. A missing directory is empty.
[[nodiscard]] bool ScanWalDir(const std::string& dir, std::vector<WalDirEntry>* out,
                              std::string* error);

std::string PaddedName(const char* prefix, uint16_t shard, uint64_t seq, const char* suffix);
std::string JoinPath(const std::string& dir, const std::string& name);
std::string Errno(const std::string& what, int err);

// A file mapped read-only for one pass of recovery: its bytes without a copy, and its pages given
// back behind the reader, so that replaying a snapshot larger than the broker's memory budget
// (a long queue of a persistent session) does not hold it all resident. A disk read error, or a
// file shortened under the mapping, raises SIGBUS where read() returned EIO: either way the
// broker does not start. (Recovery truncates a torn last segment only after reading it.)
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps the whole file (an empty file maps to no bytes).
  [[nodiscard]] bool Open(const std::string& path, std::string* error);
  std::string_view bytes() const { return {data_, size_}; }
  // The pages wholly below `offset` leave the process (MADV_DONTNEED; they stay in the page
  // cache, and reading them again faults them back in).
  void ReleaseBelow(size_t offset) const;

 private:
  void Close();
  char* data_ = nullptr;
  size_t size_ = 0;
};
[[nodiscard]] bool SyncDir(const std::string& dir, std::string* error);
[[nodiscard]] bool MakeDir(const std::string& dir, std::string* error);

}  // namespace ringmq::wal::wal_internal

#endif  // RINGMQ_WAL_INTERNAL_WAL_FILE_H_
