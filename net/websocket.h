// WebSocketSession: the server side of one RFC 6455 WebSocket connection as a pure, I/O-free state
// machine. The shard feeds it the bytes it received (after TLS, for wss://) and sends what it
// produces; it never reads, writes or blocks, and it knows nothing of MQTT.
//
//   WebSocketSession ws(&config);               // config outlives the session
//   on receive:  WsFeedResult r = ws.Feed(bytes, &conn.in, &conn.out);
//                // r.app_bytes of MQTT stream were appended to conn.in; conn.out may have gained
//                // the 101 answer, a pong or a close frame; when r.state == kClosed: flush, close
//   on output:   ws.Wrap(mqtt_bytes, &conn.out);   // one binary frame per loop turn
//
// What is implemented:
//   - The HTTP/1.1 upgrade (section 4.2): GET, HTTP/1.1+, Host, `Upgrade: websocket`, `Connection`
//     containing the token `upgrade`, `Sec-WebSocket-Version: 13`, a Sec-WebSocket-Key of 16
//     base64 bytes (answered with SHA-1 + base64, OpenSSL), the path (without query) in the
//     configured list, and subprotocol `mqtt` (preferred) or `mqttv3.1`. Other offered subprotocols
//     are refused (400); no Sec-WebSocket-Protocol at all is accepted unless
//     `require_subprotocol`. Failures are answered 400 / 404 / 426 (with Sec-WebSocket-Version:
//     13) / 431 (header block over `max_handshake_bytes`), then the session is kClosed. No
//     extension is negotiated. The request line and headers are parsed by http-parser (Debian's
//     libhttp-parser, also used by rest/); this file only finds the end of the header block.
//   - Framing (section 5): binary and continuation frames; every client frame must be masked
//     (1002); RSV bits must be 0 (1002); unknown opcodes (1002); text frames are refused (1003);
//     control frames must be <= 125 bytes and unfragmented (1002); lengths must use the minimal
//     encoding and a 64-bit length must have its top bit clear (1002); a frame or a fragmented
//     message larger than the configured limit is refused (1009); a close frame with a 1-byte
//     payload, an invalid code or a non-UTF-8 reason is a protocol error (1002 / 1007). Ping is
//     answered with a pong carrying the same payload; pong is ignored. Server frames are never
//     masked.
//   - The close handshake (section 7): a close from the peer is echoed with its code and the
//     session is kClosed (the server closes TCP first, section 7.1.1). Close() sends one and waits
//     in kClosing for the peer's; data received meanwhile is discarded. A protocol error sends a
//     close frame with its code and ends at once (kClosed, "fail the WebSocket connection").
//   - The application stream is the concatenation of all binary payloads: message and frame
//     boundaries carry no meaning for MQTT (MQTT-6.0.0-2/-3), so an MQTT packet may span frames
//     and a frame may hold many packets; nothing is reassembled or buffered here.
//
// Why the framing is hand-written rather than wslay (Debian's libwslay, considered first):
// wslay's event API pulls input through a recv callback into its own 4 KiB buffer (one more copy
// of every byte), unmasks byte by byte (`buf[i] ^= mask[off % 4]`), reassembles every message into
// a malloc'd buffer unless buffering is turned off, queues its own output through a send callback,
// and has no HTTP upgrade. The broker needs the opposite on its hot path: push-style input from
// io_uring buffers, unmasking 8 bytes at a time straight into the MQTT input buffer (or in place),
// output appended to the connection's send buffer, and no per-message allocation. The framing
// itself is ~200 lines and is fuzzed (net/fuzz/websocket_fuzz.cc).
//
// Thread-safety: a session is owned by the shard that owns its connection; not thread-safe. A
// WebSocketConfig is immutable after setup and may be shared by every shard.
// Invariants:
//   1. Feed consumes all of its input; bytes it cannot use yet (a partial frame header, a partial
//      HTTP header block) are kept inside, at most max_handshake_bytes + 14.
//   2. Every payload byte is delivered exactly once, in order: Feed never produces more
//      application bytes than it was given.
//   3. Once kClosed, Feed ignores its input and produces nothing; Wrap/Ping/Close produce nothing.
//   4. At most one close frame is ever sent.
#ifndef RINGMQ_NET_WEBSOCKET_H_
#define RINGMQ_NET_WEBSOCKET_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ringmq::net {

