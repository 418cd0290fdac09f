#include "broker/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "broker/connection.h"
#include "smp/key_shard.h"
#include "smp/qsbr.h"

namespace ringmq::broker {
namespace {

// Records what the router asks of its shard. Posts stay flagged for confirmation when asked to
// and the target is in `persisting` (as a shard with persistent sessions would), or when they
// carry an answer tag.
class FakeHost : public Router::Host {
 public:
  bool PostToShard(uint16_t to, ShardMsg msg) override {
    msg.confirm = (msg.confirm && persisting.count(to) != 0) || msg.value != 0;
    const bool confirm = msg.confirm;
    posts.emplace_back(to, std::move(msg));
    return confirm;
  }
  void Deliver(Session& s, Delivery d) override { delivered.emplace_back(&s, std::move(d)); }
  void StoreRetained(const route::MessagePtr& m) override { stored.push_back(m); }
  void ToCluster(const route::MessagePtr& m) override { to_cluster.push_back(m); }
  void ClusterInterest(std::string_view filter, bool add) override {
    interest.emplace_back(std::string(filter), add);
  }
  bool SharedAcrossNodes() const override { return across_nodes; }
  void ClusterSharedInterest(const SharedKey& key, bool add) override {
    shared_interest.emplace_back(key.group + " " + key.filter, add);
  }

  std::vector<std::pair<uint16_t, ShardMsg>> posts;
  std::vector<route::MessagePtr> to_cluster;
  std::vector<std::pair<std::string, bool>> interest;
  std::vector<std::pair<std::string, bool>> shared_interest;
  bool across_nodes = false;
  std::vector<std::pair<Session*, Delivery>> delivered;
  std::vector<route::MessagePtr> stored;
  std::map<uint16_t, bool> persisting;
};

route::MessagePtr Msg(std::string topic, uint8_t qos, bool retain = false,
                      std::string origin = "publisher") {
  auto m = std::make_shared<route::Message>();
  m->topic = std::move(topic);
  m->payload = "x";
  m->qos = qos;
  m->retain = retain;
  m->origin_client_id = std::move(origin);
  return m;
}

Subscription Sub(std::vector<std::string> effective, uint8_t qos, uint32_t id = 0) {
  Subscription sub;
  sub.options.qos = qos;
  sub.options.subscription_id = id;
  sub.effective = std::move(effective);
  return sub;
}

// Two shards share one topic index; the router under test is shard 0's, shard 1 is only seen
// through the index (what another shard's router would have added) and the posts to it.
class RouterTest : public ::testing::Test {
 protected:
  static constexpr uint16_t kShards = 2;
  smp::Qsbr qsbr_{kShards};
  route::TopicIndex index_{qsbr_};
  FakeHost host_;
  base::Counter no_member_;
  base::OwnerThread owner_;
  Router router_{0, kShards, index_, host_, no_member_, owner_};
};

TEST_F(RouterTest, PublishDeliversToMatchingLocalSessionsOnly) {
  Session a("a"), b("b");
  router_.Attach(a, Sub({"data/+/temp"}, 1));
  router_.Attach(b, Sub({"data/u2/#"}, 0));
  (void)router_.Publish(Msg("data/u1/temp", 1), {});
  ASSERT_EQ(host_.delivered.size(), 1u);
  EXPECT_EQ(host_.delivered[0].first, &a);
  EXPECT_EQ(host_.delivered[0].second.qos, 1);
  EXPECT_TRUE(host_.posts.empty());
}

TEST_F(RouterTest, DeliveryQosIsTheLowerOfMessageAndSubscription) {
  Session a("a");
  router_.Attach(a, Sub({"t"}, 2));
  (void)router_.Publish(Msg("t", 1), {});
  (void)router_.Publish(Msg("t", 0), {});
  ASSERT_EQ(host_.delivered.size(), 2u);
  EXPECT_EQ(host_.delivered[0].second.qos, 1);
  EXPECT_EQ(host_.delivered[1].second.qos, 0);
}

TEST_F(RouterTest, OverlappingSubscriptionsOfOneSessionDeliverOnceWithHighestQosAndEveryId) {
  Session a("a");
  router_.Attach(a, Sub({"data/#"}, 0, 7));
  router_.Attach(a, Sub({"data/+/temp"}, 1, 9));
  router_.Attach(a, Sub({"data/u1/temp"}, 0));  // no identifier: none to add
  (void)router_.Publish(Msg("data/u1/temp", 2), {});
  ASSERT_EQ(host_.delivered.size(), 1u);
  const Delivery& d = host_.delivered[0].second;
  EXPECT_EQ(d.qos, 1);
  std::vector<uint32_t> ids = d.subscription_ids;
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint32_t>{7, 9}));
}

