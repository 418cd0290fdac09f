// Tests of topic validation, matching and intersection: the examples of MQTT 5.0 sections 4.7 and
// 4.8.2, every validation rule, and a brute-force check of Intersect over a small finite space.
#include "proto/topic.h"

#include <gtest/gtest.h>

#include <bitset>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace ringmq::proto {
namespace {

struct MatchCase {
  const char* filter;
  const char* topic;
  bool matches;
};

void ExpectMatches(const std::vector<MatchCase>& cases) {
  for (const auto& c : cases) {
    ASSERT_EQ(ValidateTopicFilter(c.filter), ReasonCode::kSuccess) << c.filter;
    ASSERT_EQ(ValidateTopicName(c.topic), ReasonCode::kSuccess) << c.topic;
    EXPECT_EQ(Matches(c.filter, c.topic), c.matches) << c.filter << " vs " << c.topic;
  }
}

TEST(Topic, SysTopicsAreTheBrokers) {
  for (const char* t : {"$SYS", "$SYS/broker/uptime", "$SYS/will", "$SYSTEM/x"}) {
    EXPECT_TRUE(IsSysTopic(t)) << t;
  }
  for (const char* t : {"SYS/x", "a/$SYS", "$sys/x", "$share/g/x", "$", "/$SYS"}) {
    EXPECT_FALSE(IsSysTopic(t)) << t;
  }
}

TEST(Topic, SpecMultiLevelWildcardExamples) {  // 4.7.1.2
  ExpectMatches({
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/tennis/player1/#", "sport/tennis/player2", false},
      {"sport/tennis/player1/#", "sport/tennis", false},
      {"sport/#", "sport", true},
      {"#", "sport/tennis/player1", true},
      {"#", "/", true},
  });
}

TEST(Topic, SpecSingleLevelWildcardExamples) {  // 4.7.1.3
  ExpectMatches({
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player2", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"sport/+/player1", "sport/tennis/player1", true},
      {"+/tennis/#", "sport/tennis/player1", true},
      {"+/tennis/#", "sport/tennis", true},
  });
}

TEST(Topic, SpecDollarTopicExamples) {  // 4.7.2
  ExpectMatches({
      {"#", "$SYS/monitor/Clients", false},
      {"#", "$SYS", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/#", "$SYS", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"+/x", "$a/x", false},
      {"+/#", "$a", false},
      {"+", "$", false},
      {"a/+", "a/$b", true},  // only the first character of the topic counts
      {"a/#", "a/$b", true},
  });
}

TEST(Topic, SpecTopicSemantics) {  // 4.7.3
  ExpectMatches({
      {"ACCOUNTS", "Accounts", false},
      {"Accounts payable", "Accounts payable", true},
      {"/finance", "finance", false},
      {"finance", "/finance", false},
      {"/finance", "/finance", true},
  });
}

TEST(Topic, PlusMatchesOneLevel) {
  ExpectMatches({
      {"+", "a", true},
      {"+", "a/b", false},
      {"a/+/c", "a/b/c", true},
      {"a/+/c", "a/b/x/c", false},
      {"a/+", "a", false},
      {"+/+/+", "a/b/c", true},
      {"+/+/+", "a/b", false},
  });
}

TEST(Topic, PlusMatchesEmptyLevel) {
  ExpectMatches({
      {"+/a", "/a", true},
      {"a/+/b", "a//b", true},
      {"+/+", "/", true},
      {"+", "/", false},
      {"a/+", "a/", true},
      {"+//+", "//", true},
  });
}

TEST(Topic, EmptyLevelsAreRealLevels) {
  ExpectMatches({
      {"a//b", "a//b", true},
      {"a//b", "a/b", false},
      {"a/b", "a//b", false},
      {"/", "/", true},
      {"/", "//", false},
      {"a/", "a", false},
      {"a", "a/", false},
  });
}

TEST(Topic, HashMatchesParentAndDescendants) {
  ExpectMatches({
      {"a/#", "a", true},
      {"a/#", "a/", true},
      {"a/#", "a/b/c/d", true},
      {"a/#", "ab", false},
      {"a/#", "b/a", false},
      {"/#", "/", true},
      {"/#", "/a", true},
      {"/#", "a", false},
      {"a/+/#", "a", false},
      {"a/+/#", "a/b", true},
      {"+/#", "a", true},
  });
}

TEST(Topic, ValidTopicNames) {
  for (const char* t : {"a", "/", "//", "a/b", "$SYS/x", "Accounts payable", "\xE2\x82\xAC/x",
                        "$share/g/a", "$share"}) {
    EXPECT_EQ(ValidateTopicName(t), ReasonCode::kSuccess) << t;
  }
}

TEST(Topic, InvalidTopicNames) {
  const struct {
    std::string_view topic;
    ReasonCode code;
  } kCases[] = {
      {"", ReasonCode::kTopicNameInvalid},
      {"+", ReasonCode::kTopicNameInvalid},
      {"#", ReasonCode::kTopicNameInvalid},
      {"a/+", ReasonCode::kTopicNameInvalid},
      {"a/#", ReasonCode::kTopicNameInvalid},
      {"a+b", ReasonCode::kTopicNameInvalid},
      {"sport/tennis#", ReasonCode::kTopicNameInvalid},
      {std::string_view("a\0b", 3), ReasonCode::kMalformedPacket},
      {"a/\xC0\xAF", ReasonCode::kMalformedPacket},
      {"\xED\xA0\x80", ReasonCode::kMalformedPacket},
      {"a\xFF", ReasonCode::kMalformedPacket},
  };
  for (const auto& c : kCases) EXPECT_EQ(ValidateTopicName(c.topic), c.code) << c.topic;
}

TEST(Topic, ValidTopicFilters) {
  for (const char* f : {"#",
                        "+",
                        "/",
                        "+/+",
                        "+/#",
                        "/#",
                        "//",
                        "a//#",
                        "sport/tennis/#",
                        "+/tennis/#",
                        "sport/+/player1",
                        "$SYS/#",
                        "$share",
                        "$sharex/a",
                        "$share/consumer1/sport/tennis/+",
                        "$share/consumer2/sport/tennis/+",
                        "$share/g/#",
                        "$share/g//finance",
                        "$share/$g/+",
                        "$share/g/$sharex"}) {
    EXPECT_EQ(ValidateTopicFilter(f), ReasonCode::kSuccess) << f;
  }
}

TEST(Topic, InvalidTopicFilters) {
  const struct {
    std::string_view filter;
    ReasonCode code;
  } kCases[] = {
      {"", ReasonCode::kTopicFilterInvalid},
      {"sport/tennis#", ReasonCode::kTopicFilterInvalid},
      {"sport/tennis/#/ranking", ReasonCode::kTopicFilterInvalid},
      {"sport+", ReasonCode::kTopicFilterInvalid},
      {"+sport", ReasonCode::kTopicFilterInvalid},
      {"a/+b", ReasonCode::kTopicFilterInvalid},
      {"a/b+/c", ReasonCode::kTopicFilterInvalid},
      {"++", ReasonCode::kTopicFilterInvalid},
      {"##", ReasonCode::kTopicFilterInvalid},
      {"#/", ReasonCode::kTopicFilterInvalid},
      {"#/a", ReasonCode::kTopicFilterInvalid},
      {"a/#/", ReasonCode::kTopicFilterInvalid},
      {"+#", ReasonCode::kTopicFilterInvalid},
      // $share syntax (4.8.2).
      {"$share/", ReasonCode::kTopicFilterInvalid},
      {"$share//a", ReasonCode::kTopicFilterInvalid},
      {"$share/g", ReasonCode::kTopicFilterInvalid},
      {"$share/g/", ReasonCode::kTopicFilterInvalid},
      {"$share/+/a", ReasonCode::kTopicFilterInvalid},
      {"$share/#/a", ReasonCode::kTopicFilterInvalid},
      {"$share/g+/a", ReasonCode::kTopicFilterInvalid},
      {"$share/g#/a", ReasonCode::kTopicFilterInvalid},
      {"$share/g/a+", ReasonCode::kTopicFilterInvalid},
      {"$share/g/#/a", ReasonCode::kTopicFilterInvalid},
      {"$share/g/$share/h/x", ReasonCode::kTopicFilterInvalid},  // nested
      {"$share/g/$share/x", ReasonCode::kTopicFilterInvalid},
      // UTF-8.
      {std::string_view("a/\0", 3), ReasonCode::kMalformedPacket},
      {"\xC0\x80/#", ReasonCode::kMalformedPacket},
      {"$share/\xED\xBF\xBF/a", ReasonCode::kMalformedPacket},
      {"a/\xF4\x90\x80\x80", ReasonCode::kMalformedPacket},
  };
  for (const auto& c : kCases) EXPECT_EQ(ValidateTopicFilter(c.filter), c.code) << c.filter;
}

TEST(Topic, ParseSharedFilter) {
  auto s = ParseSharedFilter("$share/consumer1/sport/tennis/+");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->group, "consumer1");
  EXPECT_EQ(s->filter, "sport/tennis/+");

  s = ParseSharedFilter("$share/g//finance");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->group, "g");
  EXPECT_EQ(s->filter, "/finance");

