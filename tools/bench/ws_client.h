// WsClient: the client side of one RFC 6455 WebSocket connection for the load generator, as an
// I/O-free state machine (the server side is net/websocket.h). It writes the HTTP upgrade request
// (subprotocol `mqtt`), checks the 101 answer (status, Upgrade, Sec-WebSocket-Accept, the chosen
// subprotocol), masks every frame it sends and parses the server's frames however the stream is
// split: binary and continuation payloads become the application stream, pings are answered with
// a pong carrying the same payload, pongs are ignored, a close frame is echoed once.
//
//   WsClient ws("host:port", "/mqtt", seed);
//   ws.Start(&wire);                       // the upgrade request
//   ws.Feed(bytes, &app, &wire);           // false on a protocol error (see error())
//   ws.Wrap(mqtt_bytes, &wire);            // one masked binary frame per call (per loop turn)
//
// Masking keys come from a xorshift generator seeded by the caller, not from a cryptographic
// source as RFC 6455 section 5.3 asks: the keys only have to defeat proxy cache poisoning, which a
// load generator talking to its own broker does not face, and the bench must stay cheap per frame.
// Thread-safety: one WsClient per connection, used by one thread.
// Invariants:
//   1. Feed consumes all of its input; a partial frame header or HTTP answer is kept inside.
//   2. Every payload byte of a data frame is appended to *app exactly once, in order.
//   3. At most one close frame is sent; once closed or failed, Feed, Wrap and Ping produce nothing.
#ifndef RINGMQ_TOOLS_BENCH_WS_CLIENT_H_
#define RINGMQ_TOOLS_BENCH_WS_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ringmq::bench {

class WsClient {
 public:
  enum class State : uint8_t {
    kIdle,       // Start not called
    kHandshake,  // upgrade request sent, waiting for the complete answer
    kOpen,       // data flows
    kClosed,     // a close frame was received (and echoed) or sent
    kFailed,     // protocol error (error() says which)
  };

  // `host` is the Host header value ("127.0.0.1:8083"); `path` the request target ("/mqtt").
  WsClient(std::string host, std::string path, uint64_t seed);

  // Appends the HTTP upgrade request to *wire and enters kHandshake.
  void Start(std::vector<uint8_t>* wire);
  // Consumes server bytes: payload of data frames is appended to *app, replies (pong, close echo)
  // to *wire. Returns false once failed, or when the server closed with a code other than 1000,
  // 1001 or none (error() says which); true otherwise. REQUIRES: app != wire.
  bool Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app, std::vector<uint8_t>* wire);
  // Appends `app` as one masked binary frame (FIN set). Nothing unless kOpen.
  void Wrap(std::span<const uint8_t> app, std::vector<uint8_t>* wire);
  // Appends a masked ping (payload truncated to 125 bytes). Nothing unless kOpen.
  void Ping(std::span<const uint8_t> payload, std::vector<uint8_t>* wire);
  // Appends a masked close frame with `code` and enters kClosed. Nothing unless kOpen.
  void Close(uint16_t code, std::vector<uint8_t>* wire);

  State state() const { return state_; }
  bool open() const { return state_ == State::kOpen; }
  const std::string& error() const { return error_; }
  // The close code the server sent (1005 when its close frame had none), 0 if none arrived.
  uint16_t close_code() const { return close_code_; }
  // The Sec-WebSocket-Key sent by Start (base64 of 16 random bytes).
  const std::string& key() const { return key_; }

  // Writes the header of a masked client frame (FIN set) into out[0, n) and returns n: 6, 8 or
  // 14 bytes (2/4/10 of header and length, then the masking key).
  static size_t EncodeHeader(uint8_t opcode, uint64_t payload_len, const uint8_t key[4],
                             uint8_t out[14]);

 private:
  void AppendFrame(uint8_t opcode, std::span<const uint8_t> payload, std::vector<uint8_t>* wire);
  void NextKey(uint8_t key[4]);
  // Consumes bytes of the HTTP answer; returns how many it used (the rest are frames).
  size_t Handshake(const uint8_t* in, size_t n);
  bool CheckAnswer(const std::string& head);
  // Processes frame bytes.
  void Frames(const uint8_t* in, size_t n, std::vector<uint8_t>* app, std::vector<uint8_t>* wire);
  bool StartFrame();
  void EndFrame(std::vector<uint8_t>* wire);
  bool Fail(std::string why);

  std::string host_;
  std::string path_;
  uint64_t rng_;
  std::string key_;
  State state_ = State::kIdle;
  std::string error_;
  uint16_t close_code_ = 0;
  std::string hbuf_;  // the HTTP answer so far

  // Frame decoding.
  uint8_t header_[10];
  uint8_t header_len_ = 0;
  uint8_t header_need_ = 2;
  bool in_payload_ = false;
  uint8_t opcode_ = 0;
  bool fin_ = false;
  uint64_t remaining_ = 0;
  bool in_message_ = false;  // a fragmented data message awaits its continuation frames
  uint8_t control_[125];
  uint8_t control_len_ = 0;
};

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_WS_CLIENT_H_