TEST_F(RouterTest, AclNarrowedSubscriptionDeliversOnlyItsIntersections) {
  // A token allowed data/u1/# subscribing to data/#: the effective filter is the intersection.
  Session a("a");
  router_.Attach(a, Sub({"data/u1/#"}, 1));
  (void)router_.Publish(Msg("data/u2/temp", 1), {});
  EXPECT_TRUE(host_.delivered.empty());
  (void)router_.Publish(Msg("data/u1/temp", 1), {});
  EXPECT_EQ(host_.delivered.size(), 1u);
}

TEST_F(RouterTest, NoLocalSkipsTheSessionsOwnMessages) {
  Session a("a"), b("b");
  Subscription sub = Sub({"t"}, 0);
  sub.options.no_local = true;
  router_.Attach(a, sub);
  router_.Attach(b, sub);
  (void)router_.Publish(Msg("t", 0, false, "a"), {});
  ASSERT_EQ(host_.delivered.size(), 1u);
  EXPECT_EQ(host_.delivered[0].first, &b);
}

TEST_F(RouterTest, LiveMessagesKeepTheRetainFlagOnlyWithRetainAsPublished) {
  Session a("a"), b("b");
  Subscription rap = Sub({"t"}, 0);
  rap.options.retain_as_published = true;
  router_.Attach(a, rap);
  router_.Attach(b, Sub({"t"}, 0));
  const uint16_t owner = smp::ShardOfKey("t", kShards);
  (void)router_.Publish(Msg("t", 0, /*retain=*/true), {});
  ASSERT_EQ(host_.delivered.size(), 2u);
  for (const auto& [s, d] : host_.delivered) EXPECT_EQ(d.retain, s == &a) << s->client_id();
  // And it is stored by the owner of its topic: here, or posted there.
  EXPECT_EQ(host_.stored.size(), owner == 0 ? 1u : 0u);
  EXPECT_EQ(host_.posts.size(), owner == 0 ? 0u : 1u);
}

TEST_F(RouterTest, RetainedMessageIsNotStoredWhenTheQuotaSaidSo) {
  (void)router_.Publish(Msg("a", 0, true), {.store_retained = false});
  (void)router_.Publish(Msg("b", 0, true), {.store_retained = false});
  EXPECT_TRUE(host_.stored.empty());
  EXPECT_TRUE(host_.posts.empty());
}

TEST_F(RouterTest, RetainedMessagesGoToTheOwnerOfTheirTopic) {
  // Find a topic each shard owns.
  std::string mine, theirs;
  for (int i = 0; mine.empty() || theirs.empty(); ++i) {
    const std::string t = "r/" + std::to_string(i);
    (smp::ShardOfKey(t, kShards) == 0 ? mine : theirs) = t;
  }
  (void)router_.Publish(Msg(mine, 1, true), {});
  (void)router_.Publish(Msg(theirs, 1, true), {});
  ASSERT_EQ(host_.stored.size(), 1u);
  EXPECT_EQ(host_.stored[0]->topic, mine);
  ASSERT_EQ(host_.posts.size(), 1u);
  EXPECT_EQ(host_.posts[0].first, 1);
  EXPECT_EQ(host_.posts[0].second.kind, ShardMsg::Kind::kRetain);
  EXPECT_EQ(host_.posts[0].second.msg->topic, theirs);
}

TEST_F(RouterTest, OneRemoteShardGetsOnePostHoweverManySubscribersItHas) {
  ASSERT_TRUE(index_.Add(1, "data/#"));
  ASSERT_TRUE(index_.Add(1, "data/+/temp"));
  (void)router_.Publish(Msg("data/u1/temp", 1), {});
  ASSERT_EQ(host_.posts.size(), 1u);
  EXPECT_EQ(host_.posts[0].first, 1);
  EXPECT_EQ(host_.posts[0].second.kind, ShardMsg::Kind::kDeliver);
  EXPECT_EQ(host_.posts[0].second.from, 0);
  EXPECT_TRUE(host_.delivered.empty());
}

TEST_F(RouterTest, PublishCountsThePostsTheAnswerMustWaitFor) {
  ASSERT_TRUE(index_.Add(1, "t"));
  EXPECT_EQ(router_.Publish(Msg("t", 1), {.await_durable = true}), 0u);  // shard 1 keeps nothing
  host_.persisting[1] = true;
  EXPECT_EQ(router_.Publish(Msg("t", 1), {.await_durable = true}), 1u);
  EXPECT_EQ(router_.Publish(Msg("t", 1), {}), 0u);  // the publisher does not wait
  ASSERT_EQ(host_.posts.size(), 3u);
  EXPECT_FALSE(host_.posts[0].second.confirm);
  EXPECT_TRUE(host_.posts[1].second.confirm);
  EXPECT_FALSE(host_.posts[2].second.confirm);
}