// Frame opcodes (RFC 6455 section 5.2), shared by the server here and ringmq-bench's client.
inline constexpr uint8_t kWsOpContinuation = 0x0;
inline constexpr uint8_t kWsOpText = 0x1;
inline constexpr uint8_t kWsOpBinary = 0x2;
inline constexpr uint8_t kWsOpClose = 0x8;
inline constexpr uint8_t kWsOpPing = 0x9;
inline constexpr uint8_t kWsOpPong = 0xA;

// XORs n payload bytes from src into dst with the 4-byte masking key (RFC 6455 section 5.3),
// starting at payload offset `offset`. Eight bytes per step; dst may alias src when dst <= src.
// Masking and unmasking are the same operation.
void WsMask(const uint8_t* src, uint8_t* dst, size_t n, const uint8_t key[4], uint64_t offset = 0);

// Close status codes of RFC 6455 section 7.4.1 that this file sends.
enum WsCloseCode : uint16_t {
  kWsCloseNormal = 1000,
  kWsCloseGoingAway = 1001,
  kWsCloseProtocolError = 1002,
  kWsCloseUnsupportedData = 1003,
  kWsCloseNoStatus = 1005,  // never sent: "the peer's close frame had no code"
  kWsCloseInvalidPayload = 1007,
  kWsClosePolicyViolation = 1008,
  kWsCloseMessageTooBig = 1009,
  kWsCloseInternalError = 1011,
};

struct WebSocketConfig {
  // Accepted request paths (exact match, query ignored).
  std::vector<std::string> paths = {"/mqtt", "/"};
  // Whether a request without Sec-WebSocket-Protocol is refused (MQTT-6.0.0-3 says clients must
  // offer "mqtt"; some old clients offer nothing).
  bool require_subprotocol = false;
  // The largest HTTP request header block (request line and headers); larger is answered 431.
  size_t max_handshake_bytes = size_t{16} * 1024;
  // The largest payload of one frame, and of one fragmented message (sum of its frames); larger
  // closes with 1009. Nothing is buffered here, so these are policy, not memory, limits.
  uint64_t max_frame_bytes = uint64_t{16} << 20;
  uint64_t max_message_bytes = uint64_t{256} << 20;
};

enum class WsState : uint8_t {
  kHandshake,  // waiting for the complete HTTP upgrade request
  kOpen,       // upgraded: data flows both ways
  kClosing,    // we sent a close frame and wait for the peer's; incoming data is discarded
  kClosed,     // done: send what was produced, then close the socket
};

struct WsFeedResult {
  size_t app_bytes = 0;  // application (MQTT) bytes produced by this call
  WsState state = WsState::kHandshake;
};

class WebSocketSession {
 public:
  // REQUIRES: *config outlives the session.
  explicit WebSocketSession(const WebSocketConfig* config) : config_(config) {}
  WebSocketSession(const WebSocketSession&) = delete;
  WebSocketSession& operator=(const WebSocketSession&) = delete;
  // Movable: a connection (with its session) may be handed to the client id's home shard.
  WebSocketSession(WebSocketSession&&) = default;
  WebSocketSession& operator=(WebSocketSession&&) = default;

