// The log's bounded queue and writer thread.
#include "base/internal/log_writer.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <system_error>

namespace ringmq::base::log_internal {

namespace {

constexpr size_t kKeptBatchBytes = size_t{64} << 10;

}  // namespace

LogWriter::LogWriter(int fd, size_t max_bytes) : fd_(fd), max_bytes_(max_bytes) {
  // The thread inherits the creator's signal mask: block everything around its creation so that
  // SIGTERM or SIGHUP, which main takes with sigwait, is never delivered to it.
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread([this] { Run(); });
    threaded_ = true;
  } catch (const std::system_error&) {
    threaded_ = false;  // Push writes synchronously
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

LogWriter::~LogWriter() {
  if (!threaded_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool LogWriter::Push(std::string_view line) {
  if (!threaded_) {
    WriteAll(line);
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() + line.size() > max_bytes_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.append(line);
    ++pushed_seq_;
  }
  wake_.notify_one();
  return true;
}

bool LogWriter::Flush(std::chrono::milliseconds timeout) {
  if (!threaded_) return true;
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = pushed_seq_;
  return written_.wait_for(lock, timeout, [&] { return written_seq_ >= target; });
}

void LogWriter::WriteNow(std::string_view line, std::chrono::milliseconds timeout) {
  (void)Flush(timeout);
  WriteAll(line);
}

void LogWriter::Run() {
  std::string batch;
  for (;;) {
    uint64_t seq = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_, and everything is written
      batch.clear();
      batch.swap(queue_);
      seq = pushed_seq_;
    }
    WriteAll(batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      written_seq_ = seq;
    }
    written_.notify_all();
    // A burst may have grown the batch's buffer to max_bytes: do not keep that much around.
    if (batch.capacity() > kKeptBatchBytes) std::string().swap(batch);
  }
}

void LogWriter::WriteAll(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report it: the log is the report
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace ringmq::base::log_internal
