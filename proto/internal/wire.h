// Internal to proto/: a bounds-checked reader over a packet body and an unchecked writer into a
// buffer whose size was computed beforehand, plus the property codec built on them.
#ifndef RINGMQ_PROTO_INTERNAL_WIRE_H_
#define RINGMQ_PROTO_INTERNAL_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "base/utf8.h"
#include "proto/properties.h"
#include "proto/result.h"
#include "proto/varint.h"

namespace ringmq::proto::internal {

// Reads big-endian integers and length-prefixed fields; every method returns false (and reads
// nothing) when the data runs out.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : p_(data.data()), end_(p_ + data.size()) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }

  bool U8(uint8_t* v) {
    if (p_ == end_) return false;
    *v = *p_++;
    return true;
  }
  bool U16(uint16_t* v) {
    if (remaining() < 2) return false;
    *v = static_cast<uint16_t>(p_[0] << 8 | p_[1]);
    p_ += 2;
    return true;
  }
  bool U32(uint32_t* v) {
    if (remaining() < 4) return false;
    *v = static_cast<uint32_t>(p_[0]) << 24 | static_cast<uint32_t>(p_[1]) << 16 |
         static_cast<uint32_t>(p_[2]) << 8 | p_[3];
    p_ += 4;
    return true;
  }
  bool Varint(uint32_t* v) {
    size_t used = 0;
    if (DecodeVarint(p_, remaining(), v, &used) != VarintStatus::kOk) return false;
    p_ += used;
    return true;
  }
  // n raw bytes.
  bool Bytes(size_t n, std::string_view* v) {
    if (remaining() < n) return false;
    *v = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }
  // Two-byte length followed by that many bytes.
  bool Binary(std::string_view* v) {
    const uint8_t* save = p_;
    uint16_t n = 0;
    if (!U16(&n) || !Bytes(n, v)) {
      p_ = save;
      return false;
    }
    return true;
  }
  // A Binary that must also be a valid MQTT UTF-8 string.
  bool Utf8(std::string_view* v) { return Binary(v) && base::IsValidMqttUtf8(*v); }
  // Everything left.
  std::string_view Rest() {
    std::string_view v(reinterpret_cast<const char*>(p_), remaining());
    p_ = end_;
    return v;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Writes into a buffer the caller sized with the matching *Size function. No bounds checks.
class Writer {
 public:
  explicit Writer(uint8_t* out) : p_(out), begin_(out) {}
  size_t written() const { return static_cast<size_t>(p_ - begin_); }

  void U8(uint8_t v) { *p_++ = v; }
  void U16(uint16_t v) {
    p_[0] = static_cast<uint8_t>(v >> 8);
    p_[1] = static_cast<uint8_t>(v);
    p_ += 2;
  }
  void U32(uint32_t v) {
    p_[0] = static_cast<uint8_t>(v >> 24);
    p_[1] = static_cast<uint8_t>(v >> 16);
    p_[2] = static_cast<uint8_t>(v >> 8);
    p_[3] = static_cast<uint8_t>(v);
    p_ += 4;
  }
  void Varint(uint32_t v) { p_ += EncodeVarint(v, p_); }
  void Bytes(std::string_view v) {
    if (!v.empty()) std::memcpy(p_, v.data(), v.size());
    p_ += v.size();
  }
  void Binary(std::string_view v) {
    U16(static_cast<uint16_t>(v.size()));
    Bytes(v);
  }

 private:
  uint8_t* p_;
  uint8_t* begin_;
};

// Size on the wire of a two-byte-length-prefixed field.
inline size_t BinarySize(std::string_view v) { return 2 + v.size(); }

// Decodes a property block (its Variable Byte Integer length, then the properties) valid in `ctx`
// into *out. Returns kSuccess or the reason code of the violation (see properties.h invariants).
Error DecodeProperties(Reader& in, PropertyContext ctx, Properties* out);

// Bytes of the properties themselves (without the length prefix).
size_t PropertiesContentSize(const Properties& p);

// Bytes of the full property block: length prefix plus content.
inline size_t PropertiesBlockSize(const Properties& p) {
  size_t n = PropertiesContentSize(p);
  return VarintSize(static_cast<uint32_t>(n)) + n;
}

// Writes the full property block (length prefix and properties in identifier order).
void WriteProperties(Writer& out, const Properties& p, size_t content_size);

inline constexpr Error kOk{ReasonCode::kSuccess, ""};
inline bool IsOk(const Error& e) { return e.code == ReasonCode::kSuccess; }

}  // namespace ringmq::proto::internal

#endif  // RINGMQ_PROTO_INTERNAL_WIRE_H_
