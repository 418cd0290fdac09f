#include "rest/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "net/socket.h"
#include "net/user_data.h"
#include "rest/internal/request_parser.h"

namespace ringmq::rest {

namespace {

// user_data kinds of this ring (net/user_data.h): index = connection slot.
enum Kind : uint8_t { kAccept = 1, kRecv = 2, kSend = 3, kWake = 4, kCancel = 5 };

constexpr uint16_t kBufferGroup = 0;
constexpr unsigned kBufferCount = 64;
constexpr unsigned kBufferSize = 16 * 1024;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The peer's IP address without the port (what max_connections_per_address counts), "?" when
// unknown.
std::string PeerIp(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char text[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, text, sizeof(text));
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, text, sizeof(text));
  }
  return text;
}

}  // namespace

struct HttpServer::Conn {
  Conn(uint32_t slot, uint32_t generation) : slot(slot), generation(generation) {}

  const uint32_t slot;        // in conns_
  const uint32_t generation;  // of the slot, in io_uring user_data
  int fd = -1;
  std::string address;  // the peer's IP (PeerIp)
  std::unique_ptr<RequestParser> parser;
  uint64_t phase_changes = 0;  // parser->phase_changes() when phase_since_ms was set
  int64_t phase_since_ms = 0;  // when the parser entered its phase (the accept, at first)
  bool seen_request = false;   // a complete request arrived on this connection
  uint64_t accept_order = 0;   // breaks ties between connections stalled since the same ms

  // Answers in request order; `seq` numbers them (the front has the smallest).
  struct Pending {
    uint64_t seq = 0;
    bool ready = false;
    bool close = false;  // close the connection after this answer
    std::string bytes;
  };
  std::deque<Pending> pending;
  uint64_t next_seq = 0;

  std::string out;  // bytes being sent (encrypted, with HTTPS)
  // HTTPS: the connection's TLS session, and bytes it produced while receiving (handshake,
  // alerts, tickets) that wait for the next flush.
  std::unique_ptr<net::TlsSession> tls;
  std::string tls_out;
  size_t out_off = 0;
  bool close_after_out = false;

  bool recv_armed = false;
  bool send_inflight = false;
  bool stop_reading = false;  // a final answer or Connection: close: ignore further input
  bool read_eof = false;
  bool closing = false;  // shut down; freed when nothing is in flight
  int64_t last_active_ms = 0;
  int64_t send_progress_ms = 0;  // when the send in flight was started or last made progress

  // Nobody waits for the server: the connection is idle, or inside a request the peer has not
  // finished sending.
  bool Stalled() const {
    return !closing && pending.empty() && !send_inflight && out_off == out.size();
  }
  // Since when the peer has not completed what it started (for the oldest-first eviction).
  int64_t StalledSince() const {
    return parser->phase() == RequestParser::Phase::kIdle && seen_request ? last_active_ms
                                                                          : phase_since_ms;
  }
};

HttpServer::HttpServer(HttpLimits limits, Handler handler)
    : limits_(limits), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  conns_.ForEach([](Conn& c) {
    if (c.fd >= 0) close(c.fd);
  });
}

bool HttpServer::Init(int listen_fd, int wake_fd, std::string* error) {
  listen_fd_ = listen_fd;
  wake_fd_ = wake_fd;
  if (!ring_.Init(256, 4096, error)) return false;
  if (!buffers_.Init(ring_, kBufferGroup, kBufferCount, kBufferSize, error)) return false;
  return true;
}