TEST_F(RouterTest, AnAnswerTagTravelsWithEveryDeliveryButNotTheRetainedCopy) {
  // An MQTT 5 QoS 1 answer learns of refusals on other shards: each delivery carries its tag.
  ASSERT_TRUE(index_.Add(1, "t"));
  ASSERT_TRUE(index_.AddShared(1, "g", "t"));
  EXPECT_EQ(router_.Publish(Msg("t", 1, /*retain=*/true), {.answer_tag = 7}), 2u);
  ASSERT_GE(host_.posts.size(), 2u);  // and the retained copy, when shard 1 owns "t"
  for (const auto& [to, msg] : host_.posts) {
    EXPECT_EQ(to, 1);
    const bool delivery = msg.kind != ShardMsg::Kind::kRetain;
    EXPECT_EQ(msg.value, delivery ? 7u : 0u);  // the tag
    EXPECT_EQ(msg.confirm, delivery);
  }
}

TEST_F(RouterTest, DetachUndoesOneAttachment) {
  Session a("a");
  const Subscription sub = Sub({"t"}, 0);
  router_.Attach(a, sub);
  router_.Attach(a, sub);
  router_.Detach(a, sub);
  (void)router_.Publish(Msg("t", 0), {});
  EXPECT_EQ(host_.delivered.size(), 1u);
  EXPECT_EQ(index_.ShardsFor("t"), 1u);
  router_.Detach(a, sub);
  (void)router_.Publish(Msg("t", 0), {});
  EXPECT_EQ(host_.delivered.size(), 1u);
  EXPECT_EQ(index_.ShardsFor("t"), 0u);
}

TEST_F(RouterTest, DollarTopicsAreNotMatchedByLeadingWildcards) {
  Session a("a"), b("b");
  router_.Attach(a, Sub({"#"}, 0));
  router_.Attach(b, Sub({"$SYS/#"}, 0));
  (void)router_.Publish(Msg("$SYS/broker/uptime", 0), {});
  ASSERT_EQ(host_.delivered.size(), 1u);
  EXPECT_EQ(host_.delivered[0].first, &b);
}

TEST_F(RouterTest, SharedGroupDeliversEachMessageToOneMemberInTurn) {
  Session a("a"), b("b"), other("other");
  router_.Attach(a, Sub({"$share/g/data/#"}, 1));
  router_.Attach(b, Sub({"$share/g/data/#"}, 1));
  router_.Attach(other, Sub({"$share/h/data/#"}, 0));
  for (int i = 0; i < 4; ++i) (void)router_.Publish(Msg("data/x", 1), {});
  std::map<std::string, int> got;
  for (const auto& [s, d] : host_.delivered) {
    ++got[s->client_id()];
    ASSERT_NE(d.shared, nullptr);
    EXPECT_EQ(d.shared->group, s == &other ? "h" : "g");
  }
  EXPECT_EQ(got["a"], 2);
  EXPECT_EQ(got["b"], 2);
  EXPECT_EQ(got["other"], 4);  // every group gets every message
}

TEST_F(RouterTest, SharedGroupPrefersConnectedMembers) {
  Session offline("offline"), online("online");
  Connection conn(-1, 0, 1);
  online.connection = &conn;
  router_.Attach(offline, Sub({"$share/g/t"}, 1));
  router_.Attach(online, Sub({"$share/g/t"}, 1));
  for (int i = 0; i < 3; ++i) (void)router_.Publish(Msg("t", 1), {});
  ASSERT_EQ(host_.delivered.size(), 3u);
  for (const auto& [s, d] : host_.delivered) EXPECT_EQ(s, &online);
  online.connection = nullptr;
}

