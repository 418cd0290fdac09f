// Helpers for net/ tests only: blocking TCP clients on 127.0.0.1 and skipping tests whose kernel
// feature is missing. Not part of the ringmq_net library (header only, included by *_test.cc).
#ifndef RINGMQ_NET_INTERNAL_TEST_UTIL_H_
#define RINGMQ_NET_INTERNAL_TEST_UTIL_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "net/socket.h"

namespace ringmq::net::testing {

// Why io_uring cannot be used at all on this machine, or "" when it can.
inline std::string IoUringUnavailable() {
  io_uring ring;
  const int ret = io_uring_queue_init(2, &ring, 0);
  if (ret != 0) return std::string("io_uring unavailable: ") + std::strerror(-ret);
  io_uring_queue_exit(&ring);
  return "";
}

// True when Ring::Init or BufferRing::Init failed because the kernel lacks a feature (a skip),
// rather than because of a bug (a failure).
inline bool IsMissingKernelFeature(const std::string& init_error) {
  return !IoUringUnavailable().empty() || init_error.find("lacks") != std::string::npos ||
         init_error.find("older than") != std::string::npos;
}

// A blocking TCP client connected to 127.0.0.1:port, with 20 s send/receive timeouts so that a
// broken server fails the test instead of hanging it; -1 on failure.
inline int ConnectTcp(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline bool SendAll(int fd, const void* data, size_t len) {
  const auto* p = static_cast<const char*>(data);
  while (len > 0) {
    const ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

inline bool RecvExact(int fd, void* data, size_t len) {
  auto* p = static_cast<char*>(data);
  while (len > 0) {
    const ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// A connected pair of TCP sockets on 127.0.0.1: `client` from ConnectTcp, `server` accepted.
struct TcpPair {
  int client = -1;
  int server = -1;
  ~TcpPair() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
  }
};

inline bool MakeTcpPair(TcpPair* pair, std::string* error) {
  const int listener = ListenTcp("127.0.0.1", 0, error);
  if (listener < 0) return false;
  pair->client = ConnectTcp(LocalPort(listener));
  if (pair->client >= 0) pair->server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  if (pair->server < 0) *error = std::string("connect/accept: ") + std::strerror(errno);
  return pair->server >= 0;
}

}  // namespace ringmq::net::testing

// Initializes a Ring on the calling thread; skips the test when the kernel lacks a feature.
#define RINGMQ_INIT_RING_OR_SKIP(ring, sq, cq)                          \
  do {                                                                  \
    std::string init_error;                                             \
    if (!(ring).Init((sq), (cq), &init_error)) {                        \
      if (::ringmq::net::testing::IsMissingKernelFeature(init_error)) { \
        GTEST_SKIP() << init_error;                                     \
      }                                                                 \
      FAIL() << init_error;                                             \
    }                                                                   \
  } while (0)

#endif  // RINGMQ_NET_INTERNAL_TEST_UTIL_H_
