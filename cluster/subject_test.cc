#include "cluster/subject.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "cluster/remote_interest.h"
#include "proto/topic.h"

namespace ringmq::cluster {
namespace {

TEST(TopicToken, KeepsPlainBytesAndEscapesTheRest) {
  EXPECT_EQ(TopicToken("sensor_1-a"), "sensor_1-a");
  EXPECT_EQ(TopicToken(""), "%");
  EXPECT_EQ(TopicToken("*"), "%2A");
  EXPECT_EQ(TopicToken(">"), "%3E");
  EXPECT_EQ(TopicToken("a.b c"), "a%2Eb%20c");
  EXPECT_EQ(TopicToken("$SYS"), "%24SYS");
  EXPECT_EQ(TopicToken("%"), "%25");
  EXPECT_EQ(TopicToken("\xC3\xA9"), "%C3%A9");
}

TEST(TopicToken, IsInjective) {
  const std::vector<std::string> levels = {"",  "%", "%25", "a.b", "a%2Eb", "*",  "%2A", ">",
                                           " ", "a", "A",   "_",   "-",     "\t", "%%",  "%2"};
  std::set<std::string> tokens;
  for (const std::string& l : levels) tokens.insert(TopicToken(l));
  EXPECT_EQ(tokens.size(), levels.size());
}

TEST(TopicSubject, OneTokenPerLevel) {
  EXPECT_EQ(TopicSubject("ringmq", "m", "data/u1/t"), "ringmq.m.data.u1.t");
  EXPECT_EQ(TopicSubject("ringmq", "r", "/x/"), "ringmq.r.%.x.%");
  EXPECT_EQ(TopicSubject("a.b", "m", "$SYS/up"), "a.b.m.%24SYS.up");
}

TEST(CoarseSubjects, Table) {
  struct Case {
    const char* filter;
    unsigned levels;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"#", 1, {"P.m.>"}},
      {"#", 3, {"P.m.>"}},
      {"a", 1, {"P.m.a"}},
      {"+", 1, {"P.m.*"}},
      {"a/#", 1, {"P.m.a", "P.m.a.>"}},
      {"a/b/#", 1, {"P.m.a.>"}},
      {"a/b/#", 3, {"P.m.a.b", "P.m.a.b.>"}},
      {"a/b/c", 1, {"P.m.a.>"}},
      {"a/b/c", 3, {"P.m.a.b.c"}},
      {"+/b", 1, {"P.m.*.>"}},
      {"a/+/c", 2, {"P.m.a.*.>"}},
      {"data/u.1/#", 2, {"P.m.data.u%2E1", "P.m.data.u%2E1.>"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CoarseSubjects("P", "m", c.filter, c.levels), c.want) << c.filter << " " << c.levels;
  }
}

TEST(SubjectFilter, InvertsTheMapping) {
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.data.>"), "data/#");
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.>"), "#");
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.*.t"), "+/t");
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.%24SYS.%.a%2Eb"), "$SYS//a.b");
  EXPECT_EQ(SubjectFilter("a.b", "m", "a.b.m.x"), "x");
}

TEST(SubjectFilter, RefusesWhatNoNodeSends) {
  EXPECT_EQ(SubjectFilter("P", "m", "Q.m.x"), "");      // another prefix
  EXPECT_EQ(SubjectFilter("P", "m", "P.r.x"), "");      // another family
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.>.x"), "");    // '>' not last
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.a%2"), "");    // cut escape
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.a%zz"), "");   // not hex
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.a%2Fb"), "");  // '/' inside a level
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.a%2B"), "");   // '+' inside a level
  EXPECT_EQ(SubjectFilter("P", "m", "P.m.%00"), "");    // U+0000
}

TEST(RemoteInterest, MatchesWhatTheSubjectsCover) {
  const RemoteInterest none("P", {});
  EXPECT_FALSE(none.Matches("a"));
  const RemoteInterest some("P", {"P.m.data", "P.m.data.>", "P.m.*.t"});
  EXPECT_TRUE(some.Matches("data"));
  EXPECT_TRUE(some.Matches("data/u1/x"));
  EXPECT_TRUE(some.Matches("other/t"));
  EXPECT_FALSE(some.Matches("other/x"));
  EXPECT_FALSE(some.Matches("$x/t"));  // a leading wildcard never matches '$' (nor did the filter)
  // Something it cannot read: every topic, rather than lose a message.
  EXPECT_TRUE(RemoteInterest("P", {"P.m.a", "garbage"}).Matches("zzz"));
  EXPECT_TRUE(RemoteInterest("P", {">"}).everything());
}

TEST(NatsSubjectMatches, Rules) {
  EXPECT_TRUE(NatsSubjectMatches("a.*.c", "a.b.c"));
  EXPECT_FALSE(NatsSubjectMatches("a.*", "a.b.c"));
  EXPECT_TRUE(NatsSubjectMatches("a.>", "a.b.c"));
  EXPECT_FALSE(NatsSubjectMatches("a.>", "a"));
  EXPECT_TRUE(NatsSubjectMatches("a", "a"));
}

// Invariant 1: whatever a filter matches, one of its coarse subjects covers (random filters and
// topics over an alphabet of awkward levels, every depth of coarsening).
TEST(CoarseSubjects, CoverEveryTopicTheFilterMatches) {
  const std::vector<std::string> levels = {"a", "b", "", "$x", "a.b", "*", ">"};
  std::mt19937 rng(7);
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  size_t matched = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string topic, filter;
    const size_t tn = 1 + pick(4), fn = 1 + pick(4);
    for (size_t k = 0; k < tn; ++k) topic += (k ? "/" : "") + levels[pick(levels.size())];
    for (size_t k = 0; k < fn; ++k) {
      std::string l = levels[pick(levels.size())];
      const size_t w = pick(6);
      if (w == 0) l = "+";
      if (w == 1 && k + 1 == fn) l = "#";
      filter += (k ? "/" : "") + l;
    }
    if (proto::ValidateTopicName(topic) != proto::ReasonCode::kSuccess ||
        proto::ValidateTopicFilter(filter) != proto::ReasonCode::kSuccess ||
        !proto::Matches(filter, topic)) {
      continue;
    }
    ++matched;
    for (unsigned depth = 1; depth <= 4; ++depth) {
      const std::string subject = TopicSubject("P", "m", topic);
      bool covered = false;
      for (const std::string& s : CoarseSubjects("P", "m", filter, depth)) {
        covered = covered || NatsSubjectMatches(s, subject);
      }
      EXPECT_TRUE(covered) << filter << " / " << topic << " at depth " << depth;
      // Invariant 3: the filters other nodes rebuild from the subjects cover it as well.
      EXPECT_TRUE(RemoteInterest("P", CoarseSubjects("P", "m", filter, depth)).Matches(topic))
          << filter << " / " << topic << " at depth " << depth;
    }
  }
  EXPECT_GT(matched, 500u);  // the generator does produce matches
}

}  // namespace
}  // namespace ringmq::cluster
