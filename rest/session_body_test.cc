#include "rest/internal/session_body.h"

#include <gtest/gtest.h>

namespace ringmq::rest {
namespace {

TEST(SessionBody, OneSessionWithSubscriptions) {
  std::vector<admin_api::NewSession> s;
  std::string error;
  ASSERT_TRUE(ParseSessionsBody(
      R"({"client_id":"storage","expiry_interval":4294967295,"token_id":3,"clean":false,)"
      R"("subscriptions":[{"topic":"$share/g/data/#","qos":1,"retain_as_published":true,)"
      R"("retain_handling":1,"subscription_id":268435455}]})",
      10, &s, &error))
      << error;
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].client_id, "storage");
  EXPECT_EQ(s[0].expiry_interval, 4294967295u);
  EXPECT_EQ(s[0].token_id, 3);
  ASSERT_EQ(s[0].subscriptions.size(), 1u);
  const admin_api::NewSubscription& sub = s[0].subscriptions[0];
  EXPECT_EQ(sub.filter, "$share/g/data/#");
  EXPECT_EQ(sub.qos, 1);
  EXPECT_TRUE(sub.retain_as_published);
  EXPECT_FALSE(sub.no_local);
  EXPECT_EQ(sub.retain_handling, 1);
  EXPECT_EQ(sub.subscription_id, 268435455u);
}

TEST(SessionBody, ErrorsNameTheItemAndField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([{"client_id":"a","expiry_interval":1,"token_id":1},{"client_id":"a",)"
       R"("expiry_interval":1,"token_id":1}])",
       "[1].client_id: the same client id twice"},
      {R"([{"client_id":"a","expiry_interval":1,"token_id":1,"subscriptions":[{"topic":"#"},)"
       R"({"topic":"a/#/b"}]}])",
       "[0].subscriptions[1].topic: invalid topic filter"},
      {R"({"client_id":"a","expiry_interval":4294967296,"token_id":1})",
       "expiry_interval: must be an integer from 1 to 4294967295"},
      {R"({"client_id":"a","expiry_interval":1,"token_id":-1})",
       "token_id: must be an integer from 1 to 9223372036854775807"},
      {R"({"client_id":"a","client_id":"b","expiry_interval":1,"token_id":1})",
       "client_id: duplicate field"},
      {R"({"client_id":"a","expiry_interval":1,"token_id":1,"subscriptions":{}})",
       "subscriptions: must be an array"},
      {R"({"client_id":"a\u0000","expiry_interval":1,"token_id":1})",
       "client_id: must be 1 to 65535 bytes of valid UTF-8 without U+0000"},
      {"[1]", "[0]: must be an object"},
      {"{", "malformed JSON"},
  };
  for (const auto& [body, want] : cases) {
    std::vector<admin_api::NewSession> s;
    std::string error;
    EXPECT_FALSE(ParseSessionsBody(body, 10, &s, &error)) << body;
    EXPECT_EQ(error, want) << body;
  }
  std::vector<admin_api::NewSession> s;
  std::string error;
  EXPECT_FALSE(ParseSessionsBody(R"([{"client_id":"a","expiry_interval":1,"token_id":1},)"
                                 R"({"client_id":"b","expiry_interval":1,"token_id":1}])",
                                 1, &s, &error));
  EXPECT_EQ(error, "body: more than 1 sessions");
}

TEST(SessionBody, Subscriptions) {
  std::vector<admin_api::NewSubscription> subs;
  std::string error;
  ASSERT_TRUE(ParseSubscriptionsBody(R"({"topic":"a/+"})", 10, &subs, &error)) << error;
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0].qos, 0);
  EXPECT_FALSE(
      ParseSubscriptionsBody(R"({"topic":"$share/g/a","no_local":true})", 10, &subs, &error));
  EXPECT_EQ(error, "no_local: not allowed on a shared subscription");
  EXPECT_FALSE(ParseSubscriptionsBody(R"([{"topic":"a","qos":1.0}])", 10, &subs, &error));
  EXPECT_EQ(error, "[0].qos: must be an integer from 0 to 2");
  EXPECT_FALSE(ParseSubscriptionsBody(R"([])", 10, &subs, &error));
  EXPECT_EQ(error, "body: empty array");
}

TEST(SessionBody, FilterSelector) {
  admin_api::IdSet sel;
  std::string error;
  ASSERT_TRUE(ParseFilterSelector("a%2F%23,%2B%2Fx,a%2F%23", 10, &sel, &error)) << error;
  EXPECT_EQ(sel.ids, (std::vector<std::string>{"a/#", "+/x"}));
  admin_api::IdSet all;
  ASSERT_TRUE(ParseFilterSelector("all", 10, &all, &error));
  EXPECT_TRUE(all.all);
  for (const char* bad : {"", "a,,b", "%zz", "a%2F%23%2Fb", "a+"}) {
    admin_api::IdSet s;
    EXPECT_FALSE(ParseFilterSelector(bad, 10, &s, &error)) << bad;
  }
}

}  // namespace
}  // namespace ringmq::rest
