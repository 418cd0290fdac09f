#include "base/owner_thread.h"

#include <gtest/gtest.h>

#include <thread>

namespace ringmq::base {
namespace {

#ifndef NDEBUG
TEST(OwnerThread, TheFirstUserOwnsItUntilRebound) {
  OwnerThread o;
  EXPECT_TRUE(o.IsOwner());  // binds to this thread
  bool other = true;
  std::thread([&] { other = o.IsOwner(); }).join();
  EXPECT_FALSE(other);
  std::thread([&] {
    o.Rebind();
    other = o.IsOwner();
  }).join();
  EXPECT_TRUE(other);
  EXPECT_FALSE(o.IsOwner());
}

TEST(OwnerThreadDeathTest, CheckOffTheOwnerThreadAborts) {
  OwnerThread o;
  o.Check();
  EXPECT_DEATH(std::thread([&] { o.Check(); }).join(), "owner thread");
}
#else
TEST(OwnerThread, IsEmptyAndSilentInReleaseBuilds) {
  static_assert(sizeof(OwnerThread) == 1);
  OwnerThread o;
  o.Check();
  std::thread([&] { o.Check(); }).join();
  EXPECT_TRUE(o.IsOwner());
}
#endif

}  // namespace
}  // namespace ringmq::base
