// The byte-level codec of WAL record bodies (doc/wal-format.md): LEB128 varints, length-prefixed
// strings, and the message layout shared by message-queued and retained-set records. Internal to
// wal/; in a header because the message layout is a template over the message type (today only
// route::Message; the layout needs nothing else of it), used by wal_records.h's inline parts.
//
// Thread-safety: no shared state.
// Invariants:
//   1. PutMessage(m) read back by GetMessage gives m's fields (the expiry plus the offset given).
//   2. A Reader never reads outside its input; after the first failure every read fails.
#ifndef RINGMQ_WAL_INTERNAL_CODEC_H_
#define RINGMQ_WAL_INTERNAL_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringmq::wal::wal_internal {

// --- Encoding ---

inline void PutU8(uint8_t v, std::string* out) { out->push_back(static_cast<char>(v)); }

inline void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Zig-zag keeps small negative numbers short (a wall-clock time is never negative in practice).
inline void PutSigned(int64_t v, std::string* out) {
  PutVarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63), out);
}

inline void PutString(std::string_view s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

// --- Decoding: every read checks the bounds; the first failure sticks (invariant 2). ---

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

  bool StringView(std::string_view* s) {
    uint64_t n = 0;
    if (!Varint(&n) || n > static_cast<uint64_t>(end_ - p_)) return ok_ = false;
    *s = std::string_view(p_, static_cast<size_t>(n));
    p_ += n;
    return ok_;
  }

  bool String(std::string* s) {
    std::string_view v;
    if (!StringView(&v)) return false;
    s->assign(v);
    return ok_;
  }

  // Reads the version byte (wal_records.h invariant 1).
  bool Version() {
    if (!U8(&version_) || version_ == 0) return ok_ = false;
    return ok_;
  }

  // True when the body was read completely: all of it for a known version, the known prefix of a
  // newer one (`known` is the newest version this build writes).
  bool Done(uint8_t known) const { return ok_ && (p_ == end_ || version_ > known); }
  bool ok() const { return ok_; }
  // The body's version, once Version() read it.
  uint8_t version() const { return version_; }

 private:
  const char* p_;
  const char* end_;
  uint8_t version_ = 0;
  bool ok_ = true;
};

// --- The message layout (doc/wal-format.md, "message") ---
//
// M has route::Message's fields (topic, payload, payload_format_indicator, content_type,
// response_topic, correlation_data, user_properties, expires_at_ms, qos, retain).

// Flags byte.
inline constexpr uint8_t kQosMask = 0x03;
inline constexpr uint8_t kRetain = 0x04;
inline constexpr uint8_t kHasExpiry = 0x08;
inline constexpr uint8_t kHasPayloadFormat = 0x10;
inline constexpr uint8_t kHasContentType = 0x20;
inline constexpr uint8_t kHasResponseTopic = 0x40;
inline constexpr uint8_t kHasCorrelation = 0x80;

// Writes m with the given qos and retain flag; a non-zero expiry is written plus expiry_offset_ms.
template <typename M>
void PutMessage(const M& m, uint8_t qos, bool retain, int64_t expiry_offset_ms, std::string* out) {
  PutString(m.topic, out);
  PutString(m.payload, out);
  uint8_t flags = (qos & kQosMask) | (retain ? kRetain : 0);
  if (m.expires_at_ms != 0) flags |= kHasExpiry;
  if (m.payload_format_indicator) flags |= kHasPayloadFormat;
  if (m.content_type) flags |= kHasContentType;
  if (m.response_topic) flags |= kHasResponseTopic;
  if (m.correlation_data) flags |= kHasCorrelation;
  PutU8(flags, out);
  if (m.expires_at_ms != 0) PutSigned(m.expires_at_ms + expiry_offset_ms, out);
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

inline bool GetOptionalString(Reader& r, bool present, std::optional<std::string>* s) {
  if (!present) return r.ok();
  s->emplace();
  return r.String(&**s);
}

// Reads into a default-constructed m (the expiry as written: the caller adds its clock offset).
template <typename M>
bool GetMessage(Reader& r, M* m) {
  uint8_t flags = 0;
  if (!r.String(&m->topic) || !r.String(&m->payload) || !r.U8(&flags)) return false;
  m->qos = flags & kQosMask;
  if (m->qos > 2) return false;
  m->retain = (flags & kRetain) != 0;
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

}  // namespace ringmq::wal::wal_internal

#endif  // RINGMQ_WAL_INTERNAL_CODEC_H_
