#include "broker/subscriptions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "acl/acl.h"

namespace ringmq::broker {
namespace {

using proto::ReasonCode;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records what the handlers ask of the shard, as "attach F", "detach F", "log F" / "log -F".
class FakeSink : public SubscriptionSink {
 public:
  void Attach(Session&, const Subscription& sub) override {
    for (const std::string& f : sub.effective) calls.push_back("attach " + f);
  }
  void Detach(Session&, const Subscription& sub) override {
    for (const std::string& f : sub.effective) calls.push_back("detach " + f);
  }
  void LogSubscription(const Session&, const std::string& filter,
                       const Subscription* sub) override {
    calls.push_back(sub != nullptr ? "log " + filter : "log -" + filter);
  }
  std::vector<std::string> calls;
};

proto::Subscription Req(std::string_view filter, uint8_t qos, uint8_t retain_handling = 0) {
  proto::Subscription r;
  r.filter = filter;
  r.qos = qos;
  r.retain_handling = retain_handling;
  return r;
}

proto::Subscribe Sub(std::vector<proto::Subscription> reqs, uint32_t id = 0) {
  proto::Subscribe s;
  s.packet_id = 7;
  s.subscriptions = std::move(reqs);
  if (id != 0) s.props.subscription_identifiers.push_back(id);
  return s;
}

acl::AclPtr AclAllowingSubscribe(std::string topic) {
  acl::Token t;
  t.id = 5;
  t.expire = 99;
  t.access.type = acl::AccessType::kAcl;
  t.access.acl = {acl::AclEntry{std::move(topic), acl::kActionSubscribe, 0}};
  return acl::CompiledAcl::Compile(t, 1);
}

class SubscriptionsTest : public ::testing::Test {
 protected:
  SubscribeResult Do(std::vector<proto::Subscription> reqs, proto::Version v = proto::Version::kV5,
                     uint32_t id = 0) {
    return Subscribe(session_, v, Sub(std::move(reqs), id), cfg_, sink_, 0);
  }
  Config cfg_;
  FakeSink sink_;
  Session session_{std::string("client")};
};

TEST_F(SubscriptionsTest, GrantsTheRequestedQosAndAttachesAndLogs) {
  const SubscribeResult r = Do({Req("a/+", 1), Req("b/#", 2)});
  EXPECT_EQ(r.suback.packet_id, 7);
  EXPECT_THAT(r.suback.reasons, ElementsAre(ReasonCode::kGrantedQos1, ReasonCode::kGrantedQos2));
  EXPECT_THAT(sink_.calls, ElementsAre("attach a/+", "log a/+", "attach b/#", "log b/#"));
  EXPECT_EQ(session_.subscriptions().size(), 2u);
}

TEST_F(SubscriptionsTest, InvalidFiltersAndFiltersBeyondTheLimitsAreRefusedOneByOne) {
  cfg_.max_topic_levels = 3;
  const SubscribeResult r = Do({Req("a/#/b", 0), Req("ok", 0), Req("a/b/c/d", 0), Req("", 0)});
  EXPECT_THAT(r.suback.reasons,
              ElementsAre(ReasonCode::kTopicFilterInvalid, ReasonCode::kSuccess,
                          ReasonCode::kTopicFilterInvalid, ReasonCode::kTopicFilterInvalid));
  EXPECT_THAT(sink_.calls, ElementsAre("attach ok", "log ok"));
}

TEST_F(SubscriptionsTest, AclNarrowsAWideFilterToItsIntersection) {
  session_.acl = AclAllowingSubscribe("data/u1/#");
  const SubscribeResult r = Do({Req("data/#", 1), Req("other/#", 1), Req("data/+/t", 0)});
  EXPECT_THAT(r.suback.reasons, ElementsAre(ReasonCode::kGrantedQos1, ReasonCode::kNotAuthorized,
                                            ReasonCode::kSuccess));
  EXPECT_THAT(session_.subscriptions()["data/#"].effective, ElementsAre("data/u1/#"));
  EXPECT_THAT(session_.subscriptions()["data/+/t"].effective, ElementsAre("data/u1/t"));
  EXPECT_EQ(session_.subscriptions().count("other/#"), 0u);
  // Retained messages are asked for the effective filter, under the requested one.
  ASSERT_EQ(r.retained.size(), 2u);
  EXPECT_EQ(r.retained[0].requested, "data/#");
  EXPECT_EQ(r.retained[0].filter, "data/u1/#");
}

TEST_F(SubscriptionsTest, MaxSubscriptionsRefusesNewFiltersButNotReplacements) {
  cfg_.max_subscriptions = 2;
  (void)Do({Req("a", 0), Req("b", 0)});
  sink_.calls.clear();
  const SubscribeResult r = Do({Req("c", 0), Req("a", 1), Req("d", 0)});
  EXPECT_THAT(r.suback.reasons, ElementsAre(ReasonCode::kQuotaExceeded, ReasonCode::kGrantedQos1,
                                            ReasonCode::kQuotaExceeded));
  EXPECT_THAT(sink_.calls, ElementsAre("detach a", "attach a", "log a"));
  EXPECT_EQ(session_.subscriptions()["a"].options.qos, 1);
}

TEST_F(SubscriptionsTest, AnIdenticalFilterReplacesTheSubscription) {
  (void)Do({Req("t", 0)}, proto::Version::kV5, 3);
  (void)Do({Req("t", 2)}, proto::Version::kV5, 4);
  ASSERT_EQ(session_.subscriptions().size(), 1u);
  EXPECT_EQ(session_.subscriptions()["t"].options.qos, 2);
  EXPECT_EQ(session_.subscriptions()["t"].options.subscription_id, 4u);
  EXPECT_THAT(sink_.calls, ElementsAre("attach t", "log t", "detach t", "attach t", "log t"));
}

TEST_F(SubscriptionsTest, RetainHandlingDecidesWhichSubscriptionsAskForRetained) {
  EXPECT_EQ(Do({Req("a", 0, /*retain_handling=*/0)}).retained.size(), 1u);
  EXPECT_EQ(Do({Req("a", 0, 0)}).retained.size(), 1u);  // 0: on every subscribe
  EXPECT_EQ(Do({Req("b", 0, 1)}).retained.size(), 1u);  // 1: only when new
  EXPECT_EQ(Do({Req("b", 0, 1)}).retained.size(), 0u);
  EXPECT_EQ(Do({Req("c", 0, 2)}).retained.size(), 0u);  // 2: never
}

TEST_F(SubscriptionsTest, SharedSubscriptionsGetNoRetainedMessages) {
  const SubscribeResult r = Do({Req("$share/g/t", 1)});
  EXPECT_THAT(r.suback.reasons, ElementsAre(ReasonCode::kGrantedQos1));
  EXPECT_THAT(r.retained, IsEmpty());
}

TEST_F(SubscriptionsTest, Mqtt311ClientsGetNoneOfTheMqtt5Options) {
  proto::Subscription req = Req("t", 1, /*retain_handling=*/2);
  req.no_local = true;
  req.retain_as_published = true;
  const SubscribeResult r = Do({req}, proto::Version::kV311, /*id=*/9);
  const SubOptions& o = session_.subscriptions()["t"].options;
  EXPECT_FALSE(o.no_local);
  EXPECT_FALSE(o.retain_as_published);
  EXPECT_EQ(o.subscription_id, 0u);
  EXPECT_EQ(r.retained.size(), 1u);  // retain handling 2 is MQTT 5's: 3.1.1 always gets them
}

TEST_F(SubscriptionsTest, Mqtt5OptionsAndTheSubscriptionIdentifierAreKept) {
  proto::Subscription req = Req("t", 1);
  req.no_local = true;
  req.retain_as_published = true;
  (void)Do({req}, proto::Version::kV5, 9);
  const SubOptions& o = session_.subscriptions()["t"].options;
  EXPECT_TRUE(o.no_local);
  EXPECT_TRUE(o.retain_as_published);
  EXPECT_EQ(o.subscription_id, 9u);
}

TEST_F(SubscriptionsTest, UnsubscribeRemovesWhatExistsAndSaysWhatDidNot) {
  (void)Do({Req("a", 0), Req("b", 0)});
  sink_.calls.clear();
  proto::Unsubscribe u;
  u.packet_id = 8;
  u.filters = {"a", "zzz"};
  const proto::Unsuback ack = Unsubscribe(session_, u, sink_);
  EXPECT_EQ(ack.packet_id, 8);
  EXPECT_THAT(ack.reasons, ElementsAre(ReasonCode::kSuccess, ReasonCode::kNoSubscriptionExisted));
  EXPECT_THAT(sink_.calls, ElementsAre("detach a", "log -a"));
  EXPECT_EQ(session_.subscriptions().count("a"), 0u);
  EXPECT_EQ(session_.subscriptions().count("b"), 1u);
}

}  // namespace
}  // namespace ringmq::broker
