#include "net/websocket.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ringmq::net {
namespace {

using namespace std::string_view_literals;
using Bytes = std::vector<uint8_t>;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string S(const Bytes& b, size_t from = 0) { return std::string(b.begin() + from, b.end()); }

std::string Request(std::string_view path = "/mqtt", std::string_view protocol = "mqtt",
                    std::string_view extra = "") {
  std::string r = "GET " + std::string(path) +
                  " HTTP/1.1\r\nHost: broker.example:8080\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n";
  if (!protocol.empty()) r += "Sec-WebSocket-Protocol: " + std::string(protocol) + "\r\n";
  r += extra;
  r += "\r\n";
  return r;
}

// A client frame as a browser would send it: masked, with the shortest length encoding unless
// `len_bytes` (0, 2 or 8) forces one.
Bytes ClientFrame(uint8_t opcode, const Bytes& payload, bool fin = true, bool masked = true,
                  uint8_t rsv = 0, int len_bytes = -1, uint32_t seed = 7) {
  Bytes f;
  f.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | rsv << 4 | opcode));
  const uint64_t n = payload.size();
  if (len_bytes < 0) len_bytes = n < 126 ? 0 : n <= 0xFFFF ? 2 : 8;
  const uint8_t m = masked ? 0x80 : 0;
  if (len_bytes == 0) {
    f.push_back(static_cast<uint8_t>(m | n));
  } else if (len_bytes == 2) {
    f.push_back(m | 126);
    f.push_back(static_cast<uint8_t>(n >> 8));
    f.push_back(static_cast<uint8_t>(n));
  } else {
    f.push_back(m | 127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<uint8_t>(n >> (8 * i)));
  }
  uint8_t key[4] = {static_cast<uint8_t>(0x37 + seed), 0xFA, static_cast<uint8_t>(0x21 * seed),
                    0x3D};
  if (masked) f.insert(f.end(), key, key + 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    f.push_back(masked ? payload[i] ^ key[i % 4] : payload[i]);
  }
  return f;
}

// A frame header that claims `len` payload bytes (the payload itself is not attached).
Bytes ClientHeader(uint8_t opcode, uint64_t len, bool fin = true) {
  Bytes f = {static_cast<uint8_t>((fin ? 0x80 : 0) | opcode), 0x80 | 127};
  for (int i = 7; i >= 0; --i) f.push_back(static_cast<uint8_t>(len >> (8 * i)));
  f.insert(f.end(), {1, 2, 3, 4});
  return f;
}

