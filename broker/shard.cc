// A shard's event loop: io_uring completions in, packets through the MQTT handler, output out in
// one send per connection per loop turn, messages to and from other shards (DESIGN.md sections
// 2-4).
#include "broker/shard.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "base/log.h"
#include "broker/broker.h"
#include "net/socket.h"
#include "net/user_data.h"

namespace ringmq::broker {

namespace {

constexpr int64_t kTickMs = 250;
constexpr unsigned kRecvBuffers = 1024;
constexpr unsigned kRecvBufferSize = 16 * 1024;
constexpr int64_t kShutdownGraceMs = 1500;
// After a closing DISCONNECT or CONNACK: how long what the client still sends is read and
// discarded (see StartLinger).
constexpr int64_t kLingerMs = 2000;
// Messages waiting for room in the ring to one other shard (see PostToShard).
constexpr size_t kOutboxQos0Limit = 16 * 1024;
constexpr size_t kOutboxLimit = 256 * 1024;

}  // namespace

Shard::Shard(Broker& broker, uint16_t id)
    : broker_(broker),
      id_(id),
      cfg_(broker.config()),
      retained_(broker.retained_quota(), id),
      router_(id, static_cast<uint16_t>(broker.config().shards), broker.index(), *this,
              stats_.dropped_no_member) {
  outbox_.resize(broker.config().shards);
}

Shard::~Shard() {
  conns_.ForEach([](const Connection& c) { ::close(c.fd); });
  for (int fd : listen_fds_) ::close(fd);
  if (event_fd_ >= 0) ::close(event_fd_);
}

bool Shard::Init(std::string* error) {
  outbox_.resize(cfg_.shards);
  ack_gate_.Resize(cfg_.shards);
  const Config& cfg = cfg_;
  if (std::any_of(cfg.listeners.begin(), cfg.listeners.end(),
                  [](const Listener& l) { return l.tls(); })) {
    net::TlsConfig tls;
    tls.cert_file = cfg.tls_cert;
    tls.key_file = cfg.tls_key;
    tls.ca_file = cfg.tls_ca;
    tls.require_client_cert = cfg.tls_require_client_cert;  // only applies with a CA
    if (std::string e = tls_.Load(tls); !e.empty()) {
      *error = "TLS: " + e;
      return false;
    }
  }
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    *error = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  return true;
}

bool Shard::InitRing(std::string* error) {
  // On the shard's own thread: with IORING_SETUP_SINGLE_ISSUER the creating thread is the issuer.
  if (!ring_.Init(4096, 65536, error)) return false;
  buffers_ = std::make_unique<net::BufferRing>();
  if (!buffers_->Init(ring_, /*group=*/0, kRecvBuffers, kRecvBufferSize, error)) return false;
  LOG_DEBUG_S(kBroker, "shard {}: io_uring ready ({})", id_, ring_.mode());
  return true;
}

int64_t Shard::MonoNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t Shard::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint16_t Shard::ShardOfKey(std::string_view key) const {
  return smp::ShardOfKey(key, broker_.shard_count());
}

void Shard::WakeFromAnyThread() {
  const uint64_t one = 1;
  (void)!::write(event_fd_, &one, sizeof(one));
}

std::string Shard::Reload(const Config& fresh) {
  cfg_ = fresh;
  return tls_.loaded() ? tls_.Reload() : "";
}

bool Shard::PostTask(std::function<void(Shard&)> fn) {
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    if (tasks_closed_) return false;  // fn is destroyed unrun, outside the lock
    tasks_.push_back(std::move(fn));
  }
  has_tasks_.store(true, std::memory_order_release);
  WakeFromAnyThread();
  return true;
}

void Shard::RunTasks() {
  if (!has_tasks_.load(std::memory_order_acquire)) return;
  std::vector<std::function<void(Shard&)>> tasks;
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    tasks.swap(tasks_);
    has_tasks_.store(false, std::memory_order_relaxed);
  }
  for (auto& t : tasks) t(*this);
}

void Shard::RequestStop() {
  stop_requested_.store(true, std::memory_order_release);
  WakeFromAnyThread();
}

// ---- The loop -----------------------------------------------------------------------------------

