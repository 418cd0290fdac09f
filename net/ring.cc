// io_uring setup, probing and submission.
#include "net/ring.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace ringmq::net {

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

bool Ring::Init(unsigned sq_entries, unsigned cq_entries, std::string* error) {
  struct Attempt {
    unsigned flags;
    const char* mode;
  };
  const Attempt attempts[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single-issuer, defer-taskrun"},
      {IORING_SETUP_COOP_TASKRUN, "coop-taskrun"},
      {0, "plain"},
  };
  int ret = -EINVAL;
  for (const Attempt& a : attempts) {
    io_uring_params p{};
    p.flags = a.flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = cq_entries;
    ret = io_uring_queue_init_params(sq_entries, &ring_, &p);
    if (ret == 0) {
      mode_ = a.mode;
      break;
    }
    if (ret != -EINVAL) break;
  }
  if (ret != 0) {
    *error = std::string("io_uring_queue_init: ") + std::strerror(-ret) +
             (ret == -EPERM ? " (io_uring disabled by kernel.io_uring_disabled or seccomp?)" : "");
    return false;
  }
  initialized_ = true;

  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) {
    *error = "io_uring: cannot probe supported operations (kernel too old?)";
    return false;
  }
  struct Op {
    int op;
    const char* name;
  };
  const Op needed[] = {{IORING_OP_ACCEPT, "ACCEPT"}, {IORING_OP_RECV, "RECV"},
                       {IORING_OP_SEND, "SEND"},     {IORING_OP_READ, "READ"},
                       {IORING_OP_CLOSE, "CLOSE"},   {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}};
  std::string missing;
  for (const Op& op : needed) {
    if (!io_uring_opcode_supported(probe, op.op)) missing += std::string(" ") + op.name;
  }
  io_uring_free_probe(probe);
  if (!missing.empty()) {
    *error = "io_uring: the kernel lacks required operations:" + missing +
             " (ringmq needs Linux 6.0 or newer)";
    return false;
  }
  return true;
}

io_uring_sqe* Ring::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);  // SQ full: hand the batch to the kernel and take a fresh entry
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
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

void Ring::PrepRead(int fd, void* buf, size_t len, uint64_t user_data) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), 0);
  io_uring_sqe_set_data64(sqe, user_data);
}

void Ring::SubmitAndWait(unsigned wait_nr, int64_t timeout_ns) {
  if (wait_nr == 0) {
    io_uring_submit_and_get_events(&ring_);
    return;
  }
  io_uring_cqe* cqe = nullptr;
  if (timeout_ns <= 0) {
    io_uring_submit_and_wait(&ring_, wait_nr);
    return;
  }
  __kernel_timespec ts{};
  ts.tv_sec = timeout_ns / 1'000'000'000;
  ts.tv_nsec = timeout_ns % 1'000'000'000;
  // -ETIME (timeout) and -EINTR are normal wake-ups; the caller just runs another turn.
  (void)io_uring_submit_and_wait_timeout(&ring_, &cqe, wait_nr, &ts, nullptr);
}

}  // namespace ringmq::net
