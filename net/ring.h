// Ring: one io_uring, the event loop of one shard. A thin layer over liburing in the style of
// liburing's examples/proxy.c: during a loop turn the owner prepares operations (Prep*), then calls
// SubmitAndWait once, then handles one batch of completions with ForEachCqe (one CQ advance).
//
//   ring.PrepMultishotAccept(listen_fd, PackUserData(kAccept, 0, 0));
//   for (;;) {
//     ring.SubmitAndWait(1, tick_ns);
//     ring.ForEachCqe([&](const Completion& c) { ... Prep* more work ... });
//   }
//
// Setup: IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (completions are produced only
// when the owner enters the kernel to wait for them), falling back to IORING_SETUP_COOP_TASKRUN,
// then to no flags, on kernels that refuse them (EINVAL); always IORING_SETUP_CQSIZE (a CQ larger
// than the SQ: multishot operations post many completions per submission), SUBMIT_ALL and CLAMP.
// Init probes every opcode the broker uses and names the missing ones, so an old kernel is a clear
// startup error rather than a runtime failure. The user_data layout is in net/user_data.h.
//
// Thread-safety: a Ring belongs to the thread that calls Init (SINGLE_ISSUER: the kernel refuses
// submissions from any other thread) and only that thread may call its methods; debug builds
// assert it. Nothing of a Ring is used across threads: another thread wakes a sleeping shard by
// writing an eventfd the shard keeps a READ armed on (broker/shard.h, WakeFromAnyThread).
// Invariants:
//   1. Prep* never fails: when the SQ is full, the queued entries are submitted first. (If even
//      that is impossible, the CQ has overflowed beyond the kernel's backlog: the process aborts.)
//   2. ForEachCqe hands out the completions that were ready when it started, in order, then
//      advances the CQ once.
//   3. Buffers passed to Prep* (send data, read buffers, timespecs) stay valid until the
//      operation completes; a timespec only until the next SubmitAndWait (the kernel copies it).
#ifndef RINGMQ_NET_RING_H_
#define RINGMQ_NET_RING_H_

#include <liburing.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ringmq::net {

inline constexpr uint32_t kCqeMore = IORING_CQE_F_MORE;

// The provided-buffer id of a completion that carries one (IORING_CQE_F_BUFFER).
inline uint16_t BufferId(uint32_t cqe_flags) {
  return static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
}

// A copy of one CQE.
struct Completion {
  uint64_t user_data;
  int res;  // >= 0: the operation's result; < 0: -errno
  uint32_t flags;
  // A multishot operation stays armed only while its completions carry F_MORE; one without it
  // ends it, and the owner re-arms if it still wants the operation.
  bool more() const { return flags & IORING_CQE_F_MORE; }
  bool has_buffer() const { return flags & IORING_CQE_F_BUFFER; }
  uint16_t buffer_id() const { return BufferId(flags); }
};