void Shard::PublishSys(int64_t now) {
  uint64_t totals[9] = {};
  for (uint16_t i = 0; i < broker_.shard_count(); ++i) {
    const ShardStats& st = broker_.shard(i).stats();
    const uint64_t v[9] = {st.connected.Get(), st.sessions.Get(),    st.subscriptions.Get(),
                           st.retained.Get(),  st.messages_in.Get(), st.messages_out.Get(),
                           st.bytes_in.Get(),  st.bytes_out.Get(),   st.connections.Get()};
    for (int k = 0; k < 9; ++k) totals[k] += v[k];
  }
  if (started_ms_ == 0) started_ms_ = now;
  // Exponentially weighted one-minute averages of the message rates, per minute (as Mosquitto).
  const double interval_s = cfg_.sys_interval_s;
  const double alpha = 1.0 - std::exp(-interval_s / 60.0);
  load_in_1min_ += alpha * ((totals[4] - last_in_) * 60.0 / interval_s - load_in_1min_);
  load_out_1min_ += alpha * ((totals[5] - last_out_) * 60.0 / interval_s - load_out_1min_);
  last_in_ = totals[4];
  last_out_ = totals[5];
  const std::pair<const char*, std::string> topics[] = {
      {"$SYS/broker/version", "ringmq " RINGMQ_VERSION},
      {"$SYS/broker/uptime", std::to_string((now - started_ms_) / 1000) + " seconds"},
      {"$SYS/broker/clients/connected", std::to_string(totals[0])},
      {"$SYS/broker/clients/total", std::to_string(totals[1])},
      {"$SYS/broker/subscriptions/count", std::to_string(totals[2])},
      {"$SYS/broker/retained messages/count", std::to_string(totals[3])},
      {"$SYS/broker/messages/received", std::to_string(totals[4])},
      {"$SYS/broker/messages/sent", std::to_string(totals[5])},
      {"$SYS/broker/bytes/received", std::to_string(totals[6])},
      {"$SYS/broker/bytes/sent", std::to_string(totals[7])},
      {"$SYS/broker/clients/connections/total", std::to_string(totals[8])},
      {"$SYS/broker/load/messages/received/1min", std::to_string(std::lround(load_in_1min_))},
      {"$SYS/broker/load/messages/sent/1min", std::to_string(std::lround(load_out_1min_))},
  };
  for (const auto& [topic, value] : topics) {
    auto m = std::make_shared<route::Message>();
    m->topic = topic;
    m->payload = value;
    m->retain = true;
    (void)router_.Publish(std::move(m), {});
  }
}

void Shard::OnCompletion(const net::Completion& cqe) {
  const net::UserData ud = net::UnpackUserData(cqe.user_data);
  switch (ud.kind) {
    case kOpAccept:
      OnAccept(cqe.res, cqe.more(), static_cast<int>(ud.index));
      return;
    case kOpEvent:
      ring_.PrepRead(event_fd_, &event_buf_, sizeof(event_buf_), net::PackUserData(kOpEvent, 0, 0));
      return;
    case kOpWal:
      if (wal_ != nullptr) wal_->OnCompletion(cqe);
      return;
    default:
      break;
  }
  Connection* c = conns_.Find(ud.index, ud.generation);
  const bool stale = c == nullptr;
  if (ud.kind == kOpRecv) {
    if (stale) {
      if (cqe.has_buffer()) buffers_->Recycle(cqe.buffer_id());  // a late completion
      return;
    }
    OnRecv(*c, cqe.res, cqe.flags);
  } else if (ud.kind == kOpSend && !stale) {
    OnSend(*c, cqe.res);
  }
}

