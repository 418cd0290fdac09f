// The asynchronous end of the log (base/log.h): a bounded queue of formatted lines and one thread
// that writes them to a file descriptor (stderr), so that no shard thread ever blocks on log
// output, however slowly the reader of stderr drains it (a pipe nobody reads, a stopped terminal).
//
// Thread-safety: every method may be called from any thread. Push takes a mutex held only to
// append to a vector (never across I/O); the writer thread swaps the vector out under the same
// mutex and writes it without holding it.
// Invariants:
//   1. The queue holds at most `max_bytes` bytes of lines (a single line longer than that is
//      dropped). A line that does not fit is dropped and counted, never waited for.
//   2. Lines are written in the order they were pushed, each whole (write(2) is retried on
//      EINTR and short writes). WriteNow may interleave with the writer thread only at line
//      boundaries of what it has flushed before.
//   3. dropped() never decreases.
#ifndef RINGMQ_BASE_INTERNAL_LOG_WRITER_H_
#define RINGMQ_BASE_INTERNAL_LOG_WRITER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace ringmq::base::log_internal {

class LogWriter {
 public:
  // Starts the writer thread (with every signal blocked, so that a signal meant for the process
  // is never taken by it). If the thread cannot be started, Push writes synchronously instead.
  LogWriter(int fd, size_t max_bytes);
  // Writes what is queued, then stops the thread. REQUIRES: the fd can take what is queued (a
  // process-wide writer is never destroyed, so this only matters in tests).
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Queues one line (invariant 1). Returns false when it was dropped.
  bool Push(std::string_view line);
  // Waits until every line pushed before the call is written, at most `timeout`. Returns false
  // at the timeout (the reader of the fd does not keep up).
  bool Flush(std::chrono::milliseconds timeout);
  // For a line that must get out before the process aborts: flushes the queue for at most
  // `timeout`, then writes `line` synchronously on the calling thread (this may block).
  void WriteNow(std::string_view line, std::chrono::milliseconds timeout);
  // Lines dropped since the start (relaxed: a statistic).
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void Run();
  void WriteAll(std::string_view bytes);

  const int fd_;
  const size_t max_bytes_;
  std::atomic<uint64_t> dropped_{0};

  std::mutex mu_;
  std::condition_variable wake_;     // the writer: there is work, or stop
  std::condition_variable written_;  // Flush: written_seq_ advanced
  std::string queue_;                // guarded by mu_
  uint64_t pushed_seq_ = 0;          // guarded by mu_: lines queued so far
  uint64_t written_seq_ = 0;         // guarded by mu_: lines written so far
  bool stop_ = false;                // guarded by mu_
  bool threaded_ = false;            // set once in the constructor
  std::thread thread_;
};

}  // namespace ringmq::base::log_internal

#endif  // RINGMQ_BASE_INTERNAL_LOG_WRITER_H_
