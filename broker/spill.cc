// Spill files (broker/spill.h).
#include "broker/spill.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "broker/session.h"

namespace ringmq::broker {

namespace {

constexpr uint8_t kFlagShared = 0x01;

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

void PutString16(std::string_view s, std::string* out) {
  out->push_back(static_cast<char>(s.size() & 0xff));
  out->push_back(static_cast<char>((s.size() >> 8) & 0xff));
  out->append(s);
}

bool GetString16(std::string_view* in, std::string* s) {
  if (in->size() < 2) return false;
  const size_t n = static_cast<uint8_t>((*in)[0]) | (size_t{static_cast<uint8_t>((*in)[1])} << 8);
  if (in->size() < 2 + n) return false;
  s->assign(in->substr(2, n));
  in->remove_prefix(2 + n);
  return true;
}

bool PreadAll(int fd, char* p, size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t r = pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;  // shorter than written: the file was damaged
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}

}  // namespace

bool DiskBudget::Take(uint64_t n) {
  uint64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (used + n > max_) return false;
  } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
  return true;
}

std::unique_ptr<SpillFile> SpillFile::Create(const SpillContext& ctx, std::string* error) {
  if (mkdir(ctx.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    *error = "cannot create " + ctx.dir + ": " + std::strerror(errno);
    return nullptr;
  }
  std::string path = ctx.dir + "/queue-XXXXXX";
  std::vector<char> name(path.begin(), path.end());
  name.push_back('\0');
  const int fd = mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot create a spill file in " + ctx.dir + ": " + std::strerror(errno);
    return nullptr;
  }
  unlink(name.data());  // scratch space: gone with the process (file comment)
  return std::unique_ptr<SpillFile>(new SpillFile(fd, ctx.budget));
}

SpillFile::~SpillFile() {
  if (fd_ >= 0) close(fd_);
  budget_->Give(budget_taken_);
}

bool SpillFile::Fail(const char* what, int err) {
  error_ = std::string(what) + ": " + std::strerror(err);
  return false;
}

bool SpillFile::FinishAppend(size_t mark) {
  const auto n = static_cast<uint32_t>(wbuf_.size() - mark - kLengthBytes);
  for (size_t i = 0; i < kLengthBytes; ++i)
    wbuf_[mark + i] = static_cast<char>((n >> (8 * i)) & 0xff);
  if (wbuf_.size() >= kWriteBufferBytes && !Flush()) {
    wbuf_.resize(mark);  // not taken: the file is as before (Flush wrote nothing)
    return false;
  }
  return true;
}

void SpillFile::KeepLast(std::string_view* entry) {
  last_.assign(*entry);
  *entry = last_;
}