void Shard::Run() {
  started_ms_ = NowMs();
  for (size_t i = 0; i < listen_fds_.size(); ++i) ArmAccept(static_cast<int>(i));
  ring_.PrepRead(event_fd_, &event_buf_, sizeof(event_buf_), net::PackUserData(kOpEvent, 0, 0));
  smp::Qsbr& qsbr = broker_.qsbr();
  ShardRings& rings = broker_.rings();
  int64_t woke_ns = MonoNs();  // when this loop turn's work began
  for (;;) {
    const int64_t now = NowMs();
    if (!stopping_ && stop_requested_.load(std::memory_order_acquire)) BeginShutdown();
    DrainInbox();
    RunTasks();
    if (now >= next_tick_ms_) {
      Tick(now);
      MaybeSnapshot(now);
      next_tick_ms_ = now + kTickMs;
    }
    // After every step that delivers (this turn's inbox, tasks and tick, and the completions of
    // the previous turn): the closes those deliveries decided.
    RunQueuedCloses();
    EndTurnDurability();
    FlushOutbox();
    FlushOutput();
    if (wal_ != nullptr) wal_->Flush(ring_, kOpWal, now);
    qsbr.Quiescent(id_);
    if (stopping_ && (conns_.live() == 0 || now >= stop_deadline_ms_)) break;

    // Sleep in the kernel only when no other shard has posted to us (announced to producers first).
    bool outbox_pending = false;
    for (const auto& o : outbox_) outbox_pending |= !o.empty();
    const bool may_sleep = !outbox_pending && queued_closes_.empty() && rings.PrepareToSleep(id_);
    // durability = batch: wake for the log's next fdatasync (max() when none is due).
    const int64_t wake_ms =
        wal_ != nullptr ? std::min(next_tick_ms_, wal_->next_flush_ms()) : next_tick_ms_;
    const int64_t wait_ms = may_sleep ? std::max<int64_t>(1, wake_ms - NowMs()) : 0;
    if (may_sleep) qsbr.Offline(id_);
    stats_.loop_turn.Observe(static_cast<uint64_t>(MonoNs() - woke_ns));
    ring_.SubmitAndWait(may_sleep ? 1 : 0, wait_ms * 1'000'000);
    woke_ns = MonoNs();
    if (may_sleep) {
      qsbr.Online(id_);
      rings.Awake(id_);
    }
    ring_.ForEachCqe([this](const net::Completion& cqe) { OnCompletion(cqe); });
  }
  // Whatever did not close in time is closed now.
  conns_.ForEach([this](Connection& c) { CloseConnection(c, "shutdown"); });
  CloseWal();
  // Tasks that came too late never run: destroying them lets their owners answer (a REST call
  // gets 503 rather than no answer at all).
  std::vector<std::function<void(Shard&)>> unrun;
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    tasks_closed_ = true;
    unrun.swap(tasks_);
  }
  unrun.clear();
  qsbr.Offline(id_);
  buffers_.reset();  // unregistered by the ring's single issuer, this thread
  LOG_DEBUG_S(kBroker, "shard {}: stopped", id_);
}

