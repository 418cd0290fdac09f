// WAL record bodies: LEB128 varints, length-prefixed strings, a flags byte for what is optional.
// The layouts are listed in doc/wal-format.md; keep the two in step.
#include "wal/wal_records.h"

#include <cstring>

#include "base/crc32c.h"

namespace ringmq::wal {

namespace {

// --- Encoding ---

void PutU8(uint8_t v, std::string* out) { out->push_back(static_cast<char>(v)); }

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Zig-zag keeps small negative numbers short (a wall-clock time is never negative in practice).
void PutSigned(int64_t v, std::string* out) {
  PutVarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63), out);
}

void PutString(std::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

// --- Decoding: every read checks the bounds; the first failure sticks. ---

class Reader {
 public:
  explicit Reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  bool U8(uint8_t* v) {
    if (p_ == end_) return ok_ = false;
    *v = static_cast<uint8_t>(*p_++);
    return ok_;
  }

  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return ok_ = false;
      const auto b = static_cast<uint8_t>(*p_++);
      if (shift == 63 && b > 1) return ok_ = false;  // would overflow 64 bits
      r |= uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) {
        *v = r;
        return ok_;
      }
    }
    return ok_ = false;
  }

  bool U32(uint32_t* v) {
    uint64_t x = 0;
    if (!Varint(&x) || x > UINT32_MAX) return ok_ = false;
    *v = static_cast<uint32_t>(x);
    return ok_;
  }

  bool U16(uint16_t* v) {
    uint64_t x = 0;
    if (!Varint(&x) || x > UINT16_MAX) return ok_ = false;
    *v = static_cast<uint16_t>(x);
    return ok_;
  }

  bool Signed(int64_t* v) {
    uint64_t x = 0;
    if (!Varint(&x)) return false;
    *v = static_cast<int64_t>(x >> 1) ^ -static_cast<int64_t>(x & 1);
    return ok_;
  }

  bool String(std::string* s) {
    uint64_t n = 0;
    if (!Varint(&n) || n > static_cast<uint64_t>(end_ - p_)) return ok_ = false;
    s->assign(p_, static_cast<size_t>(n));
    p_ += n;
    return ok_;
  }

  // Reads the version byte (invariant 1).
  bool Version() {
    if (!U8(&version_) || version_ == 0) return ok_ = false;
    return ok_;
  }

  // True when the body was read completely: all of it for a known version, the known prefix of a
  // newer one.
  bool Done() const { return ok_ && (p_ == end_ || version_ > kWalBodyVersion); }
  bool ok() const { return ok_; }
  // The body's version, once Version() read it.
  uint8_t version() const { return version_; }

 private:
  const char* p_;
  const char* end_;
  uint8_t version_ = 0;
  bool ok_ = true;
};

// WalMessage flags byte.
constexpr uint8_t kQosMask = 0x03;
constexpr uint8_t kRetain = 0x04;
constexpr uint8_t kHasExpiry = 0x08;
constexpr uint8_t kHasPayloadFormat = 0x10;
constexpr uint8_t kHasContentType = 0x20;
constexpr uint8_t kHasResponseTopic = 0x40;
constexpr uint8_t kHasCorrelation = 0x80;

void PutMessage(const WalMessage& m, std::string* out) {
  PutString(m.topic, out);
  PutString(m.payload, out);
  uint8_t flags = (m.qos & kQosMask) | (m.retain ? kRetain : 0);
  if (m.expires_at_ms != 0) flags |= kHasExpiry;
  if (m.payload_format_indicator) flags |= kHasPayloadFormat;
  if (m.content_type) flags |= kHasContentType;
  if (m.response_topic) flags |= kHasResponseTopic;
  if (m.correlation_data) flags |= kHasCorrelation;
  PutU8(flags, out);
  if (m.expires_at_ms != 0) PutSigned(m.expires_at_ms, out);
  if (m.payload_format_indicator) PutU8(*m.payload_format_indicator, out);
  if (m.content_type) PutString(*m.content_type, out);
  if (m.response_topic) PutString(*m.response_topic, out);
  if (m.correlation_data) PutString(*m.correlation_data, out);
  PutVarint(m.user_properties.size(), out);
  for (const auto& [k, v] : m.user_properties) {
    PutString(k, out);
    PutString(v, out);
  }
}

