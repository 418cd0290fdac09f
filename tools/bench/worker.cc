// The worker's event loop and connection I/O. The MQTT side of a client is in client.cc.
#include "tools/bench/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>

#include "net/socket.h"
#include "net/user_data.h"
#include "tools/bench/payload.h"

namespace ringmq::bench {

namespace {

// Operation kinds in io_uring user_data (net/user_data.h); the index is the client slot.
enum OpKind : uint8_t { kOpConnect = 1, kOpRecv, kOpSend };

constexpr unsigned kRecvBuffers = 1024;
constexpr unsigned kRecvBufferSize = 32 * 1024;
constexpr int64_t kPollPhaseNs = 5'000'000;  // longest sleep, so a phase change is seen soon
constexpr int64_t kSecondNs = 1'000'000'000;

}  // namespace

Worker::Worker(const Options& options, const Plan& plan, const sockaddr_storage& address,
               socklen_t address_len, const TransportFactory& transports, Control& control,
               unsigned id)
    : options_(options),
      plan_(plan),
      address_(address),
      address_len_(address_len),
      transports_(transports),
      control_(control),
      id_(id) {
  for (size_t k = id; k < plan.clients.size(); k += options.threads) {
    Client& c = clients_.emplace_back();
    c.spec = &plan.clients[k];
    c.slot = static_cast<uint32_t>(clients_.size() - 1);
    group_members_[c.spec->group].push_back(c.slot);
    if (c.spec->role == Role::kPublisher || c.spec->role == Role::kSeeder) {
      publishers_.push_back(c.slot);
    }
  }
  filler_.assign(options.size, 'x');
}

bool Worker::Run(std::string* error) {
  const unsigned entries = std::max<unsigned>(1024, std::bit_ceil(clients_.size() * 2 + 64));
  if (!ring_.Init(std::min(entries, 32768u), std::min(entries * 4, 262144u), error)) return false;
  io_uring_probe* probe = io_uring_get_probe_ring(ring_.raw());
  const bool has_connect = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_CONNECT);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!has_connect) {
    *error = "io_uring: the kernel lacks IORING_OP_CONNECT";
    return false;
  }
  buffers_ = std::make_unique<net::BufferRing>();
  if (!buffers_->Init(ring_, /*group=*/0, kRecvBuffers, kRecvBufferSize, error)) return false;

  for (;;) {
    int64_t now = MonoNs();
    const Phase phase = control_.phase.load(std::memory_order_acquire);
    if (phase != phase_) EnterPhase(phase);
    if (phase_ == Phase::kExit) break;

    int64_t wake = now + kPollPhaseNs;
    if (phase_ == Phase::kConnectGroup0 || phase_ == Phase::kConnectGroup1) {
      wake = std::min(wake, StartConnects(now));
    } else if (phase_ == Phase::kRun || phase_ == Phase::kDrain) {  // Generate stops at run end
      for (uint32_t slot : publishers_) wake = std::min(wake, Generate(clients_[slot], now));
    } else if (phase_ == Phase::kSeed) {
      for (uint32_t slot : publishers_) Seed(clients_[slot]);
    }
    if (now >= next_keepalive_ns_) {
      KeepAlive(now);
      next_keepalive_ns_ = now + kSecondNs;
    }
    FlushOutput(now);
    PublishCounters();

    const int64_t wait = wake - MonoNs();
    ring_.SubmitAndWait(wait > 0 ? 1 : 0, wait > 0 ? wait : 0);
    now = MonoNs();
    ring_.ForEachCqe([this, now](const net::Completion& cqe) {
      const net::UserData ud = net::UnpackUserData(cqe.user_data);
      Client& c = clients_[ud.index];
      switch (ud.kind) {
        case kOpConnect:
          OnConnectDone(c, cqe.res);
          break;
        case kOpRecv:
          OnRecv(c, cqe.res, cqe.flags, now);
          break;
        case kOpSend:
          OnSend(c, cqe.res);
          break;
        default:
          break;
      }
    });
  }
  for (Client& c : clients_) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }
  HarvestStreams();
  PublishCounters();
  return true;
}

