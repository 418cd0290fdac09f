// MQTT UTF-8 validation: an 8-bytes-at-a-time ASCII fast path, then a byte-wise RFC 3629 decoder
// (Table 3-7 of the Unicode standard) that also rejects U+0000 and the surrogates.
#include "proto/utf8.h"

#include <cstdint>
#include <cstring>

namespace ringmq::proto {
namespace {

constexpr uint64_t kLowBits = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// True when the 8 bytes of `v` are all in 0x01..0x7F. The zero test is exact: a borrow can only
// start at a zero byte, so a high bit set by it implies a zero byte exists.
bool AllNonZeroAscii(uint64_t v) {
  const uint64_t has_zero = (v - kLowBits) & ~v & kHighBits;
  return ((v & kHighBits) | has_zero) == 0;
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

bool IsValidMqttUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  while (p != end) {
    if (end - p >= 8) {
      uint64_t v;
      std::memcpy(&v, p, sizeof v);
      if (AllNonZeroAscii(v)) {
        p += 8;
        continue;
      }
    }
    // One code point, byte-wise. Second-byte ranges exclude overlongs (E0, F0), surrogates (ED)
    // and code points above U+10FFFF (F4).
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c == 0) return false;
      ++p;
      continue;
    }
    // 80..BF: stray continuation; C0, C1: overlong two-byte; F5..FF: above U+10FFFF or not UTF-8.
    if (c < 0xC2 || c > 0xF4) return false;
    size_t n;  // continuation bytes
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0xE0) {
      n = 1;
    } else if (c < 0xF0) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    if (static_cast<size_t>(end - p) <= n) return false;  // truncated
    if (p[1] < lo || p[1] > hi) return false;
    for (size_t i = 2; i <= n; ++i) {
      if (!IsContinuation(p[i])) return false;
    }
    p += n + 1;
  }
  return true;
}

}  // namespace ringmq::proto
