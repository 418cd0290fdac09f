#include "route/local_trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "route/test_match_cases.h"

namespace ringmq::route {
namespace {

std::vector<int> MatchAll(const LocalTrie<int>& t, const char* topic) {
  std::vector<int> out;
  t.Match(topic, [&out](const int& v) { out.push_back(v); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(LocalTrie, MatchingTable) {
  for (const MatchCase& c : kMatchCases) {
    LocalTrie<int> t;
    t.Insert(c.filter, 7);
    EXPECT_EQ(MatchAll(t, c.topic), c.match ? std::vector<int>{7} : std::vector<int>{})
        << "filter " << c.filter << " topic " << c.topic;
  }
}

TEST(LocalTrie, ReportsEveryValueOfEveryMatchingFilter) {
  LocalTrie<int> t;
  t.Insert("a/b", 1);
  t.Insert("a/b", 2);
  t.Insert("a/+", 3);
  t.Insert("a/#", 4);
  t.Insert("#", 5);
  t.Insert("b", 6);
  EXPECT_EQ(MatchAll(t, "a/b"), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(MatchAll(t, "a"), (std::vector<int>{4, 5}));
  EXPECT_EQ(t.size(), 6u);
}

TEST(LocalTrie, EraseByPredicateAndPrune) {
  LocalTrie<int> t;
  t.Insert("a/b/c", 1);
  t.Insert("a/b/c", 2);
  t.Insert("a/+", 3);
  const std::size_t full = t.NodesForTest();
  EXPECT_EQ(full, 1u + 4u);  // root, a, b, c, +
  EXPECT_EQ(t.Erase("a/b/c", [](const int& v) { return v == 1; }), 1u);
  EXPECT_EQ(MatchAll(t, "a/b/c"), std::vector<int>{2});
  EXPECT_EQ(t.Erase("a/b/c", [](const int&) { return true; }), 1u);
  EXPECT_EQ(t.NodesForTest(), 3u);  // b and c pruned
  EXPECT_EQ(t.Erase("a/b/c", [](const int&) { return true; }), 0u);
  EXPECT_EQ(t.Erase("x/y", [](const int&) { return true; }), 0u);
  EXPECT_EQ(t.Erase("a/+", [](const int&) { return true; }), 1u);
  EXPECT_EQ(t.NodesForTest(), 1u);
  EXPECT_TRUE(t.empty());
}

TEST(LocalTrie, WideFanOutUsesIndexAndStaysCorrect) {
  LocalTrie<int> t;
  for (int i = 0; i < 1000; ++i) t.Insert("data/" + std::to_string(i) + "/#", i);
  EXPECT_EQ(MatchAll(t, "data/123/s1"), std::vector<int>{123});
  EXPECT_EQ(MatchAll(t, "data/999"), std::vector<int>{999});
  for (int i = 0; i < 1000; i += 2) {
    EXPECT_EQ(t.Erase("data/" + std::to_string(i) + "/#", [](const int&) { return true; }), 1u);
  }
  EXPECT_EQ(MatchAll(t, "data/122/s1"), std::vector<int>{});
  EXPECT_EQ(MatchAll(t, "data/123/s1"), std::vector<int>{123});
  for (int i = 1; i < 1000; i += 2) {
    t.Erase("data/" + std::to_string(i) + "/#", [](const int&) { return true; });
  }
  EXPECT_EQ(t.NodesForTest(), 1u);
}

}  // namespace
}  // namespace ringmq::route