void Worker::EnterPhase(Phase phase) {
  phase_ = phase;
  phase_start_ns_ = control_.phase_start_ns.load(std::memory_order_relaxed);
  switch (phase) {
    case Phase::kConnectGroup0:
    case Phase::kConnectGroup1:
      // The connect rate is for all threads: each takes every threads-th slot of the schedule.
      connect_interval_ns_ =
          options_.connect_rate > 0 ? 1e9 * options_.threads / options_.connect_rate : 0;
      phase_start_ns_ +=
          options_.connect_rate > 0 ? static_cast<int64_t>(1e9 * id_ / options_.connect_rate) : 0;
      break;
    case Phase::kRun:
      run_start_ns_ = control_.run_start_ns.load(std::memory_order_relaxed);
      run_end_ns_ = control_.run_end_ns.load(std::memory_order_relaxed);
      break;
    case Phase::kDisconnect:
      for (Client& c : clients_) Disconnect(c);
      break;
    default:
      break;
  }
}

int64_t Worker::StartConnects(int64_t now) {
  const int g = phase_ == Phase::kConnectGroup0 ? 0 : 1;
  std::vector<uint32_t>& members = group_members_[g];
  size_t& next = next_to_connect_[g];
  while (next < members.size() && pending_connects_ < options_.max_pending) {
    const int64_t due =
        phase_start_ns_ + static_cast<int64_t>(connect_interval_ns_ * static_cast<double>(next));
    if (due > now) return due;
    StartConnect(clients_[members[next++]], now);
  }
  return INT64_MAX;
}

void Worker::StartConnect(Client& c, int64_t now) {
  const int g = c.spec->group;
  if (result_.connect_first_ns[g] == 0) result_.connect_first_ns[g] = now;
  c.connect_start_ns = now;
  c.state = Client::State::kTcpConnecting;
  ++pending_connects_;
  c.transport = transports_.Make(uint64_t{id_} << 32 | c.slot);
  c.fd = ::socket(address_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    Fail(c, std::string("socket: ") + std::strerror(errno));
    return;
  }
  net::SetSocketOptions(c.fd, 0, 0);  // TCP_NODELAY
  io_uring* raw = ring_.raw();
  io_uring_sqe* sqe = io_uring_get_sqe(raw);
  while (sqe == nullptr) {
    io_uring_submit(raw);
    sqe = io_uring_get_sqe(raw);
  }
  io_uring_prep_connect(sqe, c.fd, reinterpret_cast<const sockaddr*>(&address_), address_len_);
  io_uring_sqe_set_data64(sqe, net::PackUserData(kOpConnect, 0, c.slot));
}

void Worker::OnConnectDone(Client& c, int res) {
  if (c.state != Client::State::kTcpConnecting) return;
  if (res < 0) {
    Fail(c, std::string("connect: ") + std::strerror(-res));
    return;
  }
  c.transport->Start(&c.wire_pending);
  SendConnect(c);
  ArmRecv(c);
}

void Worker::ArmRecv(Client& c) {
  ring_.PrepMultishotRecv(c.fd, buffers_->group(), net::PackUserData(kOpRecv, 0, c.slot));
  c.recv_armed = true;
}

void Worker::MarkDirty(Client& c) {
  if (c.dirty) return;
  c.dirty = true;
  dirty_.push_back(c.slot);
}

void Worker::FlushOutput(int64_t now) {
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Client& c = clients_[dirty_[i]];
    c.dirty = false;
    if (c.state == Client::State::kClosed || c.send_in_flight) continue;
    if (!c.wire_pending.empty()) {
      c.sending.swap(c.wire_pending);
      if (c.transport->ready() && !c.out.empty()) {
        std::vector<uint8_t> wrapped;
        c.transport->Wrap(&c.out, &wrapped);
        c.sending.insert(c.sending.end(), wrapped.begin(), wrapped.end());
      }
    } else if (c.transport->ready() && !c.out.empty()) {
      c.transport->Wrap(&c.out, &c.sending);
    }
    if (c.sending.empty()) continue;
    c.sending_offset = 0;
    c.send_in_flight = true;
    c.last_tx_ns = now;
    ring_.PrepSend(c.fd, c.sending.data(), c.sending.size(), net::PackUserData(kOpSend, 0, c.slot));
  }
  dirty_.clear();
}

void Worker::OnRecv(Client& c, int res, uint32_t flags, int64_t now) {
  const bool more = flags & net::kCqeMore;
  const bool has_buffer = flags & IORING_CQE_F_BUFFER;
  if (!more) c.recv_armed = false;
  if (c.state == Client::State::kClosed) {
    if (has_buffer) buffers_->Recycle(net::BufferId(flags));
    return;
  }
  if (res == -ENOBUFS) {
    if (!c.recv_armed) ArmRecv(c);  // buffers come back as this turn's completions are handled
    return;
  }
  if (res <= 0) {
    const bool expected = c.state == Client::State::kDisconnecting;
    Close(
        c, expected,
        res == 0 ? "connection closed by the broker" : std::string("recv: ") + std::strerror(-res));
    return;
  }
  const uint16_t bid = net::BufferId(flags);
  std::span<const uint8_t> app;
  if (!c.transport->Receive(buffers_->Get(bid, static_cast<size_t>(res)), &app, &c.wire_pending)) {
    buffers_->Recycle(bid);
    const std::string why = c.transport->error();
    Close(c, false, why.empty() ? "transport error" : why);
    return;
  }
  // Handshake answers, pongs; or the handshake just completed and CONNECT waits in `out`.
  if (!c.wire_pending.empty() || (!c.out.empty() && c.transport->ready())) MarkDirty(c);
  HandleInput(c, app, now);
  buffers_->Recycle(bid);
  if (c.state != Client::State::kClosed && !c.recv_armed) ArmRecv(c);
}