  s = ParseSharedFilter("$share/g/#");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->filter, "#");

  EXPECT_FALSE(ParseSharedFilter("sport/tennis").has_value());
  EXPECT_FALSE(ParseSharedFilter("$share").has_value());
  EXPECT_FALSE(ParseSharedFilter("$sharex/g/a").has_value());
  EXPECT_FALSE(ParseSharedFilter("#").has_value());
}

TEST(Topic, IntersectExamples) {
  const struct {
    const char* a;
    const char* b;
    std::optional<std::string> want;
  } kCases[] = {
      {"a/#", "a/+", "a/+"},
      {"a/#", "a", "a"},
      {"+/#", "a", "a"},
      {"#", "$SYS/#", std::nullopt},
      {"+/x", "$a/x", std::nullopt},
      {"+/#", "$a", std::nullopt},
      {"$a/#", "$a/b", "$a/b"},
      {"$a/+", "$a/#", "$a/+"},
      {"$SYS/#", "$SYS/#", "$SYS/#"},
      {"#", "#", "#"},
      {"#", "+", "+"},
      {"#", "+/#", "+/#"},
      {"#", "a/b", "a/b"},
      {"+", "a/#", "a"},
      {"+/+", "#", "+/+"},
      {"a/+", "+/b", "a/b"},
      {"a/b", "a/c", std::nullopt},
      {"a/#", "b/#", std::nullopt},
      {"a/#", "a/b/#", "a/b/#"},
      {"a/+/#", "+/b", "a/b"},
      {"a/+/#", "+/b/c/#", "a/b/c/#"},
      {"a/+/c", "a/#", "a/+/c"},
      {"a/+", "a", std::nullopt},
      {"a/+", "a/b/c", std::nullopt},
      {"a//b", "a/+/b", "a//b"},
      {"/#", "/", "/"},
      {"/#", "+/+", "/+"},
      // Only the (invalid) empty topic would match both.
      {"/#", "+", std::nullopt},
      {"+", "/#", std::nullopt},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(Intersect(c.a, c.b), c.want) << c.a << " ∩ " << c.b;
    EXPECT_EQ(Intersect(c.b, c.a).has_value(), c.want.has_value()) << c.b << " ∩ " << c.a;
  }
}