TEST_F(RouterTest, SharedGroupPicksTheShardWithConnectedMembers) {
  // Shard 1 has a connected member; shard 0's only member is offline.
  Session offline("offline");
  router_.Attach(offline, Sub({"$share/g/t"}, 1));
  ASSERT_TRUE(index_.AddShared(1, "g", "t"));
  ASSERT_TRUE(index_.AddShared(1, "#g", "t"));  // what SetSharedLive registers on shard 1
  for (int i = 0; i < 2; ++i) (void)router_.Publish(Msg("t", 1), {});
  EXPECT_TRUE(host_.delivered.empty());
  ASSERT_EQ(host_.posts.size(), 2u);
  for (const auto& [to, msg] : host_.posts) {
    EXPECT_EQ(to, 1);
    EXPECT_EQ(msg.kind, ShardMsg::Kind::kDeliverShared);
    ASSERT_NE(msg.shared, nullptr);
    EXPECT_EQ(msg.shared->group, "g");
  }
  // Once it goes offline too, both shards take turns.
  ASSERT_TRUE(index_.RemoveShared(1, "#g", "t"));
  host_.posts.clear();
  for (int i = 0; i < 4; ++i) (void)router_.Publish(Msg("t", 1), {});
  EXPECT_EQ(host_.delivered.size(), 2u);
  EXPECT_EQ(host_.posts.size(), 2u);
}

TEST_F(RouterTest, SetSharedLiveRegistersAndWithdrawsLiveMembership) {
  Session s("s");
  s.subscriptions()["$share/g/t"] = Sub({"$share/g/t"}, 1);
  router_.Attach(s, s.subscriptions()["$share/g/t"]);
  EXPECT_EQ(index_.SharedShards("#g", "t"), 0u);
  router_.SetSharedLive(s, true);
  EXPECT_EQ(index_.SharedShards("#g", "t"), 1u);
  router_.SetSharedLive(s, false);
  EXPECT_EQ(index_.SharedShards("#g", "t"), 0u);
  EXPECT_EQ(index_.SharedShards("g", "t"), 1u);
}

TEST_F(RouterTest, SharedMessageForAGroupThatEmptiedIsCountedNotLost) {
  Session a("a");
  const Subscription sub = Sub({"$share/g/t"}, 1);
  router_.Attach(a, sub);
  const auto key = std::make_shared<const SharedKey>(SharedKey{"g", "t"});
  router_.Detach(a, sub);
  router_.DeliverShared(Msg("t", 1), key);  // arrived from another shard after the last left
  EXPECT_TRUE(host_.delivered.empty());
  EXPECT_EQ(no_member_.Get(), 1u);
}

TEST_F(RouterTest, RouteSharedToOneGroupLeavesTheOthersAlone) {
  // A member's session ended with a message of group g undelivered: it goes to another member of
  // g only, not again to h.
  Session a("a"), b("b");
  router_.Attach(a, Sub({"$share/g/t"}, 1));
  router_.Attach(b, Sub({"$share/h/t"}, 1));
  const SharedKey g{"g", "t"};
  (void)router_.RouteShared(Msg("t", 1), &g);
  ASSERT_EQ(host_.delivered.size(), 1u);
  EXPECT_EQ(host_.delivered[0].first, &a);
}

TEST_F(RouterTest, RoundRobinEntriesOfGroupsWithoutMembersAreSwept) {
  Session a("a");
  const Subscription sub = Sub({"$share/g/t"}, 1);
  router_.Attach(a, sub);
  (void)router_.Publish(Msg("t", 1), {});
  EXPECT_EQ(router_.round_robin_entries(), 1u);
  router_.SweepSharedRoundRobin();
  EXPECT_EQ(router_.round_robin_entries(), 1u);  // still has a member
  router_.Detach(a, sub);
  router_.SweepSharedRoundRobin();
  EXPECT_EQ(router_.round_robin_entries(), 0u);
}

#ifndef NDEBUG
using RouterDeathTest = RouterTest;

TEST_F(RouterDeathTest, AnotherThreadThanTheShardsAborts) {
  Session a("a");
  router_.Attach(a, Sub({"t"}, 0));  // binds the owner to this thread
  EXPECT_DEATH(std::thread([&] { (void)router_.Publish(Msg("t", 0), {}); }).join(), "owner thread");
  owner_.Rebind();  // what a shard thread does when it starts
  router_.Detach(a, Sub({"t"}, 0));
}
#endif

}  // namespace
}  // namespace ringmq::broker

