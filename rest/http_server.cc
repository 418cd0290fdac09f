#include "rest/http_server.h"

#include <http_parser.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>

#include "net/socket.h"
#include "net/user_data.h"

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

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

struct HttpServer::Conn {
  HttpServer* server = nullptr;
  uint32_t slot = 0;
  uint32_t generation = 0;
  bool in_use = false;
  int fd = -1;
  http_parser parser{};

  // The request being parsed.
  HttpRequest request;
  std::string url;
  std::string field;
  std::string value;
  bool in_value = false;
  bool expect_continue = false;
  size_t header_bytes = 0;
  bool method_known = false;  // the request line's method was parsed (it is in parser.method)
  int error_status = 0;       // set by a callback that refused the request (413, 431)

  // Answers in request order; `seq` numbers them (the front has the smallest).
  struct Pending {
    uint64_t seq = 0;
    bool ready = false;
    bool close = false;  // close the connection after this answer
    std::string bytes;
  };
  std::deque<Pending> pending;
  uint64_t next_seq = 0;

  std::string out;  // bytes being sent
  size_t out_off = 0;
  bool close_after_out = false;

  bool recv_armed = false;
  bool send_inflight = false;
  bool dirty = false;
  bool stop_reading = false;  // a fatal error or Connection: close: ignore further input
  bool read_eof = false;
  bool closing = false;  // shut down; freed when nothing is in flight
  int64_t last_active_ms = 0;
};

// http-parser's C callbacks, routed to the connection in parser.data.
struct ParserCallbacks {
  using Conn = HttpServer::Conn;
  static Conn& C(http_parser* p) { return *static_cast<Conn*>(p->data); }

  static bool AddHeaderBytes(Conn& c, size_t n) {
    c.header_bytes += n;
    if (c.header_bytes > c.server->limits_.max_header_bytes) {
      c.error_status = 431;
      return false;
    }
    return true;
  }
  static void EndHeader(Conn& c) {
    if (!c.in_value) return;
    if (EqualsNoCase(c.field, "authorization")) c.request.authorization = c.value;
    if (EqualsNoCase(c.field, "expect") && EqualsNoCase(c.value, "100-continue")) {
      c.expect_continue = true;
    }
    c.field.clear();
    c.value.clear();
    c.in_value = false;
  }
  static int OnMessageBegin(http_parser* p) {
    Conn& c = C(p);
    c.request = HttpRequest{};
    c.url.clear();
    c.field.clear();
    c.value.clear();
    c.in_value = false;
    c.expect_continue = false;
    c.header_bytes = 0;
    c.method_known = false;
    return 0;
  }
  static int OnUrl(http_parser* p, const char* at, size_t n) {
    Conn& c = C(p);
    c.method_known = true;  // http-parser reports the URL only after the method
    if (!AddHeaderBytes(c, n)) return -1;
    c.url.append(at, n);
    return 0;
  }
  static int OnHeaderField(http_parser* p, const char* at, size_t n) {
    Conn& c = C(p);
    if (!AddHeaderBytes(c, n)) return -1;
    EndHeader(c);
    c.field.append(at, n);
    return 0;
  }
  static int OnHeaderValue(http_parser* p, const char* at, size_t n) {
    Conn& c = C(p);
    if (!AddHeaderBytes(c, n)) return -1;
    c.in_value = true;
    c.value.append(at, n);
    return 0;
  }
  static int OnHeadersComplete(http_parser* p) {
    Conn& c = C(p);
    EndHeader(c);
    if (p->content_length != ULLONG_MAX && p->content_length > c.server->limits_.max_body_bytes) {
      c.error_status = 413;
      return -1;
    }
    if (c.expect_continue) {
      Conn::Pending cont;
      cont.seq = c.next_seq++;
      cont.ready = true;
      cont.bytes = "HTTP/1.1 100 Continue\r\n\r\n";
      c.pending.push_back(std::move(cont));
      if (!c.dirty) {
        c.dirty = true;
        c.server->dirty_.push_back(c.slot);
      }
    }
    return 0;
  }
  static int OnBody(http_parser* p, const char* at, size_t n) {
    Conn& c = C(p);
    if (c.request.body.size() + n > c.server->limits_.max_body_bytes) {
      c.error_status = 413;
      return -1;
    }
    c.request.body.append(at, n);
    return 0;
  }
  static int OnMessageComplete(http_parser* p) {
    Conn& c = C(p);
    c.server->Dispatch(c);
    // After Connection: close (or HTTP/1.0 without keep-alive) nothing more is read.
    return c.stop_reading ? -1 : 0;
  }

