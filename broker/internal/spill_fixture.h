// Test fixture: a spill context in a fresh temporary folder (broker/spill.h), removed after the
// test. For the unit tests of spill files and of sessions that spill.
#ifndef RINGMQ_BROKER_INTERNAL_SPILL_FIXTURE_H_
#define RINGMQ_BROKER_INTERNAL_SPILL_FIXTURE_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "broker/spill.h"

namespace ringmq::broker::internal {

class SpillFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringmq-spill-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ctx_.dir = root_ + "/spill";
    ctx_.budget = &budget_;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string root_;
  DiskBudget budget_{1ull << 40};
  SpillContext ctx_;
};

}  // namespace ringmq::broker::internal

#endif  // RINGMQ_BROKER_INTERNAL_SPILL_FIXTURE_H_