namespace ringmq::broker {
namespace {

// Cluster mode (broker/cluster_link.h): what a node publishes goes to the other nodes once; what
// comes from them is routed here like a local publish but never handed back.
TEST_F(RouterTest, LocalPublishGoesToTheClusterOnce) {
  Session a("a");
  router_.Attach(a, Sub({"data/#"}, 1));
  (void)router_.Publish(Msg("data/x", 1), {});
  (void)router_.Publish(Msg("other", 0), {});  // no local subscriber: the other nodes may have
  ASSERT_EQ(host_.to_cluster.size(), 2u);
  EXPECT_EQ(host_.to_cluster[0]->topic, "data/x");
  EXPECT_EQ(host_.to_cluster[1]->topic, "other");
  (void)router_.Publish(Msg("$SYS/broker/uptime", 0), {.to_cluster = false});
  EXPECT_EQ(host_.to_cluster.size(), 2u);
}

TEST_F(RouterTest, PublishFromClusterDeliversEverywhereButNotBack) {
  Session a("a");
  router_.Attach(a, Sub({"data/+"}, 2));
  (void)index_.Add(1, "data/#");  // shard 1 has a subscriber too
  router_.PublishFromCluster(Msg("data/x", 1, /*retain=*/true), /*store_retained=*/true);
  EXPECT_TRUE(host_.to_cluster.empty());
  ASSERT_EQ(host_.delivered.size(), 1u);
  EXPECT_EQ(host_.delivered[0].second.qos, 1);     // the message's QoS caps the subscription's
  EXPECT_FALSE(host_.delivered[0].second.retain);  // a live message [MQTT-3.3.1-12]
  ASSERT_EQ(host_.posts.size(), smp::ShardOfKey("data/x", kShards) == 0 ? 1u : 2u);
  EXPECT_EQ(host_.posts[0].first, 1);
  EXPECT_EQ(host_.posts[0].second.kind, ShardMsg::Kind::kDeliver);
  EXPECT_FALSE(host_.posts[0].second.confirm);
  // Stored on the topic's owner shard, as a local retained publish is.
  const size_t stored = host_.stored.size();
  const size_t retain_posts = host_.posts.size() - 1;
  EXPECT_EQ(stored + retain_posts, 1u);
  router_.PublishFromCluster(Msg("data/y", 1, /*retain=*/true), /*store_retained=*/false);
  EXPECT_EQ(host_.stored.size() + (host_.posts.size() - 2), 1u);  // not stored: one more post only
}

// In a cluster, NATS picks the node of a shared group's member (queue groups): a local publish
// leaves the groups to it, and the router reports a shard's first and last member of a group.
TEST_F(RouterTest, SharedGroupsSpanNodesInACluster) {
  host_.across_nodes = true;
  Session a("a"), b("b");
  const Subscription jobs = Sub({"$share/g/jobs/#"}, 1);
  router_.Attach(a, jobs);
  router_.Attach(b, jobs);
  ASSERT_EQ(host_.shared_interest.size(), 1u);
  EXPECT_EQ(host_.shared_interest[0], std::make_pair(std::string("g jobs/#"), true));
  (void)router_.Publish(Msg("jobs/1", 1), {});
  EXPECT_TRUE(host_.delivered.empty());  // not here: through the cluster
  EXPECT_EQ(host_.to_cluster.size(), 1u);
  // The cluster hands it back for the group: one member gets it.
  const auto key = std::make_shared<const SharedKey>(SharedKey{"g", "jobs/#"});
  (void)router_.RouteShared(Msg("jobs/1", 1), key.get());
  EXPECT_EQ(host_.delivered.size(), 1u);
  // $SYS stays on the node: its groups get it from here.
  router_.Attach(a, Sub({"$share/s/$SYS/#"}, 0));
  (void)router_.Publish(Msg("$SYS/broker/uptime", 0), {.to_cluster = false});
  EXPECT_EQ(host_.delivered.size(), 2u);
  router_.Detach(a, jobs);
  EXPECT_EQ(host_.shared_interest.size(), 2u);  // b is still a member
  router_.Detach(b, jobs);
  ASSERT_EQ(host_.shared_interest.size(), 3u);
  EXPECT_EQ(host_.shared_interest[2], std::make_pair(std::string("g jobs/#"), false));
}

TEST_F(RouterTest, ClusterInterestFollowsTheFirstAndLastSubscriber) {
  Session a("a"), b("b");
  const Subscription wide = Sub({"data/#"}, 1);
  router_.Attach(a, wide);
  router_.Attach(b, wide);
  router_.Attach(b, Sub({"$share/g/jobs/#"}, 1));  // shared: not across nodes yet
  ASSERT_EQ(host_.interest.size(), 1u);
  EXPECT_EQ(host_.interest[0], std::make_pair(std::string("data/#"), true));
  router_.Detach(a, wide);
  EXPECT_EQ(host_.interest.size(), 1u);  // b still subscribes
  router_.Detach(b, wide);
  ASSERT_EQ(host_.interest.size(), 2u);
  EXPECT_EQ(host_.interest[1], std::make_pair(std::string("data/#"), false));
}

}  // namespace
}  // namespace ringmq::broker
