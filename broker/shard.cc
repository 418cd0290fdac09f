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
#include "broker/connect_rules.h"
#include "net/socket.h"
#include "net/user_data.h"

namespace ringmq::broker {

namespace {

constexpr int64_t kTickMs = 250;
constexpr unsigned kRecvBuffers = 1024;
constexpr unsigned kRecvBufferSize = 16 * 1024;
constexpr int64_t kShutdownGraceMs = 1500;

}  // namespace

Shard::Shard(Broker& broker, uint16_t id)
    : broker_(broker),
      id_(id),
      cfg_(broker.config()),
      sessions_(*this, owner_),
      retained_(broker.retained_quota(), id),
      log_(*this, id, cfg_, owner_),
      router_(id, static_cast<uint16_t>(broker.config().shards), broker.index(), *this,
              stats_.dropped_no_member, owner_) {
  outbox_.resize(broker.config().shards);
  spill_.dir = broker.config().data_dir + "/spill";
  spill_.budget = &broker.queue_disk();
  spill_.memory_max = ShardQueueMemory(broker.config());
}

Shard::~Shard() {
  conns_.ForEach([](const Connection& c) { ::close(c.fd); });
  for (int fd : listen_fds_) ::close(fd);
  if (event_fd_ >= 0) ::close(event_fd_);
}

bool Shard::Init(std::string* error) {
  outbox_.resize(cfg_.shards);
  log_.gate().Resize(cfg_.shards);
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
  owner_.Rebind();
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

int64_t Shard::NowMs() const { return turn_now_ms_ != 0 ? turn_now_ms_ : route::SteadyNowMs(); }

uint16_t Shard::ShardOfKey(std::string_view key) const {
  return smp::ShardOfKey(key, broker_.shard_count());
}

void Shard::WakeFromAnyThread() {
  const uint64_t one = 1;
  (void)!::write(event_fd_, &one, sizeof(one));
}

std::string Shard::Reload(const Config& fresh) {
  owner_.Check();
  cfg_ = fresh;
  spill_.memory_max = ShardQueueMemory(fresh);  // queues above it spill sooner from now on
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
    (void)router_.Publish(std::move(m), {.to_cluster = false});  // each node has its own
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
      log_.OnCompletion(cqe);
      return;
    case kOpCancel:  // PauseInput's; the receive it ends says so itself
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
  turn_now_ms_ = woke_ns / 1'000'000;
  for (;;) {
    const int64_t now = NowMs();
    if (!stopping_ && stop_requested_.load(std::memory_order_acquire)) BeginShutdown();
    DrainInbox();
    RunTasks();
    if (now >= next_tick_ms_) {
      Tick(now);
      log_.Tick(now);
      next_tick_ms_ = now + kTickMs;
    }
    // After every step that delivers (this turn's inbox, tasks and tick, and the completions of
    // the previous turn): the closes those deliveries decided.
    RunQueuedCloses();
    EndTurnDurability();
    FlushOutbox();
    FlushOutput();
    log_.Flush(ring_, kOpWal, now);
    qsbr.Quiescent(id_);
    if (stopping_ && (conns_.live() == 0 || now >= stop_deadline_ms_)) break;

    // Sleep in the kernel only when no other shard has posted to us and every ring this shard
    // still has messages for is full (both announced to the other side first, which then wakes
    // us: smp/spsc_ring.h invariants 5 and 7).
    const bool may_sleep = queued_closes_.empty() && OutboxMayWait() && rings.PrepareToSleep(id_);
    // durability = batch: wake for the log's next fdatasync (max() when none is due).
    const int64_t wake_ms = log_.next_flush_ms(next_tick_ms_);
    const int64_t wait_ms = may_sleep ? std::max<int64_t>(1, wake_ms - MonoNs() / 1'000'000) : 0;
    if (may_sleep) qsbr.Offline(id_);
    stats_.loop_turn.Observe(static_cast<uint64_t>(MonoNs() - woke_ns));
    ring_.SubmitAndWait(may_sleep ? 1 : 0, wait_ms * 1'000'000);
    woke_ns = MonoNs();
    if (may_sleep) {
      qsbr.Online(id_);
      rings.Awake(id_);
    }
    turn_now_ms_ = woke_ns / 1'000'000;
    ring_.ForEachCqe([this](const net::Completion& cqe) { OnCompletion(cqe); });
  }
  turn_now_ms_ = 0;
  // Whatever did not close in time is closed now.
  conns_.ForEach([this](Connection& c) { CloseConnection(c, "shutdown"); });
  log_.Close(ring_, kOpWal);
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
    c.ReleaseIdleBuffers();
    if (c.lingering) {
      if (now >= c.linger_until_ms) CloseConnection(c, "linger ended");
      return;
    }
    if (c.state == Connection::State::kAwaitConnect && now - c.accepted_ms > connect_timeout_ms) {
      CloseConnection(c, "no CONNECT within connect_timeout");
      return;
    }
    // A connection whose input we paused is not silent: its packets wait in c.in.
    if (c.state != Connection::State::kActive || c.keep_alive_s == 0 || c.input_paused) return;
    if (now - c.last_rx_ms > int64_t{c.keep_alive_s} * 1500) {
      ProtocolClose(c, proto::ReasonCode::kKeepAliveTimeout, "keep alive timeout");
    }
  });
  for (size_t i = 0; i < accept_paused_.size(); ++i) {
    if (!accept_paused_[i]) continue;
    accept_paused_[i] = false;
    if (!stopping_ && i < listen_fds_.size()) ArmAccept(static_cast<int>(i));
  }
  sessions_.Expire(now);        // delayed wills, expired sessions
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

}  // namespace ringmq::broker