  static const http_parser_settings& Settings() {
    static const http_parser_settings kSettings = [] {
      http_parser_settings s{};
      s.on_message_begin = OnMessageBegin;
      s.on_url = OnUrl;
      s.on_header_field = OnHeaderField;
      s.on_header_value = OnHeaderValue;
      s.on_headers_complete = OnHeadersComplete;
      s.on_body = OnBody;
      s.on_message_complete = OnMessageComplete;
      return s;
    }();
    return kSettings;
  }
};

HttpServer::HttpServer(HttpLimits limits, Handler handler)
    : limits_(limits), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  for (auto& c : conns_) {
    if (c->in_use && c->fd >= 0) close(c->fd);
  }
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
    for (uint32_t slot : rearm_) {
      Conn& conn = *conns_[slot];
      if (conn.in_use && !conn.recv_armed && !conn.closing && !conn.read_eof) {
        ring_.PrepMultishotRecv(conn.fd, kBufferGroup,
                                net::PackUserData(kRecv, conn.generation, conn.slot));
        conn.recv_armed = true;
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

HttpServer::Conn* HttpServer::Lookup(uint32_t slot, uint32_t generation) {
  if (slot >= conns_.size()) return nullptr;
  Conn* c = conns_[slot].get();
  return c->in_use && c->generation == generation ? c : nullptr;
}

void HttpServer::HandleCompletion(const net::Completion& c) {
  const net::UserData ud = net::UnpackUserData(c.user_data);
  switch (ud.kind) {
    case kAccept:
      OnAccept(c);
      return;
    case kRecv: {
      Conn* conn = Lookup(ud.index, ud.generation);
      if (conn == nullptr) {  // cannot happen (invariant 1), but never leak a buffer
        if (c.has_buffer()) buffers_.Recycle(c.buffer_id());
        return;
      }
      OnRecv(*conn, c);
      return;
    }
    case kSend: {
      Conn* conn = Lookup(ud.index, ud.generation);
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
  if (open_ >= limits_.max_connections) {
    close(fd);
    return;
  }
  (void)net::SetSocketOptions(fd, 0, 0);
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(conns_.size());
    conns_.push_back(std::make_unique<Conn>());
    conns_.back()->slot = slot;
  }
  Conn& conn = *conns_[slot];
  const uint32_t generation = (conn.generation + 1) & net::kGenerationMask;
  conn = Conn{};
  conn.server = this;
  conn.slot = slot;
  conn.generation = generation == 0 ? 1 : generation;
  conn.in_use = true;
  conn.fd = fd;
  conn.last_active_ms = now_ms_;
  http_parser_init(&conn.parser, HTTP_REQUEST);
  conn.parser.data = &conn;
  ++open_;
  ring_.PrepMultishotRecv(fd, kBufferGroup, net::PackUserData(kRecv, conn.generation, slot));
  conn.recv_armed = true;
}

void HttpServer::OnRecv(Conn& conn, const net::Completion& c) {
  if (!c.more()) conn.recv_armed = false;
  if (c.has_buffer()) {
    if (c.res > 0 && !conn.closing) {
      const std::span<const uint8_t> data = buffers_.Get(c.buffer_id(), static_cast<size_t>(c.res));
      conn.last_active_ms = now_ms_;
      Feed(conn, reinterpret_cast<const char*>(data.data()), data.size());
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
    rearm_.push_back(conn.slot);  // ENOBUFS or a multishot that ended: buffers were recycled
  }
  MaybeClose(conn);
}

void HttpServer::Feed(Conn& conn, const char* data, size_t len) {
  if (conn.stop_reading) return;
  const size_t parsed = http_parser_execute(&conn.parser, &ParserCallbacks::Settings(), data, len);
  const auto err = static_cast<http_errno>(conn.parser.http_errno);
  if (conn.stop_reading) return;  // Connection: close was handled by OnMessageComplete
  const char* method =
      conn.method_known ? http_method_str(static_cast<http_method>(conn.parser.method)) : "OTHER";
  if (err != HPE_OK) {
    if (conn.error_status == 413) {
      QueueError(conn, method, 413,
                 "request body larger than " + std::to_string(limits_.max_body_bytes) + " bytes");
    } else if (conn.error_status == 431) {
      QueueError(
          conn, method, 431,
          "request headers larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
    } else {
      QueueError(conn, method, 400,
                 std::string("malformed HTTP request: ") + http_errno_description(err));
    }
  } else if (conn.parser.upgrade || parsed != len) {
    QueueError(conn, method, 400, "protocol upgrade not supported");
  }
}

void HttpServer::Dispatch(Conn& conn) {
  ++requests_;
  // A static string of http-parser's: capturing it costs no allocation.
  const char* method = http_method_str(static_cast<http_method>(conn.parser.method));
  if (conn.pending.size() >= limits_.max_pending) {
    QueueError(conn, method, 429, "too many pipelined requests");
    return;
  }
  HttpRequest req = std::move(conn.request);
  conn.request = HttpRequest{};
  req.method = method;
  const size_t q = conn.url.find('?');
  req.path = conn.url.substr(0, q);
  if (q != std::string::npos) req.query = conn.url.substr(q + 1);
  const bool keep_alive = http_should_keep_alive(&conn.parser) != 0;
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
           [this, slot, generation, seq, method, path = std::move(path)](HttpResponse r) {
             CountAnswer(method, path, r.status);
             OnResponse(slot, generation, seq, std::move(r));
           });
}

void HttpServer::CountAnswer(const char* method, std::string_view path, int status) {
  ++request_counts_[{method, status}];
  if (observer_) observer_(method, path, status);
}

void HttpServer::QueueError(Conn& conn, const char* method, int status, std::string_view reason) {
  const std::string_view url = conn.url;
  CountAnswer(method, url.substr(0, url.find('?')), status);
  Conn::Pending p;
  p.seq = conn.next_seq++;
  p.ready = true;
  p.close = true;
  p.bytes = SerializeResponse(JsonError(status, reason), true);
  conn.pending.push_back(std::move(p));
  conn.stop_reading = true;
  if (!conn.dirty) {
    conn.dirty = true;
    dirty_.push_back(conn.slot);
  }
}

void HttpServer::OnResponse(uint32_t slot, uint32_t generation, uint64_t seq,
                            HttpResponse response) {
  Conn* conn = Lookup(slot, generation);
  if (conn == nullptr || conn->pending.empty() || seq < conn->pending.front().seq) return;
  const uint64_t index = seq - conn->pending.front().seq;
  if (index >= conn->pending.size()) return;
  Conn::Pending& p = conn->pending[index];
  if (p.ready) return;  // answered twice: keep the first
  p.ready = true;
  p.bytes = SerializeResponse(response, p.close);
  if (!conn->dirty) {
    conn->dirty = true;
    dirty_.push_back(slot);
  }
}

void HttpServer::FlushOutput() {
  for (uint32_t slot : dirty_) {
    Conn& conn = *conns_[slot];
    conn.dirty = false;
    if (!conn.in_use) continue;
    if (conn.closing) {
      StartClose(conn);  // frees the slot once nothing is in flight
      continue;
    }
    if (conn.send_inflight) continue;  // OnSend marks the connection dirty again
    if (conn.out_off == conn.out.size()) {
      conn.out.clear();
      conn.out_off = 0;
      while (!conn.pending.empty() && conn.pending.front().ready && !conn.close_after_out) {
        Conn::Pending& p = conn.pending.front();
        conn.out.append(p.bytes);
        if (p.close) conn.close_after_out = true;
        conn.pending.pop_front();
      }
    }
    if (conn.out_off < conn.out.size()) {
      ring_.PrepSend(conn.fd, conn.out.data() + conn.out_off, conn.out.size() - conn.out_off,
                     net::PackUserData(kSend, conn.generation, slot));
      conn.send_inflight = true;
    } else {
      MaybeClose(conn);
    }
  }
  dirty_.clear();
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
  if (!conn.dirty) {  // the rest of a partial send, or answers that became ready meanwhile
    conn.dirty = true;
    dirty_.push_back(conn.slot);
  }
}

void HttpServer::MaybeClose(Conn& conn) {
  if (!conn.in_use) return;
  const bool drained = conn.out_off == conn.out.size() && !conn.send_inflight;
  if (conn.closing ||
      (drained && (conn.close_after_out || (conn.read_eof && conn.pending.empty())))) {
    StartClose(conn);
  }
}

void HttpServer::StartClose(Conn& conn) {
  if (!conn.closing) {
    conn.closing = true;
    shutdown(conn.fd, SHUT_RDWR);  // ends the armed receive
    if (conn.recv_armed) {
      ring_.PrepCancelFd(conn.fd, net::PackUserData(kCancel, conn.generation, conn.slot));
    }
  }
  if (!conn.recv_armed && !conn.send_inflight) Free(conn);
}

void HttpServer::Free(Conn& conn) {
  close(conn.fd);
  conn.fd = -1;
  conn.in_use = false;
  conn.pending.clear();
  conn.out.clear();
  conn.out.shrink_to_fit();
  conn.request = HttpRequest{};
  --open_;
  free_slots_.push_back(conn.slot);
}

void HttpServer::Tick() {
  for (auto& c : conns_) {
    if (!c->in_use || c->closing) continue;
    if (c->pending.empty() && !c->send_inflight &&
        now_ms_ - c->last_active_ms >= limits_.idle_timeout_ms) {
      StartClose(*c);
    }
  }
}

}  // namespace ringmq::rest
