// The MQTT Variable Byte Integer (MQTT 5.0 section 1.5.5): 7 bits per byte, high bit =
// continuation, at most 4 bytes, values 0..268,435,455. Pure; thread-safe.
#ifndef RINGMQ_PROTO_VARINT_H_
#define RINGMQ_PROTO_VARINT_H_

#include <cstddef>
#include <cstdint>

namespace ringmq::proto {

inline constexpr uint32_t kMaxVarint = 268'435'455;

enum class VarintStatus : uint8_t { kOk, kIncomplete, kMalformed };

// Decodes a Variable Byte Integer from [p, p+n). On kOk stores the value and the number of bytes
// used. kIncomplete: more bytes are needed (fewer than 4 read, all with continuation bits).
// kMalformed: a fifth byte would be needed. Non-minimal encodings are accepted.
inline VarintStatus DecodeVarint(const uint8_t* p, size_t n, uint32_t* value, size_t* used) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (i == n) return VarintStatus::kIncomplete;
    v |= static_cast<uint32_t>(p[i] & 0x7F) << (7 * i);
    if ((p[i] & 0x80) == 0) {
      *value = v;
      *used = i + 1;
      return VarintStatus::kOk;
    }
  }
  return VarintStatus::kMalformed;
}

// Number of bytes EncodeVarint writes for v. REQUIRES: v <= kMaxVarint.
constexpr size_t VarintSize(uint32_t v) {
  return v < 128 ? 1 : v < 16'384 ? 2 : v < 2'097'152 ? 3 : 4;
}

// Writes v minimally encoded to out; returns the bytes written. REQUIRES: v <= kMaxVarint and out
// has VarintSize(v) bytes.
inline size_t EncodeVarint(uint32_t v, uint8_t* out) {
  size_t i = 0;
  do {
    uint8_t b = v & 0x7F;
    v >>= 7;
    out[i++] = v ? (b | 0x80) : b;
  } while (v);
  return i;
}

}  // namespace ringmq::proto

#endif  // RINGMQ_PROTO_VARINT_H_
