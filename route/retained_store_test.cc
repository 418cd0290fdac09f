#include "route/retained_store.h"

#include <gtest/gtest.h>

#include "route/message.h"
#include "smp/key_shard.h"

namespace ringmq::route {
namespace {

MessagePtr Retained(std::string topic, std::string payload, int64_t expires_at_ms = 0) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  m->expires_at_ms = expires_at_ms;
  return m;
}

TEST(RetainedStore, KeepsBytesAndTheQuotaInStepWithEveryChange) {
  smp::Qsbr qsbr(1);
  RetainedQuota q(qsbr);
  RetainedStore s(q, 0);
  s.Set(Retained("a/b", "12345"));  // 3 + 5
  s.Set(Retained("c", "1"));        // 1 + 1
  EXPECT_EQ(s.bytes(), 10u);
  EXPECT_EQ(q.total(), 10u);
  EXPECT_EQ(q.CostOf(0, smp::KeyHash("a/b")), 8u);
  s.Set(Retained("a/b", "12"));  // replaced, smaller
  EXPECT_EQ(s.bytes(), 7u);
  EXPECT_EQ(q.total(), 7u);
  EXPECT_EQ(q.CostOf(0, smp::KeyHash("a/b")), 5u);
  EXPECT_TRUE(s.Erase("c"));
  EXPECT_FALSE(s.Erase("c"));
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(q.total(), 5u);
  EXPECT_EQ(q.CostOf(0, smp::KeyHash("c")), 0u);
  auto it = s.Erase(s.begin());
  EXPECT_EQ(it, s.end());
  EXPECT_EQ(s.bytes(), 0u);
  EXPECT_EQ(q.total(), 0u);
}

TEST(RetainedStore, ExpiredMessagesAreErasedAndUncounted) {
  smp::Qsbr qsbr(1);
  RetainedQuota q(qsbr);
  RetainedStore s(q, 0);
  s.Set(Retained("x", "1", 100));
  s.Set(Retained("y", "1", 200));
  s.Set(Retained("z", "1"));
  s.Set(Retained("y", "1", 300));  // a replacement moves its expiry
  EXPECT_EQ(s.EraseExpired(99), 0u);
  EXPECT_EQ(s.EraseExpired(200), 1u);  // x only: y now expires at 300
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.EraseExpired(1000), 1u);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(q.total(), 2u);
  s.Set(Retained("z", "1", 50));  // a message without expiry replaced by one with
  EXPECT_TRUE(s.Erase("z"));      // erasing it also forgets its expiry
  EXPECT_EQ(s.EraseExpired(1000), 0u);
  EXPECT_EQ(q.total(), 0u);
}

}  // namespace
}  // namespace ringmq::route