bool GetOptionalString(Reader& r, bool present, std::optional<std::string>* s) {
  if (!present) return r.ok();
  s->emplace();
  return r.String(&**s);
}

bool GetMessage(Reader& r, WalMessage* m) {
  uint8_t flags = 0;
  if (!r.String(&m->topic) || !r.String(&m->payload) || !r.U8(&flags)) return false;
  m->qos = flags & kQosMask;
  if (m->qos > 2) return false;
  m->retain = flags & kRetain;
  if ((flags & kHasExpiry) && (!r.Signed(&m->expires_at_ms) || m->expires_at_ms == 0)) {
    return false;
  }
  if (flags & kHasPayloadFormat) {
    uint8_t pfi = 0;
    if (!r.U8(&pfi)) return false;
    m->payload_format_indicator = pfi;
  }
  if (!GetOptionalString(r, flags & kHasContentType, &m->content_type) ||
      !GetOptionalString(r, flags & kHasResponseTopic, &m->response_topic) ||
      !GetOptionalString(r, flags & kHasCorrelation, &m->correlation_data)) {
    return false;
  }
  uint64_t n = 0;
  if (!r.Varint(&n)) return false;
  // No reserve(n): n is untrusted; each pair consumes at least two bytes, so the loop is bounded.
  for (uint64_t i = 0; i < n; ++i) {
    auto& [k, v] = m->user_properties.emplace_back();
    if (!r.String(&k) || !r.String(&v)) return false;
  }
  return true;
}

template <typename R>
std::optional<WalRecord> DecodeAs(std::string_view body) {
  R r;
  if (!Decode(body, &r)) return std::nullopt;
  return WalRecord(std::move(r));
}

}  // namespace

const char* WalTypeName(WalType t) {
  switch (t) {
    case WalType::kSessionCreated:
      return "session-created";
    case WalType::kSessionRemoved:
      return "session-removed";
    case WalType::kSubscriptionAdded:
      return "subscription-added";
    case WalType::kSubscriptionRemoved:
      return "subscription-removed";
    case WalType::kMessageQueued:
      return "message-queued";
    case WalType::kMessageAcked:
      return "message-acked";
    case WalType::kInflightState:
      return "inflight-state";
    case WalType::kRetainedSet:
      return "retained-set";
    case WalType::kRetainedCleared:
      return "retained-cleared";
    case WalType::kSessionDisconnected:
      return "session-disconnected";
    case WalType::kSnapshotEnd:
      return "snapshot-end";
  }
  return "unknown";
}

// --- Bodies ---

void Encode(const WalSessionCreated& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
  PutVarint(r.expiry_interval_s, out);
  PutU8(r.protocol_version, out);
  PutSigned(r.created_ms, out);
  PutSigned(r.owner_token_id, out);
}

bool Decode(std::string_view body, WalSessionCreated* r) {
  *r = {};
  Reader in(body);
  return in.Version() && in.String(&r->client_id) && in.U32(&r->expiry_interval_s) &&
         in.U8(&r->protocol_version) && in.Signed(&r->created_ms) &&
         (in.version() < 2 || in.Signed(&r->owner_token_id)) && in.Done();
}

void Encode(const WalSessionRemoved& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
}

bool Decode(std::string_view body, WalSessionRemoved* r) {
  *r = {};
  Reader in(body);
  return in.Version() && in.String(&r->client_id) && in.Done();
}

void Encode(const WalSessionDisconnected& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
  PutSigned(r.disconnected_ms, out);
  PutVarint(r.expiry_interval_s, out);
}