void HttpServer::Run(const std::atomic<bool>& stop, const std::function<void()>& on_wake,
                     const std::function<void()>& on_tick, int64_t tick_ms) {
  ring_.PrepMultishotAccept(listen_fd_, net::PackUserData(kAccept, 0, 0));
  accept_armed_ = true;
  ring_.PrepRead(wake_fd_, &wake_value_, sizeof(wake_value_), net::PackUserData(kWake, 0, 0));
  now_ms_ = NowMs();
  int64_t next_tick = now_ms_ + tick_ms;
  while (!stop.load(std::memory_order_acquire)) {
    FlushOutput();
    const int64_t wait_ms = next_tick > now_ms_ ? next_tick - now_ms_ : 0;
    ring_.SubmitAndWait(1, wait_ms * 1'000'000 + 1);
    now_ms_ = NowMs();
    bool woken = false;
    ring_.ForEachCqe([&](const net::Completion& c) {
      if (net::UnpackUserData(c.user_data).kind == kWake) {
        woken = true;
        ring_.PrepRead(wake_fd_, &wake_value_, sizeof(wake_value_), net::PackUserData(kWake, 0, 0));
        return;
      }
      HandleCompletion(c);
    });
    if (woken) on_wake();
    for (const auto& [slot, generation] : rearm_) {
      Conn* conn = conns_.Find(slot, generation);
      if (conn != nullptr && !conn->recv_armed && !conn->closing && !conn->read_eof) {
        ring_.PrepMultishotRecv(conn->fd, kBufferGroup,
                                net::PackUserData(kRecv, conn->generation, conn->slot));
        conn->recv_armed = true;
      }
    }
    rearm_.clear();
    if (!accept_armed_) {
      ring_.PrepMultishotAccept(listen_fd_, net::PackUserData(kAccept, 0, 0));
      accept_armed_ = true;
    }
    if (now_ms_ >= next_tick) {
      next_tick = now_ms_ + tick_ms;
      Tick();
      on_tick();
    }
  }
}

void HttpServer::HandleCompletion(const net::Completion& c) {
  const net::UserData ud = net::UnpackUserData(c.user_data);
  switch (ud.kind) {
    case kAccept:
      OnAccept(c);
      return;
    case kRecv: {
      Conn* conn = conns_.Find(ud.index, ud.generation);
      if (conn == nullptr) {  // cannot happen (invariant 1), but never leak a buffer
        if (c.has_buffer()) buffers_.Recycle(c.buffer_id());
        return;
      }
      OnRecv(*conn, c);
      return;
    }
    case kSend: {
      Conn* conn = conns_.Find(ud.index, ud.generation);
      if (conn != nullptr) OnSend(*conn, c);
      return;
    }
    default:
      return;  // kCancel: nothing to do
  }
}

void HttpServer::OnAccept(const net::Completion& c) {
  if (!c.more()) accept_armed_ = false;  // re-armed at the end of the turn
  if (c.res < 0) return;
  const int fd = c.res;
  std::string address = PeerIp(fd);
  // Room is made by closing the oldest stalled connection (of this address, then of the
  // server). A closed one keeps its slot until its receive completes, in the next loop turn: so
  // slots beyond max_connections are bounded by the accepts of one turn.
  const auto refuse = [&](std::string_view why) {
    if (event_observer_) {
      event_observer_("REST connection from " + address + " refused: " + std::string(why));
    }
    close(fd);
  };
  if (limits_.max_connections_per_address != 0) {
    const auto it = per_address_.find(address);
    if (it != per_address_.end() && it->second >= limits_.max_connections_per_address &&
        !EvictOldestStalled(&address)) {
      return refuse("max_connections_per_address reached and every connection waits for an answer");
    }
  }
  if (live_ >= limits_.max_connections && !EvictOldestStalled(nullptr)) {
    return refuse("max_connections reached and every connection waits for an answer");
  }
  (void)net::SetSocketOptions(fd, 0, 0);
  Conn& conn = *conns_.Add(
      [](uint32_t slot, uint32_t generation) { return std::make_unique<Conn>(slot, generation); });
  const uint32_t slot = conn.slot;
  conn.fd = fd;
  conn.address = std::move(address);
  conn.last_active_ms = now_ms_;
  conn.phase_since_ms = now_ms_;
  conn.accept_order = ++accepted_;
  Conn* self = &conn;  // stable: conns_ holds the Conn objects by pointer, the parser dies first
  RequestParser::Handler handler;
  handler.request = [this, self](HttpRequest req, bool keep_alive) {
    return Dispatch(*self, std::move(req), keep_alive);
  };
  handler.expect_continue = [this, self](const HttpRequest& head) {
    return ExpectContinue(*self, head);
  };
  conn.parser = std::make_unique<RequestParser>(
      RequestParser::Limits{limits_.max_header_bytes, limits_.max_body_bytes}, std::move(handler));
  ++live_;
  ++per_address_[conn.address];
  if (tls_ != nullptr) {
    conn.tls = std::make_unique<net::TlsSession>();
    if (std::string e = conn.tls->Start(*tls_); !e.empty()) {
      Event(conn, "closed: TLS setup failed: " + e);
      StartClose(conn);  // nothing in flight yet: frees the slot
      return;
    }
  }
  ring_.PrepMultishotRecv(fd, kBufferGroup, net::PackUserData(kRecv, conn.generation, slot));
  conn.recv_armed = true;
}

