// WebSocket client framing of the load generator (RFC 6455). See ws_client.h.
#include "tools/bench/ws_client.h"

#include <openssl/evp.h>
#include <strings.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "net/websocket.h"

namespace ringmq::bench {

namespace {

constexpr size_t kMaxAnswerBytes = 16 * 1024;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Whether the comma-separated list `value` holds `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (IEquals(Trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

WsClient::WsClient(std::string host, std::string path, uint64_t seed)
    : host_(std::move(host)), path_(std::move(path)) {
  seed += 0x9E3779B97F4A7C15;  // splitmix64: neighbouring seeds give unrelated keys
  seed = (seed ^ (seed >> 30)) * 0xBF58476D1CE4E5B9;
  seed = (seed ^ (seed >> 27)) * 0x94D049BB133111EB;
  rng_ = (seed ^ (seed >> 31)) | 1;
}

void WsClient::NextKey(uint8_t key[4]) {
  rng_ ^= rng_ << 13;  // xorshift64
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const uint32_t k = static_cast<uint32_t>(rng_ >> 32);
  std::memcpy(key, &k, 4);
}

size_t WsClient::EncodeHeader(uint8_t opcode, uint64_t payload_len, const uint8_t key[4],
                              uint8_t out[14]) {
  out[0] = static_cast<uint8_t>(0x80 | opcode);
  size_t n = 2;
  if (payload_len < 126) {
    out[1] = static_cast<uint8_t>(0x80 | payload_len);
  } else if (payload_len <= 0xFFFF) {
    out[1] = 0x80 | 126;
    out[2] = static_cast<uint8_t>(payload_len >> 8);
    out[3] = static_cast<uint8_t>(payload_len);
    n = 4;
  } else {
    out[1] = 0x80 | 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_len >> (56 - 8 * i));
    n = 10;
  }
  std::memcpy(out + n, key, 4);
  return n + 4;
}

void WsClient::AppendFrame(uint8_t opcode, std::span<const uint8_t> payload,
                           std::vector<uint8_t>* wire) {
  uint8_t key[4];
  NextKey(key);
  uint8_t header[14];
  const size_t h = EncodeHeader(opcode, payload.size(), key, header);
  const size_t base = wire->size();
  wire->resize(base + h + payload.size());
  std::memcpy(wire->data() + base, header, h);
  net::WsMask(payload.data(), wire->data() + base + h, payload.size(), key);
}

void WsClient::Start(std::vector<uint8_t>* wire) {
  uint8_t raw[16];
  for (size_t i = 0; i < sizeof(raw); i += 4) NextKey(raw + i);
  char b64[25];
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64), raw, sizeof(raw));
  key_.assign(b64, 24);
  const std::string request = "GET " + path_ + " HTTP/1.1\r\nHost: " + host_ +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: " +
                              key_ +
                              "\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
  wire->insert(wire->end(), request.begin(), request.end());
  state_ = State::kHandshake;
}

bool WsClient::Fail(std::string why) {
  if (state_ != State::kFailed) {
    state_ = State::kFailed;
    error_ = std::move(why);
  }
  return false;
}

bool WsClient::CheckAnswer(const std::string& head) {
  std::string_view rest(head);
  size_t eol = rest.find("\r\n");
  const std::string_view status = rest.substr(0, eol);
  if (status.size() < 12 || status.substr(0, 5) != "HTTP/" || status.substr(8, 4) != " 101") {
    return Fail("websocket upgrade refused: " + std::string(status));
  }
  bool upgrade = false, connection = false, accept = false;
  std::string protocol;
  const std::string expected_accept = net::WebSocketSession::AcceptKey(key_);
  while (eol != std::string_view::npos) {
    rest.remove_prefix(eol + 2);
    eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = Trim(line.substr(0, colon));
    const std::string_view value = Trim(line.substr(colon + 1));
    if (IEquals(name, "upgrade")) upgrade = IEquals(value, "websocket");
    if (IEquals(name, "connection")) connection = HasToken(value, "upgrade");
    if (IEquals(name, "sec-websocket-accept")) accept = value == expected_accept;
    if (IEquals(name, "sec-websocket-protocol")) protocol = value;
  }
  if (!upgrade || !connection) return Fail("websocket answer lacks Upgrade/Connection");
  if (!accept) return Fail("websocket answer has a wrong Sec-WebSocket-Accept");
  if (protocol != "mqtt") return Fail("websocket answer chose subprotocol '" + protocol + "'");
  state_ = State::kOpen;
  return true;
}

size_t WsClient::Handshake(const uint8_t* in, size_t n) {
  // Searching from 3 bytes before the old end finds a "\r\n\r\n" split across calls.
  const size_t from = hbuf_.size() < 3 ? 0 : hbuf_.size() - 3;
  const size_t old = hbuf_.size();
  hbuf_.append(reinterpret_cast<const char*>(in), n);
  const size_t end = hbuf_.find("\r\n\r\n", from);
  if (end == std::string::npos) {
    if (hbuf_.size() > kMaxAnswerBytes) Fail("websocket answer too long");
    return n;
  }
  const size_t used = end + 4 - old;
  hbuf_.resize(end + 2);
  CheckAnswer(hbuf_);
  std::string().swap(hbuf_);
  return used;
}

bool WsClient::StartFrame() {
  const uint8_t b0 = header_[0], b1 = header_[1];
  if (b0 & 0x70) return Fail("websocket: RSV bits set by the server");
  if (b1 & 0x80) return Fail("websocket: masked frame from the server");
  fin_ = b0 & 0x80;
  opcode_ = b0 & 0x0F;
  const uint8_t len7 = b1 & 0x7F;
  if (len7 < 126) {
    remaining_ = len7;
  } else if (len7 == 126) {
    remaining_ = uint64_t{header_[2]} << 8 | header_[3];
  } else {
    remaining_ = 0;
    for (int i = 0; i < 8; ++i) remaining_ = remaining_ << 8 | header_[2 + i];
    if (remaining_ >> 63) return Fail("websocket: 64-bit length with the top bit set");
  }
  switch (opcode_) {
    case net::kWsOpBinary:
      if (in_message_) return Fail("websocket: new message inside a fragmented one");
      in_message_ = !fin_;
      break;
    case net::kWsOpContinuation:
      if (!in_message_) return Fail("websocket: continuation without a message");
      in_message_ = !fin_;
      break;
    case net::kWsOpText:
      return Fail("websocket: text frame from the server");
    case net::kWsOpClose:
    case net::kWsOpPing:
    case net::kWsOpPong:
      if (!fin_ || remaining_ > sizeof(control_)) {
        return Fail("websocket: fragmented or oversized control frame");
      }
      control_len_ = 0;
      break;
    default:
      return Fail("websocket: unknown opcode");
  }
  in_payload_ = true;
  return true;
}

void WsClient::EndFrame(std::vector<uint8_t>* wire) {
  in_payload_ = false;
  header_len_ = 0;
  header_need_ = 2;
  if (opcode_ == net::kWsOpPing) {
    AppendFrame(net::kWsOpPong, std::span<const uint8_t>(control_, control_len_), wire);
  } else if (opcode_ == net::kWsOpClose) {
    if (control_len_ == 1) {
      Fail("websocket: close frame with a 1-byte payload");
      return;
    }
    close_code_ = control_len_ >= 2 ? static_cast<uint16_t>(control_[0] << 8 | control_[1]) : 1005;
    // Echo the code (RFC 6455 section 5.5.1), then nothing more is sent or read.
    AppendFrame(net::kWsOpClose,
                std::span<const uint8_t>(control_, std::min<size_t>(control_len_, 2)), wire);
    state_ = State::kClosed;
  }
}

void WsClient::Frames(const uint8_t* in, size_t n, std::vector<uint8_t>* app,
                      std::vector<uint8_t>* wire) {
  size_t i = 0;
  while (state_ == State::kOpen) {
    if (!in_payload_) {
      if (i == n) return;
      header_[header_len_++] = in[i++];
      if (header_len_ == 2) {
        const uint8_t len7 = header_[1] & 0x7F;
        header_need_ = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
      }
      if (header_len_ < header_need_) continue;
      if (!StartFrame()) return;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
    if (opcode_ == net::kWsOpBinary || opcode_ == net::kWsOpContinuation) {
      app->insert(app->end(), in + i, in + i + take);
    } else {
      std::memcpy(control_ + control_len_, in + i, take);
      control_len_ = static_cast<uint8_t>(control_len_ + take);
    }
    i += take;
    remaining_ -= take;
    if (remaining_ != 0) return;  // input exhausted inside the payload
    EndFrame(wire);
  }
}

bool WsClient::Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app,
                    std::vector<uint8_t>* wire) {
  const uint8_t* p = in.data();
  size_t n = in.size();
  if (state_ == State::kHandshake) {
    const size_t used = Handshake(p, n);
    p += used;
    n -= used;
  }
  if (state_ == State::kOpen) Frames(p, n, app, wire);
  if (state_ == State::kFailed) return false;
  if (state_ == State::kClosed && close_code_ != 0 && close_code_ != 1000 && close_code_ != 1001 &&
      close_code_ != 1005) {
    error_ = "websocket closed by the server with code " + std::to_string(close_code_);
    return false;
  }
  return true;
}

void WsClient::Wrap(std::span<const uint8_t> app, std::vector<uint8_t>* wire) {
  if (state_ == State::kOpen) AppendFrame(net::kWsOpBinary, app, wire);
}

void WsClient::Ping(std::span<const uint8_t> payload, std::vector<uint8_t>* wire) {
  if (state_ == State::kOpen)
    AppendFrame(net::kWsOpPing, payload.first(std::min<size_t>(payload.size(), 125)), wire);
}

void WsClient::Close(uint16_t code, std::vector<uint8_t>* wire) {
  if (state_ != State::kOpen) return;
  const uint8_t payload[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
  AppendFrame(net::kWsOpClose, payload, wire);
  state_ = State::kClosed;
}

}  // namespace ringmq::bench
