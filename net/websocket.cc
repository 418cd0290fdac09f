#include "net/websocket.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string_view>
#include <utility>

#include "base/utf8.h"
#include "net/http_head.h"

namespace ringmq::net {
namespace {

constexpr size_t kMaxControlPayload = 125;

bool ValidCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the comma-separated list `list` has `token` (compared case-insensitively, or exactly).
bool HasToken(std::string_view list, std::string_view token, bool ignore_case) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = Trim(list.substr(0, comma));
    if (ignore_case ? EqualsNoCase(item, token) : item == token) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

const char* StatusText(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Error";
  }
}

void Append(std::vector<uint8_t>* out, std::string_view s) {
  out->insert(out->end(), s.begin(), s.end());
}

}  // namespace

// XORs n payload bytes from src into dst with the 4-byte masking key, starting at payload offset
// `offset`. Eight bytes per step; dst may alias src when dst <= src (each 8-byte store ends at
// or before the start of the next load).
void WsMask(const uint8_t* src, uint8_t* dst, size_t n, const uint8_t key[4], uint64_t offset) {
  uint8_t k[8];
  for (size_t j = 0; j < 8; ++j) k[j] = key[(offset + j) & 3];
  uint64_t m;
  std::memcpy(&m, k, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= m;
    std::memcpy(dst + i, &v, 8);
  }
  for (; i < n; ++i) dst[i] = src[i] ^ k[i & 3];
}

std::string WebSocketSession::AcceptKey(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input;
  input.reserve(key.size() + kGuid.size());
  input.append(key).append(kGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &digest_len, EVP_sha1(), nullptr) != 1) {
    return "";
  }
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, digest, static_cast<int>(digest_len));
  return std::string(reinterpret_cast<const char*>(b64), static_cast<size_t>(n));
}