bool HttpServer::EvictOldestStalled(const std::string* address) {
  Conn* victim = nullptr;
  conns_.ForEach([&](Conn& c) {
    if (!c.Stalled() || (address != nullptr && c.address != *address)) return;
    if (victim == nullptr || c.StalledSince() < victim->StalledSince() ||
        (c.StalledSince() == victim->StalledSince() && c.accept_order < victim->accept_order)) {
      victim = &c;
    }
  });
  if (victim == nullptr) return false;
  Event(*victim, address != nullptr
                     ? "closed: the oldest stalled connection of its address, for a new one"
                     : "closed: the oldest stalled connection, for a new one");
  StartClose(*victim);
  return true;
}

void HttpServer::Event(const Conn& conn, std::string_view what) {
  if (event_observer_)
    event_observer_("REST connection from " + conn.address + " " + std::string(what));
}

void HttpServer::OnRecv(Conn& conn, const net::Completion& c) {
  if (!c.more()) conn.recv_armed = false;
  if (c.has_buffer()) {
    if (c.res > 0 && !conn.closing) {
      const std::span<const uint8_t> data = buffers_.Get(c.buffer_id(), static_cast<size_t>(c.res));
      conn.last_active_ms = now_ms_;
      if (conn.tls) {
        FeedTls(conn, data);
      } else {
        Feed(conn, reinterpret_cast<const char*>(data.data()), data.size());
      }
    }
    buffers_.Recycle(c.buffer_id());
  }
  if (c.res == 0) {
    conn.read_eof = true;  // the peer finished sending; answer what it asked, then close
  } else if (c.res < 0 && c.res != -ENOBUFS) {
    conn.read_eof = true;
    conn.pending.clear();  // the connection is broken: nothing can be delivered
    conn.close_after_out = true;
  } else if (!conn.recv_armed && !conn.closing) {
    rearm_.emplace_back(
        conn.slot, conn.generation);  // ENOBUFS or a multishot that ended: buffers were recycled
  }
  MaybeClose(conn);
}

void HttpServer::Feed(Conn& conn, const char* data, size_t len) {
  if (conn.stop_reading) return;
  const RequestParser::Result result = conn.parser->Feed(data, len);
  if (conn.parser->phase_changes() != conn.phase_changes) {
    conn.phase_changes = conn.parser->phase_changes();
    // The first head's deadline runs from the accept: connecting early buys no time.
    if (conn.seen_request || conn.parser->phase() != RequestParser::Phase::kHead) {
      conn.phase_since_ms = now_ms_;
    }
  }
  if (result == RequestParser::Result::kRefused && !conn.stop_reading) {
    QueueFinal(conn, conn.parser->method(), conn.parser->path(), conn.parser->refusal());
  }
  if (result != RequestParser::Result::kOk) conn.stop_reading = true;
}

void HttpServer::FeedTls(Conn& conn, std::span<const uint8_t> data) {
  if (conn.stop_reading) return;  // a final answer, a failed or closed session
  tls_app_.clear();
  tls_wire_.clear();
  const bool was_open = conn.tls->state() == net::TlsState::kOpen;
  const net::TlsState st = conn.tls->Feed(data, &tls_app_, &tls_wire_);
  if (!tls_wire_.empty()) {
    conn.tls_out.append(reinterpret_cast<const char*>(tls_wire_.data()), tls_wire_.size());
    conns_.MarkDirty(conn.slot);
  }
  if (!tls_app_.empty())
    Feed(conn, reinterpret_cast<const char*>(tls_app_.data()), tls_app_.size());
  if (st == net::TlsState::kFailed) {
    // A plain HTTP request, TLS 1.1 or older, garbage: OpenSSL's alert (in tls_out) goes out,
    // then the connection closes. Nothing else can be sent on it.
    Event(conn, std::string(was_open ? "closed: TLS failed: " : "closed: TLS handshake failed: ") +
                    conn.tls->error());
    conn.stop_reading = true;
    conn.pending.clear();
    conn.close_after_out = true;
    conns_.MarkDirty(conn.slot);
  } else if (st == net::TlsState::kClosed) {
    conn.read_eof = true;  // the peer's close_notify (answered in tls_out)
    conn.pending.clear();  // no application data can follow it
    conn.close_after_out = true;
    conns_.MarkDirty(conn.slot);
  }
}