void Shard::BeginShutdown() {
  stopping_ = true;
  stop_deadline_ms_ = NowMs() + kShutdownGraceMs;
  for (int fd : listen_fds_) {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
  listen_fds_.clear();
  conns_.ForEach([this](Connection& c) {
    if (c.state == Connection::State::kClosing) return;
    c.publish_will = false;
    if (c.version == proto::Version::kV5 && c.state == Connection::State::kActive) {
      ProtocolClose(c, proto::ReasonCode::kServerShuttingDown, "server shutting down");
    } else {
      CloseConnection(c, "server shutting down");
    }
  });
}

void Shard::Tick(int64_t now) {
  // Keep alive: 1.5 times the interval without a packet [MQTT-3.1.2-22]; a connection that has not
  // completed its CONNECT within connect_timeout is closed.
  const int64_t connect_timeout_ms = int64_t{cfg_.connect_timeout_s} * 1000;
  conns_.ForEach([&](Connection& c) {
    if (c.lingering) {
      if (now >= c.linger_until_ms) CloseConnection(c, "linger ended");
      return;
    }
    if (c.state == Connection::State::kAwaitConnect && now - c.accepted_ms > connect_timeout_ms) {
      CloseConnection(c, "no CONNECT within connect_timeout");
      return;
    }
    if (c.state != Connection::State::kActive || c.keep_alive_s == 0) return;
    if (now - c.last_rx_ms > int64_t{c.keep_alive_s} * 1500) {
      ProtocolClose(c, proto::ReasonCode::kKeepAliveTimeout, "keep alive timeout");
    }
  });
  // Delayed wills and expired sessions. Publishing a will does not change sessions_: a close it
  // causes is queued (QueueClose).
  std::vector<Session*> expired;
  for (auto& [id, s] : sessions_) {
    if (s->connection != nullptr) continue;
    if (s->will_due_ms != 0 && now >= s->will_due_ms) PublishWill(*s);
    if (s->expiry_interval_s != 0xFFFFFFFF &&
        now - s->offline_since_ms >= int64_t{s->expiry_interval_s} * 1000) {
      expired.push_back(s.get());
    }
  }
  for (Session* s : expired) DestroySession(*s);
  retained_.EraseExpired(now);  // expired retained messages stop counting for max_retained_bytes
  router_.SweepSharedRoundRobin();
  // Gauges for $SYS and /metrics.
  size_t connected = 0, subscriptions = 0;
  conns_.ForEach([&connected](const Connection& c) {
    connected += c.state == Connection::State::kActive ? 1 : 0;
  });
  for (const auto& [id, s] : sessions_) subscriptions += s->subscriptions().size();
  stats_.connected.Set(connected);
  stats_.sessions.Set(sessions_.size());
  stats_.subscriptions.Set(subscriptions);
  stats_.retained.Set(retained_.size());
  if (id_ == 0 && cfg_.sys_interval_s != 0 && now >= next_sys_ms_) {
    next_sys_ms_ = now + int64_t{cfg_.sys_interval_s} * 1000;
    PublishSys(now);
  }
  // Tell the admin shard which tokens live connections use: it refreshes their `accessed`, which
  // keeps ttl tokens valid while used. Every 5 s, or every ttl/4 (at least one tick) of the
  // shortest ttl in use, so a report always lands within the ttl despite `accessed` counting
  // whole seconds and the tick's own delay. The interval is found anew each tick, so a client
  // that just connected with a short-ttl token shortens the wait already running.
  if (broker_.token_touch()) {
    int64_t interval_ms = 5000;
    for (const auto& [id, s] : sessions_) {
      if (s->connection != nullptr && s->acl != nullptr && s->acl->ttl() > 0) {
        interval_ms = std::min(interval_ms, std::max(kTickMs, s->acl->ttl() * 1000 / 4));
      }
    }
    if (now - last_touch_ms_ >= interval_ms) {
      last_touch_ms_ = now;
      std::unordered_set<std::string_view> seen;  // each key once per report
      std::vector<std::string> keys;
      for (const auto& [id, s] : sessions_) {
        if (s->connection == nullptr || s->token_key.empty()) continue;
        if (seen.insert(s->token_key).second) keys.push_back(s->token_key);
      }
      if (!keys.empty()) broker_.token_touch()(std::move(keys));
    }
  }
}

// ---- Connections --------------------------------------------------------------------------------

void Shard::ArmAccept(int index) {
  ring_.PrepMultishotAccept(listen_fds_[index], net::PackUserData(kOpAccept, 0, index));
}

void Shard::ArmRecv(Connection& c) {
  const uint64_t ud = net::PackUserData(kOpRecv, c.generation, c.slot);
  // Until CONNECT is handled, read one completion at a time: the connection may move to its home
  // shard, which must then be the only reader.
  if (c.state == Connection::State::kAwaitConnect) {
    ring_.PrepRecv(c.fd, buffers_->group(), ud);
  } else {
    ring_.PrepMultishotRecv(c.fd, buffers_->group(), ud);
  }
  c.recv_armed = true;
}

void Shard::OnAccept(int res, bool more, int index) {
  if (res >= 0) {
    const Config& cfg = cfg_;
    // max_connections is enforced at CONNECT (with a CONNACK saying why, see HandleConnect); a
    // socket that never sends one is closed after connect_timeout.
    if (stopping_) {
      ::close(res);
    } else {
      net::SetSocketOptions(res, cfg.socket_send_buffer, cfg.socket_recv_buffer);
      Connection* c = NewConnection(res, net::PeerAddress(res));
      const Listener& l = cfg.listeners[static_cast<size_t>(index)];
      if (l.tls()) {
        c->tls = std::make_unique<net::TlsSession>();
        if (std::string e = c->tls->Start(tls_); !e.empty()) {
          LOG_WARN_S(kTls, "shard {}: TLS for {}: {}", id_, c->peer, e);
          CloseConnection(*c, "TLS setup failed");
          c = nullptr;
        }
      }
      if (c != nullptr && l.websocket()) {
        c->ws = std::make_unique<net::WebSocketSession>(&broker_.ws_config(index));
      }
      if (c != nullptr) ArmRecv(*c);
    }
  } else if (res != -ECANCELED && res != -EBADF && res != -EINVAL) {
    LOG_WARN_S(kMqtt, "shard {}: accept failed: {}", id_, std::strerror(-res));
  }
  if (!more && !stopping_ && static_cast<size_t>(index) < listen_fds_.size()) ArmAccept(index);
}

Connection* Shard::NewConnection(int fd, std::string peer) {
  Connection* c = conns_.Add([fd](uint32_t slot, uint32_t generation) {
    return std::make_unique<Connection>(fd, slot, generation);
  });
  c->peer = std::move(peer);
  c->last_rx_ms = NowMs();
  c->accepted_ms = c->last_rx_ms;
  return c;
}

void Shard::OnRecv(Connection& c, int res, uint32_t flags) {
  const bool more = flags & net::kCqeMore;
  if (res == -ENOBUFS) {
    // Every provided buffer is in use; they come back as connections are served. Re-arm.
    if (!more) ArmRecv(c);
    return;
  }
  if (res <= 0) {
    c.recv_armed = false;
    if (res < 0 && res != -ECONNRESET)
      LOG_DEBUG_S(kMqtt, "shard {}: recv {}: {}", id_, c.peer, std::strerror(-res));
    // A peer that only shut its write side still gets the final packet (then EOF at once).
    const bool final_packet_pending =
        c.send_in_flight ||
        (res == 0 && c.close_when_flushed && (!c.out.empty() || !c.transport_out.empty()));
    if (c.state != Connection::State::kClosing) {
      CloseConnection(c, res == 0 ? "peer closed" : "recv error");
    } else if (!final_packet_pending) {
      CloseConnection(c, "closed");
    }
    return;
  }
  const uint16_t bid = net::BufferId(flags);
  std::span<const uint8_t> data = buffers_->Get(bid, static_cast<size_t>(res));
  if (!more) c.recv_armed = false;
  if (c.closing()) {
    buffers_->Recycle(bid);  // nothing more is handled from a closing connection
    if (c.lingering && !c.recv_armed) ArmRecv(c);  // ... but it is read until EOF
    return;
  }
  c.last_rx_ms = NowMs();
  stats_.bytes_in.Add(static_cast<uint64_t>(res));
  const bool open = TransportIn(c, data);
  buffers_->Recycle(bid);
  if (!open) return;
  if (!HandleInput(c)) return;  // closing, or handed to another shard
  if (!c.recv_armed) ArmRecv(c);
}

bool Shard::TransportIn(Connection& c, std::span<const uint8_t> data) {
  if (!c.tls && !c.ws) {
    c.in.insert(c.in.end(), data.begin(), data.end());
    return true;
  }
  const char* closing = nullptr;
  std::span<const uint8_t> plain = data;
  if (c.tls) {
    c.scratch.clear();
    const net::TlsState st = c.tls->Feed(data, &c.scratch, &c.transport_out);
    if (st == net::TlsState::kFailed) {
      LOG_INFO_S(kTls, "shard {}: TLS with {} failed: {}", id_, c.peer, c.tls->error());
      closing = "TLS failed";
    } else if (st == net::TlsState::kClosed) {
      closing = "TLS closed by the peer";
    }
    plain = c.scratch;
    if (!c.ws) c.in.insert(c.in.end(), plain.begin(), plain.end());
  }
  if (c.ws && !plain.empty() && closing == nullptr) {
    ws_wire_.clear();
    const net::WsFeedResult r = c.ws->Feed(plain, &c.in, &ws_wire_);
    if (!ws_wire_.empty()) {
      if (c.tls) {
        (void)c.tls->Write(ws_wire_, &c.transport_out);
      } else {
        c.transport_out.insert(c.transport_out.end(), ws_wire_.begin(), ws_wire_.end());
      }
    }
    if (r.state == net::WsState::kClosed) {
      if (!c.ws->error().empty()) {
        LOG_INFO_S(kMqtt, "shard {}: WebSocket from {}: {}", id_, c.peer, c.ws->error());
      }
      closing = "WebSocket closed";
    }
  }
  if (!c.transport_out.empty()) MarkDirty(c);
  if (closing == nullptr) return true;
  // Send what the transport answered (an HTTP error, a close frame, an alert), then close.
  ConnectionLost(c, closing);
  c.state = Connection::State::kClosing;
  c.close_when_flushed = true;
  c.transport_closed = true;
  MarkDirty(c);
  return false;
}

void Shard::MarkDirty(Connection& c) { conns_.MarkDirty(c.slot); }

void Shard::FlushOutput() {
  // One send per connection per loop turn carries everything queued during the turn.
  conns_.DrainDirty([this](Connection& c) {
    if (!c.send_in_flight && (!c.out.empty() || !c.transport_out.empty())) StartSend(c);
    if (c.state == Connection::State::kClosing && !c.send_in_flight && c.out.empty() &&
        c.transport_out.empty()) {
      AfterFinalPacket(c);
    }
  });
}

void Shard::StartSend(Connection& c) {
  if (!c.tls && !c.ws) {
    c.sending.swap(c.out);
    c.out.clear();
  } else {
    // Transport bytes first (already in wire form), then this turn's MQTT bytes as one WebSocket
    // frame and/or one run of TLS records.
    c.sending.clear();
    c.sending.swap(c.transport_out);
    const bool final_flush = c.state == Connection::State::kClosing && !c.transport_closed;
    if (!c.out.empty() || final_flush) {
      std::vector<uint8_t>* payload = &c.out;
      if (c.ws) {
        ws_wire_.clear();
        if (!c.out.empty()) c.ws->Wrap(c.out, &ws_wire_);
        if (final_flush) c.ws->Close(net::kWsCloseNormal, "", &ws_wire_);
        payload = &ws_wire_;
      }
      if (c.tls) {
        if (!payload->empty()) (void)c.tls->Write(*payload, &c.sending);
        if (final_flush) c.tls->Shutdown(&c.sending);
      } else {
        c.sending.insert(c.sending.end(), payload->begin(), payload->end());
      }
      c.out.clear();
      if (final_flush) c.transport_closed = true;
    }
    if (c.sending.empty()) return;
  }
  c.sending_offset = 0;
  c.send_in_flight = true;
  ring_.PrepSend(c.fd, c.sending.data(), c.sending.size(),
                 net::PackUserData(kOpSend, c.generation, c.slot));
}

void Shard::OnSend(Connection& c, int res) {
  if (res < 0) {
    c.send_in_flight = false;
    c.out.clear();
    CloseConnection(c, "send failed");
    return;
  }
  c.sending_offset += static_cast<size_t>(res);
  stats_.bytes_out.Add(static_cast<uint64_t>(res));
  if (c.sending_offset < c.sending.size()) {
    // A partial send: the rest goes next, still one send in flight.
    ring_.PrepSend(c.fd, c.sending.data() + c.sending_offset, c.sending.size() - c.sending_offset,
                   net::PackUserData(kOpSend, c.generation, c.slot));
    return;
  }
  c.send_in_flight = false;
  c.sending.clear();
  if (c.state == Connection::State::kClosing && c.session == nullptr && c.out.empty() &&
      c.transport_out.empty()) {
    AfterFinalPacket(c);
    return;
  }
  if (!c.out.empty() || !c.transport_out.empty()) MarkDirty(c);
}

void Shard::CloseConnection(Connection& c, const char* why, std::optional<proto::ReasonCode> code) {
  LOG_DEBUG_S(kMqtt, "shard {}: close {} ({}): {}", id_, c.peer, base::Cut(c.client_id), why);
  ConnectionLost(c, why, code);
  c.state = Connection::State::kClosing;
  c.close_when_flushed = false;
  c.out.clear();
  ::shutdown(c.fd, SHUT_RDWR);   // ends a pending receive or send with an error
  if (c.send_in_flight) return;  // freed when the send completes (its buffer is c.sending)
  ::close(c.fd);
  FreeConnection(c);
}

void Shard::AfterFinalPacket(Connection& c) {
  if (c.lingering) return;
  if (c.close_when_flushed) {
    StartLinger(c);
  } else {
    CloseConnection(c, "closed after final packet");
  }
}

void Shard::StartLinger(Connection& c) {
  // Closing a socket whose receive queue holds unread bytes answers with a reset, and a reset
  // discards what the client has not read yet (our final packet, its reason code) and what is
  // still in our send queue. So: FIN after the final packet (and the transport's close frame or
  // close_notify, written by StartSend), then read and discard until the client closes too
  // (OnRecv), kLingerMs pass (Tick) or the shard stops (Run's deadline bounds it).
  c.lingering = true;
  c.linger_until_ms = NowMs() + kLingerMs;
  ::shutdown(c.fd, SHUT_WR);
  if (!c.recv_armed) ArmRecv(c);
}

void Shard::QueueClose(Connection& c, proto::ReasonCode reason, const char* why) {
  if (c.closing()) return;
  c.close_queued = true;
  queued_closes_.push_back(QueuedClose{c.slot, c.generation, reason, why});
}

void Shard::RunQueuedCloses() {
  // A close publishes the will and may end the session; their deliveries may queue closes in
  // turn. Each connection closes once, so this ends.
  while (!queued_closes_.empty()) {
    std::vector<QueuedClose> batch;
    batch.swap(queued_closes_);
    for (const QueuedClose& q : batch) {
      Connection* c = conns_.Find(q.slot, q.generation);
      if (c == nullptr) continue;  // gone meanwhile
      c->close_queued = false;
      ProtocolClose(*c, q.reason, q.why);
    }
  }
}

void Shard::FreeConnection(Connection& c) {
  ReleaseConnectionQuota(c);  // normally done by ConnectionLost already
  conns_.Remove(c.slot);      // frees c
}

// ---- Other shards -------------------------------------------------------------------------------

bool Shard::PostToShard(uint16_t to, ShardMsg msg) {
  // Memory stays bounded when another shard cannot keep up: beyond the watermarks deliveries are
  // dropped and counted, QoS 0 first (control messages always pass). Messages whose publisher
  // waits for their durability are never dropped: they are bounded by the publishers' windows.
  std::vector<ShardMsg>& box = outbox_[to];
  const bool delivery =
      msg.kind == ShardMsg::Kind::kDeliver || msg.kind == ShardMsg::Kind::kDeliverShared;
  msg.durable = msg.durable && (msg.kind == ShardMsg::Kind::kRetain ||
                                (delivery && broker_.shard(to).may_persist()));
  if (msg.durable) ack_gate_.NoteRemote(to);
  if (delivery && !msg.durable) {
    const size_t limit = msg.msg->qos == 0 ? kOutboxQos0Limit : kOutboxLimit;
    if (box.size() >= limit) {
      stats_.dropped_cross_shard.Add();
      return false;
    }
  }
  const bool durable = msg.durable;
  box.push_back(std::move(msg));
  return durable;
}

void Shard::FlushOutbox() {
  ShardRings& rings = broker_.rings();
  // NOLINTNEXTLINE(bugprone-too-small-loop-variable): one box per shard, at most 64 shards.
  for (uint16_t to = 0; to < outbox_.size(); ++to) {
    std::vector<ShardMsg>& box = outbox_[to];
    if (box.empty()) continue;
    const ShardRings::PushResult r = rings.PushBatch(id_, to, box.data(), box.size());
    if (r.needs_wake) broker_.shard(to).WakeFromAnyThread();
    // A full ring keeps the rest for the next turn (the loop does not sleep meanwhile).
    box.erase(box.begin(), box.begin() + static_cast<ptrdiff_t>(r.pushed));
  }
}

void Shard::DrainInbox() {
  broker_.rings().Drain(id_, [this](size_t, ShardMsg&& m) {
    if (m.durable) ack_gate_.NoteReceived(m.from);  // counted before: handling may post it on
    switch (m.kind) {
      case ShardMsg::Kind::kDeliver:
        router_.DeliverLocal(m.msg);
        break;
      case ShardMsg::Kind::kDeliverShared:
        router_.DeliverShared(m.msg, m.shared);
        break;
      case ShardMsg::Kind::kRetain:
        StoreRetained(m.msg);
        break;
      case ShardMsg::Kind::kHandoff:
        if (stopping_) {
          ::close(m.handoff->fd);
        } else {
          AdoptHandoff(std::move(m.handoff));
        }
        break;
      case ShardMsg::Kind::kRetainQuery: {
        AnswerRetainQuery(*m.query);
        ShardMsg reply;
        reply.kind = ShardMsg::Kind::kRetainReply;
        reply.from = id_;
        reply.query = std::move(m.query);
        PostToShard(m.from, std::move(reply));
        break;
      }
      case ShardMsg::Kind::kDurable:
        ack_gate_.OnConfirm(m.from, m.count);
        break;
      case ShardMsg::Kind::kRetainReply: {
        auto it = sessions_.find(m.query->client_id);
        if (it != sessions_.end()) {
          SendRetained(*it->second, m.query->sub_filter, m.query->options, m.query->matches);
        }
        break;
      }
    }
  });
}

}  // namespace ringmq::broker
