// NATS subjects for MQTT topics and filters (cluster/subject.h).
#include "cluster/subject.h"

#include "proto/topic.h"

namespace ringmq::cluster {

namespace {

bool Plain(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

}  // namespace

std::string TopicToken(std::string_view level) {
  if (level.empty()) return "%";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string t;
  t.reserve(level.size());
  for (char c : level) {
    if (Plain(c)) {
      t.push_back(c);
    } else {
      const auto b = static_cast<unsigned char>(c);
      t.push_back('%');
      t.push_back(kHex[b >> 4]);
      t.push_back(kHex[b & 0xF]);
    }
  }
  return t;
}

std::string TopicSubject(std::string_view prefix, std::string_view family, std::string_view topic) {
  std::string s;
  s.reserve(prefix.size() + family.size() + topic.size() + 8);
  s.append(prefix).append(".").append(family);
  for (std::string_view level : Split(topic, '/')) {
    s.push_back('.');
    s.append(TopicToken(level));
  }
  return s;
}

std::vector<std::string> CoarseSubjects(std::string_view prefix, std::string_view family,
                                        std::string_view filter, unsigned levels) {
  std::string base = std::string(prefix) + "." + std::string(family);
  const std::vector<std::string_view> parts = Split(filter, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "#") {
      // '#' matches its parent level and everything below. A filter "#" alone: every topic,
      // which has at least one level, so '>' covers it.
      if (i == 0) return {base + ".>"};
      return {base, base + ".>"};
    }
    // Past the cut, one or more levels remain (none of them a lone '#', handled above): each
    // matching topic has at least one more level.
    if (i >= levels) return {base + ".>"};
    base.push_back('.');
    base.append(parts[i] == "+" ? std::string("*") : TopicToken(parts[i]));
  }
  return {base};
}

std::string SubjectFilter(std::string_view prefix, std::string_view family,
                          std::string_view subject) {
  const std::string head = std::string(prefix) + "." + std::string(family) + ".";
  if (!subject.starts_with(head)) return "";
  subject.remove_prefix(head.size());
  const std::vector<std::string_view> tokens = Split(subject, '.');
  std::string filter;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view t = tokens[i];
    if (i > 0) filter.push_back('/');
    if (t == "*") {
      filter.push_back('+');
    } else if (t == ">") {
      if (i + 1 != tokens.size()) return "";
      filter.push_back('#');  // covers the parent level too: more than '>' does, never less
    } else if (t == "%") {
      // an empty level
    } else {
      for (size_t k = 0; k < t.size(); ++k) {
        if (t[k] != '%') {
          filter.push_back(t[k]);
          continue;
        }
        if (k + 2 >= t.size()) return "";
        const auto hex = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        const int hi = hex(t[k + 1]), lo = hex(t[k + 2]);
        if (hi < 0 || lo < 0) return "";
        const auto c = static_cast<char>(hi * 16 + lo);
        // A level with '/', '+', '#' or U+0000 in it comes from no TopicToken: not ours.
        if (c == '/' || c == '+' || c == '#' || c == '\0') return "";
        filter.push_back(c);
        k += 2;
      }
    }
  }
  return proto::ValidateTopicFilter(filter) == proto::ReasonCode::kSuccess ? filter : "";
}

bool NatsSubjectMatches(std::string_view pattern, std::string_view subject) {
  const std::vector<std::string_view> p = Split(pattern, '.');
  const std::vector<std::string_view> s = Split(subject, '.');
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return i + 1 == p.size() && s.size() > i;
    if (i >= s.size()) return false;
    if (p[i] != "*" && p[i] != s[i]) return false;
  }
  return p.size() == s.size();
}

}  // namespace ringmq::cluster