Bytes ClosePayload(uint16_t code, std::string_view reason = "") {
  Bytes p = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
  p.insert(p.end(), reason.begin(), reason.end());
  return p;
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const Bytes& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

Bytes Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

struct Frame {
  uint8_t opcode;
  bool fin;
  Bytes payload;
};

// Parses server frames in wire[from, end); every one must be unmasked and complete.
std::vector<Frame> ServerFrames(const Bytes& wire, size_t from = 0) {
  std::vector<Frame> frames;
  size_t i = from;
  while (i < wire.size()) {
    EXPECT_LE(i + 2, wire.size());
    Frame f{static_cast<uint8_t>(wire[i] & 0x0F), (wire[i] & 0x80) != 0, {}};
    EXPECT_EQ(wire[i] & 0x70, 0) << "RSV bits in a server frame";
    EXPECT_EQ(wire[i + 1] & 0x80, 0) << "a server frame must not be masked";
    uint64_t len = wire[i + 1] & 0x7F;
    i += 2;
    const int ext = len == 126 ? 2 : len == 127 ? 8 : 0;
    if (ext) {
      len = 0;
      for (int j = 0; j < ext; ++j) len = len << 8 | wire[i + j];
      i += ext;
    }
    EXPECT_LE(i + len, wire.size());
    if (i + len > wire.size()) break;
    f.payload.assign(wire.begin() + i, wire.begin() + i + len);
    i += len;
    frames.push_back(std::move(f));
  }
  return frames;
}

// The close code of a close frame's payload (0 when it has none).
uint16_t CodeOf(const Frame& f) {
  return f.payload.size() >= 2 ? static_cast<uint16_t>(f.payload[0] << 8 | f.payload[1]) : 0;
}

enum class Mode { kAllAtOnce, kByteByByte, kRandomChunks, kInPlace, kInPlaceBytewise };

// Feeds `in` to `ws` in the way `mode` says; returns the application bytes, appends to *wire.
Bytes FeedIn(WebSocketSession& ws, const Bytes& in, Mode mode, Bytes* wire) {
  Bytes app;
  std::mt19937 rng(99);
  size_t i = 0;
  while (i < in.size()) {
    size_t n = in.size() - i;
    if (mode == Mode::kByteByByte || mode == Mode::kInPlaceBytewise) n = 1;
    if (mode == Mode::kRandomChunks) n = std::min<size_t>(n, 1 + rng() % 37);
    if (mode == Mode::kInPlace || mode == Mode::kInPlaceBytewise) {
      Bytes chunk(in.begin() + i, in.begin() + i + n);
      const WsFeedResult r = ws.FeedInPlace(chunk, wire);
      EXPECT_LE(r.app_bytes, n);
      app.insert(app.end(), chunk.begin(), chunk.begin() + r.app_bytes);
    } else {
      const size_t before = app.size();
      const WsFeedResult r = ws.Feed(std::span(in).subspan(i, n), &app, wire);
      EXPECT_EQ(app.size() - before, r.app_bytes);
    }
    i += n;
  }
  return app;
}

constexpr Mode kAllModes[] = {Mode::kAllAtOnce, Mode::kByteByByte, Mode::kRandomChunks,
                              Mode::kInPlace, Mode::kInPlaceBytewise};

// A session past a successful upgrade, with the 101 answer removed from its output.
struct Open {
  WebSocketConfig config;
  WebSocketSession ws{&config};
  Bytes wire;
  explicit Open(WebSocketConfig c = {}) : config(std::move(c)) {
    Bytes app;
    ws.Feed(B(Request()), &app, &wire);
    EXPECT_EQ(ws.state(), WsState::kOpen) << ws.error();
    wire.clear();
  }
};

// --- Upgrade. ---

TEST(WebSocketHandshake, AcceptKeyMatchesTheRfcExample) {
  EXPECT_EQ(WebSocketSession::AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketHandshake, UpgradesWithTheMqttSubprotocolInEveryFeedMode) {
  for (Mode mode : {Mode::kAllAtOnce, Mode::kByteByByte, Mode::kRandomChunks, Mode::kInPlace}) {
    WebSocketConfig config;
    WebSocketSession ws(&config);
    Bytes wire;
    const Bytes app = FeedIn(ws, B(Request("/mqtt?token=abc")), mode, &wire);
    EXPECT_TRUE(app.empty());
    ASSERT_EQ(ws.state(), WsState::kOpen) << ws.error();
    EXPECT_EQ(ws.http_status(), 101);
    EXPECT_EQ(S(wire),
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
              "Sec-WebSocket-Protocol: mqtt\r\n\r\n");
    EXPECT_EQ(ws.path(), "/mqtt");
    EXPECT_EQ(ws.query(), "token=abc");
    EXPECT_EQ(ws.subprotocol(), "mqtt");
  }
}

TEST(WebSocketHandshake, NegotiatesTheSubprotocol) {
  struct Case {
    std::string headers;
    std::string chosen;
  } cases[] = {
      {"Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n", "mqtt"},
      {"Sec-WebSocket-Protocol: mqttv3.1\r\n", "mqttv3.1"},
      {"Sec-WebSocket-Protocol: wamp\r\nSec-WebSocket-Protocol: mqtt\r\n", "mqtt"},
      {"", ""},
  };
  for (const Case& c : cases) {
    WebSocketConfig config;
    WebSocketSession ws(&config);
    Bytes app, wire;
    ws.Feed(B(Request("/", "", c.headers)), &app, &wire);
    ASSERT_EQ(ws.state(), WsState::kOpen) << c.headers << ws.error();
    EXPECT_EQ(ws.subprotocol(), c.chosen);
    const bool echoed =
        S(wire).find("Sec-WebSocket-Protocol: " + c.chosen + "\r\n") != std::string::npos;
    EXPECT_EQ(echoed, !c.chosen.empty()) << S(wire);
  }
}

TEST(WebSocketHandshake, HeaderNamesAndTokensAreCaseInsensitive) {
  WebSocketConfig config;
  WebSocketSession ws(&config);
  Bytes app, wire;
  ws.Feed(B("GET /mqtt HTTP/1.1\r\nhost: h\r\nUPGRADE: WebSocket\r\n"
            "connection: keep-alive, UPGRADE\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "SEC-WEBSOCKET-VERSION: 13\r\nsec-websocket-protocol: mqtt\r\n\r\n"),
          &app, &wire);
  EXPECT_EQ(ws.state(), WsState::kOpen) << ws.error();
}

TEST(WebSocketHandshake, AcceptsBareLineFeeds) {
  WebSocketConfig config;
  WebSocketSession ws(&config);
  Bytes app, wire;
  ws.Feed(B("GET /mqtt HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: Upgrade\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n"),
          &app, &wire);
  EXPECT_EQ(ws.state(), WsState::kOpen) << ws.error();
}

TEST(WebSocketHandshake, RefusesBadRequestsWithAFittingStatus) {
  const std::string good_tail =
      "Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  struct Case {
    std::string request;
    int status;
  } cases[] = {
      {"POST /mqtt HTTP/1.1\r\n" + good_tail, 400},
      {"GET /mqtt HTTP/1.0\r\n" + good_tail, 400},
      {"GET /other HTTP/1.1\r\n" + good_tail, 404},
      {"GET /mqtt/ HTTP/1.1\r\n" + good_tail, 404},
      {"GET /mqtt HTTP/1.1\r\nHost: h\r\n\r\n", 426},  // plain HTTP
      {"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", 426},
      {std::string(Request()).replace(Request().find("Connection: Upgrade"), 19,
                                      "Connection: close"),
       400},
      {"GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
       400},  // no Host
      {"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
       426},
      {"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n",
       400},  // no key
      {"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
       400},  // 5 bytes, not 16
      {"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n\r\n",
       400},  // not base64
      {Request("/mqtt", "wamp.2.json"), 400},
      {"HELLO\r\n\r\n", 400},
      {"GET /mqtt HTTP/1.1\r\nBad Header\r\n\r\n", 400},
  };
  for (const Case& c : cases) {
    WebSocketConfig config;
    WebSocketSession ws(&config);
    Bytes app, wire;
    const WsFeedResult r = ws.Feed(B(c.request), &app, &wire);
    EXPECT_EQ(r.state, WsState::kClosed) << c.request;
    EXPECT_EQ(ws.http_status(), c.status) << c.request << " -> " << ws.error();
    EXPECT_FALSE(ws.error().empty());
    const std::string answer = S(wire);
    EXPECT_EQ(answer.rfind("HTTP/1.1 " + std::to_string(c.status) + " ", 0), 0u) << answer;
    EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos);
    if (c.status == 426) {
      EXPECT_NE(answer.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos);
    }
    // Whatever follows a refused request is ignored.
    wire.clear();
    EXPECT_EQ(ws.Feed(ClientFrame(2, B("x")), &app, &wire).app_bytes, 0u);
    EXPECT_TRUE(app.empty());
    EXPECT_TRUE(wire.empty());
  }
}

TEST(WebSocketHandshake, SubprotocolCanBeRequired) {
  WebSocketConfig config;
  config.require_subprotocol = true;
  WebSocketSession ws(&config);
  Bytes app, wire;
  ws.Feed(B(Request("/mqtt", "")), &app, &wire);
  EXPECT_EQ(ws.http_status(), 400);
}

TEST(WebSocketHandshake, ConfiguredPathsOnly) {
  WebSocketConfig config;
  config.paths = {"/ws"};
  WebSocketSession refused(&config);
  Bytes app, wire;
  refused.Feed(B(Request("/mqtt")), &app, &wire);
  EXPECT_EQ(refused.http_status(), 404);
  WebSocketSession accepted(&config);
  accepted.Feed(B(Request("/ws")), &app, &wire);
  EXPECT_EQ(accepted.http_status(), 101);
}

TEST(WebSocketHandshake, HeaderBlockLimitGives431) {
  WebSocketConfig config;
  config.max_handshake_bytes = 1024;
  const std::string filler = "X-Filler: " + std::string(900, 'a') + "\r\n";
  {  // exactly at the limit: fine
    WebSocketSession ws(&config);
    Bytes app, wire;
    const size_t k = 1024 - Request().size() - 5;  // "X: " + k bytes + "\r\n"
    const std::string req = Request("/mqtt", "mqtt", "X: " + std::string(k, 'b') + "\r\n");
    ASSERT_EQ(req.size(), 1024u);
    ws.Feed(B(req), &app, &wire);
    EXPECT_EQ(ws.http_status(), 101) << ws.error();
  }
  for (Mode mode : {Mode::kAllAtOnce, Mode::kByteByByte}) {
    WebSocketSession ws(&config);
    Bytes wire;
    FeedIn(ws, B(Request("/mqtt", "mqtt", filler)), mode, &wire);
    EXPECT_EQ(ws.http_status(), 431);
    EXPECT_EQ(ws.state(), WsState::kClosed);
  }
  {  // an endless header line never completes: refused once the limit is reached
    WebSocketSession ws(&config);
    Bytes app, wire;
    for (int i = 0; i < 10 && ws.state() == WsState::kHandshake; ++i) {
      ws.Feed(B(std::string(200, 'a')), &app, &wire);
    }
    EXPECT_EQ(ws.http_status(), 431);
  }
}

TEST(WebSocketHandshake, FramesRightAfterTheRequestAreDelivered) {
  for (Mode mode : kAllModes) {
    WebSocketConfig config;
    WebSocketSession ws(&config);
    Bytes wire;
    const Bytes in = Cat({B(Request()), ClientFrame(2, B("\x10\x0c\x00\x04MQTT"sv))});
    const Bytes app = FeedIn(ws, in, mode, &wire);
    EXPECT_EQ(S(app), "\x10\x0c\x00\x04MQTT"sv);
    EXPECT_EQ(ws.state(), WsState::kOpen);
  }
}

// --- Framing. ---

TEST(WebSocketFrames, PayloadsOfEveryLengthEncoding) {
  for (size_t n : {0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001}) {
    for (Mode mode : kAllModes) {
      if (n > 1000 && (mode == Mode::kByteByByte || mode == Mode::kInPlaceBytewise)) continue;
      Open o;
      const Bytes payload = Random(n, static_cast<uint32_t>(n));
      const Bytes app =
          FeedIn(o.ws, ClientFrame(2, payload, true, true, 0, -1, n % 5), mode, &o.wire);
      EXPECT_EQ(app, payload) << n;
      EXPECT_TRUE(o.wire.empty());
      EXPECT_EQ(o.ws.state(), WsState::kOpen);
    }
  }
}

// MQTT packets split across frames, several in one frame, and fragmented messages with a ping in
// the middle: the output is the concatenated payload whatever the chunking.
TEST(WebSocketFrames, SplitAndCoalescedPacketsFormOneStream) {
  const Bytes a = Random(300, 1), b = Random(5, 2), c = Random(1000, 3), d = Random(64, 4);
  const Bytes in = Cat({
      ClientFrame(2, Cat({a, b}), true, true, 0, -1, 1),  // two "packets" in one frame
      ClientFrame(2, Bytes(c.begin(), c.begin() + 10), false, true, 0, -1, 2),  // fragmented...
      ClientFrame(9, B("are you there"), true, true, 0, -1, 3),  // a ping between fragments
      ClientFrame(0, Bytes(c.begin() + 10, c.begin() + 999), false, true, 0, -1, 4),
      ClientFrame(0, Bytes(), false, true, 0, -1, 5),  // an empty continuation
      ClientFrame(0, Bytes(c.begin() + 999, c.end()), true, true, 0, -1, 6),  // ...message end
      ClientFrame(10, B("unsolicited pong"), true, true, 0, -1, 7),
      ClientFrame(2, d, true, true, 0, 8, 8),  // a 64-bit length for 64 bytes is refused...
  });
  const Bytes expected = Cat({a, b, c});
  for (Mode mode : kAllModes) {
    Open o;
    const Bytes app = FeedIn(o.ws, in, mode, &o.wire);
    EXPECT_EQ(app, expected);
    const std::vector<Frame> out = ServerFrames(o.wire);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].opcode, 0xA);  // pong with the ping's payload
    EXPECT_EQ(S(out[0].payload), "are you there");
    EXPECT_EQ(out[1].opcode, 0x8);  // ...as a non-minimal length
    EXPECT_EQ(CodeOf(out[1]), kWsCloseProtocolError);
  }
}

