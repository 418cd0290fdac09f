// RequestParser: the admin shard's HTTP server (rest/http_server.h) rules over net::HttpParser for
// one connection, without I/O: bytes in, complete requests and refusals out. Kept apart from the
// server so that unit tests and a fuzz target (rest/fuzz/http_head_fuzz.cc) drive it directly.
//
//   RequestParser parser(limits, {.request = [](HttpRequest r, bool keep_alive) { ...; return true;
//   },
//                                 .expect_continue = [](const HttpRequest& head) { ... }});
//   switch (parser.Feed(data, len)) { ... }
//
// What it refuses (Feed returns kRefused; refusal() is the answer, after which the connection must
// be closed; nothing more is parsed):
//   400 a malformed request, a duplicate Authorization header, a protocol upgrade (CONNECT, or
//       Upgrade + Connection: upgrade: WebSocket is served on the MQTT listeners, not here);
//   431 request line + headers over max_header_bytes;
//   413 a body over max_body_bytes (from Content-Length before the body arrives, or as a chunked
//       body grows);
//   whatever Handler::expect_continue answers for a head with Expect: 100-continue.
//
// Thread-safety: none; one connection, one thread.
// Invariants:
//   1. Once Feed returned kStopped or kRefused it consumes nothing more and calls no handler.
//   2. A request handed to Handler::request has a body of at most max_body_bytes and a request line
//      + headers of at most max_header_bytes.
//   3. Handlers are called from inside Feed only, at most one per complete request (request) or
//      head (expect_continue), in the order of the bytes.
#ifndef RINGMQ_REST_INTERNAL_REQUEST_PARSER_H_
#define RINGMQ_REST_INTERNAL_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "net/http_head.h"
#include "rest/http.h"

namespace ringmq::rest {

class RequestParser {
 public:
  struct Limits {
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 1024 * 1024;
  };
  struct Handler {
    // A complete request (method, path, query, authorization, body). keep_alive false: the
    // connection ends after its answer and nothing more is parsed. Returns false to stop parsing
    // (Feed then returns kStopped).
    std::function<bool(HttpRequest request, bool keep_alive)> request;
    // The head of a request with Expect: 100-continue, before its body (method, path, query and
    // authorization are set). nullopt: the body may come (the caller sends 100 Continue); an
    // answer: the request is refused with it. Empty function: always nullopt.
    std::function<std::optional<HttpResponse>(const HttpRequest& head)> expect_continue;
  };
  // What the parser waits for. phase_changes() counts the transitions, so a caller can start a
  // deadline at each (the server's header and body timeouts).
  enum class Phase {
    kIdle,  // between requests (and before the first byte of the first one)
    kHead,  // inside a request line or its headers
    kBody,  // the head is complete, the body is not
  };
  enum class Result { kOk, kStopped, kRefused };

  RequestParser(Limits limits, Handler handler);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  Result Feed(const char* data, size_t len);

  Phase phase() const { return phase_; }
  uint64_t phase_changes() const { return phase_changes_; }
  // The method of the request being parsed (or refused), a static string of http-parser's, or
  // "OTHER" before its method is known; and the path of its URL (without the query).
  const char* method() const { return parser_.method(); }
  std::string_view path() const { return parser_.path(); }
  // REQUIRES: Feed returned kRefused.
  const HttpResponse& refusal() const { return refusal_; }

 private:
  net::HttpParser::Callbacks Callbacks();
  bool OnHead(const net::HttpHead& head);
  void Refuse(HttpResponse response);
  void SetPhase(Phase p);

  Limits limits_;
  Handler handler_;
  HttpRequest request_;     // the request being parsed
  net::HttpParser parser_;  // after the members its callbacks use

  Phase phase_ = Phase::kIdle;
  uint64_t phase_changes_ = 0;
  bool refused_ = false;
  HttpResponse refusal_;
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_INTERNAL_REQUEST_PARSER_H_
