// An echo server on one Ring, written the way a shard uses net/: multishot accept, multishot recv
// with a provided buffer ring (re-armed when F_MORE is missing, after a refill on ENOBUFS), one
// send in flight per socket with partial sends continued, generations in user_data. Plain blocking
// client sockets talk to it.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/buffer_ring.h"
#include "net/internal/test_util.h"
#include "net/ring.h"
#include "net/socket.h"
#include "net/user_data.h"

namespace ringmq::net {
namespace {

enum Op : uint8_t { kAccept = 1, kRecv, kSend, kClose };

struct EchoOptions {
  unsigned buffers = 64;
  unsigned buffer_size = 4096;
  int send_buffer = 0;  // SO_SNDBUF of accepted sockets; 0: kernel default
};

struct EchoStats {
  uint64_t accepted = 0;
  uint64_t closed = 0;
  uint64_t bytes = 0;
  uint64_t partial_sends = 0;
  uint64_t enobufs = 0;
  uint64_t recv_rearms = 0;
};

class EchoServer {
 public:
  ~EchoServer() { Stop(); }

  // Starts the loop thread. False with *error if the Ring or BufferRing could not be set up.
  bool Start(const EchoOptions& options, std::string* error) {
    options_ = options;
    listen_fd_ = ListenTcp("127.0.0.1", 0, error);
    if (listen_fd_ < 0) return false;
    port_ = LocalPort(listen_fd_);
    std::promise<std::string> ready;
    std::future<std::string> result = ready.get_future();
    thread_ = std::thread([this, &ready] { Run(ready); });
    *error = result.get();
    if (!error->empty()) {
      thread_.join();
      return false;
    }
    return true;
  }

  // Stops the loop and returns what it counted (joining the thread publishes the counters).
  EchoStats Stop() {
    if (thread_.joinable()) {
      stop_.store(true, std::memory_order_relaxed);
      thread_.join();
    }
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
    return stats_;
  }

  uint16_t port() const { return port_; }