TEST(WebSocketFrames, LargeFrameWith64BitLength) {
  WebSocketConfig config;
  config.max_frame_bytes = 4 << 20;
  Open o(config);
  const Bytes payload = Random((3 << 20) + 5, 11);
  const Bytes frame = ClientFrame(2, payload);
  ASSERT_EQ(frame[1], 0x80 | 127);
  Bytes app;
  for (size_t i = 0; i < frame.size(); i += 4093) {  // odd chunks: every mask alignment
    const size_t n = std::min<size_t>(4093, frame.size() - i);
    o.ws.Feed(std::span(frame).subspan(i, n), &app, &o.wire);
  }
  EXPECT_TRUE(app == payload);
  EXPECT_EQ(o.ws.state(), WsState::kOpen);
}

struct FailCase {
  const char* name;
  Bytes frame;
  uint16_t code;
  std::string app = "ok";  // what is delivered before the violation
};

TEST(WebSocketFrames, ProtocolViolationsCloseWithTheirCode) {
  const FailCase cases[] = {
      {"unmasked", ClientFrame(2, B("abc"), true, false), kWsCloseProtocolError},
      {"rsv1", ClientFrame(2, B("abc"), true, true, 4), kWsCloseProtocolError},
      {"rsv3", ClientFrame(2, B("abc"), true, true, 1), kWsCloseProtocolError},
      {"opcode 3", ClientFrame(3, B("abc")), kWsCloseProtocolError},
      {"opcode 0xB", ClientFrame(0xB, B("abc")), kWsCloseProtocolError},
      {"text", ClientFrame(1, B("hello")), kWsCloseUnsupportedData},
      {"ping > 125", ClientFrame(9, Bytes(126, 'p')), kWsCloseProtocolError},
      {"fragmented ping", ClientFrame(9, B("p"), false), kWsCloseProtocolError},
      {"fragmented close", ClientFrame(8, ClosePayload(1000), false), kWsCloseProtocolError},
      {"orphan continuation", ClientFrame(0, B("abc")), kWsCloseProtocolError},
      {"binary inside a message", Cat({ClientFrame(2, B("a"), false), ClientFrame(2, B("b"))}),
       kWsCloseProtocolError, "oka"},
      {"16-bit length < 126", ClientFrame(2, B("abc"), true, true, 0, 2), kWsCloseProtocolError},
      {"64-bit length < 65536", ClientFrame(2, B("abc"), true, true, 0, 8), kWsCloseProtocolError},
      {"64-bit length top bit", ClientHeader(2, uint64_t{1} << 63), kWsCloseProtocolError},
      {"frame too big", ClientHeader(2, uint64_t{1} << 40), kWsCloseMessageTooBig},
      {"close of 1 byte", ClientFrame(8, B("x")), kWsCloseProtocolError},
      {"close code 1005", ClientFrame(8, ClosePayload(1005)), kWsCloseProtocolError},
      {"close code 999", ClientFrame(8, ClosePayload(999)), kWsCloseProtocolError},
      {"close code 2000", ClientFrame(8, ClosePayload(2000)), kWsCloseProtocolError},
      {"close code 5000", ClientFrame(8, ClosePayload(5000)), kWsCloseProtocolError},
      {"close reason not UTF-8", ClientFrame(8, ClosePayload(1000, "\xC0\xAF")),
       kWsCloseInvalidPayload},
      {"close reason surrogate", ClientFrame(8, ClosePayload(1000, "\xED\xA0\x80")),
       kWsCloseInvalidPayload},
  };
  for (const FailCase& c : cases) {
    for (Mode mode : {Mode::kAllAtOnce, Mode::kByteByByte, Mode::kInPlace}) {
      Open o;
      // Valid data before the violation is still delivered; nothing after it.
      const Bytes in = Cat({ClientFrame(2, B("ok")), c.frame, ClientFrame(2, B("late"))});
      const Bytes app = FeedIn(o.ws, in, mode, &o.wire);
      EXPECT_EQ(S(app), c.app) << c.name;
      EXPECT_EQ(o.ws.state(), WsState::kClosed) << c.name;
      EXPECT_FALSE(o.ws.error().empty()) << c.name;
      EXPECT_EQ(o.ws.close_code(), c.code) << c.name;
      const std::vector<Frame> out = ServerFrames(o.wire);
      ASSERT_EQ(out.size(), 1u) << c.name;
      EXPECT_EQ(out[0].opcode, 8) << c.name;
      EXPECT_EQ(CodeOf(out[0]), c.code) << c.name;
    }
  }
}

