// How one log line is written (base/log.h): the text and JSON line formats, and the encoding of a
// structured event's fields inside a log message. Pure functions, so they are tested without
// spdlog (base/internal/log_format_test.cc).
//
// A structured event (LogEvent in base/log.h) travels through spdlog as one string: the message,
// then for every field a NUL byte, a type byte ('s' string, 'n' number or boolean), the key, '='
// and the value. NUL bytes inside a value are replaced by U+FFFD when the field is added, so the
// encoding is unambiguous; a plain message without NUL bytes is a message without fields.
//
//   text: 2026-11-29T05:40:01.123Z info [mqtt] client connected client_id=c1 peer=127.0.0.1:5000
//   json: {"ts":"2026-11-29T05:40:01.123Z","level":"info","subsystem":"mqtt",
//          "msg":"client connected","client_id":"c1","peer":"127.0.0.1:5000"}
//
// Invariants:
//   1. FormatLogLine appends exactly one line ending in '\n' and containing no other '\n'.
//   2. A JSON line is one valid JSON object (RFC 8259) whatever bytes the message and fields hold:
//      quotes, backslashes and control characters are escaped, invalid UTF-8 becomes U+FFFD, and a
//      number field whose value is not a plain integer or boolean is written as a string.
//   3. In text lines control characters (below 0x20, and 0x7F) are written as \xNN, so a client's
//      bytes cannot forge a line.
//
// Thread-safety: pure functions.
#ifndef RINGMQ_BASE_INTERNAL_LOG_FORMAT_H_
#define RINGMQ_BASE_INTERNAL_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringmq::base::log_internal {

enum class LogFormat : uint8_t { kText, kJson };

inline constexpr char kFieldSeparator = '\0';
inline constexpr char kStringField = 's';
inline constexpr char kNumberField = 'n';

// Appends one field to an event's encoded text. `key` must be a plain identifier (no NUL, no '=').
void AppendField(std::string* event, char type, std::string_view key, std::string_view value);

// Appends `s`, or when it is longer than `max` bytes its first at most `max` bytes (ending at a
// UTF-8 character boundary when `s` is valid UTF-8) and "...[cut, N bytes]", N = s.size().
void AppendCut(std::string* out, std::string_view s, size_t max);

// Appends `s` as a quoted JSON string (invariant 2).
void AppendJsonString(std::string* out, std::string_view s);

// Appends "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) for milliseconds since the Unix epoch.
void AppendTimestamp(std::string* out, int64_t unix_ms);

// Appends one line for a message (`payload`: a plain message or an encoded event).
void FormatLogLine(LogFormat format, int64_t unix_ms, std::string_view level,
                   std::string_view subsystem, std::string_view payload, std::string* out);

}  // namespace ringmq::base::log_internal

#endif  // RINGMQ_BASE_INTERNAL_LOG_FORMAT_H_
