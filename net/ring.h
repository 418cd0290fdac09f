// Ring: one io_uring, used by exactly one thread (a shard). A thin layer over liburing in the style
// of liburing's examples/proxy.c: prepare operations during a loop turn, then one SubmitAndWait and
// one batch of completions with a single CQ advance.
//
// Setup: IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (completions run only when this
// thread asks for them), falling back to IORING_SETUP_COOP_TASKRUN, then to no flags, on kernels
// that refuse them; a CQ larger than the SQ; and a probe of every opcode the broker uses, so a
// missing feature is a clear startup error rather than a runtime failure.
// Thread-safety: none; a Ring belongs to the thread that calls Init.
// Invariants:
//   1. Prep* never fails: when the SQ is full, the queued entries are submitted first.
//   2. ForEachCqe advances the CQ once, after the callback saw every ready completion.
#ifndef RINGMQ_NET_RING_H_
#define RINGMQ_NET_RING_H_

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace ringmq::net {

inline constexpr uint32_t kCqeMore = IORING_CQE_F_MORE;

// The provided-buffer id of a completion that carries one.
inline uint16_t BufferId(uint32_t cqe_flags) {
  return static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
}

struct Completion {
  uint64_t user_data;
  int res;
  uint32_t flags;
  bool more() const { return flags & IORING_CQE_F_MORE; }
  bool has_buffer() const { return flags & IORING_CQE_F_BUFFER; }
  uint16_t buffer_id() const { return BufferId(flags); }
};

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Creates the ring and probes the opcodes. False with *error (naming what is missing) on failure.
  bool Init(unsigned sq_entries, unsigned cq_entries, std::string* error);
  // Which setup flags the kernel accepted, for the startup log.
  const char* mode() const { return mode_; }

  void PrepMultishotAccept(int listen_fd, uint64_t user_data);
  // One receive into a buffer of `group`.
  void PrepRecv(int fd, uint16_t group, uint64_t user_data);
  // Receives until cancelled or an error; each completion carries one buffer of `group`. A
  // completion without kCqeMore ends it (re-arm if the connection lives on).
  void PrepMultishotRecv(int fd, uint16_t group, uint64_t user_data);
  // REQUIRES: data stays valid until the completion.
  void PrepSend(int fd, const void* data, size_t len, uint64_t user_data);
  void PrepRead(int fd, void* buf, size_t len, uint64_t user_data);

  // Submits what was prepared and waits for `wait_nr` completions or `timeout_ns` (0: no timeout).
  // With wait_nr == 0 it only submits and runs pending task work.
  void SubmitAndWait(unsigned wait_nr, int64_t timeout_ns);

  // Calls fn(const Completion&) for every ready completion, then advances the CQ once.
  template <typename Fn>
  unsigned ForEachCqe(Fn&& fn) {
    unsigned head;
    unsigned n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      fn(Completion{cqe->user_data, cqe->res, cqe->flags});
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
    return n;
  }

  io_uring* raw() { return &ring_; }

 private:
  io_uring_sqe* GetSqe();

  io_uring ring_{};
  bool initialized_ = false;
  const char* mode_ = "";
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_RING_H_