TEST(WebSocketFrames, FragmentedMessageLimit) {
  WebSocketConfig config;
  config.max_frame_bytes = 100;
  config.max_message_bytes = 150;
  Open o(config);
  Bytes app;
  o.ws.Feed(Cat({ClientFrame(2, Bytes(100, 1), false), ClientFrame(0, Bytes(50, 2), false)}), &app,
            &o.wire);
  EXPECT_EQ(app.size(), 150u);
  EXPECT_EQ(o.ws.state(), WsState::kOpen);
  o.ws.Feed(ClientFrame(0, Bytes(1, 3)), &app, &o.wire);
  EXPECT_EQ(o.ws.state(), WsState::kClosed);
  EXPECT_EQ(o.ws.close_code(), kWsCloseMessageTooBig);
  // A new message starts counting from zero.
  Open fresh(config);
  fresh.ws.Feed(Cat({ClientFrame(2, Bytes(100, 1)), ClientFrame(2, Bytes(100, 1))}), &app,
                &fresh.wire);
  EXPECT_EQ(fresh.ws.state(), WsState::kOpen);
  fresh.ws.Feed(ClientFrame(2, Bytes(101, 1)), &app, &fresh.wire);
  EXPECT_EQ(fresh.ws.close_code(), kWsCloseMessageTooBig);
}

