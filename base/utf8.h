// UTF-8 validation: the one validator of the project (MQTT strings, WebSocket text frames, log
// fields).
//
// Well-formed UTF-8 is RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), no code points
// above U+10FFFF, no truncated sequence. A valid MQTT string (MQTT 5.0 section 1.5.4, 3.1.1 section
// 1.5.3) is well-formed UTF-8 without U+0000. Pure; thread-safe.
#ifndef RINGMQ_BASE_UTF8_H_
#define RINGMQ_BASE_UTF8_H_

#include <cstddef>
#include <string_view>

namespace ringmq::base {

// The length (1..4) of the well-formed sequence that starts at s[i], or 0 when none does (stray
// continuation byte, overlong form, surrogate, above U+10FFFF, truncated). U+0000 has length 1.
// REQUIRES: i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// True when `s` is well-formed UTF-8 (U+0000 allowed: WebSocket text, RFC 6455 section 8.1).
bool IsValidUtf8(std::string_view s);

// True when `s` is a valid MQTT UTF-8 string (well-formed, no U+0000).
bool IsValidMqttUtf8(std::string_view s);

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_UTF8_H_
