// Topic name and filter validation, matching and intersection (MQTT 5.0 sections 4.7, 4.8.2).
//
// A topic or filter is a sequence of levels separated by '/'; "a//b" has three levels, the middle
// one empty. Matches walks both strings once without allocating.
#include "proto/topic.h"

#include "base/utf8.h"

namespace ringmq::proto {
namespace {

constexpr std::string_view kSharePrefix = "$share/";

bool StartsWithWildcard(std::string_view filter) {
  return !filter.empty() && (filter[0] == '+' || filter[0] == '#');
}

// Walks the levels of a topic or filter: Level() is the current one, HasNext() tells whether
// another follows, Next() moves to it.
class LevelCursor {
 public:
  explicit LevelCursor(std::string_view s) : s_(s) { Find(); }

  std::string_view Level() const { return s_.substr(begin_, end_ - begin_); }
  bool HasNext() const { return end_ < s_.size(); }
  // Everything from the current level to the end.
  std::string_view Rest() const { return s_.substr(begin_); }

  // REQUIRES: HasNext().
  void Next() {
    begin_ = end_ + 1;
    Find();
  }

 private:
  void Find() {
    end_ = s_.find('/', begin_);
    if (end_ == std::string_view::npos) end_ = s_.size();
  }

  std::string_view s_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

// Rule 2 on a filter already known to be non-empty valid UTF-8 and not shared.
bool WildcardsWellPlaced(std::string_view filter) {
  for (size_t i = 0; i < filter.size(); ++i) {
    const char c = filter[i];
    if (c != '+' && c != '#') continue;
    const bool level_start = i == 0 || filter[i - 1] == '/';
    const bool level_end = i + 1 == filter.size() || filter[i + 1] == '/';
    if (!level_start || !level_end) return false;
    if (c == '#' && i + 1 != filter.size()) return false;
  }
  return true;
}

}  // namespace

ReasonCode ValidateTopicName(std::string_view topic) {
  if (topic.empty()) return ReasonCode::kTopicNameInvalid;
  if (!base::IsValidMqttUtf8(topic)) return ReasonCode::kMalformedPacket;
  if (topic.find_first_of("+#") != std::string_view::npos) return ReasonCode::kTopicNameInvalid;
  return ReasonCode::kSuccess;
}

ReasonCode ValidateTopicFilter(std::string_view filter) {
  if (filter.empty()) return ReasonCode::kTopicFilterInvalid;
  if (!base::IsValidMqttUtf8(filter)) return ReasonCode::kMalformedPacket;
  if (filter.starts_with(kSharePrefix)) {
    const std::string_view rest = filter.substr(kSharePrefix.size());
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return ReasonCode::kTopicFilterInvalid;
    const std::string_view group = rest.substr(0, slash);
    if (group.empty() || group.find_first_of("+#") != std::string_view::npos) {
      return ReasonCode::kTopicFilterInvalid;
    }
    filter = rest.substr(slash + 1);
    // The inner filter must itself be a valid, non-shared filter: "$share/g/$share/h/x" would give
    // a filter that ParseSharedFilter splits again, and "$share/g/$share/x" one that is invalid.
    if (filter.empty() || filter.starts_with(kSharePrefix)) return ReasonCode::kTopicFilterInvalid;
  }
  return WildcardsWellPlaced(filter) ? ReasonCode::kSuccess : ReasonCode::kTopicFilterInvalid;
}

std::optional<SharedFilter> ParseSharedFilter(std::string_view filter) {
  if (!filter.starts_with(kSharePrefix)) return std::nullopt;
  const std::string_view rest = filter.substr(kSharePrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return SharedFilter{rest, {}};  // not valid; be defensive
  return SharedFilter{rest.substr(0, slash), rest.substr(slash + 1)};
}

bool Matches(std::string_view filter, std::string_view topic) {
  if (filter.empty() || topic.empty()) return false;
  if (topic[0] == '$' && StartsWithWildcard(filter)) return false;  // rule 4
  // One pass over both strings. At the top of the loop f and t are at the start of a level;
  // wildcards are whole levels (the filter is valid), so one character tells a level's kind.
  const char* f = filter.data();
  const char* const f_end = f + filter.size();
  const char* t = topic.data();
  const char* const t_end = t + topic.size();
  bool topic_left = true;  // the topic has a level at t not yet matched (possibly empty)
  for (;;) {
    if (f != f_end && *f == '#') return true;  // this level and all below, or the parent
    if (!topic_left) return false;
    if (f != f_end && *f == '+') {
      ++f;
      while (t != t_end && *t != '/') ++t;
    } else {
      for (; f != f_end && *f != '/'; ++f, ++t) {
        if (t == t_end || *t != *f) return false;
      }
      if (t != t_end && *t != '/') return false;
    }
    // Both at the end of their level: at their end or at a '/'.
    if (f == f_end) return t == t_end;
    ++f;
    if (t == t_end) {
      topic_left = false;
    } else {
      ++t;
    }
  }
}

// The topics matched by a valid filter F = f1/../fn are, level-wise, a product of sets:
//   - fn != '#': topics of exactly n levels, level i equal to fi (literal) or anything ('+');
//   - fn == '#': topics of at least n-1 levels whose first n-1 levels match f1..f(n-1);
// minus, when f1 is a wildcard, the topics starting with '$' (rule 4). Intersecting two products is
// done level by level (literal ∩ '+' = literal, '+' ∩ '+' = '+'), and a '#' takes the other
// filter's remaining levels as they are. Rule 4 commutes with this: if both first levels are
// wildcards, so is the result's; if one is a literal starting with '$' and the other a wildcard,
// the intersection is empty; otherwise a literal first level decides alone. So the intersection is
// always one filter, or empty. One corner: a result of a single empty level ("/#" with "+") would
// match only "", which is not a topic name, so that intersection is empty.
std::optional<std::string> Intersect(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) return std::nullopt;
  if ((StartsWithWildcard(a) && !StartsWithWildcard(b) && b[0] == '$') ||
      (StartsWithWildcard(b) && !StartsWithWildcard(a) && a[0] == '$')) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(a.size() > b.size() ? a.size() : b.size());
  LevelCursor ca(a);
  LevelCursor cb(b);
  for (;;) {
    const std::string_view la = ca.Level();
    const std::string_view lb = cb.Level();
    if (la == "#" || lb == "#") {
      out.append(la == "#" ? cb.Rest() : ca.Rest());
      return out;
    }
    if (la == "+") {
      out.append(lb);
    } else if (lb == "+" || la == lb) {
      out.append(la);
    } else {
      return std::nullopt;
    }
    const bool a_next = ca.HasNext();
    const bool b_next = cb.HasNext();
    if (a_next != b_next) {
      // One filter ended. The other matches these topics only through a final "#" matching its
      // parent level, e.g. "a/#" and "a".
      LevelCursor& longer = a_next ? ca : cb;
      longer.Next();
      if (longer.Level() != "#") return std::nullopt;
    }
    if (!a_next || !b_next) {
      // A result of one empty level would match only the empty topic, which is not a valid topic
      // name: "/#" and "+" have no topic in common.
      if (out.empty()) return std::nullopt;
      return out;
    }
    out.push_back('/');
    ca.Next();
    cb.Next();
  }
}

}  // namespace ringmq::proto