TEST(WebSocketFrames, PingIsAnsweredAndPongIgnored) {
  Open o;
  Bytes app;
  o.ws.Feed(
      Cat({ClientFrame(9, Bytes()), ClientFrame(9, Bytes(125, 'z')), ClientFrame(10, B("p"))}),
      &app, &o.wire);
  const std::vector<Frame> out = ServerFrames(o.wire);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].opcode, 0xA);
  EXPECT_TRUE(out[0].payload.empty());
  EXPECT_EQ(out[1].payload, Bytes(125, 'z'));
  EXPECT_TRUE(app.empty());
}

// --- The close handshake. ---

TEST(WebSocketClose, PeerClosesFirstAndItsCodeIsEchoed) {
  for (uint16_t code : {1000, 1001, 1003, 1011, 3000, 4999}) {
    Open o;
    Bytes app;
    const WsFeedResult r =
        o.ws.Feed(ClientFrame(8, ClosePayload(code, "bye \xE2\x9C\x93")), &app, &o.wire);
    EXPECT_EQ(r.state, WsState::kClosed);
    EXPECT_EQ(o.ws.close_code(), code);
    EXPECT_TRUE(o.ws.error().empty());
    const std::vector<Frame> out = ServerFrames(o.wire);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(CodeOf(out[0]), code);
    // Closed: everything is ignored and nothing is produced.
    o.wire.clear();
    o.ws.Feed(ClientFrame(2, B("x")), &app, &o.wire);
    o.ws.Wrap(B("y"), &o.wire);
    o.ws.Close(1000, "", &o.wire);
    EXPECT_TRUE(app.empty());
    EXPECT_TRUE(o.wire.empty());
  }
}