// A relative duration for PrepTimeout.
constexpr __kernel_timespec Timespec(int64_t ns) {
  return __kernel_timespec{ns / 1'000'000'000, ns % 1'000'000'000};
}

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Creates the ring on the calling thread, which becomes its owner, and probes the opcodes.
  // cq_entries of 0 means the kernel default (twice sq_entries). Returns false with *error (naming
  // what is missing) on failure; the Ring is then unusable.
  // REQUIRES: not yet initialized.
  bool Init(unsigned sq_entries, unsigned cq_entries, std::string* error);

  // Which setup flags the kernel accepted, for the startup log ("single-issuer, defer-taskrun",
  // "coop-taskrun" or "plain"), and the IORING_SETUP_* bits themselves.
  const char* mode() const { return mode_; }
  unsigned setup_flags() const { return ring_.flags; }
  // The ring's file descriptor.
  int fd() const { return ring_.ring_fd; }
  // The names of the opcodes Init requires (what its error names when one is missing).
  static std::vector<std::string_view> RequiredOpcodeNames();

  // --- Preparation. Each queues one SQE tagged with `user_data` (net/user_data.h). ---

  // Accepts connections until cancelled or an error; every completion's res is a new fd (with
  // SOCK_CLOEXEC) or -errno. Re-arm when a completion lacks F_MORE.
  void PrepMultishotAccept(int listen_fd, uint64_t user_data);
  // One receive into a buffer picked by the kernel from provided-buffer group `group`.
  void PrepRecv(int fd, uint16_t group, uint64_t user_data);
  // Receives until an error or EOF; each completion with res > 0 carries one buffer of `group`
  // (Completion::buffer_id), res == 0 is EOF. -ENOBUFS means the group ran dry: recycle buffers,
  // then re-arm. Any completion without F_MORE ends it.
  void PrepMultishotRecv(int fd, uint16_t group, uint64_t user_data);
  // Sends up to `len` bytes (MSG_NOSIGNAL); res may be less than len (a partial send): the caller
  // sends the rest. Keep at most one send in flight per socket, or bytes may interleave.
  void PrepSend(int fd, const void* data, size_t len, uint64_t user_data);
  // read(2)/write(2) at `offset` (ignored by sockets, pipes and eventfds).
  void PrepRead(int fd, void* buf, size_t len, uint64_t user_data, uint64_t offset = 0);
  void PrepWrite(int fd, const void* data, size_t len, uint64_t user_data, uint64_t offset = 0);
  // fsync(2), or fdatasync(2) when `datasync`.
  void PrepFsync(int fd, bool datasync, uint64_t user_data);
  // One-shot poll for `poll_mask` (POLLIN, ...); res is the ready mask.
  void PrepPollAdd(int fd, unsigned poll_mask, uint64_t user_data);
  // Completes with -ETIME after `*ts` (relative), the periodic tick: re-arm it in its handler.
  // REQUIRES: *ts stays valid until the next SubmitAndWait.
  void PrepTimeout(const __kernel_timespec* ts, uint64_t user_data);
  // close(2). A socket with an armed multishot receive must be shut down or PrepCancelFd'ed first,
  // or the receive keeps the socket open.
  void PrepClose(int fd, uint64_t user_data);
  // Cancels every operation on `fd`; each ends with -ECANCELED, and this one's res is how many.
  void PrepCancelFd(int fd, uint64_t user_data);
  // Cancels the one operation tagged `target` (a multishot receive ends with -ECANCELED, after
  // whatever it completed before); this one's res is 0, -ENOENT (already ended) or -EALREADY.
  void PrepCancel(uint64_t target, uint64_t user_data);

  // --- The loop turn. ---

  // Submits what was prepared and waits until `wait_nr` completions are ready or `timeout_ns`
  // passed (0: no timeout). With wait_nr == 0 it submits and collects ready completions without
  // sleeping. Returns >= 0 on success, or -errno for a real failure (-ETIME and -EINTR are normal
  // wake-ups and return 0).
  int SubmitAndWait(unsigned wait_nr, int64_t timeout_ns);

  // Calls fn(const Completion&) for every completion that is ready now, then advances the CQ once.
  // fn may Prep* new work (it is submitted with the next SubmitAndWait). Returns the count.
  // REQUIRES: fn does not call SubmitAndWait or ForEachCqe.
  template <typename Fn>
  unsigned ForEachCqe(Fn&& fn) {
    assert(IsOwner());
    io_uring_cq& cq = ring_.cq;
    const unsigned head = *cq.khead;                            // only this thread moves head
    const unsigned tail = io_uring_smp_load_acquire(cq.ktail);  // CQE contents before tail
    for (unsigned i = head; i != tail; ++i) {
      const io_uring_cqe& cqe = cq.cqes[io_uring_cqe_index(&ring_, i, cq.ring_mask)];
      fn(Completion{cqe.user_data, cqe.res, cqe.flags});
    }
    io_uring_cq_advance(&ring_, tail - head);  // store-release: the kernel may reuse the slots
    return tail - head;
  }

  // The liburing ring, for what this class does not wrap (registration by BufferRing).
  io_uring* raw() { return &ring_; }

 private:
  io_uring_sqe* GetSqe();
  bool IsOwner() const { return owner_ == std::this_thread::get_id(); }

  io_uring ring_{};
  bool initialized_ = false;
  const char* mode_ = "";
  std::thread::id owner_;
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_RING_H_
