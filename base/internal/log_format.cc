// Text and JSON log lines.
#include "base/internal/log_format.h"

#include <ctime>

#include "base/json.h"
#include "base/utf8.h"

namespace ringmq::base::log_internal {

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7F; }

// Text lines: control characters as \xNN (invariant 3), everything else as it is.
void AppendTextSafe(std::string* out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsControl(c)) {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
}

// A number field is written bare only when it is a plain integer or a boolean (invariant 2).
bool IsJsonScalar(std::string_view v) {
  if (v == "true" || v == "false") return true;
  if (!v.empty() && v.front() == '-') v.remove_prefix(1);
  if (v.empty() || v.size() > 20 || (v.size() > 1 && v.front() == '0')) return false;
  for (const char c : v) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Calls fn(type, key, value) for every field of an encoded event and returns its message.
template <typename Fn>
std::string_view SplitEvent(std::string_view payload, Fn&& fn) {
  size_t sep = payload.find(kFieldSeparator);
  const std::string_view msg = payload.substr(0, sep);
  while (sep != std::string_view::npos) {
    const size_t begin = sep + 1;
    sep = payload.find(kFieldSeparator, begin);
    std::string_view field =
        payload.substr(begin, sep == std::string_view::npos ? sep : sep - begin);
    const char type = field.empty() ? kStringField : field.front();
    if (!field.empty()) field.remove_prefix(1);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      fn(kStringField, std::string_view("field"), field);
    } else {
      fn(type, field.substr(0, eq), field.substr(eq + 1));
    }
  }
  return msg;
}

}  // namespace

void AppendField(std::string* event, char type, std::string_view key, std::string_view value) {
  event->push_back(kFieldSeparator);
  event->push_back(type);
  event->append(key);
  event->push_back('=');
  for (size_t at = 0;;) {
    const size_t nul = value.find('\0', at);
    event->append(value.substr(at, nul == std::string_view::npos ? nul : nul - at));
    if (nul == std::string_view::npos) break;
    event->append(kReplacement);
    at = nul + 1;
  }
}

void AppendCut(std::string* out, std::string_view s, size_t max) {
  if (s.size() <= max) {
    out->append(s);
    return;
  }
  // Back off continuation bytes (at most 3) so that a valid character is not split.
  size_t n = max;
  for (int k = 0; k < 3 && n > 0 && IsContinuation(static_cast<unsigned char>(s[n])); ++k) --n;
  if (IsContinuation(static_cast<unsigned char>(s[n]))) n = max;  // not UTF-8 anyway
  out->append(s.substr(0, n));
  out->append("...[cut, ");
  out->append(std::to_string(s.size()));
  out->append(" bytes]");
}

void AppendJsonString(std::string* out, std::string_view s) {
  // base's writer escapes valid UTF-8; what a client sent may not be: each invalid byte becomes
  // U+FFFD first.
  size_t i = 0;
  while (i < s.size() && base::Utf8SequenceLength(s, i) != 0) i += base::Utf8SequenceLength(s, i);
  if (i == s.size()) {
    base::AppendJsonString(out, s);
    return;
  }
  std::string valid(s.substr(0, i));
  while (i < s.size()) {
    if (const size_t n = base::Utf8SequenceLength(s, i); n != 0) {
      valid.append(s.substr(i, n));
      i += n;
    } else {
      valid.append(kReplacement);
      ++i;
    }
  }
  base::AppendJsonString(out, valid);
}

void AppendTimestamp(std::string* out, int64_t unix_ms) {
  int64_t secs = unix_ms / 1000;
  int64_t ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  const time_t t = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  out->append(buf, n);
  out->push_back('.');
  out->push_back(static_cast<char>('0' + ms / 100));
  out->push_back(static_cast<char>('0' + ms / 10 % 10));
  out->push_back(static_cast<char>('0' + ms % 10));
  out->push_back('Z');
}

void FormatLogLine(LogFormat format, int64_t unix_ms, std::string_view level,
                   std::string_view subsystem, std::string_view payload, std::string* out) {
  if (format == LogFormat::kJson) {
    out->append("{\"ts\":\"");
    AppendTimestamp(out, unix_ms);
    out->append("\",\"level\":");
    AppendJsonString(out, level);
    out->append(",\"subsystem\":");
    AppendJsonString(out, subsystem);
    std::string fields;
    const std::string_view msg =
        SplitEvent(payload, [&](char type, std::string_view key, std::string_view value) {
          fields.push_back(',');
          AppendJsonString(&fields, key);
          fields.push_back(':');
          if (type == kNumberField && IsJsonScalar(value)) {
            fields.append(value);
          } else {
            AppendJsonString(&fields, value);
          }
        });
    out->append(",\"msg\":");
    AppendJsonString(out, msg);
    out->append(fields);
    out->append("}\n");
    return;
  }
  AppendTimestamp(out, unix_ms);
  out->push_back(' ');
  out->append(level);
  out->append(" [");
  out->append(subsystem);
  out->append("] ");
  std::string fields;
  const std::string_view msg =
      SplitEvent(payload, [&](char, std::string_view key, std::string_view value) {
        fields.push_back(' ');
        AppendTextSafe(&fields, key);
        fields.push_back('=');
        const bool quote = value.empty() || value.find_first_of(" \"=") != std::string_view::npos;
        if (quote) {
          AppendJsonString(&fields, value);
        } else {
          AppendTextSafe(&fields, value);
        }
      });
  AppendTextSafe(out, msg);
  out->append(fields);
  out->push_back('\n');
}

}  // namespace ringmq::base::log_internal