void Worker::OnSend(Client& c, int res) {
  if (c.state == Client::State::kClosed) {
    c.send_in_flight = false;
    return;
  }
  if (res < 0) {
    c.send_in_flight = false;
    Close(c, c.state == Client::State::kDisconnecting, std::string("send: ") + std::strerror(-res));
    return;
  }
  c.sending_offset += static_cast<size_t>(res);
  if (c.sending_offset < c.sending.size()) {
    ring_.PrepSend(c.fd, c.sending.data() + c.sending_offset, c.sending.size() - c.sending_offset,
                   net::PackUserData(kOpSend, 0, c.slot));
    return;
  }
  c.send_in_flight = false;
  c.sending.clear();
  if (!c.out.empty() || !c.wire_pending.empty()) {
    MarkDirty(c);
  } else if (c.state == Client::State::kDisconnecting) {
    ::shutdown(c.fd, SHUT_WR);  // DISCONNECT is out; the broker closes, our receive then ends
  }
}

void Worker::Close(Client& c, bool expected, const std::string& why) {
  if (c.state == Client::State::kClosed) return;
  switch (c.state) {
    case Client::State::kTcpConnecting:
    case Client::State::kMqttConnecting:
    case Client::State::kSubscribing:
      Fail(c, why);  // counts it and comes back here in a state that is not pre-ready
      return;
    case Client::State::kReady:
      if (!expected && phase_ < Phase::kDisconnect) {
        ++result_.unexpected_closes;
        ++result_.errors[why];
      }
      break;
    default:
      break;
  }
  if (c.fd >= 0) {
    ::shutdown(c.fd, SHUT_RDWR);  // ends the pending receive; a pending send fails
    ::close(c.fd);
    c.fd = -1;
  }
  if ((c.spec->role == Role::kPublisher || c.spec->role == Role::kSeeder) && !c.publishing_done) {
    c.publishing_done = true;
    counters_.publishers_done.fetch_add(1, std::memory_order_relaxed);
  }
  result_.inflight_lost += c.inflight;
  c.inflight = 0;
  c.sent_ns.clear();
  c.state = Client::State::kClosed;
  counters_.closed.fetch_add(1, std::memory_order_relaxed);
}

void Worker::KeepAlive(int64_t now) {
  if (options_.keepalive == 0) return;
  const int64_t idle = int64_t{options_.keepalive} * kSecondNs / 2;
  for (Client& c : clients_) {
    if (c.state != Client::State::kReady || now - c.last_tx_ns < idle) continue;
    c.out.push_back(0xC0);  // PINGREQ
    c.out.push_back(0x00);
    c.last_tx_ns = now;
    MarkDirty(c);
  }
}

void Worker::Disconnect(Client& c) {
  switch (c.state) {
    case Client::State::kMqttConnecting:
    case Client::State::kSubscribing:
    case Client::State::kReady:
      c.out.push_back(0xE0);  // DISCONNECT, normal (3.1.1 and 5.0)
      c.out.push_back(0x00);
      c.state = Client::State::kDisconnecting;
      MarkDirty(c);
      break;
    case Client::State::kTcpConnecting:
      Close(c, true, "not connected at the end of the run");
      break;
    default:
      break;
  }
}

void Worker::PublishCounters() {
  counters_.published.store(result_.published, std::memory_order_relaxed);
  counters_.acked.store(result_.acked, std::memory_order_relaxed);
  counters_.received.store(result_.received, std::memory_order_relaxed);
  counters_.connected.store(result_.connected, std::memory_order_relaxed);
  counters_.failed.store(result_.failed, std::memory_order_relaxed);
  uint64_t inflight = 0;
  for (uint32_t slot : publishers_) inflight += clients_[slot].inflight;
  counters_.inflight.store(inflight, std::memory_order_relaxed);
}

}  // namespace ringmq::bench
