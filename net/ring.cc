// io_uring setup, probing and submission.
#include "net/ring.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringmq::net {

namespace {

// The opcodes the broker uses. PROVIDE_BUFFERS is not needed: buffers come from a registered
// buffer ring (BufferRing), whose absence Init of that class reports. MSG_RING is not needed
// either: another thread wakes a shard by writing the shard's eventfd, which the shard reads with
// READ (broker/shard.cc, WakeFromAnyThread).
struct Opcode {
  int op;
  const char* name;
};
constexpr Opcode kRequiredOps[] = {
    {IORING_OP_ACCEPT, "ACCEPT"},     {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},         {IORING_OP_CLOSE, "CLOSE"},
    {IORING_OP_TIMEOUT, "TIMEOUT"},   {IORING_OP_READ, "READ"},
    {IORING_OP_WRITE, "WRITE"},       {IORING_OP_FSYNC, "FSYNC"},
    {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
};

// Kernel features the loop relies on: EXT_ARG lets SubmitAndWait time out without queueing a
// timeout SQE (whose completion would otherwise appear among ours), NODROP keeps completions that
// do not fit the CQ instead of losing them, FAST_POLL lets recv/send wait without a worker thread.
struct Feature {
  unsigned bit;
  const char* name;
};
constexpr Feature kRequiredFeatures[] = {
    {IORING_FEAT_EXT_ARG, "EXT_ARG"},
    {IORING_FEAT_NODROP, "NODROP"},
    {IORING_FEAT_FAST_POLL, "FAST_POLL"},
};

}  // namespace

std::vector<std::string_view> Ring::RequiredOpcodeNames() {
  std::vector<std::string_view> names;
  for (const Opcode& op : kRequiredOps) names.emplace_back(op.name);
  return names;
}

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

bool Ring::Init(unsigned sq_entries, unsigned cq_entries, std::string* error) {
  assert(!initialized_);
  struct Attempt {
    unsigned flags;
    const char* mode;
  };
  constexpr Attempt kAttempts[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single-issuer, defer-taskrun"},
      {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "coop-taskrun"},
      {0, "plain"},
  };
  io_uring_params params{};
  int ret = -EINVAL;
  for (const Attempt& a : kAttempts) {
    params = io_uring_params{};
    params.flags = a.flags | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP;
    if (cq_entries != 0) {
      params.flags |= IORING_SETUP_CQSIZE;
      params.cq_entries = cq_entries;
    }
    ret = io_uring_queue_init_params(sq_entries, &ring_, &params);
    if (ret == 0) {
      mode_ = a.mode;
      break;
    }
    if (ret != -EINVAL) break;  // EINVAL: flags unknown to this kernel; anything else is fatal
  }
  if (ret != 0) {
    *error = std::string("io_uring setup: ") + std::strerror(-ret);
    if (ret == -EPERM) *error += " (disabled by sysctl kernel.io_uring_disabled or seccomp?)";
    if (ret == -ENOSYS) *error += " (kernel built without io_uring)";
    if (ret == -ENOMEM) *error += " (RLIMIT_MEMLOCK too low for the ring size?)";
    if (ret == -EINVAL) *error += " (bad ring sizes, or kernel older than 5.18)";
    return false;
  }
  initialized_ = true;
  owner_ = std::this_thread::get_id();

  std::string missing;
  for (const Feature& f : kRequiredFeatures) {
    if ((params.features & f.bit) == 0) missing += std::string(" feature ") + f.name;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) {
    *error = "io_uring: cannot probe supported operations (kernel older than 5.6?)";
    return false;
  }
  for (const Opcode& op : kRequiredOps) {
    if (!io_uring_opcode_supported(probe, op.op)) missing += std::string(" ") + op.name;
  }
  io_uring_free_probe(probe);
  if (!missing.empty()) {
    *error = "io_uring: the kernel lacks" + missing + " (ringmq needs Linux 6.0 or newer)";
    return false;
  }
  return true;
}

io_uring_sqe* Ring::GetSqe() {
  assert(IsOwner());
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe != nullptr) [[likely]] {
    return sqe;
  }
  // SQ full: hand the queued entries to the kernel and take a fresh one. With SUBMIT_ALL the
  // kernel consumes every entry; only a CQ overflow that the kernel cannot even buffer (-EBUSY)
  // or a signal can keep it from doing so, hence a bounded retry.
  int ret = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    ret = io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) return sqe;
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) break;
  }
  std::fprintf(stderr, "ringmq: io_uring submission queue stuck full: %s\n", std::strerror(-ret));
  std::abort();  // invariant 1 broken: nothing sensible can continue
}

void Ring::PrepMultishotAccept(int listen_fd, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepRecv(int fd, uint16_t group, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = group;
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepMultishotRecv(int fd, uint16_t group, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = group;
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepSend(int fd, const void* data, size_t len, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_send(sqe, fd, data, len, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepRead(int fd, void* buf, size_t len, uint64_t user_data, uint64_t offset) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), offset);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepWrite(int fd, const void* data, size_t len, uint64_t user_data, uint64_t offset) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_write(sqe, fd, data, static_cast<unsigned>(len), offset);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepFsync(int fd, bool datasync, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepPollAdd(int fd, unsigned poll_mask, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_poll_add(sqe, fd, poll_mask);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepTimeout(const __kernel_timespec* ts, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  // liburing takes a non-const pointer; the kernel only reads it (at submission).
  io_uring_prep_timeout(sqe, const_cast<__kernel_timespec*>(ts), 0, 0);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepClose(int fd, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_close(sqe, fd);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepCancelFd(int fd, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::PrepCancel(uint64_t target, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel64(sqe, target, 0);
  io_uring_sqe_set_data64(sqe, user_data);
}

int Ring::SubmitAndWait(unsigned wait_nr, int64_t timeout_ns) {
  assert(IsOwner());
  int ret;
  if (wait_nr == 0) {
    // Always enters the kernel with GETEVENTS, which runs deferred task work (DEFER_TASKRUN).
    ret = io_uring_submit_and_get_events(&ring_);
  } else if (timeout_ns <= 0) {
    ret = io_uring_submit_and_wait(&ring_, wait_nr);
  } else {
    __kernel_timespec ts = Timespec(timeout_ns);
    io_uring_cqe* cqe = nullptr;
    // With EXT_ARG (checked by Init) the timeout is an argument of io_uring_enter, not an SQE.
    ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, &ts, nullptr);
  }
  if (ret == -ETIME || ret == -EINTR) return 0;
  return ret;
}

}  // namespace ringmq::net