bool Decode(std::string_view body, WalSessionDisconnected* r) {
  *r = {};
  Reader in(body);
  return in.Version() && in.String(&r->client_id) && in.Signed(&r->disconnected_ms) &&
         in.U32(&r->expiry_interval_s) && in.Done();
}

void Encode(const WalSubscriptionAdded& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
  PutString(r.filter, out);
  PutU8(static_cast<uint8_t>((r.qos & kQosMask) | (r.options & ~kQosMask)), out);
  PutVarint(r.subscription_id, out);
  PutVarint(r.effective.size(), out);
  for (const std::string& f : r.effective) PutString(f, out);
}

bool Decode(std::string_view body, WalSubscriptionAdded* r) {
  *r = {};
  Reader in(body);
  uint8_t byte = 0;
  uint64_t n = 0;
  if (!in.Version() || !in.String(&r->client_id) || !in.String(&r->filter) || !in.U8(&byte) ||
      !in.U32(&r->subscription_id) || !in.Varint(&n)) {
    return false;
  }
  r->qos = byte & kQosMask;
  r->options = byte & ~kQosMask;
  // QoS 3, retain handling 3 and the reserved bits 6-7 are malformed (MQTT 5.0 section 3.8.3.1).
  if (r->qos > 2 || (byte & 0xC0) != 0 ||
      (r->options >> WalSubscriptionAdded::kRetainHandlingShift) == 3) {
    return false;
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (!in.String(&r->effective.emplace_back())) return false;
  }
  return in.Done();
}

void Encode(const WalSubscriptionRemoved& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
  PutString(r.filter, out);
}

bool Decode(std::string_view body, WalSubscriptionRemoved* r) {
  *r = {};
  Reader in(body);
  return in.Version() && in.String(&r->client_id) && in.String(&r->filter) && in.Done();
}

void Encode(const WalMessageQueued& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
  PutVarint(r.message_id, out);
  PutMessage(r.message, out);
  PutVarint(r.subscription_ids.size(), out);
  for (uint32_t id : r.subscription_ids) PutVarint(id, out);
}

bool Decode(std::string_view body, WalMessageQueued* r) {
  *r = {};
  Reader in(body);
  uint64_t n = 0;
  if (!in.Version() || !in.String(&r->client_id) || !in.Varint(&r->message_id) ||
      !GetMessage(in, &r->message) || !in.Varint(&n)) {
    return false;
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (!in.U32(&r->subscription_ids.emplace_back())) return false;
  }
  return in.Done();
}

void Encode(const WalMessageAcked& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
  PutVarint(r.message_id, out);
}

bool Decode(std::string_view body, WalMessageAcked* r) {
  *r = {};
  Reader in(body);
  return in.Version() && in.String(&r->client_id) && in.Varint(&r->message_id) && in.Done();
}

void Encode(const WalInflightState& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.client_id, out);
  PutVarint(r.message_id, out);
  PutVarint(r.packet_id, out);
  PutU8(static_cast<uint8_t>(r.phase), out);
}

bool Decode(std::string_view body, WalInflightState* r) {
  *r = {};
  Reader in(body);
  uint8_t phase = 0;
  if (!in.Version() || !in.String(&r->client_id) || !in.Varint(&r->message_id) ||
      !in.U16(&r->packet_id) || !in.U8(&phase) || phase == 0 || phase > kWalInflightPhaseMax) {
    return false;
  }
  r->phase = static_cast<WalInflightPhase>(phase);
  return in.Done();
}

void Encode(const WalRetainedSet& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutMessage(r.message, out);
}

bool Decode(std::string_view body, WalRetainedSet* r) {
  *r = {};
  Reader in(body);
  return in.Version() && GetMessage(in, &r->message) && in.Done();
}

void Encode(const WalRetainedCleared& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutString(r.topic, out);
}

