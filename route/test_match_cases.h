// The topic matching table both subscription indexes are tested against (route/local_trie_test.cc,
// route/topic_index_test.cc), so that the two can never disagree on what matches.
#ifndef RINGMQ_ROUTE_TEST_MATCH_CASES_H_
#define RINGMQ_ROUTE_TEST_MATCH_CASES_H_

namespace ringmq::route {

// A filter, a topic, and whether they match: MQTT 5.0 section 4.7 examples and edge cases.
struct MatchCase {
  const char* filter;
  const char* topic;
  bool match;
};

inline constexpr MatchCase kMatchCases[] = {
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/tennis/player1/#", "sport/tennis/player2", false},
    {"sport/#", "sport", true},
    {"#", "sport/tennis", true},
    {"#", "/", true},
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+", "/finance", false},
    {"+", "finance", true},
    {"+/tennis/#", "sport/tennis/player1", true},
    {"sport/+/player1", "sport/tennis/player1", true},
    {"a/b", "a/b", true},
    {"a/b", "a/b/c", false},
    {"a/b", "a", false},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"a/#", "a/", true},
    {"/#", "/", true},
    {"#", "$SYS/monitor/Clients", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"$SYS/#", "$SYS/monitor/Clients", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"$SYS", "$SYS", true},
    {"#", "$SYS", false},
    {"+", "$SYS", false},
    {"a/$b/+", "a/$b/c", true},
    {"+/$b", "a/$b", true},
};

}  // namespace ringmq::route

#endif  // RINGMQ_ROUTE_TEST_MATCH_CASES_H_