size_t WebSocketSession::EncodeFrameHeader(uint8_t opcode, bool fin, uint64_t payload_len,
                                           uint8_t out[10]) {
  out[0] = static_cast<uint8_t>((fin ? 0x80 : 0) | (opcode & 0x0F));
  if (payload_len < 126) {
    out[1] = static_cast<uint8_t>(payload_len);
    return 2;
  }
  if (payload_len <= 0xFFFF) {
    out[1] = 126;
    out[2] = static_cast<uint8_t>(payload_len >> 8);
    out[3] = static_cast<uint8_t>(payload_len);
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<uint8_t>(payload_len >> (56 - 8 * i));
  return 10;
}

WsFeedResult WebSocketSession::Feed(std::span<const uint8_t> in, std::vector<uint8_t>* app,
                                    std::vector<uint8_t>* wire) {
  assert(app != wire);
  size_t used = 0;
  if (state_ == WsState::kHandshake) used = Handshake(in.data(), in.size(), wire);
  size_t produced = 0;
  if ((state_ == WsState::kOpen || state_ == WsState::kClosing) && used < in.size()) {
    const size_t at = app->size();
    app->resize(at + (in.size() - used));
    produced = Frames(in.data() + used, in.size() - used, app->data() + at, wire);
    app->resize(at + produced);
  }
  return {produced, state_};
}

WsFeedResult WebSocketSession::FeedInPlace(std::span<uint8_t> data, std::vector<uint8_t>* wire) {
  size_t used = 0;
  if (state_ == WsState::kHandshake) used = Handshake(data.data(), data.size(), wire);
  size_t produced = 0;
  if ((state_ == WsState::kOpen || state_ == WsState::kClosing) && used < data.size()) {
    produced = Frames(data.data() + used, data.size() - used, data.data(), wire);
  }
  return {produced, state_};
}

void WebSocketSession::Wrap(std::span<const uint8_t> app, std::vector<uint8_t>* wire) const {
  if (state_ != WsState::kOpen) return;
  uint8_t header[10];
  const size_t h = EncodeFrameHeader(kWsOpBinary, true, app.size(), header);
  wire->reserve(wire->size() + h + app.size());
  wire->insert(wire->end(), header, header + h);
  wire->insert(wire->end(), app.begin(), app.end());
}

void WebSocketSession::Ping(std::span<const uint8_t> payload, std::vector<uint8_t>* wire) const {
  if (state_ != WsState::kOpen) return;
  payload = payload.first(std::min(payload.size(), kMaxControlPayload));
  uint8_t header[10];
  const size_t h = EncodeFrameHeader(kWsOpPing, true, payload.size(), header);
  wire->insert(wire->end(), header, header + h);
  wire->insert(wire->end(), payload.begin(), payload.end());
}

void WebSocketSession::Close(uint16_t code, std::string_view reason, std::vector<uint8_t>* wire) {
  assert(ValidCloseCode(code));
  if (state_ == WsState::kHandshake) {
    state_ = WsState::kClosed;
    std::string().swap(hbuf_);
    return;
  }
  if (state_ != WsState::kOpen) return;
  AppendClose(code, reason, wire);
  close_code_ = code;
  state_ = WsState::kClosing;
}

// --- The upgrade request. ---

size_t WebSocketSession::Handshake(const uint8_t* in, size_t n, std::vector<uint8_t>* wire) {
  const size_t old = hbuf_.size();
  const size_t room = config_->max_handshake_bytes - std::min(old, config_->max_handshake_bytes);
  const size_t take = std::min(n, room);
  hbuf_.append(reinterpret_cast<const char*>(in), take);
  // The header block ends with an empty line: "\r\n\r\n" (or "\n\n", which http-parser accepts).
  // A terminator may straddle two Feeds, so the search starts 3 bytes before the new data.
  for (size_t i = old >= 3 ? old - 3 : 0; i < hbuf_.size(); ++i) {
    if (hbuf_[i] != '\n') continue;
    size_t end = 0;
    if (i + 1 < hbuf_.size() && hbuf_[i + 1] == '\n') {
      end = i + 2;
    } else if (i + 2 < hbuf_.size() && hbuf_[i + 1] == '\r' && hbuf_[i + 2] == '\n') {
      end = i + 3;
    }
    if (end == 0) continue;
    hbuf_.resize(end);  // what follows the request is frames (a client that did not wait)
    Upgrade(wire);
    return end - old;
  }
  if (hbuf_.size() >= config_->max_handshake_bytes) {
    Refuse(431, "request header block too large", wire);
  }
  return n;
}

void WebSocketSession::Upgrade(std::vector<uint8_t>* wire) {
  HttpHead req;
  bool complete = false;
  HttpParser::Callbacks callbacks;
  callbacks.head = [&](const HttpHead& h) {
    req = h;
    complete = true;
    return true;
  };
  HttpParser parser(SIZE_MAX, std::move(callbacks));
  const HttpParser::Result parsed = parser.Feed(hbuf_.data(), hbuf_.size());
  if (parsed == HttpParser::Result::kMalformed || !complete) {
    Refuse(400, std::string("malformed HTTP request: ") + parser.error(), wire);
    return;
  }
  if (req.method != "GET") return Refuse(400, "the upgrade request must be a GET", wire);
  if (req.http_major < 1 || (req.http_major == 1 && req.http_minor < 1)) {
    return Refuse(400, "the upgrade request must be HTTP/1.1 or later", wire);
  }
  if (!HasToken(req.Get("upgrade"), "websocket", true)) {
    return Refuse(426, "not a WebSocket upgrade request", wire);
  }
  if (!HasToken(req.Get("connection"), "upgrade", true)) {
    return Refuse(400, "Connection header without the upgrade token", wire);
  }
  if (!req.Has("host")) return Refuse(400, "no Host header", wire);
  if (req.Get("sec-websocket-version") != "13") {
    return Refuse(426, "unsupported Sec-WebSocket-Version (13 is required)", wire);
  }
  const std::string key = req.Get("sec-websocket-key");
  unsigned char raw[24];
  if (key.size() != 24 || key[21] == '=' || key.compare(22, 2, "==") != 0 ||
      EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(key.data()), 24) != 18) {
    return Refuse(400, "Sec-WebSocket-Key is not 16 base64-encoded bytes", wire);
  }
  if (!req.origin_form) return Refuse(400, "malformed request target", wire);
  std::string path = req.path;
  if (std::find(config_->paths.begin(), config_->paths.end(), path) == config_->paths.end()) {
    return Refuse(404, "no WebSocket endpoint at " + path, wire);
  }
  std::string subprotocol;
  if (req.Has("sec-websocket-protocol")) {
    const std::string offered = req.Get("sec-websocket-protocol");
    if (HasToken(offered, "mqtt", false)) {
      subprotocol = "mqtt";
    } else if (HasToken(offered, "mqttv3.1", false)) {
      subprotocol = "mqttv3.1";
    } else {
      return Refuse(400, "unsupported subprotocol (mqtt is required): " + offered, wire);
    }
  } else if (config_->require_subprotocol) {
    return Refuse(400, "no Sec-WebSocket-Protocol (mqtt is required)", wire);
  }

  std::string answer =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      AcceptKey(key) + "\r\n";
  if (!subprotocol.empty()) answer += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n";
  answer += "\r\n";
  Append(wire, answer);
  path_ = std::move(path);
  query_ = req.query;
  subprotocol_ = std::move(subprotocol);
  http_status_ = 101;
  state_ = WsState::kOpen;
  std::string().swap(hbuf_);
}

