#include "acl/acl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "acl/acl_cache.h"

namespace ringmq::acl {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

AclPtr AclOf(std::vector<AclEntry> entries, uint64_t version = 1) {
  Token t;
  t.id = 5;
  t.expire = 99;
  t.access.type = AccessType::kAcl;
  t.access.acl = std::move(entries);
  return CompiledAcl::Compile(t, version);
}

TEST(CompiledAcl, StandardAndMasterAllowEverything) {
  Access a;
  auto acl = CompiledAcl::Compile(a, 3);
  EXPECT_TRUE(acl->AllowsEverything());
  EXPECT_FALSE(acl->IsMaster());
  EXPECT_TRUE(acl->CanPublish("$SYS/x"));
  EXPECT_THAT(acl->EffectiveFilters("#"), ElementsAre("#"));
  EXPECT_THAT(acl->EffectiveFilters("$share/g/a/+"), ElementsAre("$share/g/a/+"));
  a.type = AccessType::kMaster;
  acl = CompiledAcl::Compile(a, 4);
  EXPECT_TRUE(acl->IsMaster());
  EXPECT_EQ(acl->version(), 4u);
  EXPECT_EQ(acl->token_id(), 0);
}

TEST(CompiledAcl, ExpiredAtOnlyWhenNoTtlCanKeepItAlive) {
  Token t;
  t.expire = 100;
  EXPECT_FALSE(CompiledAcl::Compile(t, 1)->ExpiredAt(99));
  EXPECT_TRUE(CompiledAcl::Compile(t, 1)->ExpiredAt(100));
  t.ttl = 30;  // expire passed, but use may keep it valid: the admin shard decides
  EXPECT_EQ(CompiledAcl::Compile(t, 1)->ttl(), 30);
  EXPECT_FALSE(CompiledAcl::Compile(t, 1)->ExpiredAt(100));
  t.expire = 0;
  t.ttl = 0;
  EXPECT_FALSE(CompiledAcl::Compile(t, 1)->ExpiredAt(1000000));
}

TEST(CompiledAcl, Publish) {
  auto acl = AclOf({{"data/42/+", kActionPublish},
                    {"cmd/42", kActionPublish},
                    {"sub/only", kActionSubscribe},
                    {"#", kActionSubscribe}});
  EXPECT_EQ(acl->token_id(), 5);
  EXPECT_EQ(acl->expire(), 99);
  EXPECT_FALSE(acl->AllowsEverything());
  EXPECT_TRUE(acl->CanPublish("data/42/temp"));
  EXPECT_FALSE(acl->CanPublish("data/42/temp/x"));
  EXPECT_FALSE(acl->CanPublish("data/43/temp"));
  EXPECT_TRUE(acl->CanPublish("cmd/42"));
  EXPECT_FALSE(acl->CanPublish("cmd/42/x"));
  EXPECT_FALSE(acl->CanPublish("sub/only"));
  auto all = AclOf({{"#", kActionPublish}});
  EXPECT_TRUE(all->CanPublish("a/b"));
  EXPECT_FALSE(all->CanPublish("$SYS/x"));  // a leading wildcard never matches '$' topics
}

TEST(CompiledAcl, SubscribeIntersects) {
  auto acl = AclOf({{"data/42/#", kActionSubscribe}, {"data/+/public", kActionSubscribe}});
  EXPECT_THAT(acl->EffectiveFilters("#"), UnorderedElementsAre("data/42/#", "data/+/public"));
  EXPECT_THAT(acl->EffectiveFilters("data/+/temp"), ElementsAre("data/42/temp"));
  EXPECT_THAT(acl->EffectiveFilters("data/42/public"), ElementsAre("data/42/public"));
  EXPECT_THAT(acl->EffectiveFilters("data/43/temp"), IsEmpty());
  EXPECT_THAT(acl->EffectiveFilters("other/#"), IsEmpty());
  EXPECT_THAT(acl->EffectiveFilters("$SYS/#"), IsEmpty());
  // data/+/public ∩ data/42/# = data/42/public is covered by data/42/#: one filter.
  EXPECT_THAT(acl->EffectiveFilters("data/42/+"), ElementsAre("data/42/+"));
}

TEST(CompiledAcl, SubscribeRemovesDuplicatesAndCoveredFilters) {
  auto acl = AclOf({{"a/b", kActionSubscribe},
                    {"a/#", kActionSubscribe},
                    {"a/b", kActionSubscribe | kActionPublish},
                    {"x/y", kActionPublish}});
  EXPECT_THAT(acl->EffectiveFilters("#"), ElementsAre("a/#"));
  EXPECT_THAT(acl->EffectiveFilters("+/b"), ElementsAre("a/b"));
  EXPECT_THAT(acl->EffectiveFilters("x/y"), IsEmpty());  // publish-only entry
}

TEST(CompiledAcl, ReceiveFollowsTheSubscribeEntries) {
  auto acl = AclOf({{"data/u4/keep/#", kActionSubscribe}, {"pub/only", kActionPublish}});
  EXPECT_TRUE(acl->CanReceive("data/u4/keep/1"));
  EXPECT_TRUE(acl->CanReceive("data/u4/keep"));  // '#' includes the parent level
  EXPECT_FALSE(acl->CanReceive("data/u4/drop/1"));
  EXPECT_FALSE(acl->CanReceive("pub/only"));  // publish-only entry
  EXPECT_FALSE(AclOf({{"#", kActionSubscribe}})->CanReceive("$SYS/x"));
  EXPECT_TRUE(CompiledAcl::Compile(Access{}, 1)->CanReceive("$SYS/x"));  // standard
}

TEST(CompiledAcl, SharedSubscriptionsKeepTheirPrefix) {
  auto acl = AclOf({{"data/42/#", kActionSubscribe}});
  EXPECT_THAT(acl->EffectiveFilters("$share/grp/data/#"), ElementsAre("$share/grp/data/42/#"));
  EXPECT_THAT(acl->EffectiveFilters("$share/grp/other"), IsEmpty());
}

TEST(CompiledAcl, EmptyAclAllowsNothing) {
  auto acl = AclOf({});
  EXPECT_FALSE(acl->CanPublish("a"));
  EXPECT_THAT(acl->EffectiveFilters("#"), IsEmpty());
}

TEST(AclCache, FindPutInvalidate) {
  AclCache cache(2);
  EXPECT_EQ(cache.Find("k1"), nullptr);
  EXPECT_TRUE(cache.Put("k1", AclOf({}, 2)));
  ASSERT_NE(cache.Find("k1"), nullptr);
  EXPECT_EQ(cache.Find("k1")->version(), 2u);
  EXPECT_FALSE(cache.Put("k1", AclOf({}, 1)));  // older: kept the newer
  EXPECT_FALSE(cache.Put("k1", AclOf({}, 2)));
  EXPECT_EQ(cache.Find("k1")->version(), 2u);
  EXPECT_TRUE(cache.Put("k1", AclOf({}, 3)));
  EXPECT_EQ(cache.Find("k1")->version(), 3u);
  EXPECT_TRUE(cache.Invalidate("k1"));
  EXPECT_FALSE(cache.Invalidate("k1"));
  EXPECT_EQ(cache.Find("k1"), nullptr);
}

TEST(AclCache, BoundedByCapacity) {
  AclCache cache(2);
  cache.Put("a", AclOf({}));
  cache.Put("b", AclOf({}));
  cache.Put("c", AclOf({}));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.Find("c"), nullptr);
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace ringmq::acl
