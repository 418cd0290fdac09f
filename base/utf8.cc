// UTF-8 validation: an 8-bytes-at-a-time ASCII fast path, then a byte-wise RFC 3629 decoder
// (Table 3-7 of the Unicode standard) for each non-ASCII sequence.
#include "base/utf8.h"

#include <cstdint>
#include <cstring>

namespace ringmq::base {
namespace {

constexpr uint64_t kLowBits = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// True when the 8 bytes of `v` are all in 0x01..0x7F (kAllowNul: 0x00..0x7F). The zero test is
// exact: a borrow can only start at a zero byte, so a high bit set by it implies a zero byte
// exists.
template <bool kAllowNul>
bool AllAscii(uint64_t v) {
  if (kAllowNul) return (v & kHighBits) == 0;
  const uint64_t has_zero = (v - kLowBits) & ~v & kHighBits;
  return ((v & kHighBits) | has_zero) == 0;
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

template <bool kAllowNul>
bool Validate(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (s.size() - i >= 8) {
      uint64_t v;
      std::memcpy(&v, s.data() + i, sizeof v);
      if (AllAscii<kAllowNul>(v)) {
        i += 8;
        continue;
      }
    }
    if (!kAllowNul && s[i] == '\0') return false;
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace

size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t left = s.size() - i;
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  if (c < 0x80) return 1;
  // 80..BF: stray continuation; C0, C1: overlong two-byte; F5..FF: above U+10FFFF or not UTF-8.
  if (c < 0xC2 || c > 0xF4) return 0;
  // Second-byte ranges exclude overlongs (E0, F0), surrogates (ED) and code points above U+10FFFF
  // (F4).
  if (c < 0xE0) return left >= 2 && IsContinuation(at(1)) ? 2 : 0;
  if (c < 0xF0) {
    if (left < 3 || !IsContinuation(at(2))) return 0;
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return at(1) >= lo && at(1) <= hi ? 3 : 0;
  }
  if (left < 4 || !IsContinuation(at(2)) || !IsContinuation(at(3))) return 0;
  const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
  const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
  return at(1) >= lo && at(1) <= hi ? 4 : 0;
}

bool IsValidUtf8(std::string_view s) { return Validate<true>(s); }

bool IsValidMqttUtf8(std::string_view s) { return Validate<false>(s); }

}  // namespace ringmq::base