  // Consumes `in` (bytes from the peer). Payload bytes are unmasked and appended to *app; bytes to
  // send (the HTTP answer, pongs, a close frame) are appended to *wire.
  // REQUIRES: app != wire; `in` does not point into *app or *wire.
  WsFeedResult Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app,
                    std::vector<uint8_t>* wire);

  // As Feed, but unmasks in place: the application bytes are written over `data` itself and are
  // `data.first(result.app_bytes)`. For input that is already a private copy (TLS plaintext).
  WsFeedResult FeedInPlace(std::span<uint8_t> data, std::vector<uint8_t>* wire);

  // Appends `app` as one unmasked, unfragmented binary frame. Nothing unless kOpen. Wrap all the
  // output of one loop turn at once: one frame header per send, not per MQTT packet.
  void Wrap(std::span<const uint8_t> app, std::vector<uint8_t>* wire) const;

  // Appends a ping carrying `payload` (truncated to 125 bytes). Nothing unless kOpen.
  void Ping(std::span<const uint8_t> payload, std::vector<uint8_t>* wire) const;

  // Starts the close handshake with `code` (1000..4999, not 1005/1006/1015) and `reason`
  // (truncated to 123 bytes): appends a close frame and enters kClosing. Before the upgrade it just
  // enters kClosed; when already closing or closed it does nothing.
  void Close(uint16_t code, std::string_view reason, std::vector<uint8_t>* wire);

  WsState state() const { return state_; }
  // The HTTP status answered to the upgrade request (101 on success), 0 while in kHandshake.
  int http_status() const { return http_status_; }
  // Why the session failed (handshake refused or protocol error), empty otherwise.
  const std::string& error() const { return error_; }
  // The close code of the close handshake: the peer's when it closed first (kWsCloseNoStatus if
  // its frame had none), ours when we closed or failed first; 0 while no close frame was seen.
  uint16_t close_code() const { return close_code_; }
  // After the upgrade: the requested path and query (without '?'), and the chosen subprotocol
  // ("mqtt", "mqttv3.1" or "" when none was offered).
  const std::string& path() const { return path_; }
  const std::string& query() const { return query_; }
  const std::string& subprotocol() const { return subprotocol_; }

  // The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 section 4.2.2).
  static std::string AcceptKey(std::string_view key);
  // Writes the header of an unmasked server frame into out[0, n) and returns n (2, 4 or 10).
  static size_t EncodeFrameHeader(uint8_t opcode, bool fin, uint64_t payload_len, uint8_t out[10]);

 private:
  // Processes framed bytes in[0, n) and writes payload to out, returning the count written.
  // `out` may alias `in` as long as out <= in (in-place unmasking only moves bytes backwards).
  size_t Frames(const uint8_t* in, size_t n, uint8_t* out, std::vector<uint8_t>* wire);
  // Consumes bytes of the upgrade request; returns how many it used (the rest are frames).
  size_t Handshake(const uint8_t* in, size_t n, std::vector<uint8_t>* wire);
  // Validates the complete request in hbuf_ and answers it.
  void Upgrade(std::vector<uint8_t>* wire);
  void Refuse(int status, std::string_view reason, std::vector<uint8_t>* wire);
  // Checks a complete frame header; false after failing the connection.
  bool StartFrame(std::vector<uint8_t>* wire);
  // Ends the current frame (payload complete); acts on a control frame.
  void EndFrame(std::vector<uint8_t>* wire);
  // Fails the connection: a close frame with `code` unless one was sent, then kClosed. Returns
  // false, for `return Fail(...)` in StartFrame.
  bool Fail(uint16_t code, std::string_view reason, std::vector<uint8_t>* wire);
  void AppendClose(uint16_t code, std::string_view reason, std::vector<uint8_t>* wire);

  const WebSocketConfig* config_;
  WsState state_ = WsState::kHandshake;
  int http_status_ = 0;
  uint16_t close_code_ = 0;
  std::string error_;
  std::string hbuf_;  // the upgrade request so far (kHandshake only; released afterwards)
  std::string path_;
  std::string query_;
  std::string subprotocol_;

  // Frame decoding.
  uint8_t header_[14];          // the frame header so far
  uint8_t header_len_ = 0;      // bytes in header_
  uint8_t header_need_ = 2;     // bytes the header has in total (known after its 2nd byte)
  bool in_payload_ = false;     // header complete, `remaining_` payload bytes to come
  uint8_t opcode_ = 0;          // of the current frame
  bool fin_ = false;            // of the current frame
  uint8_t mask_[4] = {};        // of the current frame
  uint64_t remaining_ = 0;      // payload bytes of the current frame still to come
  uint64_t payload_off_ = 0;    // payload bytes of the current frame seen so far
  bool in_message_ = false;     // a fragmented data message awaits its continuation frames
  uint64_t message_bytes_ = 0;  // payload bytes of the current data message so far
  uint8_t control_[125];        // the unmasked payload of the current control frame
  uint8_t control_len_ = 0;
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_WEBSOCKET_H_
