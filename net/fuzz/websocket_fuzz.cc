// libFuzzer target for WebSocketSession (net/websocket.h): the upgrade request and the frame
// parser. Input: one control byte, then the bytes from the peer. Bit 0 of the control byte
// prepends a valid upgrade request (so most runs reach the framing); the other bits seed how the
// input is split into Feeds. The same input is fed three ways (all at once, byte by byte, in place
// in pseudo-random chunks) and every way must agree on the application bytes, the bytes sent,
// the state and the close code; Feed never produces more application bytes than it was given.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "net/websocket.h"

namespace {

using ringmq::net::WebSocketConfig;
using ringmq::net::WebSocketSession;
using ringmq::net::WsState;

constexpr std::string_view kUpgrade =
    "GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n";

struct Outcome {
  std::vector<uint8_t> app;
  std::vector<uint8_t> wire;
  WsState state;
  uint16_t close_code;
  int http_status;
};

void Check(bool ok) {
  if (!ok) std::abort();
}

void Finish(WebSocketSession& ws, Outcome* o) {
  o->state = ws.state();
  o->close_code = ws.close_code();
  o->http_status = ws.http_status();
  // Exercise the output side too; it must respect the state.
  const uint8_t payload[3] = {1, 2, 3};
  const size_t before = o->wire.size();
  ws.Wrap(payload, &o->wire);
  ws.Ping(payload, &o->wire);
  Check((o->wire.size() > before) == (o->state == WsState::kOpen));
  ws.Close(1000, "bye", &o->wire);
}

Outcome AllAtOnce(const WebSocketConfig& config, const std::vector<uint8_t>& in) {
  Outcome o;
  WebSocketSession ws(&config);
  const auto r = ws.Feed(in, &o.app, &o.wire);
  Check(r.app_bytes == o.app.size() && r.app_bytes <= in.size() && r.state == ws.state());
  Finish(ws, &o);
  return o;
}

Outcome ByteByByte(const WebSocketConfig& config, const std::vector<uint8_t>& in) {
  Outcome o;
  WebSocketSession ws(&config);
  for (size_t i = 0; i < in.size(); ++i) {
    const size_t before = o.app.size();
    const auto r = ws.Feed(std::span(in).subspan(i, 1), &o.app, &o.wire);
    Check(r.app_bytes == o.app.size() - before && r.app_bytes <= 1);
  }
  Finish(ws, &o);
  return o;
}

Outcome InPlaceChunks(const WebSocketConfig& config, std::vector<uint8_t> in, uint32_t seed) {
  Outcome o;
  WebSocketSession ws(&config);
  size_t i = 0;
  while (i < in.size()) {
    seed = seed * 1103515245 + 12345;
    const size_t n = std::min<size_t>(in.size() - i, 1 + (seed >> 16) % 64);
    const auto r = ws.FeedInPlace(std::span(in).subspan(i, n), &o.wire);
    Check(r.app_bytes <= n);
    o.app.insert(o.app.end(), in.begin() + i, in.begin() + i + r.app_bytes);
    i += n;
  }
  Finish(ws, &o);
  return o;
}

bool Same(const Outcome& a, const Outcome& b) {
  return a.app == b.app && a.wire == b.wire && a.state == b.state && a.close_code == b.close_code &&
         a.http_status == b.http_status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  std::vector<uint8_t> in;
  if (control & 1) in.assign(kUpgrade.begin(), kUpgrade.end());
  in.insert(in.end(), data + 1, data + size);
  WebSocketConfig config;
  config.max_handshake_bytes = 1024;
  config.max_frame_bytes = 4096;
  config.max_message_bytes = 8192;
  const Outcome a = AllAtOnce(config, in);
  const Outcome b = ByteByByte(config, in);
  const Outcome c = InPlaceChunks(config, in, control >> 1);
  Check(Same(a, b) && Same(a, c));
  return 0;
}