void WebSocketSession::Refuse(int status, std::string_view reason, std::vector<uint8_t>* wire) {
  std::string answer = "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) + "\r\n";
  if (status == 426) answer += "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  answer += "Connection: close\r\nContent-Type: text/plain\r\nContent-Length: " +
            std::to_string(reason.size() + 1) + "\r\n\r\n";
  answer.append(reason).append("\n");
  Append(wire, answer);
  http_status_ = status;
  error_ = reason;
  state_ = WsState::kClosed;
  std::string().swap(hbuf_);
}

// --- Frames. ---

size_t WebSocketSession::Frames(const uint8_t* in, size_t n, uint8_t* out,
                                std::vector<uint8_t>* wire) {
  size_t i = 0;
  size_t o = 0;
  while (i < n && (state_ == WsState::kOpen || state_ == WsState::kClosing)) {
    if (!in_payload_) {
      const size_t take = std::min<size_t>(header_need_ - header_len_, n - i);
      std::memcpy(header_ + header_len_, in + i, take);
      header_len_ += static_cast<uint8_t>(take);
      i += take;
      if (header_len_ < header_need_) continue;  // the rest of the header comes later
      if (!StartFrame(wire)) break;
      if (in_payload_ && remaining_ == 0) EndFrame(wire);  // an empty frame ends at once
      continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
    if (opcode_ & 0x8) {
      WsMask(in + i, control_ + control_len_, take, mask_, payload_off_);
      control_len_ += static_cast<uint8_t>(take);
    } else if (state_ == WsState::kOpen) {
      WsMask(in + i, out + o, take, mask_, payload_off_);
      o += take;
    }  // else: closing, data is discarded
    i += take;
    remaining_ -= take;
    payload_off_ += take;
    if (remaining_ == 0) EndFrame(wire);
  }
  return o;
}

bool WebSocketSession::StartFrame(std::vector<uint8_t>* wire) {
  const uint8_t b0 = header_[0];
  const uint8_t b1 = header_[1];
  if (header_need_ == 2) {
    // The first two bytes decide everything but the length; check them before waiting for more.
    opcode_ = b0 & 0x0F;
    fin_ = (b0 & 0x80) != 0;
    const uint8_t len7 = b1 & 0x7F;
    if (b0 & 0x70) return Fail(kWsCloseProtocolError, "reserved bits set", wire);
    if (opcode_ == kWsOpText) {
      return Fail(kWsCloseUnsupportedData, "text frames are not supported", wire);
    }
    if (opcode_ != kWsOpContinuation && opcode_ != kWsOpBinary && opcode_ != kWsOpClose &&
        opcode_ != kWsOpPing && opcode_ != kWsOpPong) {
      return Fail(kWsCloseProtocolError, "unknown opcode", wire);
    }
    if (!(b1 & 0x80)) return Fail(kWsCloseProtocolError, "unmasked client frame", wire);
    if (opcode_ & 0x8) {
      if (!fin_) return Fail(kWsCloseProtocolError, "fragmented control frame", wire);
      if (len7 > kMaxControlPayload) {
        return Fail(kWsCloseProtocolError, "control frame longer than 125 bytes", wire);
      }
    } else if (opcode_ == kWsOpContinuation && !in_message_) {
      return Fail(kWsCloseProtocolError, "continuation frame without a message", wire);
    } else if (opcode_ == kWsOpBinary && in_message_) {
      return Fail(kWsCloseProtocolError, "new message inside a fragmented one", wire);
    }
    header_need_ = static_cast<uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
    return true;  // Frames() collects the rest of the header and calls again
  }
  uint64_t len = b1 & 0x7F;
  const uint8_t* p = header_ + 2;
  if (len == 126) {
    len = uint64_t{p[0]} << 8 | p[1];
    p += 2;
    if (len < 126) return Fail(kWsCloseProtocolError, "non-minimal length", wire);
  } else if (len == 127) {
    len = 0;
    for (int j = 0; j < 8; ++j) len = len << 8 | p[j];
    p += 8;
    if (len >> 63) return Fail(kWsCloseProtocolError, "64-bit length with top bit", wire);
    if (len <= 0xFFFF) return Fail(kWsCloseProtocolError, "non-minimal length", wire);
  }
  std::memcpy(mask_, p, 4);
  if (!(opcode_ & 0x8)) {
    const uint64_t message = (opcode_ == kWsOpContinuation ? message_bytes_ : 0) + len;
    if (len > config_->max_frame_bytes || message > config_->max_message_bytes) {
      return Fail(kWsCloseMessageTooBig, "frame or message too large", wire);
    }
    message_bytes_ = message;
    in_message_ = !fin_;
  }
  header_len_ = 0;
  header_need_ = 2;
  in_payload_ = true;
  remaining_ = len;
  payload_off_ = 0;
  control_len_ = 0;
  return true;
}

// Ends the current frame; for a control frame, acts on it.
void WebSocketSession::EndFrame(std::vector<uint8_t>* wire) {
  in_payload_ = false;
  if (!(opcode_ & 0x8)) {
    if (fin_) message_bytes_ = 0;
    return;
  }
  if (opcode_ == kWsOpPing) {
    if (state_ == WsState::kOpen) {
      uint8_t header[10];
      const size_t h = EncodeFrameHeader(kWsOpPong, true, control_len_, header);
      wire->insert(wire->end(), header, header + h);
      wire->insert(wire->end(), control_, control_ + control_len_);
    }
    return;
  }
  if (opcode_ != kWsOpClose) return;  // pong: nothing to do
  uint16_t code = kWsCloseNoStatus;
  if (control_len_ == 1) {
    Fail(kWsCloseProtocolError, "close frame of 1 byte", wire);
    return;
  }
  if (control_len_ >= 2) {
    code = static_cast<uint16_t>(control_[0] << 8 | control_[1]);
    if (!ValidCloseCode(code)) {
      Fail(kWsCloseProtocolError, "invalid close code", wire);
      return;
    }
    if (!base::IsValidUtf8(
            std::string_view(reinterpret_cast<const char*>(control_ + 2), control_len_ - 2u))) {
      Fail(kWsCloseInvalidPayload, "close reason is not UTF-8", wire);
      return;
    }
  }
  if (state_ == WsState::kOpen) {  // the peer closes first: echo its code
    close_code_ = code;
    AppendClose(code == kWsCloseNoStatus ? 0 : code, "", wire);
  }
  state_ = WsState::kClosed;
}

bool WebSocketSession::Fail(uint16_t code, std::string_view reason, std::vector<uint8_t>* wire) {
  error_ = reason;
  if (state_ == WsState::kOpen) {
    AppendClose(code, reason, wire);
    close_code_ = code;
  }
  state_ = WsState::kClosed;
  return false;
}

void WebSocketSession::AppendClose(uint16_t code, std::string_view reason,
                                   std::vector<uint8_t>* wire) {
  if (code == 0) {  // no status
    const uint8_t frame[2] = {0x80 | kWsOpClose, 0};
    wire->insert(wire->end(), frame, frame + 2);
    return;
  }
  reason = reason.substr(0, kMaxControlPayload - 2);
  uint8_t header[10];
  const size_t h = EncodeFrameHeader(kWsOpClose, true, 2 + reason.size(), header);
  wire->insert(wire->end(), header, header + h);
  wire->push_back(static_cast<uint8_t>(code >> 8));
  wire->push_back(static_cast<uint8_t>(code));
  Append(wire, reason);
}

}  // namespace ringmq::net
