// HttpParser: the one http-parser (Debian's libhttp-parser) glue of the project, used by the
// WebSocket upgrade (net/websocket.cc) and the REST server (rest/internal/request_parser.cc). It
// turns a byte stream of HTTP/1.x requests into heads (method, URL split into path and query,
// headers in order), body pieces and completions, and enforces one limit: the bytes of a request
// line plus headers. What a request means (upgrade rules, body limits, authorization) stays with
// the caller's callbacks.
//
//   HttpParser::Callbacks c;
//   c.head = [](const HttpHead& h) { ...; return true; };
//   HttpParser p(max_head_bytes, std::move(c));
//   switch (p.Feed(data, len)) { case HttpParser::Result::kOk: ... }
//
// Thread-safety: none; one connection, one thread.
// Invariants:
//   1. Once Feed returned anything but kOk it consumes nothing more and calls no callback.
//   2. A head handed to Callbacks::head has a request line + headers of at most max_head_bytes.
//   3. Callbacks run from inside Feed only, in the order of the bytes: begin, head, body pieces,
//      complete, for each request.
#ifndef RINGMQ_NET_HTTP_HEAD_H_
#define RINGMQ_NET_HTTP_HEAD_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringmq::net {

// Header names compare case-insensitively (RFC 7230 section 3.2).
bool EqualsNoCase(std::string_view a, std::string_view b);

struct HttpHead {
  std::string method;  // "GET", "POST", ...
  int http_major = 0;
  int http_minor = 0;
  std::string url;           // the request target as sent
  std::string path;          // of the URL (also of an absolute-form target), raw, without the query
  std::string query;         // after '?', without it; empty when none
  bool origin_form = false;  // the target parsed as a URL with a path (not "*" or authority-form)
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  bool upgrade = false;  // CONNECT, or Upgrade + Connection: upgrade
  bool has_content_length = false;
  uint64_t content_length = 0;

  // The value of header `name`, trimmed; repeated headers joined with ", " (RFC 7230 section
  // 3.2.2). Empty when absent.
  std::string Get(std::string_view name) const;
  // How many times header `name` was sent.
  size_t Count(std::string_view name) const;
  bool Has(std::string_view name) const { return Count(name) != 0; }
};

class HttpParser {
 public:
  // Each returns false to stop parsing (Feed then returns kStopped). Empty functions continue.
  struct Callbacks {
    std::function<void()> begin;                    // the first byte of a request
    std::function<bool(const HttpHead&)> head;      // the complete head
    std::function<bool(std::string_view)> body;     // a piece of the body
    std::function<bool(bool keep_alive)> complete;  // the whole request
  };
  enum class Result {
    kOk,            // everything fed was consumed; more may come
    kStopped,       // a callback returned false
    kHeadTooLarge,  // request line + headers over max_head_bytes
    kMalformed,     // not HTTP/1.x: error() says why
    kUpgrade,       // the head asked for a protocol switch; bytes after it were not parsed
  };

  HttpParser(size_t max_head_bytes, Callbacks callbacks);
  ~HttpParser();
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  Result Feed(const char* data, size_t len);
  // http-parser's description of the error, after kMalformed.
  const char* error() const;
  // The method of the request being parsed ("OTHER" before its request line got that far), and
  // the path of its URL so far: for log lines about a refused request.
  const char* method() const;
  std::string_view path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_HTTP_HEAD_H_