TEST(WebSocketClose, CloseWithoutCodeIsAnsweredWithoutCode) {
  Open o;
  Bytes app;
  o.ws.Feed(ClientFrame(8, Bytes()), &app, &o.wire);
  EXPECT_EQ(o.ws.state(), WsState::kClosed);
  EXPECT_EQ(o.ws.close_code(), kWsCloseNoStatus);
  EXPECT_EQ(o.wire, (Bytes{0x88, 0x00}));
}

TEST(WebSocketClose, ServerClosesFirstThenWaitsForThePeer) {
  Open o;
  o.ws.Close(kWsCloseGoingAway, "shutting down", &o.wire);
  EXPECT_EQ(o.ws.state(), WsState::kClosing);
  std::vector<Frame> out = ServerFrames(o.wire);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(CodeOf(out[0]), kWsCloseGoingAway);
  EXPECT_EQ(S(out[0].payload, 2), "shutting down");
  // While closing: data is discarded, pings are not answered, no second close is sent.
  o.wire.clear();
  Bytes app;
  o.ws.Feed(Cat({ClientFrame(2, B("late data")), ClientFrame(9, B("ping"))}), &app, &o.wire);
  o.ws.Wrap(B("more"), &o.wire);
  o.ws.Close(1000, "", &o.wire);
  EXPECT_TRUE(app.empty());
  EXPECT_TRUE(o.wire.empty());
  EXPECT_EQ(o.ws.state(), WsState::kClosing);
  o.ws.Feed(ClientFrame(8, ClosePayload(1001)), &app, &o.wire);
  EXPECT_EQ(o.ws.state(), WsState::kClosed);
  EXPECT_EQ(o.ws.close_code(), kWsCloseGoingAway);
  EXPECT_TRUE(o.wire.empty());  // the handshake is complete: nothing more to send
}

