// The session lifecycle in memory against a fake shard (broker/sessions.h): clean start and
// resumption, wills at disconnect, after their delay and when the session ends first, expiry,
// and what a destroyed session hands back to routing.
#include "broker/sessions.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/connection.h"

namespace ringmq::broker {
namespace {

// Records what the lifecycle asks of the shard, as lines ("will c1 w/t", "end c1 removed").
class FakeShard final : public Sessions::Host {
 public:
  void PublishWill(const Session& s, route::MessagePtr will) override {
    calls.push_back("will " + s.client_id() + " " + will->topic);
  }
  void LogSessionEnd(Session& s, bool removed) override {
    calls.push_back("end " + s.client_id() + (removed ? " removed" : " offline"));
  }
  void Detach(Session& s, const Subscription& sub) override {
    calls.push_back("detach " + s.client_id() + " " + sub.effective.front());
  }
  void SetSharedLive(Session& s, bool live) override {
    calls.push_back("live " + s.client_id() + (live ? " on" : " off"));
  }
  void RouteShared(const route::MessagePtr& m, const SharedKey* key) override {
    calls.push_back("reroute " + m->payload + " " + key->group);
  }

  std::vector<std::string> calls;
};

route::MessagePtr Msg(std::string topic, std::string payload = "p") {
  auto m = std::make_shared<route::Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = 1;
  return m;
}

class SessionsTest : public ::testing::Test {
 protected:
  // A session as a CONNECT leaves it: bound to `c`, with `expiry` and an optional will.
  Session& Connect(const std::string& id, Connection& c, bool clean_start, uint32_t expiry,
                   uint32_t will_delay = UINT32_MAX) {
    bool present = false;
    Session& s = sessions_.Open(id, clean_start, {}, c, &present);
    c.session = &s;
    s.expiry_interval_s = expiry;
    if (will_delay != UINT32_MAX)
      s.will = std::make_unique<WillMessage>(WillMessage{Msg("w/" + id), will_delay});
    return s;
  }
  void Disconnect(Connection& c, int64_t now_ms, bool publish_will = true) {
    Session& s = *c.session;
    c.session = nullptr;
    sessions_.Disconnected(s, now_ms, publish_will);
  }

  base::OwnerThread owner_;
  FakeShard host_;
  Sessions sessions_{host_, owner_};
  Connection c1_{-1, 1, 1};
  Connection c2_{-1, 2, 1};
};

TEST_F(SessionsTest, CleanStartEndsTheOldSessionOtherwiseItIsResumed) {
  Session& first = Connect("a", c1_, /*clean_start=*/false, 60);
  first.subscriptions()["t/#"] = Subscription{{}, {"t/#"}};
  Disconnect(c1_, 1000);
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"live a off", "end a offline"}));
  host_.calls.clear();

  bool present = false;
  Session& resumed = sessions_.Open("a", /*clean_start=*/false, {}, c2_, &present);
  EXPECT_TRUE(present);
  EXPECT_EQ(&resumed, &first);
  EXPECT_EQ(resumed.connection, &c2_);
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"live a on"}));
  c2_.session = &resumed;
  Disconnect(c2_, 2000);
  host_.calls.clear();

  Session& fresh = sessions_.Open("a", /*clean_start=*/true, {}, c1_, &present);
  EXPECT_FALSE(present);
  EXPECT_TRUE(fresh.subscriptions().empty());
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"end a removed", "detach a t/#"}));
  EXPECT_EQ(sessions_.size(), 1u);
}

TEST_F(SessionsTest, SessionWithoutExpiryEndsWithItsConnectionAndSendsItsWill) {
  Connect("a", c1_, true, /*expiry=*/0, /*will_delay=*/30);  // no session to outlive: sent now
  Disconnect(c1_, 1000);
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"live a off", "will a w/a", "end a removed"}));
  EXPECT_EQ(sessions_.Find("a"), nullptr);
}

TEST_F(SessionsTest, NormalDisconnectDiscardsTheWill) {
  Session& s = Connect("a", c1_, true, 60, /*will_delay=*/0);
  Disconnect(c1_, 1000, /*publish_will=*/false);
  EXPECT_EQ(s.will, nullptr);
  sessions_.Expire(1000 + 60'000);
  EXPECT_EQ(host_.calls,
            (std::vector<std::string>{"live a off", "end a offline", "end a removed"}));
}

TEST_F(SessionsTest, DelayedWillIsSentWhenDueAndTheSessionExpiresLater) {
  Connect("a", c1_, true, /*expiry=*/10, /*will_delay=*/5);
  Disconnect(c1_, 1000);
  host_.calls.clear();
  sessions_.Expire(5999);
  EXPECT_TRUE(host_.calls.empty());
  sessions_.Expire(6000);
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"will a w/a"}));
  sessions_.Expire(10'999);
  ASSERT_NE(sessions_.Find("a"), nullptr);
  sessions_.Expire(11'000);
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"will a w/a", "end a removed"}));
  EXPECT_EQ(sessions_.Find("a"), nullptr);
}

// [MQTT-3.1.3-9]: the will is sent when the session ends before the will delay.
TEST_F(SessionsTest, SessionEndingBeforeTheWillDelaySendsTheWillFirst) {
  Connect("a", c1_, true, /*expiry=*/5, /*will_delay=*/60);
  Disconnect(c1_, 1000);
  host_.calls.clear();
  sessions_.Expire(6000);
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"will a w/a", "end a removed"}));
}

TEST_F(SessionsTest, ConnectedSessionsNeitherExpireNorSendWills) {
  Connect("a", c1_, true, /*expiry=*/1, /*will_delay=*/0);
  sessions_.Expire(100'000);
  EXPECT_TRUE(host_.calls.empty());
  EXPECT_NE(sessions_.Find("a"), nullptr);
}

TEST_F(SessionsTest, ExpiryOfMaxNeverEnds) {
  Connect("a", c1_, true, 0xFFFFFFFF);
  Disconnect(c1_, 0);
  sessions_.Expire(int64_t{0xFFFFFFFF} * 1000 * 2);
  EXPECT_NE(sessions_.Find("a"), nullptr);
}

// MQTT 5.0 section 4.8.2: a shared message the member holds but its client never got goes to
// another member when the session ends; the session's connection no longer points at it.
TEST_F(SessionsTest, DestroyHandsUndeliveredSharedMessagesOn) {
  Session& s = Connect("a", c1_, true, 60);
  auto key = std::make_shared<const SharedKey>(SharedKey{"g", "t"});
  ASSERT_TRUE(s.Enqueue(Delivery{Msg("t", "m1"), 1, false, {}, key, 0}, /*online=*/true));
  ASSERT_TRUE(s.Enqueue(Delivery{Msg("t", "m2"), 1, false, {}, nullptr, 0}, /*online=*/true));
  sessions_.Destroy(s);
  EXPECT_EQ(host_.calls, (std::vector<std::string>{"end a removed", "reroute m1 g"}));
  EXPECT_EQ(c1_.session, nullptr);
  EXPECT_EQ(sessions_.size(), 0u);
}

}  // namespace
}  // namespace ringmq::broker