bool Decode(std::string_view body, WalRetainedCleared* r) {
  *r = {};
  Reader in(body);
  return in.Version() && in.String(&r->topic) && in.Done();
}

void Encode(const WalSnapshotEnd& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  PutVarint(r.record_count, out);
}

bool Decode(std::string_view body, WalSnapshotEnd* r) {
  *r = {};
  Reader in(body);
  return in.Version() && in.Varint(&r->record_count) && in.Done();
}

std::optional<WalRecord> DecodeWalRecord(WalType type, std::string_view body) {
  switch (type) {
    case WalType::kSessionCreated:
      return DecodeAs<WalSessionCreated>(body);
    case WalType::kSessionRemoved:
      return DecodeAs<WalSessionRemoved>(body);
    case WalType::kSubscriptionAdded:
      return DecodeAs<WalSubscriptionAdded>(body);
    case WalType::kSubscriptionRemoved:
      return DecodeAs<WalSubscriptionRemoved>(body);
    case WalType::kMessageQueued:
      return DecodeAs<WalMessageQueued>(body);
    case WalType::kMessageAcked:
      return DecodeAs<WalMessageAcked>(body);
    case WalType::kInflightState:
      return DecodeAs<WalInflightState>(body);
    case WalType::kRetainedSet:
      return DecodeAs<WalRetainedSet>(body);
    case WalType::kRetainedCleared:
      return DecodeAs<WalRetainedCleared>(body);
    case WalType::kSessionDisconnected:
      return DecodeAs<WalSessionDisconnected>(body);
    case WalType::kSnapshotEnd:
      return DecodeAs<WalSnapshotEnd>(body);
  }
  return std::nullopt;
}

WalType TypeOf(const WalRecord& r) {
  return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kType; }, r);
}

// --- Frames ---

void StoreWalLe32(uint32_t v, char* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

uint32_t LoadWalLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

void FinishWalFrame(WalType type, size_t frame_start, std::string* out) {
  char* h = out->data() + frame_start;
  const size_t body_len = out->size() - frame_start - kWalFrameHeaderSize;
  StoreWalLe32(static_cast<uint32_t>(body_len), h);
  h[4] = static_cast<char>(type);
  uint32_t crc = base::Crc32cExtend(0, h + 4, 1);
  crc = base::Crc32cExtend(crc, h + kWalFrameHeaderSize, body_len);
  StoreWalLe32(crc, h + 5);
}

void AppendWalFrame(WalType type, std::string_view body, std::string* out) {
  const size_t start = out->size();
  out->append(kWalFrameHeaderSize, '\0');
  out->append(body);
  FinishWalFrame(type, start, out);
}

void AppendWalRecord(const WalRecord& r, std::string* out) {
  std::visit([out](const auto& x) { AppendWalRecord(x, out); }, r);
}

WalFrameStatus ParseWalFrame(std::string_view in, WalFrame* frame) {
  if (in.size() < kWalFrameHeaderSize) return WalFrameStatus::kTruncated;
  const uint32_t len = LoadWalLe32(in.data());
  const auto type = static_cast<uint8_t>(in[4]);
  if (type == 0 || type > kWalTypeMax || len > kWalMaxBodySize) return WalFrameStatus::kBadHeader;
  if (in.size() - kWalFrameHeaderSize < len) return WalFrameStatus::kTruncated;
  uint32_t crc = base::Crc32cExtend(0, in.data() + 4, 1);
  crc = base::Crc32cExtend(crc, in.data() + kWalFrameHeaderSize, len);
  if (crc != LoadWalLe32(in.data() + 5)) return WalFrameStatus::kBadCrc;
  frame->type = static_cast<WalType>(type);
  frame->body = in.substr(kWalFrameHeaderSize, len);
  frame->size = kWalFrameHeaderSize + len;
  return WalFrameStatus::kOk;
}

}  // namespace ringmq::wal
