// WAL record bodies: LEB128 varints, length-prefixed strings, a flags byte for what is optional.
// The layouts are listed in doc/wal-format.md; keep the two in step.
#include "wal/wal_records.h"

#include <cstring>

#include "base/crc32c.h"
#include "wal/internal/codec.h"

namespace ringmq::wal {

namespace {

using wal_internal::GetMessage;
using wal_internal::kQosMask;
using wal_internal::PutSigned;
using wal_internal::PutString;
using wal_internal::PutU8;
using wal_internal::PutVarint;

// Reads a body of this build's version (or the known prefix of a newer one).
class Reader : public wal_internal::Reader {
 public:
  using wal_internal::Reader::Reader;
  bool Done() const { return wal_internal::Reader::Done(kWalBodyVersion); }
};

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
  EncodeMessageQueued(r.client_id, r.message_id, r.message, r.message.qos, r.message.retain, 0,
                      r.subscription_ids, out);
}

bool Decode(std::string_view body, WalMessageQueued* r) {
  *r = {};
  return DecodeMessageQueued(body, &r->client_id, &r->message_id, &r->message,
                             &r->subscription_ids);
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
  Encode(WalRetainedSetRef{&r.message, 0}, out);
}

void Encode(const WalRetainedSetRef& r, std::string* out) {
  PutU8(kWalBodyVersion, out);
  wal_internal::PutMessage(*r.message, r.message->qos, r.message->retain, r.expiry_offset_ms, out);
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