void HttpServer::SealTls(Conn& conn) {
  // Handshake bytes first, then the answers in as few records as OpenSSL makes of them, then a
  // close_notify when the connection closes after them.
  tls_wire_.assign(conn.tls_out.begin(), conn.tls_out.end());
  conn.tls_out.clear();
  if (!conn.out.empty()) {
    (void)conn.tls->Write(
        std::span(reinterpret_cast<const uint8_t*>(conn.out.data()), conn.out.size()), &tls_wire_);
  }
  if (conn.close_after_out) conn.tls->Shutdown(&tls_wire_);
  conn.out.assign(reinterpret_cast<const char*>(tls_wire_.data()), tls_wire_.size());
}

std::optional<HttpResponse> HttpServer::ExpectContinue(Conn& conn, const HttpRequest& head) {
  if (head_check_) {
    HttpRequest with_peer = head;  // the check needs the peer for token origins
    with_peer.peer = conn.address;
    if (std::optional<HttpResponse> refused = head_check_(with_peer)) return refused;
  }
  Conn::Pending cont;
  cont.seq = conn.next_seq++;
  cont.ready = true;
  cont.bytes = "HTTP/1.1 100 Continue\r\n\r\n";
  conn.pending.push_back(std::move(cont));
  conns_.MarkDirty(conn.slot);
  return std::nullopt;
}

bool HttpServer::Dispatch(Conn& conn, HttpRequest req, bool keep_alive) {
  ++requests_;
  req.peer = conn.address;
  conn.seen_request = true;
  // A static string of http-parser's: capturing it costs no allocation.
  const char* method = conn.parser->method();
  if (conn.pending.size() >= limits_.max_pending) {
    QueueFinal(conn, method, req.path, JsonError(429, "too many pipelined requests"));
    return false;
  }
  Conn::Pending p;
  p.seq = conn.next_seq++;
  p.close = !keep_alive;
  conn.pending.push_back(std::move(p));
  if (!keep_alive) conn.stop_reading = true;
  const uint32_t slot = conn.slot;
  const uint32_t generation = conn.generation;
  const uint64_t seq = conn.pending.back().seq;
  std::string path = observer_ ? req.path : std::string();
  handler_(std::move(req),
           [this, slot, generation, seq, method, path = std::move(path)](const HttpResponse& r) {
             CountAnswer(method, path, r.status);
             OnResponse(slot, generation, seq, r);
           });
  return true;
}

void HttpServer::CountAnswer(const char* method, std::string_view path, int status) {
  ++request_counts_[{method, status}];
  if (observer_) observer_(method, path, status);
}

void HttpServer::QueueFinal(Conn& conn, const char* method, std::string_view path,
                            const HttpResponse& response) {
  CountAnswer(method, path, response.status);
  Conn::Pending p;
  p.seq = conn.next_seq++;
  p.ready = true;
  p.close = true;
  p.bytes = SerializeResponse(response, true);
  conn.pending.push_back(std::move(p));
  conn.stop_reading = true;
  conns_.MarkDirty(conn.slot);
}

void HttpServer::OnResponse(uint32_t slot, uint32_t generation, uint64_t seq,
                            const HttpResponse& response) {
  Conn* conn = conns_.Find(slot, generation);
  if (conn == nullptr || conn->pending.empty() || seq < conn->pending.front().seq) return;
  const uint64_t index = seq - conn->pending.front().seq;
  if (index >= conn->pending.size()) return;
  Conn::Pending& p = conn->pending[index];
  if (p.ready) return;  // answered twice: keep the first
  p.ready = true;
  p.bytes = SerializeResponse(response, p.close);
  conns_.MarkDirty(slot);
}

