// HttpServer: the admin shard's HTTP/1.1 server on its own io_uring (net::Ring), parsed with
// Debian's http-parser. Keep-alive and pipelining: requests of one connection are handed to the
// handler in order as soon as each is complete, and answers are written in request order even
// when the handler answers them out of order (asynchronous BrokerHooks).
//
// The loop (Run) follows net/ring.h: multishot accept, multishot recv into a provided buffer ring,
// at most one send in flight per connection, built once per loop turn from every answer ready.
//
// Parsing is rest/internal/request_parser.h (400, 413, 431, duplicate Authorization, Expect:
// 100-continue answered only after the head check). Limits (HttpLimits): answers pending per
// connection (429), idle keep-alive connections (closed), and against slow or stalled peers:
//   - a request head (from its first byte, or from the accept for a connection's first request)
//     must be complete within header_timeout_ms, and a body within body_timeout_ms of its head:
//     otherwise 408 and the connection is closed; a peer that trickles bytes gains nothing;
//   - at max_connections (or max_connections_per_address for the peer's address) a new
//     connection closes the oldest stalled one (no answer pending: idle, or inside a head or a
//     body) of the whole server (or of that address) instead of being refused; it is refused only
//     when every connection concerned waits for an answer. So a client that sends its request at
//     once is always served, whatever number of half-sent requests are open.
// A refused request is answered and the connection closed after the answer; nothing the peer
// sends can crash the server or make it allocate beyond the limits.
//
// HTTPS (set_tls): every connection starts a TLS handshake (net/tls.h: TLS 1.2 and 1.3 only) and
// requests are parsed from the decrypted bytes; the limits above count from the accept, so a
// handshake that does not finish is cut by header_timeout_ms like a slow head. A handshake that
// fails (a plain HTTP request, an old protocol version) gets OpenSSL's alert and the connection
// is closed, with an event (set_event_observer).
//
// Thread-safety: one thread (the admin thread) constructs, Inits and Runs it; every Respond
// callback must be called on that thread. No other thread may touch it.
// Invariants:
//   1. A connection slot is freed only when neither a receive nor a send is in flight for it; its
//      generation changes on reuse, so late completions and late Respond calls are ignored.
//   2. Answers leave a connection in the order of its requests, each exactly once.
#ifndef RINGMQ_REST_HTTP_SERVER_H_
#define RINGMQ_REST_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/buffer_ring.h"
#include "net/ring.h"
#include "net/slot_table.h"
#include "net/tls.h"
#include "rest/http.h"

namespace ringmq::rest {

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;  // request line + headers
  size_t max_body_bytes = 1024 * 1024;
  unsigned max_connections = 256;
  unsigned max_connections_per_address = 64;  // 0: no limit per address
  unsigned max_pending = 64;                  // requests of one connection awaiting their answer
  // A connection with nothing pending, or whose answer the peer does not read, is closed after
  // this.
  int64_t idle_timeout_ms = 60'000;
  int64_t header_timeout_ms = 10'000;  // a whole request head must arrive within this (408)
  int64_t body_timeout_ms = 30'000;    // a whole body must arrive within this of its head (408)
};

class HttpServer {
 public:
  using Handler = std::function<void(HttpRequest request, Respond respond)>;

  HttpServer(HttpLimits limits, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Creates the ring and its buffers on the calling thread, which becomes the owner. The server
  // does not own listen_fd or wake_fd. REQUIRES: called once, before Run.
  bool Init(int listen_fd, int wake_fd, std::string* error);

  // Serves until `stop` is true (checked after every loop turn; wake the loop through wake_fd).
  // on_wake runs when wake_fd (an eventfd) was written, on_tick every tick_ms, both on this thread.
  void Run(const std::atomic<bool>& stop, const std::function<void()>& on_wake,
           const std::function<void()>& on_tick, int64_t tick_ms);

  size_t connection_count() const { return conns_.live(); }
  uint64_t requests_total() const { return requests_; }
  // Answered requests by (method, HTTP status); "OTHER" when the request was too malformed to
  // have a method. Bounded: http-parser knows a fixed set of methods.
  using RequestCounts = std::map<std::pair<std::string, int>, uint64_t>;
  const RequestCounts& request_counts() const { return request_counts_; }
  // Called on this thread for every answered request (an access log). REQUIRES: before Run.
  using RequestObserver =
      std::function<void(std::string_view method, std::string_view path, int status)>;
  void set_request_observer(RequestObserver fn) { observer_ = std::move(fn); }
  // Checks the head of a request whose client waits for "100 Continue": an answer refuses it
  // before its body is sent (Api::CheckHead); nullopt sends 100 Continue. REQUIRES: before Run.
  using HeadCheck = std::function<std::optional<HttpResponse>(const HttpRequest& head)>;
  void set_head_check(HeadCheck fn) { head_check_ = std::move(fn); }
  // Called on this thread with one line for every connection the server cuts or refuses to
  // protect itself (a deadline, the connection limits), for the log. REQUIRES: before Run.
  using EventObserver = std::function<void(std::string_view what)>;
  void set_event_observer(EventObserver fn) { event_observer_ = std::move(fn); }

  // Serves HTTPS with `tls` (loaded; owned by the caller, on this thread; it may be reloaded
  // between loop turns, live connections keep their credentials). REQUIRES: before Run.
  void set_tls(const net::TlsContext* tls) { tls_ = tls; }

  struct Conn;  // internal (public only for the http-parser callbacks)

 private:
  friend struct ParserCallbacks;
  void HandleCompletion(const net::Completion& c);
  void OnAccept(const net::Completion& c);
  void OnRecv(Conn& conn, const net::Completion& c);
  void OnSend(Conn& conn, const net::Completion& c);
  void Feed(Conn& conn, const char* data, size_t len);
  void FeedTls(Conn& conn, std::span<const uint8_t> data);
  void SealTls(Conn& conn);
  bool Dispatch(Conn& conn, HttpRequest req, bool keep_alive);
  std::optional<HttpResponse> ExpectContinue(Conn& conn, const HttpRequest& head);
  void QueueFinal(Conn& conn, const char* method, std::string_view path,
                  const HttpResponse& response);
  bool EvictOldestStalled(const std::string* address);
  void Event(const Conn& conn, std::string_view what);
  void CountAnswer(const char* method, std::string_view path, int status);
  void OnResponse(uint32_t slot, uint32_t generation, uint64_t seq, const HttpResponse& response);
  void FlushOutput();
  void MaybeClose(Conn& conn);
  void StartClose(Conn& conn);
  void Free(Conn& conn);
  void Tick();

  HttpLimits limits_;
  Handler handler_;
  net::Ring ring_;
  net::BufferRing buffers_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  net::SlotTable<Conn> conns_;  // closing ones included; their output is flushed when dirty
  std::vector<std::pair<uint32_t, uint32_t>> rearm_;  // (slot, generation): receive to re-arm
  size_t live_ = 0;                                   // connections not closing
  uint64_t accepted_ = 0;
  std::map<std::string, unsigned> per_address_;  // live connections by peer address
  HeadCheck head_check_;
  EventObserver event_observer_;
  uint64_t requests_ = 0;
  RequestCounts request_counts_;
  RequestObserver observer_;
  const net::TlsContext* tls_ = nullptr;  // HTTPS when set
  std::vector<uint8_t> tls_app_;          // scratch: decrypted bytes of one receive
  std::vector<uint8_t> tls_wire_;         // scratch: encrypted bytes of one flush
  bool accept_armed_ = false;
  int64_t now_ms_ = 0;
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_HTTP_SERVER_H_