bool SpillFile::Flush() {
  if (wbuf_.empty()) return true;
  if (!budget_->Take(wbuf_.size())) {
    error_ = "the disk budget for queues (max_queue_disk_bytes) is used up";
    return false;
  }
  size_t done = 0;
  written_ = true;
  while (done < wbuf_.size()) {
    const ssize_t w =
        pwrite(fd_, wbuf_.data() + done, wbuf_.size() - done, static_cast<off_t>(file_end_ + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      budget_->Give(wbuf_.size());
      // Nothing counts as written: the whole buffer is written again next time (a partial write
      // left bytes past file_end_ that are overwritten then).
      return Fail("writing a spill file", err);
    }
    done += static_cast<size_t>(w);
  }
  file_end_ += wbuf_.size();
  budget_taken_ += wbuf_.size();
  wbuf_.clear();
  error_.clear();
  return true;
}

bool SpillFile::Next(std::string_view* entry) {
  if (empty()) return false;
  if (read_ >= file_end_) {  // in the write buffer
    const size_t at = read_ - file_end_;
    const uint32_t n = GetU32(wbuf_.data() + at);
    *entry = std::string_view{wbuf_}.substr(at + kLengthBytes, n);
    read_ += kLengthBytes + n;
    if (read_ == end()) KeepLast(entry);  // Reclaim empties the buffer
  } else {
    auto buffered = [&](uint64_t n) {
      return read_ >= rbuf_off_ && read_ + n <= rbuf_off_ + rbuf_.size();
    };
    auto fill = [&](uint64_t n) {  // at least n bytes from read_, more when the file has them
      const uint64_t want =
          std::min<uint64_t>(std::max<uint64_t>(n, kReadAheadBytes), file_end_ - read_);
      if (want < n) {
        errno = EIO;  // an entry runs past what was written: the file is damaged
        return false;
      }
      rbuf_.resize(want);
      rbuf_off_ = read_;
      return PreadAll(fd_, rbuf_.data(), want, read_);
    };
    if (!buffered(kLengthBytes) && !fill(kLengthBytes)) {
      Fail("reading a spill file", errno);
      read_ = end();  // what is left cannot be found: give it up (the caller counts it)
      Reclaim();
      return false;
    }
    const uint32_t n = GetU32(rbuf_.data() + (read_ - rbuf_off_));
    if (!buffered(kLengthBytes + n) && !fill(kLengthBytes + n)) {
      Fail("reading a spill file", errno);
      read_ = end();
      Reclaim();
      return false;
    }
    *entry = std::string_view{rbuf_}.substr(read_ - rbuf_off_ + kLengthBytes, n);
    read_ += kLengthBytes + n;
    if (read_ >= rbuf_off_ + rbuf_.size() || read_ == end()) {
      KeepLast(entry);
      std::string().swap(rbuf_);  // no buffer while idle
    }
  }
  Reclaim();
  return true;
}

bool SpillFile::ForEachUnread(const std::function<void(std::string_view)>& fn) const {
  if (read_ < file_end_) {
    std::string error;
    if (!ReadFileRange(read_, file_end_, fn, &error)) return false;
  }
  const uint64_t from = std::max(read_, file_end_) - file_end_;
  std::string_view rest{wbuf_};
  rest.remove_prefix(from);
  while (rest.size() >= kLengthBytes) {
    const uint32_t n = GetU32(rest.data());
    fn(rest.substr(kLengthBytes, n));
    rest.remove_prefix(kLengthBytes + n);
  }
  return true;
}

bool SpillFile::ReadFileRange(uint64_t begin, uint64_t end,
                              const std::function<void(std::string_view)>& fn,
                              std::string* error) const {
  std::string buf;
  uint64_t at = begin;
  while (at < end) {
    char len[kLengthBytes];
    if (end - at < kLengthBytes) {
      *error = "reading a spill file: an entry runs past the range";
      return false;
    }
    if (!PreadAll(fd_, len, kLengthBytes, at)) {
      *error = std::string("reading a spill file: ") + std::strerror(errno);
      return false;
    }
    const uint32_t n = GetU32(len);
    if (end - at - kLengthBytes < n) {
      *error = "reading a spill file: an entry runs past the range";
      return false;
    }
    // One entry at a time, with read-ahead: up to kReadAheadBytes of whole entries per pread.
    const uint64_t chunk =
        std::min<uint64_t>(std::max<uint64_t>(kLengthBytes + n, kReadAheadBytes), end - at);
    buf.resize(chunk);
    if (!PreadAll(fd_, buf.data(), chunk, at)) {
      *error = std::string("reading a spill file: ") + std::strerror(errno);
      return false;
    }
    std::string_view rest = buf;
    while (rest.size() >= kLengthBytes) {
      const uint32_t m = GetU32(rest.data());
      if (rest.size() - kLengthBytes < m) break;  // read again from here
      fn(rest.substr(kLengthBytes, m));
      rest.remove_prefix(kLengthBytes + m);
      at += kLengthBytes + m;
    }
  }
  return true;
}

void SpillFile::Unpin() {
  --pins_;
  Reclaim();
}

void SpillFile::Reclaim() {
  if (pins_ > 0) return;
  if (read_ == end()) {                              // empty: start again at offset 0
    if (written_ && ftruncate(fd_, 0) != 0) return;  // (kept; tried again next time)
    written_ = false;
    budget_->Give(budget_taken_);
    budget_taken_ = 0;
    file_end_ = read_ = punched_ = 0;
    wbuf_.clear();
    rbuf_.clear();
    rbuf_off_ = 0;
    return;
  }
  const uint64_t upto = std::min(read_, file_end_) & ~uint64_t{4095};
  if (cannot_punch_ || upto < punched_ + kPunchBytes) return;
  if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(punched_),
                static_cast<off_t>(upto - punched_)) != 0) {
    // A file system without holes: the space comes back when the file empties (not tried again).
    cannot_punch_ = errno == EOPNOTSUPP;
    return;
  }
  budget_->Give(upto - punched_);
  budget_taken_ -= upto - punched_;
  punched_ = upto;
}

void EncodeSpillEntry(const Delivery& d, std::string* out) {
  out->push_back(static_cast<char>(d.shared != nullptr ? kFlagShared : 0));
  if (d.shared != nullptr) {
    PutString16(d.shared->group, out);
    PutString16(d.shared->filter, out);
  }
  static const route::Message kNone;  // a delivery without a message (not queued in practice)
  wal::EncodeMessageQueued({}, d.wal_id, d.msg != nullptr ? *d.msg : kNone, d.qos, d.retain, 0,
                           d.subscription_ids, out);
}

bool DecodeSpillEntry(std::string_view entry, wal::WalMessageQueued* q, std::string* shared_group,
                      std::string* shared_filter) {
  if (entry.empty()) return false;
  const uint8_t flags = static_cast<uint8_t>(entry[0]);
  entry.remove_prefix(1);
  shared_group->clear();
  shared_filter->clear();
  if ((flags & kFlagShared) != 0 &&
      (!GetString16(&entry, shared_group) || !GetString16(&entry, shared_filter))) {
    return false;
  }
  return wal::Decode(entry, q);
}

bool DecodeSpillEntry(std::string_view entry, Delivery* d) {
  if (entry.empty()) return false;
  const uint8_t flags = static_cast<uint8_t>(entry[0]);
  entry.remove_prefix(1);
  d->shared.reset();
  if ((flags & kFlagShared) != 0) {
    SharedKey key;
    if (!GetString16(&entry, &key.group) || !GetString16(&entry, &key.filter)) return false;
    d->shared = std::make_shared<const SharedKey>(std::move(key));
  }
  // Straight into the message that is delivered (no record in between: the read-back path of a
  // slow consumer's queue).
  auto m = std::make_shared<route::Message>();
  d->subscription_ids.clear();
  if (!wal::DecodeMessageQueued(entry, nullptr, &d->wal_id, m.get(), &d->subscription_ids)) {
    return false;
  }
  d->qos = m->qos;
  d->retain = m->retain;
  d->msg = std::move(m);
  return true;
}

}  // namespace ringmq::broker