TEST(WebSocketClose, CloseBeforeTheUpgradeSendsNothing) {
  WebSocketConfig config;
  WebSocketSession ws(&config);
  Bytes wire;
  ws.Close(1000, "", &wire);
  EXPECT_EQ(ws.state(), WsState::kClosed);
  EXPECT_TRUE(wire.empty());
}

TEST(WebSocketClose, LongReasonIsTruncatedToFitAControlFrame) {
  Open o;
  o.ws.Close(1000, std::string(300, 'r'), &o.wire);
  const std::vector<Frame> out = ServerFrames(o.wire);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].payload.size(), 125u);
}

TEST(WebSocketSession, MovesMidFrameWithItsState) {
  Open o;
  const Bytes frame = ClientFrame(2, Random(1000, 8));
  Bytes app;
  o.ws.Feed(std::span(frame).first(501), &app, &o.wire);  // header + part of the payload
  WebSocketSession moved(std::move(o.ws));
  moved.Feed(std::span(frame).subspan(501), &app, &o.wire);
  EXPECT_EQ(app, Random(1000, 8));
  EXPECT_EQ(moved.state(), WsState::kOpen);
  EXPECT_EQ(moved.subprotocol(), "mqtt");
}

// --- Output. ---

TEST(WebSocketWrap, BinaryFramesWithEveryLengthEncoding) {
  for (size_t n : {0, 1, 125, 126, 65535, 65536, 200000}) {
    Open o;
    const Bytes payload = Random(n, 5);
    o.ws.Wrap(payload, &o.wire);
    const size_t header = n < 126 ? 2 : n <= 65535 ? 4 : 10;
    ASSERT_EQ(o.wire.size(), header + n);
    const std::vector<Frame> out = ServerFrames(o.wire);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].opcode, 2);
    EXPECT_TRUE(out[0].fin);
    EXPECT_TRUE(out[0].payload == payload);
  }
}

TEST(WebSocketWrap, NothingBeforeTheUpgrade) {
  WebSocketConfig config;
  WebSocketSession ws(&config);
  Bytes wire;
  ws.Wrap(B("x"), &wire);
  ws.Ping(B("x"), &wire);
  EXPECT_TRUE(wire.empty());
}

TEST(WebSocketWrap, PingCarriesItsPayload) {
  Open o;
  o.ws.Ping(B("keepalive"), &o.wire);
  const std::vector<Frame> out = ServerFrames(o.wire);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].opcode, 9);
  EXPECT_EQ(S(out[0].payload), "keepalive");
}

TEST(WebSocketWrap, EncodeFrameHeaderUsesTheShortestForm) {
  uint8_t h[10];
  EXPECT_EQ(WebSocketSession::EncodeFrameHeader(2, true, 125, h), 2u);
  EXPECT_EQ(h[0], 0x82);
  EXPECT_EQ(h[1], 125);
  EXPECT_EQ(WebSocketSession::EncodeFrameHeader(0, false, 126, h), 4u);
  EXPECT_EQ(h[0], 0x00);
  EXPECT_EQ(WebSocketSession::EncodeFrameHeader(2, true, uint64_t{1} << 32, h), 10u);
  EXPECT_EQ(h[1], 127);
  EXPECT_EQ(h[5], 1);
}

}  // namespace
}  // namespace ringmq::net
