// libFuzzer target for topics: the input is split at '\n' into filter a, filter b and a topic.
// Checks IsValidMqttUtf8 against a naive decoder, that validation is consistent with
// ParseSharedFilter, and, when all three are valid, that Intersect(a, b) matches exactly the topics
// both filters match (on the given topic and on a topic built from the result).
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "base/utf8.h"
#include "proto/topic.h"

using namespace ringmq::proto;

namespace {

// Decodes by the lead byte's length, then checks the value (RFC 3629 and the MQTT exclusions).
bool ReferenceUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
      n = 0, cp = c, min = 0;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Validates `f`; returns the plain filter to match with (the inner one of a shared filter).
std::optional<std::string_view> PlainFilter(std::string_view f) {
  if (ValidateTopicFilter(f) != ReasonCode::kSuccess) return std::nullopt;
  if (auto shared = ParseSharedFilter(f)) {
    if (shared->group.empty() || shared->filter.empty()) abort();
    if (ValidateTopicFilter(shared->filter) != ReasonCode::kSuccess) abort();
    return shared->filter;
  }
  return f;
}

// A topic matched by filter `r`: each wildcard replaced by "x".
std::string Witness(std::string_view r) {
  std::string w;
  for (size_t i = 0; i < r.size(); ++i) {
    const bool wildcard = (r[i] == '+' || r[i] == '#') && (i == 0 || r[i - 1] == '/');
    w += wildcard ? 'x' : r[i];
  }
  return w;
}

std::string_view NextField(std::string_view& in) {
  const size_t nl = in.find('\n');
  const std::string_view field = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  return field;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (ringmq::base::IsValidMqttUtf8(in) != ReferenceUtf8(in)) abort();
  const std::string_view fa = NextField(in);
  const std::string_view fb = NextField(in);
  const std::string_view topic = NextField(in);

  const bool topic_valid = ValidateTopicName(topic) == ReasonCode::kSuccess;
  if (topic_valid && topic.find('+') != std::string_view::npos) abort();
  const std::optional<std::string_view> a = PlainFilter(fa);
  const std::optional<std::string_view> b = PlainFilter(fb);
  if (!a || !b) return 0;

  const std::optional<std::string> r = Intersect(*a, *b);
  if (Intersect(*b, *a).has_value() != r.has_value()) abort();
  if (r) {
    if (ValidateTopicFilter(*r) != ReasonCode::kSuccess) abort();
    const std::string w = Witness(*r);
    if (ValidateTopicName(w) != ReasonCode::kSuccess) abort();
    if (!Matches(*r, w) || !Matches(*a, w) || !Matches(*b, w)) abort();
  }
  if (topic_valid) {
    const bool both = Matches(*a, topic) && Matches(*b, topic);
    if ((r ? Matches(*r, topic) : false) != both) abort();
  }
  return 0;
}
