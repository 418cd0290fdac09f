// HttpServer: the admin shard's HTTP/1.1 server on its own io_uring (net::Ring), parsed with
// Debian's http-parser. Keep-alive and pipelining: requests of one connection are handed to the
// handler in order as soon as each is complete, and answers are written in request order even
// when the handler answers them out of order (asynchronous BrokerHooks).
//
// The loop (Run) follows net/ring.h: multishot accept, multishot recv into a provided buffer ring,
// at most one send in flight per connection, built once per loop turn from every answer ready.
//
// Limits (HttpLimits): request line + headers (431), body (413, also for chunked bodies), open
// connections (excess connections are closed at once), answers pending per connection (429), idle
// connections (closed). A malformed request gets 400 and the connection is closed after the
// answer; nothing the peer sends can crash the server or make it allocate beyond the limits.
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
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/buffer_ring.h"
#include "net/ring.h"
#include "rest/http.h"

namespace ringmq::rest {

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;  // request line + headers
  size_t max_body_bytes = 1024 * 1024;
  unsigned max_connections = 256;
  unsigned max_pending = 64;         // requests of one connection awaiting their answer
  int64_t idle_timeout_ms = 60'000;  // a connection with nothing pending is closed after this
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

  size_t connection_count() const { return open_; }
  uint64_t requests_total() const { return requests_; }
  // Answered requests by (method, HTTP status); "OTHER" when the request was too malformed to
  // have a method. Bounded: http-parser knows a fixed set of methods.
  using RequestCounts = std::map<std::pair<std::string, int>, uint64_t>;
  const RequestCounts& request_counts() const { return request_counts_; }
  // Called on this thread for every answered request (an access log). REQUIRES: before Run.
  using RequestObserver =
      std::function<void(std::string_view method, std::string_view path, int status)>;
  void set_request_observer(RequestObserver fn) { observer_ = std::move(fn); }

  struct Conn;  // internal (public only for the http-parser callbacks)

 private:
  friend struct ParserCallbacks;
  void HandleCompletion(const net::Completion& c);
  void OnAccept(const net::Completion& c);
  void OnRecv(Conn& conn, const net::Completion& c);
  void OnSend(Conn& conn, const net::Completion& c);
  void Feed(Conn& conn, const char* data, size_t len);
  void Dispatch(Conn& conn);
  void QueueError(Conn& conn, const char* method, int status, std::string_view reason);
  void CountAnswer(const char* method, std::string_view path, int status);
  void OnResponse(uint32_t slot, uint32_t generation, uint64_t seq, HttpResponse response);
  void FlushOutput();
  void MaybeClose(Conn& conn);
  void StartClose(Conn& conn);
  void Free(Conn& conn);
  void Tick();
  Conn* Lookup(uint32_t slot, uint32_t generation);

  HttpLimits limits_;
  Handler handler_;
  net::Ring ring_;
  net::BufferRing buffers_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> dirty_;  // slots with output to send
  std::vector<uint32_t> rearm_;  // slots whose multishot receive must be re-armed
  size_t open_ = 0;
  uint64_t requests_ = 0;
  RequestCounts request_counts_;
  RequestObserver observer_;
  bool accept_armed_ = false;
  int64_t now_ms_ = 0;
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_HTTP_SERVER_H_
