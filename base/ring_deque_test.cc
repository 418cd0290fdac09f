// RingDeque: nothing allocated until an element is added, FIFO order across wrap-around and
// growth, erase and EraseIf in place, storage returned only when empty, elements destroyed.
#include "base/ring_deque.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace ringmq::base {
namespace {

std::vector<int> Items(const RingDeque<int>& d) { return std::vector<int>(d.begin(), d.end()); }

TEST(RingDeque, AllocatesNothingUntilTheFirstElement) {
  RingDeque<std::string> d;
  EXPECT_LE(sizeof(d), 24u);
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

TEST(RingDeque, BehavesAsADeque) {
  RingDeque<int> d;
  for (int i = 0; i < 10; ++i) d.push_back(i);
  EXPECT_EQ(d.size(), 10u);
  EXPECT_EQ(d.front(), 0);
  EXPECT_EQ(d.back(), 9);
  d.pop_front();
  auto next = d.erase(std::find(d.begin(), d.end(), 5));
  EXPECT_EQ(*next, 6);
  EXPECT_EQ(d.EraseIf([](int v) { return v % 2 == 0; }), 4u);
  EXPECT_EQ(Items(d), (std::vector<int>{1, 3, 7, 9}));
  EXPECT_EQ(*(d.end() - 1), 9);
  EXPECT_EQ(d.end() - d.begin(), 4);
  EXPECT_TRUE(std::none_of(d.begin(), d.end(), [](int v) { return v == 5; }));
  d.erase(d.end() - 1);
  EXPECT_EQ(Items(d), (std::vector<int>{1, 3, 7}));
}

// The FIFO order holds when the elements wrap around the end of the buffer, when it grows while
// wrapped, and when erase / EraseIf move elements across the wrap.
TEST(RingDeque, KeepsOrderAcrossWrapAroundAndGrowth) {
  RingDeque<int> d;
  std::vector<int> model;
  int next = 0;
  for (int round = 0; round < 200; ++round) {
    const int pushes = 1 + round % 7;
    const int pops = round % 5;
    for (int i = 0; i < pushes; ++i) {
      d.push_back(next);
      model.push_back(next++);
    }
    for (int i = 0; i < pops && !model.empty(); ++i) {
      ASSERT_EQ(d.front(), model.front());
      d.pop_front();
      model.erase(model.begin());
    }
    if (round % 11 == 0 && !model.empty()) {
      const size_t at = model.size() / 2;
      d.erase(d.begin() + static_cast<std::ptrdiff_t>(at));
      model.erase(model.begin() + static_cast<std::ptrdiff_t>(at));
    }
    if (round % 13 == 0) {
      d.EraseIf([](int v) { return v % 3 == 0; });
      std::erase_if(model, [](int v) { return v % 3 == 0; });
    }
    ASSERT_EQ(Items(d), model) << "round " << round;
    if (!model.empty()) {
      ASSERT_EQ(d.back(), model.back());
    }
  }
  EXPECT_LE(d.capacity(), 2 * std::max<size_t>(model.size(), 4) * 2);
}

TEST(RingDeque, ReleaseKeepsElementsAndFreesOnlyWhenEmpty) {
  RingDeque<int> d;
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

// Move-only elements; every element is destroyed exactly once (pop, erase, EraseIf, growth,
// destruction, move assignment).
TEST(RingDeque, DestroysEveryElementOnce) {
  auto token = std::make_shared<int>(0);
  {
    RingDeque<std::unique_ptr<std::shared_ptr<int>>> d;
    for (int i = 0; i < 37; ++i) d.push_back(std::make_unique<std::shared_ptr<int>>(token));
    EXPECT_EQ(token.use_count(), 38);
    d.pop_front();
    d.erase(d.begin() + 3);
    size_t n = 0;
    d.EraseIf([&n](const auto&) { return n++ % 2 == 0; });
    EXPECT_EQ(token.use_count(), 1 + static_cast<long>(d.size()));
    RingDeque<std::unique_ptr<std::shared_ptr<int>>> other;
    other.push_back(std::make_unique<std::shared_ptr<int>>(token));
    other = std::move(d);
    EXPECT_EQ(token.use_count(), 1 + static_cast<long>(other.size()));
    EXPECT_TRUE(d.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  }
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace ringmq::base