  // Waits up to 5 s until the server has closed `n` connections (it closes on the peer's EOF).
  bool WaitForClosed(uint64_t n) const {
    for (int i = 0; i < 500; ++i) {
      if (closed_.load(std::memory_order_relaxed) >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  struct Conn {
    int fd = -1;
    uint32_t generation = 0;
    std::string pending;  // received, not yet sent
    std::string sending;  // the send in flight
    size_t sent = 0;      // bytes of `sending` already sent
    bool send_in_flight = false;
    bool rearm_recv = false;
    bool eof = false;
  };

  void Run(std::promise<std::string>& ready) {
    // The Ring and its BufferRing live on, and die on, this thread (SINGLE_ISSUER).
    Ring ring;
    BufferRing buffers;
    std::string error;
    if (!ring.Init(256, 4096, &error) ||
        !buffers.Init(ring, 0, options_.buffers, options_.buffer_size, &error)) {
      ready.set_value(error);
      return;
    }
    ring_ = &ring;
    buffers_ = &buffers;
    ready.set_value("");
    ring.PrepMultishotAccept(listen_fd_, PackUserData(kAccept, 0, 0));
    while (!stop_.load(std::memory_order_relaxed)) {
      ring.SubmitAndWait(1, 10'000'000);  // 10 ms: poll the stop flag
      ring.ForEachCqe([this](const Completion& c) { OnCompletion(c); });
      EndOfTurn();
    }
    for (auto& c : conns_) {
      if (c) close(c->fd);
    }
    conns_.clear();
  }

  void OnCompletion(const Completion& c) {
    const UserData ud = UnpackUserData(c.user_data);
    if (ud.kind == kAccept) {
      if (c.res >= 0) OnAccept(c.res);
      if (!c.more()) ring_->PrepMultishotAccept(listen_fd_, PackUserData(kAccept, 0, 0));
      return;
    }
    if (ud.kind == kClose) return;
    Conn* conn = ud.index < conns_.size() ? conns_[ud.index].get() : nullptr;
    if (conn == nullptr || conn->generation != ud.generation) {  // late, for a closed slot
      if (c.has_buffer()) buffers_->Recycle(c.buffer_id());
      return;
    }
    if (ud.kind == kRecv) OnRecv(*conn, c);
    if (ud.kind == kSend) OnSend(*conn, ud.index, c.res);
  }

  void OnAccept(int fd) {
    ++stats_.accepted;
    SetSocketOptions(fd, options_.send_buffer, 0);
    uint32_t slot = 0;
    while (slot < conns_.size() && conns_[slot]) ++slot;
    if (slot == conns_.size()) conns_.emplace_back();
    conns_[slot] = std::make_unique<Conn>();
    conns_[slot]->fd = fd;
    conns_[slot]->generation = next_generation_++ & kGenerationMask;
    ArmRecv(slot);
  }

  void ArmRecv(uint32_t slot) {
    Conn& c = *conns_[slot];
    ring_->PrepMultishotRecv(c.fd, buffers_->group(), PackUserData(kRecv, c.generation, slot));
  }

  void OnRecv(Conn& conn, const Completion& c) {
    if (c.has_buffer()) {
      const auto data = buffers_->Get(c.buffer_id(), c.res);
      conn.pending.append(reinterpret_cast<const char*>(data.data()), data.size());
      stats_.bytes += data.size();
      buffers_->Recycle(c.buffer_id());
    }
    if (c.res == -ENOBUFS) {
      ++stats_.enobufs;
      conn.rearm_recv = true;  // after this turn's completions gave their buffers back
    } else if (c.res <= 0) {
      conn.eof = true;  // EOF or error: finish sending, then close
    } else if (!c.more()) {
      conn.rearm_recv = true;
    }
  }

  void OnSend(Conn& conn, uint32_t slot, int res) {
    if (res < 0) {  // the peer went away
      conn.eof = true;
      conn.send_in_flight = false;
      conn.pending.clear();
      shutdown(conn.fd, SHUT_RDWR);  // ends the armed receive
      return;
    }
    conn.sent += static_cast<size_t>(res);
    if (conn.sent < conn.sending.size()) {  // partial send: continue where it stopped
      ++stats_.partial_sends;
      ring_->PrepSend(conn.fd, conn.sending.data() + conn.sent, conn.sending.size() - conn.sent,
                      PackUserData(kSend, conn.generation, slot));
      return;
    }
    conn.send_in_flight = false;
    conn.sending.clear();
    conn.sent = 0;
  }

  void EndOfTurn() {
    for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
      Conn* conn = conns_[slot].get();
      if (conn == nullptr) continue;
      if (conn->rearm_recv && !conn->eof) {
        ++stats_.recv_rearms;
        ArmRecv(slot);
      }
      conn->rearm_recv = false;
      if (!conn->send_in_flight && !conn->pending.empty()) {  // one send in flight per socket
        conn->sending.swap(conn->pending);
        conn->sent = 0;
        conn->send_in_flight = true;
        ring_->PrepSend(conn->fd, conn->sending.data(), conn->sending.size(),
                        PackUserData(kSend, conn->generation, slot));
      }
      if (conn->eof && !conn->send_in_flight) {
        ring_->PrepClose(conn->fd, PackUserData(kClose, 0, slot));
        conns_[slot].reset();  // a late completion now sees a stale generation
        ++stats_.closed;
        closed_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  EchoOptions options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> closed_{0};  // stats_.closed, readable while the loop runs
  std::thread thread_;
  // Owned by the loop thread while it runs.
  Ring* ring_ = nullptr;
  BufferRing* buffers_ = nullptr;
  std::vector<std::unique_ptr<Conn>> conns_;
  uint32_t next_generation_ = 1;
  EchoStats stats_;
};

#define START_OR_SKIP(server, options)                    \
  do {                                                    \
    std::string start_error;                              \
    if (!(server).Start((options), &start_error)) {       \
      if (testing::IsMissingKernelFeature(start_error)) { \
        GTEST_SKIP() << start_error;                      \
      }                                                   \
      FAIL() << start_error;                              \
    }                                                     \
  } while (0)

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& ch : s) ch = static_cast<char>(rng());
  return s;
}

TEST(Echo, ManySmallMessagesOnOneConnection) {
  EchoServer server;
  START_OR_SKIP(server, EchoOptions{});
  const int fd = testing::ConnectTcp(server.port());
  ASSERT_GE(fd, 0);
  // 10000 messages of 1..200 bytes, written by one thread while this one reads the echo.
  std::string all;
  std::vector<size_t> sizes;
  std::mt19937 rng(1);
  for (int i = 0; i < 10000; ++i) {
    sizes.push_back(1 + rng() % 200);
    all += RandomBytes(sizes.back(), i);
  }
  std::thread writer([&] {
    size_t off = 0;
    for (size_t n : sizes) {
      if (!testing::SendAll(fd, all.data() + off, n)) return;
      off += n;
    }
  });
  std::string echoed(all.size(), '\0');
  const bool ok = testing::RecvExact(fd, echoed.data(), echoed.size());
  writer.join();
  ASSERT_TRUE(ok);
  EXPECT_TRUE(echoed == all);
  close(fd);
  const EchoStats stats = server.Stop();
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.bytes, all.size());
}

// Several MiB through a tiny buffer ring and a small send buffer: exercises buffer recycling,
// ENOBUFS re-arming and partial sends. The client reads only after writing everything, so the
// server's sends meet full socket buffers.
TEST(Echo, LargePayloadThroughATinyBufferRing) {
  EchoServer server;
  EchoOptions options;
  options.buffers = 4;
  options.buffer_size = 2048;
  options.send_buffer = 16 * 1024;
  START_OR_SKIP(server, options);
  const int fd = testing::ConnectTcp(server.port());
  ASSERT_GE(fd, 0);
  const int rcvbuf = 64 * 1024;  // a fixed, small receive window (no autotuning)
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  const std::string payload = RandomBytes(8 << 20, 42);
  std::thread writer([&] { testing::SendAll(fd, payload.data(), payload.size()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string echoed(payload.size(), '\0');
  const bool ok = testing::RecvExact(fd, echoed.data(), echoed.size());
  writer.join();
  ASSERT_TRUE(ok);
  EXPECT_TRUE(echoed == payload);
  // The peer closes: the server sees EOF and closes its socket.
  close(fd);
  EXPECT_TRUE(server.WaitForClosed(1));
  const EchoStats stats = server.Stop();
  EXPECT_EQ(stats.bytes, payload.size());
  EXPECT_GT(stats.partial_sends, 0u);
  EXPECT_GT(stats.recv_rearms, 0u);  // the tiny ring always runs dry under 8 MiB
  EXPECT_EQ(stats.closed, 1u);
  std::printf("8 MiB echo: %llu partial sends, %llu ENOBUFS, %llu re-arms\n",
              static_cast<unsigned long long>(stats.partial_sends),
              static_cast<unsigned long long>(stats.enobufs),
              static_cast<unsigned long long>(stats.recv_rearms));
}

TEST(Echo, ManyClientsInParallel) {
  EchoServer server;
  EchoOptions options;
  options.buffers = 256;
  options.buffer_size = 1024;
  START_OR_SKIP(server, options);
  constexpr int kThreads = 4;
  constexpr int kClientsPerThread = 50;
  constexpr int kRounds = 20;
  std::atomic<int> failures{0};
  constexpr uint64_t kClients = uint64_t{kThreads} * kClientsPerThread;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int> fds;
      fds.reserve(kClientsPerThread);
      for (int i = 0; i < kClientsPerThread; ++i) fds.push_back(testing::ConnectTcp(server.port()));
      for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kClientsPerThread; ++i) {
          const std::string msg =
              "client " + std::to_string(t * 1000 + i) + " round " + std::to_string(round) + "\n";
          if (fds[i] < 0 || !testing::SendAll(fds[i], msg.data(), msg.size())) ++failures;
        }
        for (int i = 0; i < kClientsPerThread; ++i) {
          const std::string msg =
              "client " + std::to_string(t * 1000 + i) + " round " + std::to_string(round) + "\n";
          std::string back(msg.size(), '\0');
          if (fds[i] < 0 || !testing::RecvExact(fds[i], back.data(), back.size()) || back != msg) {
            ++failures;
          }
        }
      }
      for (int fd : fds) {
        if (fd >= 0) close(fd);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(server.WaitForClosed(kClients));
  const EchoStats stats = server.Stop();
  EXPECT_EQ(stats.accepted, kClients);
  EXPECT_EQ(stats.closed, stats.accepted);
}

}  // namespace
}  // namespace ringmq::net
