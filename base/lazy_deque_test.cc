// LazyDeque: nothing allocated until an element is added, std::deque behaviour after, storage
// returned only when empty.
#include "base/lazy_deque.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace ringmq::base {
namespace {

std::vector<int> Items(const LazyDeque<int>& d) { return std::vector<int>(d.begin(), d.end()); }

TEST(LazyDeque, AllocatesNothingUntilTheFirstElement) {
  LazyDeque<std::string> d;
  EXPECT_FALSE(d.allocated());
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(d.size(), 0u);
  EXPECT_TRUE(d.begin() == d.end());
  EXPECT_EQ(std::find(d.begin(), d.end(), "x"), d.end());
  EXPECT_EQ(d.EraseIf([](const std::string&) { return true; }), 0u);
  for (const std::string& s : d) ADD_FAILURE() << s;
  d.Release();
  EXPECT_FALSE(d.allocated());
  d.push_back("a");
  EXPECT_TRUE(d.allocated());
  EXPECT_EQ(d.front(), "a");
}

TEST(LazyDeque, BehavesAsADeque) {
  LazyDeque<int> d;
  for (int i = 0; i < 10; ++i) d.push_back(i);
  EXPECT_EQ(d.size(), 10u);
  EXPECT_EQ(d.front(), 0);
  EXPECT_EQ(d.back(), 9);
  d.pop_front();
  d.erase(std::find(d.begin(), d.end(), 5));
  EXPECT_EQ(d.EraseIf([](int v) { return v % 2 == 0; }), 4u);
  EXPECT_EQ(Items(d), (std::vector<int>{1, 3, 7, 9}));
  EXPECT_EQ(*(d.end() - 1), 9);
}

TEST(LazyDeque, ReleaseKeepsElementsAndFreesOnlyWhenEmpty) {
  LazyDeque<int> d;
  d.push_back(1);
  d.Release();
  EXPECT_TRUE(d.allocated());
  EXPECT_EQ(Items(d), (std::vector<int>{1}));
  d.pop_front();
  EXPECT_TRUE(d.allocated());  // kept while in use: no allocation per element
  d.Release();
  EXPECT_FALSE(d.allocated());
  EXPECT_TRUE(d.empty());
  d.push_back(2);
  EXPECT_EQ(Items(d), (std::vector<int>{2}));
}

}  // namespace
}  // namespace ringmq::base