void HttpServer::FlushOutput() {
  conns_.DrainDirty([this](Conn& conn) {
    if (conn.closing) {
      StartClose(conn);  // frees the slot once nothing is in flight
      return;
    }
    if (conn.send_inflight) return;  // OnSend marks the connection dirty again
    if (conn.out_off == conn.out.size()) {
      conn.out.clear();
      conn.out_off = 0;
      while (!conn.pending.empty() && conn.pending.front().ready && !conn.close_after_out) {
        Conn::Pending& p = conn.pending.front();
        conn.out.append(p.bytes);
        if (p.close) conn.close_after_out = true;
        conn.pending.pop_front();
      }
      if (conn.tls) SealTls(conn);  // Write fails before the handshake completed: nothing sent
    }
    if (conn.out_off < conn.out.size()) {
      conn.send_progress_ms = now_ms_;
      ring_.PrepSend(conn.fd, conn.out.data() + conn.out_off, conn.out.size() - conn.out_off,
                     net::PackUserData(kSend, conn.generation, conn.slot));
      conn.send_inflight = true;
    } else {
      MaybeClose(conn);
    }
  });
}

void HttpServer::OnSend(Conn& conn, const net::Completion& c) {
  conn.send_inflight = false;
  if (c.res < 0) {
    conn.out.clear();
    conn.out_off = 0;
    conn.pending.clear();
    conn.close_after_out = true;
    StartClose(conn);
    return;
  }
  conn.out_off += static_cast<size_t>(c.res);
  conn.last_active_ms = now_ms_;
  conns_.MarkDirty(
      conn.slot);  // the rest of a partial send, or answers that became ready meanwhile
}

void HttpServer::MaybeClose(Conn& conn) {
  const bool drained = conn.out_off == conn.out.size() && !conn.send_inflight;
  if (conn.closing ||
      (drained && (conn.close_after_out || (conn.read_eof && conn.pending.empty())))) {
    StartClose(conn);
  }
}

void HttpServer::StartClose(Conn& conn) {
  if (!conn.closing) {
    conn.closing = true;
    --live_;
    if (const auto it = per_address_.find(conn.address); it != per_address_.end()) {
      if (--it->second == 0) per_address_.erase(it);
    }
    shutdown(conn.fd, SHUT_RDWR);  // ends the armed receive
    if (conn.recv_armed) {
      ring_.PrepCancelFd(conn.fd, net::PackUserData(kCancel, conn.generation, conn.slot));
    }
  }
  if (!conn.recv_armed && !conn.send_inflight) Free(conn);
}

void HttpServer::Free(Conn& conn) {
  close(conn.fd);
  conns_.Remove(conn.slot);  // destroys conn
}

void HttpServer::Tick() {
  conns_.ForEach([this](Conn& conn) {
    if (conn.closing) return;
    const RequestParser::Phase phase = conn.parser->phase();
    // Only a peer that is still sending can miss a deadline (a refused or finished request
    // stopped reading). A connection's first request is due from its accept.
    const bool in_head = phase == RequestParser::Phase::kHead ||
                         (phase == RequestParser::Phase::kIdle && !conn.seen_request);
    const int64_t waited = now_ms_ - conn.phase_since_ms;
    if (!conn.stop_reading && in_head && waited >= limits_.header_timeout_ms) {
      Event(conn, "timed out: request head not complete within " +
                      std::to_string(limits_.header_timeout_ms) + " ms (408)");
      QueueFinal(conn, conn.parser->method(), conn.parser->path(),
                 JsonError(408, "request head not complete within " +
                                    std::to_string(limits_.header_timeout_ms) + " ms"));
    } else if (!conn.stop_reading && phase == RequestParser::Phase::kBody &&
               waited >= limits_.body_timeout_ms) {
      Event(conn, "timed out: request body not complete within " +
                      std::to_string(limits_.body_timeout_ms) + " ms (408)");
      QueueFinal(conn, conn.parser->method(), conn.parser->path(),
                 JsonError(408, "request body not complete within " +
                                    std::to_string(limits_.body_timeout_ms) + " ms"));
    } else if (conn.pending.empty() && !conn.send_inflight &&
               now_ms_ - conn.last_active_ms >= limits_.idle_timeout_ms) {
      StartClose(conn);
    } else if (conn.send_inflight && now_ms_ - conn.send_progress_ms >= limits_.idle_timeout_ms) {
      // A peer that does not read its answers (a slow-read attack) would otherwise hold its
      // connection for ever: it is neither idle nor stalled. Ends the send in flight.
      Event(conn, "closed: no answer bytes accepted for " +
                      std::to_string(limits_.idle_timeout_ms) + " ms (the client does not read)");
      StartClose(conn);
    }
  });
}

}  // namespace ringmq::rest
