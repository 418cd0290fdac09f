// libFuzzer target for the REST server's HTTP/1.1 request parsing (rest/internal/request_parser.h,
// the http-parser glue) and, on the same bytes, the WebSocket upgrade handshake of the MQTT
// listeners (net/websocket.h). Input: one control byte, then the bytes from the peer. Bit 0 of the
// control byte answers Expect: 100-continue with a refusal, the other bits seed how the input is
// split. The same input is fed three ways (all at once, byte by byte, in pseudo-random chunks):
// every way must yield the same requests, the same refusal and the same phase, and every request
// respects the limits (request_parser.h invariant 2).
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "net/websocket.h"
#include "rest/internal/request_parser.h"

namespace {

using ringmq::rest::HttpRequest;
using ringmq::rest::HttpResponse;
using ringmq::rest::RequestParser;

constexpr RequestParser::Limits kLimits{512, 1024};

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Outcome {
  std::vector<std::string> requests;  // method, path, query, authorization, body, keep-alive
  int refusal = 0;
  RequestParser::Phase phase = RequestParser::Phase::kIdle;
  bool stopped = false;
};

RequestParser::Handler MakeHandler(Outcome* o, bool refuse_continue) {
  RequestParser::Handler h;
  h.request = [o](HttpRequest r, bool keep_alive) {
    Check(r.body.size() <= kLimits.max_body_bytes);
    Check(r.path.size() + r.query.size() + r.authorization.size() <= kLimits.max_header_bytes);
    o->requests.push_back(r.method + '\0' + r.path + '\0' + r.query + '\0' + r.authorization +
                          '\0' + r.body + (keep_alive ? "1" : "0"));
    return true;
  };
  h.expect_continue = [refuse_continue](const HttpRequest& head) -> std::optional<HttpResponse> {
    Check(head.body.empty());
    if (!refuse_continue) return std::nullopt;
    HttpResponse r;
    r.status = 401;
    return r;
  };
  return h;
}

void Record(RequestParser& p, RequestParser::Result r, Outcome* o) {
  if (r == RequestParser::Result::kRefused) {
    Check(o->refusal == 0 || o->refusal == p.refusal().status);
    o->refusal = p.refusal().status;
    Check(o->refusal >= 400 && o->refusal < 500);
  }
  o->stopped |= r == RequestParser::Result::kStopped;
  o->phase = p.phase();
  Check(std::string_view(p.method()).size() > 0);
}

Outcome Split(std::span<const uint8_t> in, bool refuse_continue, uint32_t seed, bool bytewise) {
  Outcome o;
  RequestParser p(kLimits, MakeHandler(&o, refuse_continue));
  size_t i = 0;
  while (i < in.size()) {
    size_t n = in.size() - i;
    if (bytewise) {
      n = 1;
    } else if (seed != 0) {
      seed = seed * 1103515245 + 12345;
      n = std::min<size_t>(n, 1 + (seed >> 16) % 97);
    }
    Record(p, p.Feed(reinterpret_cast<const char*>(in.data() + i), n), &o);
    i += n;
  }
  return o;
}

void Same(const Outcome& a, const Outcome& b) {
  Check(a.requests == b.requests);
  // Refused in every way or in none. The status may differ for a head that is both too large and
  // malformed: http-parser reports bytes at token ends or buffer ends, so which of the two is seen
  // first depends on the chunking (431 or 400, both a refusal).
  Check((a.refusal == 0) == (b.refusal == 0));
  Check(a.refusal == b.refusal || a.refusal == 431 || b.refusal == 431);
  Check(a.stopped == b.stopped);
  // A refusal or stop ends parsing at different bytes in each way; the phase then may differ.
  if (a.refusal == 0 && !a.stopped) Check(a.phase == b.phase);
}

void WebSocketHandshake(std::span<const uint8_t> in) {
  static const ringmq::net::WebSocketConfig config{};
  ringmq::net::WebSocketSession all(&config);
  std::vector<uint8_t> app, wire;
  (void)all.Feed(in, &app, &wire);
  ringmq::net::WebSocketSession bytes(&config);
  std::vector<uint8_t> app2, wire2;
  for (size_t i = 0; i < in.size(); ++i) (void)bytes.Feed(in.subspan(i, 1), &app2, &wire2);
  Check(all.state() == bytes.state() && all.http_status() == bytes.http_status());
  Check(app == app2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool refuse_continue = data[0] & 1;
  const uint32_t seed = data[0] >> 1;
  const std::span<const uint8_t> in(data + 1, size - 1);
  const Outcome whole = Split(in, refuse_continue, 0, false);
  Same(whole, Split(in, refuse_continue, 0, true));
  Same(whole, Split(in, refuse_continue, seed | 1, false));
  WebSocketHandshake(in);
  return 0;
}
