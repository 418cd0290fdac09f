// WAL file names, headers and file helpers (wal/internal/wal_file.h, doc/wal-format.md).
#include "wal/internal/wal_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <utility>

#include "base/crc32c.h"
#include "wal/wal.h"

namespace ringmq::wal::wal_internal {

namespace {

void StoreLe(uint64_t v, size_t n, char* p) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

uint64_t LoadLe(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
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

}  // namespace

// magic u32 | version u16 | shard u16 | seq u64 | created wall ms u64 | link u32 | crc u32
std::string EncodeHeader(uint32_t magic, uint16_t shard, uint64_t seq, WalLink link) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  std::string h(kWalFileHeaderSize, '\0');
  StoreLe(magic, 4, &h[0]);
  StoreLe(kFileVersion, 2, &h[4]);
  StoreLe(shard, 2, &h[6]);
  StoreLe(seq, 8, &h[8]);
  StoreLe(static_cast<uint64_t>(now_ms), 8, &h[16]);
  StoreLe(static_cast<uint32_t>(link), 4, &h[24]);
  StoreLe(base::Crc32c(h.data(), 28), 4, &h[28]);
  return h;
}

HeaderCheck CheckHeader(std::string_view data, uint32_t magic, uint16_t shard, uint64_t seq) {
  HeaderCheck c;
  if (data.size() < kWalFileHeaderSize) {
    c.error = "file shorter than its header";
    return c;
  }
  const char* h = data.data();
  if (LoadLe(h + 28, 4) != base::Crc32c(h, 28)) {
    c.error = "header checksum mismatch";
    c.records_readable = true;
  } else if (LoadLe(h, 4) != magic) {
    c.error = "bad magic";
  } else if (LoadLe(h + 4, 2) != kFileVersion) {
    c.error = "unsupported version " + std::to_string(LoadLe(h + 4, 2));
  } else if (LoadLe(h + 6, 2) != shard || LoadLe(h + 8, 8) != seq) {
    c.error = "header names another file";
  } else if (const uint64_t link = LoadLe(h + 24, 4); link <= 3) {
    c.link = static_cast<WalLink>(link);
  }
  return c;
}

bool ScanWalDir(const std::string& dir, std::vector<WalDirEntry>* out, std::string* error) {
  out->clear();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return true;
    *error = Errno("opendir " + dir, errno);
    return false;
  }
  static constexpr struct {
    const char* prefix;
    const char* suffix;
    WalFileKind kind;
  } kPatterns[] = {
      {"wal-", ".log", WalFileKind::kSegment},
      {"snap-", ".dat", WalFileKind::kSnapshot},
      {"snap-", ".dat.bad", WalFileKind::kBadSnapshot},
      {"snap-", ".dat.tmp", WalFileKind::kTempSnapshot},
  };
  while (const dirent* e = ::readdir(d)) {
    for (const auto& p : kPatterns) {
      uint16_t shard = 0;
      uint64_t seq = 0;
      if (ParseName(e->d_name, p.prefix, p.suffix, &shard, &seq)) {
        out->push_back({p.kind, shard, seq, JoinPath(dir, e->d_name)});
        break;
      }
    }
  }
  ::closedir(d);
  return true;
}

std::string PaddedName(const char* prefix, uint16_t shard, uint64_t seq, const char* suffix) {
  std::string s = std::to_string(seq);
  if (s.size() < 12) s.insert(0, 12 - s.size(), '0');
  return prefix + std::to_string(shard) + "-" + s + suffix;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

MappedFile::~MappedFile() { Close(); }

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    Close();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void MappedFile::Close() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

bool MappedFile::Open(const std::string& path, std::string* error) {
  Close();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = Errno("open " + path, errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *error = Errno("stat " + path, errno);
    ::close(fd);
    return false;
  }
  if (st.st_size > 0) {
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      *error = Errno("mmap " + path, errno);
      ::close(fd);
      return false;
    }
    data_ = static_cast<char*>(p);
    size_ = static_cast<size_t>(st.st_size);
    (void)::madvise(data_, size_, MADV_SEQUENTIAL);
  }
  ::close(fd);  // the mapping keeps the file
  return true;
}

void MappedFile::ReleaseBelow(size_t offset) const {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t n = std::min(offset, size_) / page * page;
  if (n != 0) (void)::madvise(data_, n, MADV_DONTNEED);
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

}  // namespace ringmq::wal::wal_internal