// Brute force over a finite space: filters of up to 4 levels over {a, b, $s, "", +, #} and every
// topic of 1 to 5 levels over {a, b, $s, ""}. A returned intersection needs at most 4 levels to be
// witnessed, so "no topic of the space matches both" is the same as "no topic at all does".
class TopicSpace {
 public:
  static constexpr size_t kMaxTopics = 4 + 16 + 64 + 256 + 1024;
  using Set = std::bitset<kMaxTopics>;

  TopicSpace() {
    const char* kLevels[] = {"a", "b", "$s", ""};
    std::vector<std::string> layer = {""};
    for (int depth = 1; depth <= 5; ++depth) {
      std::vector<std::string> next;
      for (const auto& prefix : layer) {
        for (const char* l : kLevels) next.push_back(depth == 1 ? l : prefix + "/" + l);
      }
      for (const auto& t : next) {
        if (ValidateTopicName(t) == ReasonCode::kSuccess) topics_.push_back(t);
      }
      layer = std::move(next);
    }
  }

  Set MatchedBy(std::string_view filter) const {
    Set s;
    for (size_t i = 0; i < topics_.size(); ++i) s[i] = Matches(filter, topics_[i]);
    return s;
  }

  const std::vector<std::string>& topics() const { return topics_; }

 private:
  std::vector<std::string> topics_;
};

std::string RandomFilter(std::mt19937& rng) {
  const char* kLevels[] = {"a", "b", "$s", "", "+", "#"};
  for (;;) {
    const int depth = 1 + static_cast<int>(rng() % 4);
    std::string f;
    for (int i = 0; i < depth; ++i) {
      if (i > 0) f += '/';
      f += kLevels[rng() % 6];
    }
    if (ValidateTopicFilter(f) == ReasonCode::kSuccess) return f;
  }
}

TEST(Topic, IntersectBruteForce) {
  const TopicSpace space;
  ASSERT_EQ(space.topics().size(), TopicSpace::kMaxTopics - 1);  // all but the empty topic ""
  std::mt19937 rng(20240611);
  std::vector<std::string> filters = {"#", "+", "/#", "+/#", "$s/#", "a/#", "/", "+/+"};
  while (filters.size() < 160) filters.push_back(RandomFilter(rng));
  std::vector<TopicSpace::Set> matched;
  matched.reserve(filters.size());
  for (const auto& f : filters) matched.push_back(space.MatchedBy(f));

  size_t empty = 0;
  for (size_t i = 0; i < filters.size(); ++i) {
    for (size_t j = 0; j < filters.size(); ++j) {
      const std::string& a = filters[i];
      const std::string& b = filters[j];
      const TopicSpace::Set both = matched[i] & matched[j];
      const std::optional<std::string> r = Intersect(a, b);
      ASSERT_EQ(r.has_value(), both.any()) << a << " ∩ " << b;
      if (!r) {
        ++empty;
        continue;
      }
      ASSERT_EQ(ValidateTopicFilter(*r), ReasonCode::kSuccess) << a << " ∩ " << b << " = " << *r;
      ASSERT_EQ(space.MatchedBy(*r), both) << a << " ∩ " << b << " = " << *r;
    }
  }
  // The sample must exercise both outcomes.
  EXPECT_GT(empty, filters.size());
  EXPECT_LT(empty, filters.size() * filters.size() - filters.size());
}

}  // namespace
}  // namespace ringmq::proto
