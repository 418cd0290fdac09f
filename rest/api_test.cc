#include "rest/api.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <map>
#include <memory>
#include <optional>

#include "rest/test_util.h"

namespace ringmq::rest {
namespace {

using testing::FakeHooks;
using testing::TempDir;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(store_.Open(&error)) << error;
    std::vector<acl::Token> t(2);
    ASSERT_TRUE(acl::GenerateTokenKey(&t[0].key));
    t[0].access.type = acl::AccessType::kMaster;
    ASSERT_TRUE(acl::GenerateTokenKey(&t[1].key));  // a standard token
    t[0].created = t[0].accessed = t[1].created = t[1].accessed = now_;
    StoreError e;
    ASSERT_TRUE(store_.Insert(&t, &e)) << e.text;
    master_ = t[0].key;
    standard_ = t[1].key;
  }

  HttpResponse Call(std::string method, const std::string& target, std::string body = "",
                    const std::string& auth = "") {
    HttpRequest req;
    req.method = std::move(method);
    const size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    req.body = std::move(body);
    req.authorization = auth.empty() ? "FlespiToken " + master_ : auth;
    HttpResponse out;
    out.status = -1;
    int calls = 0;
    api_.Handle(req, [&](HttpResponse r) {
      out = std::move(r);
      ++calls;
    });
    EXPECT_LE(calls, 1);
    return out;
  }

  // The "result" array of a response, as JSON texts of its items.
  static std::vector<std::string> Items(const HttpResponse& r) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    EXPECT_EQ(parser.parse(r.body).get(root), simdjson::SUCCESS) << r.body;
    simdjson::dom::array arr;
    EXPECT_EQ(root["result"].get_array().get(arr), simdjson::SUCCESS) << r.body;
    std::vector<std::string> out;
    for (auto e : arr) out.push_back(simdjson::minify(e));
    return out;
  }

  TempDir dir_;
  TokenStore store_{dir_.path()};
  FakeHooks hooks_;
  int64_t now_ = 1'000'000;
  Api api_{&store_, &hooks_, [this] { return now_; }, Api::Limits{}};
  std::string master_;
  std::string standard_;
};

TEST_F(ApiTest, PublicEndpoints) {
  HttpResponse r = Call("GET", "/healthz", "", "none");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"result":[{"status":"ok"}]})");
  r = Call("GET", "/", "", "none");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(Call("POST", "/healthz").status, 405);
  EXPECT_EQ(Call("GET", "/nope").status, 404);
  EXPECT_EQ(Call("GET", "/platform/tokens/1/x").status, 404);
}

TEST_F(ApiTest, Authentication) {
  HttpRequest req;
  req.method = "GET";
  req.path = "/platform/tokens/all";
  HttpResponse r;
  api_.Handle(req, [&](HttpResponse x) { r = std::move(x); });
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("missing Authorization"), std::string::npos);
  EXPECT_EQ(Call("GET", "/platform/tokens/all", "", "Basic abc").status, 401);
  EXPECT_EQ(Call("GET", "/platform/tokens/all", "", "Bearer nosuchtoken").status, 401);
  r = Call("GET", "/platform/tokens/all", "", "FlespiToken " + standard_);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body,
            R"({"errors":[{"code":403,"reason":"a master token (access.type 1) is required"}]})");
  EXPECT_EQ(Call("GET", "/platform/tokens/all", "", "Bearer " + master_).status, 200);
  EXPECT_EQ(Call("GET", "/platform/tokens/all", "", "flespitoken  " + master_).status, 200);
  EXPECT_EQ(Call("GET", "/metrics", "", "Bearer " + standard_).status, 403);
  EXPECT_EQ(Call("GET", "/mqtt/sessions/all", "", "Bearer x").status, 401);
}

TEST_F(ApiTest, CreateGetFieldsAndSelectors) {
  HttpResponse r =
      Call("POST", "/platform/tokens",
           R"([{"info":"u1","ttl":60,"access":{"type":2,"acl":[{"uri":"mqtt",)"
           R"("topic":"data/1/#","actions":["subscribe"]}]}}, {"info":"u2","expire":2000000}])");
  ASSERT_EQ(r.status, 200) << r.body;
  auto items = Items(r);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_NE(items[0].find(R"("id":3,"key":")"), std::string::npos) << items[0];
  EXPECT_NE(items[0].find(R"("created":1000000,"accessed":1000000)"), std::string::npos);
  EXPECT_EQ(store_.size(), 4u);

  r = Call("POST", "/platform/tokens?fields=id,info", R"({"info":"u3","ttl":60})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":[{"id":5,"info":"u3"}]})");

  // Ids that do not exist: the found ones, and an error for each missing one (flespi).
  r = Call("GET", "/platform/tokens/4,3,999?fields=id,info");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"result":[{"id":4,"info":"u2"},{"id":3,"info":"u1"}],)"
                    R"("errors":[{"code":404,"reason":"token 999 not found"}]})");
  EXPECT_EQ(Items(Call("GET", "/platform/tokens/all")).size(), 5u);
  r = Call("GET", "/platform/tokens/999,998");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"errors":[{"code":404,"reason":"token 999 not found"},)"
                    R"({"code":404,"reason":"token 998 not found"}]})");
  EXPECT_EQ(Call("GET", "/platform/tokens/abc").status, 400);
  EXPECT_EQ(Call("GET", "/platform/tokens/1,,2").status, 400);
  EXPECT_EQ(Call("GET", "/platform/tokens/-1").status, 400);
  EXPECT_EQ(Call("GET", "/platform/tokens/99999999999999999999").status, 400);
  EXPECT_EQ(Call("GET", "/platform/tokens/all?fields=id,secret").status, 400);
  EXPECT_EQ(Call("GET", "/platform/tokens").status, 405);
}

TEST_F(ApiTest, BadRequestsChangeNothing) {
  const std::string before = Call("GET", "/platform/tokens/all").body;
  const char* bodies[] = {
      "",
      "{",
      "[]",
      R"({"info":"ok"}, {"info":"x"})",
      R"([{"info":"ok"}, {"ttl":-5}])",
      R"([{"info":"ok"}, {"bogus":1}])",
      R"({"id":7})",
      R"({"expire":10})",  // in the past
      R"({"access":{"type":1,"acl":[{"topic":"a","actions":["publish"]}]}})",
      R"({"ttl":1e3})",
      R"({"info":"never expires"})",
      R"([{"ttl":60}, {"ttl":0,"expire":0}])",
  };
  for (const char* body : bodies) {
    HttpResponse r = Call("POST", "/platform/tokens", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(R"({"errors":[{"code":400,"reason":")"), std::string::npos) << r.body;
  }
  EXPECT_EQ(Call("PATCH", "/platform/tokens/all", R"({"ttl":"x"})").status, 400);
  EXPECT_EQ(Call("PATCH", "/platform/tokens/all", R"([{"ttl":1}])").status, 400);
  EXPECT_EQ(Call("PUT", "/platform/tokens/1", R"({"access":{"type":7}})").status, 400);
  EXPECT_EQ(Call("PUT", "/platform/tokens/1", R"({"secret":1})").status, 400);
  EXPECT_EQ(Call("PATCH", "/platform/tokens/1", R"({"metadata":[1]})").status, 400);
  EXPECT_EQ(Call("GET", "/platform/tokens/all").body, before);
  HttpResponse r = Call("POST", "/platform/tokens", R"({"info":"never expires"})");
  EXPECT_EQ(r.body,
            R"({"errors":[{"code":400,"reason":"a token must expire: set ttl or expire"}]})");
  EXPECT_TRUE(hooks_.events.empty());
}

TEST_F(ApiTest, UpdateNotifiesTheCore) {
  ASSERT_EQ(Call("POST", "/platform/tokens", R"({"info":"u","ttl":60})").status, 200);  // id 3
  // info only: nothing the shards hold.
  HttpResponse r = Call("PATCH", "/platform/tokens/3", R"({"info":"v"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(hooks_.events.empty());
  r = Call("PATCH", "/platform/tokens/3?fields=access",
           R"({"access":{"type":2,"acl":[{"topic":"a/#","actions":["publish"]}]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":[{"access":{"type":2,"acl":[{"uri":"mqtt","topic":"a/#",)"
                    R"("actions":["publish"]}]}}]})");
  r = Call("PATCH", "/platform/tokens/3", R"({"expire":2000000})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = Call("PATCH", "/platform/tokens/3", R"({"enabled":false})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = Call("PUT", "/platform/tokens/3", R"({"info":"fresh","enabled":true})");  // enabled again
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Items(Call("GET", "/platform/tokens/3?fields=info,enabled,expire,ttl,access"))[0],
            R"({"info":"fresh","enabled":true,"expire":2000000,"ttl":60,"access":{"type":2,)"
            R"("acl":[{"uri":"mqtt","topic":"a/#","actions":["publish"]}]}})");
  r = Call("DELETE", "/platform/tokens/3,2");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":[{"id":3},{"id":2}]})");
  EXPECT_EQ(hooks_.events,
            (std::vector<std::string>{"changed:3:v1", "changed:3:v2", "revoked:3:disabled",
                                      "changed:3:v3", "revoked:3:deleted", "revoked:2:deleted"}));
  // A ttl change reaches the shards too (they time their reports of live use by it).
  ASSERT_EQ(Call("POST", "/platform/tokens", R"({"ttl":60})").status, 200);  // id 4
  hooks_.events.clear();
  ASSERT_EQ(Call("PATCH", "/platform/tokens/4", R"({"ttl":30})").status, 200);
  EXPECT_EQ(hooks_.events, std::vector<std::string>{"changed:4:v4"});
  EXPECT_EQ(Call("GET", "/platform/tokens/3").status, 404);
}

TEST_F(ApiTest, DeleteValidatesTheQueryBeforeActing) {
  ASSERT_EQ(Call("POST", "/platform/tokens", R"({"info":"u","ttl":60})").status, 200);  // id 3
  EXPECT_EQ(Call("DELETE", "/platform/tokens/3?fields=nonsense").status, 400);
  EXPECT_EQ(Call("DELETE", "/platform/tokens/3?delete_last_master=maybe").status, 400);
  EXPECT_NE(store_.FindById(3), nullptr);
  EXPECT_TRUE(hooks_.events.empty());
  const HttpResponse r = Call("DELETE", "/platform/tokens/3?fields=id");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":[{"id":3}]})");
  EXPECT_EQ(store_.FindById(3), nullptr);
}

TEST_F(ApiTest, DeletingTheLastMasterTokenNeedsAnExplicitRequest) {
  // all = the caller's own master token, the only one: refused, nothing deleted.
  HttpResponse r = Call("DELETE", "/platform/tokens/all");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("delete_last_master=true"), std::string::npos) << r.body;
  EXPECT_EQ(store_.size(), 2u);
  EXPECT_EQ(Call("DELETE", "/platform/tokens/1").status, 409);
  EXPECT_TRUE(hooks_.events.empty());
  // A second master: either may go, not both.
  r = Call("POST", "/platform/tokens?fields=id,key", R"({"ttl":600,"access":{"type":1}})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string second = store_.FindById(3)->key;
  EXPECT_EQ(Call("DELETE", "/platform/tokens/1,3").status, 409);
  EXPECT_EQ(store_.size(), 3u);
  EXPECT_EQ(Call("DELETE", "/platform/tokens/1").status, 200);  // the caller's own, 3 remains
  EXPECT_EQ(Call("DELETE", "/platform/tokens/2", "", "Bearer " + second).status, 200);
  EXPECT_EQ(Call("DELETE", "/platform/tokens/all", "", "Bearer " + second).status, 409);
  // A disabled master does not count as one that remains.
  r = Call("POST", "/platform/tokens", R"({"enabled":false,"ttl":600,"access":{"type":1}})",
           "Bearer " + second);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Call("DELETE", "/platform/tokens/3", "", "Bearer " + second).status, 409);
  // Asked explicitly: done.
  r = Call("DELETE", "/platform/tokens/all?delete_last_master=true", "", "Bearer " + second);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(store_.size(), 0u);
}

TEST_F(ApiTest, UpdatesMayNotDisableTheLastMasterToken) {
  EXPECT_EQ(Call("PATCH", "/platform/tokens/1", R"({"enabled":false})").status, 409);
  EXPECT_EQ(Call("PUT", "/platform/tokens/all", R"({"access":{"type":0}})").status, 409);
  EXPECT_EQ(Call("PATCH", "/platform/tokens/1", R"({"expire":1000001})").status, 200);
  EXPECT_TRUE(store_.FindById(1)->enabled);
  EXPECT_EQ(store_.FindById(1)->access.type, acl::AccessType::kMaster);
  EXPECT_EQ(Call("PATCH", "/platform/tokens/1", R"({"info":"still master"})").status, 200);
  // With another master, either may be disabled.
  ASSERT_EQ(Call("POST", "/platform/tokens", R"({"ttl":600,"access":{"type":1}})").status,
            200);  // id 3
  EXPECT_EQ(Call("PATCH", "/platform/tokens/1", R"({"enabled":false})").status, 200);
}

TEST_F(ApiTest, PutChangesOnlyTheFieldsSent) {
  HttpResponse r =
      Call("POST", "/platform/tokens",
           R"({"info":"user 42","ttl":600,"expire":2000000,"metadata":{"u":42},)"
           R"("access":{"type":2,"acl":[{"topic":"d/42/#","actions":["subscribe"]}]}})");
  ASSERT_EQ(r.status, 200) << r.body;  // id 3
  const acl::Token before = *store_.FindById(3);
  r = Call("PUT", "/platform/tokens/3", R"({"enabled":false})");
  ASSERT_EQ(r.status, 200) << r.body;
  acl::Token after = *store_.FindById(3);
  EXPECT_FALSE(after.enabled);
  after.enabled = true;
  EXPECT_EQ(after, before);
  // A PUT of `access` replaces it as a whole.
  r = Call("PUT", "/platform/tokens/3", R"({"access":{"type":0}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(store_.FindById(3)->access, acl::Access{});
  EXPECT_EQ(store_.FindById(3)->metadata, R"({"u":42})");
}

TEST_F(ApiTest, PatchMergesMetadataAndAccess) {
  ASSERT_EQ(Call("POST", "/platform/tokens",
                 R"({"ttl":600,"metadata":{"a":1,"b":{"c":2}},"access":{"type":2,"acl":[)"
                 R"({"topic":"x","actions":["publish"]}]}})")
                .status,
            200);  // id 3
  HttpResponse r =
      Call("PATCH", "/platform/tokens/3?fields=metadata", R"({"metadata":{"a":null,"b":{"d":3}}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":[{"metadata":{"b":{"c":2,"d":3}}}]})");
  r = Call("PATCH", "/platform/tokens/3",
           R"({"access":{"acl":[{"topic":"y","actions":["subscribe"]}]}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(store_.FindById(3)->access.type, acl::AccessType::kAcl);  // type kept
  ASSERT_EQ(store_.FindById(3)->access.acl.size(), 1u);
  EXPECT_EQ(store_.FindById(3)->access.acl[0].topic, "y");
  // PUT of metadata replaces it.
  r = Call("PUT", "/platform/tokens/3?fields=metadata", R"({"metadata":{"z":true}})");
  EXPECT_EQ(r.body, R"({"result":[{"metadata":{"z":true}}]})");
}

TEST_F(ApiTest, PartialSelectorsAnswerTheFoundAndListTheMissing) {
  ASSERT_EQ(Call("POST", "/platform/tokens", R"({"ttl":600})").status, 200);  // id 3
  HttpResponse r = Call("PATCH", "/platform/tokens/3,7?fields=id,info", R"({"info":"x"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"result":[{"id":3,"info":"x"}],)"
                    R"("errors":[{"code":404,"reason":"token 7 not found"}]})");
  r = Call("PUT", "/platform/tokens/8,3?fields=id", R"({"info":"y"})");
  EXPECT_EQ(r.body,
            R"({"result":[{"id":3}],"errors":[{"code":404,"reason":"token 8 not found"}]})");
  r = Call("DELETE", "/platform/tokens/3,9");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            R"({"result":[{"id":3}],"errors":[{"code":404,"reason":"token 9 not found"}]})");
  EXPECT_EQ(store_.FindById(3), nullptr);
  r = Call("DELETE", "/platform/tokens/3");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"errors":[{"code":404,"reason":"token 3 not found"}]})");
}

TEST_F(ApiTest, AnUpdateMayNotMakeATokenNeverExpire) {
  ASSERT_EQ(Call("POST", "/platform/tokens", R"({"ttl":600})").status, 200);  // id 3
  const acl::Token before = *store_.FindById(3);
  HttpResponse r = Call("PATCH", "/platform/tokens/3", R"({"ttl":0})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            R"({"errors":[{"code":400,"reason":"a token must expire: set ttl or expire"}]})");
  EXPECT_EQ(*store_.FindById(3), before);
  // Swapping ttl for expire is fine.
  EXPECT_EQ(Call("PUT", "/platform/tokens/3", R"({"ttl":0,"expire":2000000})").status, 200);
  // A token of an older store without either (here the fixture's master) stays editable.
  EXPECT_EQ(Call("PATCH", "/platform/tokens/1", R"({"info":"renamed"})").status, 200);
  EXPECT_FALSE(acl::HasExpiry(*store_.FindById(1)));
}

// flespi's rule: valid while expire is ahead OR the ttl since the last use has not run out.
TEST_F(ApiTest, ExpireOrTtlKeepsATokenAndTheSweepDeletesItWhenBothRanOut) {
  HttpResponse r = Call("POST", "/platform/tokens?fields=key", R"({"ttl":10,"expire":1000005})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string key = r.body.substr(r.body.find("\"key\":\"") + 7, 64);
  now_ += 8;  // expire passed; accessed 8 s ago, ttl 10
  api_.Sweep();
  ASSERT_EQ(api_.Authenticate(key).status, Api::AuthStatus::kOk);  // and refreshes accessed
  now_ += 9;
  api_.Touch({key});  // a live connection
  now_ += 9;
  api_.Sweep();
  EXPECT_EQ(api_.Authenticate(key).status, Api::AuthStatus::kOk);
  EXPECT_TRUE(hooks_.events.empty());
  now_ += 10;  // unused for a whole ttl, expire long passed
  api_.Sweep();
  EXPECT_EQ(api_.Authenticate(key).status, Api::AuthStatus::kUnknown);
  EXPECT_EQ(hooks_.events, std::vector<std::string>{"revoked:3:expired"});
  EXPECT_EQ(store_.FindById(3), nullptr);
  // Deleted durably: a fresh store of the same directory does not have it.
  TokenStore reopened(dir_.path());
  std::string error;
  ASSERT_TRUE(reopened.Open(&error)) << error;
  EXPECT_EQ(reopened.FindById(3), nullptr);
  EXPECT_NE(reopened.FindById(1), nullptr);
}

// A REST call refreshes `accessed` of the token it uses, which keeps a ttl master token valid.
TEST_F(ApiTest, RestCallsRefreshAccessed) {
  HttpResponse r = Call("POST", "/platform/tokens?fields=key", R"({"ttl":10,"access":{"type":1}})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string key = r.body.substr(r.body.find("\"key\":\"") + 7, 64);
  for (int i = 0; i < 5; ++i) {
    now_ += 8;
    ASSERT_EQ(Call("GET", "/platform/tokens/3", "", "Bearer " + key).status, 200) << i;
  }
  EXPECT_EQ(store_.FindById(3)->accessed, now_);
  now_ += 10;
  EXPECT_EQ(Call("GET", "/platform/tokens/3", "", "Bearer " + key).status, 401);
}

TEST_F(ApiTest, CheckHeadAuthorizesBeforeTheBody) {
  HttpRequest head;
  head.method = "POST";
  head.path = "/platform/tokens";
  std::optional<HttpResponse> r = api_.CheckHead(head);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 401);
  head.authorization = "Bearer " + standard_;
  r = api_.CheckHead(head);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 403);
  head.authorization = "Bearer " + master_;
  EXPECT_FALSE(api_.CheckHead(head).has_value());
  head.path = "/nowhere";
  r = api_.CheckHead(head);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404);
  head.authorization.clear();
  head.path = "/healthz";  // public: nothing to check before the body
  EXPECT_FALSE(api_.CheckHead(head).has_value());
}

TEST_F(ApiTest, MqttAuthenticationTtlAndSweep) {
  HttpResponse r = Call("POST", "/platform/tokens?fields=key",
                        R"({"ttl":10,"access":{"type":2,"acl":[{"topic":"d/#",)"
                        R"("actions":["subscribe"]}]}})");
  ASSERT_EQ(r.status, 200);
  const std::string key = r.body.substr(r.body.find("\"key\":\"") + 7, 64);
  Api::AuthResult a = api_.Authenticate(key);
  ASSERT_EQ(a.status, Api::AuthStatus::kOk);
  EXPECT_EQ(a.token_id, 3);
  EXPECT_FALSE(a.acl->AllowsEverything());
  EXPECT_EQ(a.acl->EffectiveFilters("#"), std::vector<std::string>{"d/#"});
  EXPECT_EQ(api_.Authenticate("nosuchkey1234567").status, Api::AuthStatus::kUnknown);

  now_ += 8;
  api_.Touch({key});  // in use by a live connection
  now_ += 8;
  api_.Sweep();
  EXPECT_EQ(api_.Authenticate(key).status, Api::AuthStatus::kOk);
  now_ += 10;
  EXPECT_EQ(api_.Authenticate(key).status, Api::AuthStatus::kExpired);
  api_.Sweep();
  EXPECT_EQ(api_.Authenticate(key).status, Api::AuthStatus::kUnknown);
  EXPECT_EQ(hooks_.events, std::vector<std::string>{"revoked:3:expired"});
  ASSERT_EQ(Call("PATCH", "/platform/tokens/2", R"({"enabled":false})").status, 200);
  EXPECT_EQ(api_.Authenticate(standard_).status, Api::AuthStatus::kDisabled);
}

TEST_F(ApiTest, Sessions) {
  admin_api::SessionInfo s;
  s.client_id = "c1";
  s.connected = true;
  s.protocol_version = 5;
  hooks_.sessions.push_back(s);
  s.client_id = "c,2/x";
  hooks_.sessions.push_back(s);
  HttpResponse r = Call("GET", "/mqtt/sessions/all");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Items(r).size(), 2u);
  EXPECT_NE(r.body.find(R"({"client_id":"c1","connected":true,"protocol_version":5,)"),
            std::string::npos);
  r = Call("GET", "/mqtt/sessions/c%2C2%2Fx,zz");
  ASSERT_EQ(Items(r).size(), 1u);
  EXPECT_EQ(hooks_.last_selector.ids, (std::vector<std::string>{"c,2/x", "zz"}));
  r = Call("GET", "/mqtt/sessions/c1/subscriptions");
  EXPECT_EQ(r.body, R"({"result":[{"client_id":"c1","topic":"#","qos":1,"no_local":false,)"
                    R"("retain_as_published":false,"retain_handling":0,"subscription_id":0,)"
                    R"("effective":["data/c1/#"]}]})");
  r = Call("DELETE", "/mqtt/sessions/c1");
  EXPECT_EQ(r.body, R"({"result":[{"client_id":"c1"}]})");
  EXPECT_EQ(Call("GET", "/mqtt/sessions/%zz").status, 400);
  EXPECT_EQ(Call("GET", "/mqtt/sessions/a,,b").status, 400);
  EXPECT_EQ(Call("POST", "/mqtt/sessions/all").status, 405);
  EXPECT_EQ(Call("GET", "/mqtt/sessions/all/other").status, 404);
  hooks_.fail = "shard 1 is shutting down";
  r = Call("GET", "/mqtt/sessions/all");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("shard 1 is shutting down"), std::string::npos);
}

TEST_F(ApiTest, CreateSessions) {
  // Token 2 (standard) owns them; its key and ACL go to the home shards.
  HttpResponse r = Call("POST", "/mqtt/sessions",
                        R"([{"client_id":"s1","expiry_interval":60,"token_id":2,)"
                        R"("subscriptions":[{"topic":"data/#","qos":1}]},)"
                        R"({"client_id":"s2","expiry_interval":60,"token_id":2}])");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Items(r).size(), 2u);
  EXPECT_NE(r.body.find(R"("client_id":"s1","connected":false)"), std::string::npos) << r.body;
  ASSERT_EQ(hooks_.new_sessions.size(), 2u);
  EXPECT_EQ(hooks_.new_sessions[0].token_key, standard_);
  ASSERT_NE(hooks_.new_sessions[0].acl, nullptr);
  EXPECT_EQ(hooks_.new_sessions[0].subscriptions[0].filter, "data/#");
  // An existing client id: nothing is created (the others of the request neither).
  r = Call("POST", "/mqtt/sessions",
           R"([{"client_id":"s3","expiry_interval":60,"token_id":2},)"
           R"({"client_id":"s1","expiry_interval":60,"token_id":2}])");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("client id 's1' has a session already"), std::string::npos) << r.body;
  EXPECT_EQ(hooks_.new_sessions.size(), 2u);
  r = Call("POST", "/mqtt/sessions", R"({"client_id":"s4","expiry_interval":60,"token_id":9})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("no token 9"), std::string::npos) << r.body;
  EXPECT_EQ(Call("POST", "/mqtt/sessions", R"({"client_id":"s4"})").status, 400);
  EXPECT_EQ(hooks_.new_sessions.size(), 2u);
}

TEST_F(ApiTest, SessionSubscriptions) {
  admin_api::SessionInfo s;
  s.client_id = "c1";
  s.token_id = 2;
  hooks_.sessions.push_back(s);
  HttpResponse r = Call("POST", "/mqtt/sessions/c1,gone/subscriptions",
                        R"([{"topic":"a/+","qos":2,"no_local":true}])");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            R"({"result":[{"client_id":"c1","topic":"a/+","qos":2,"no_local":true,)"
            R"("retain_as_published":false,"retain_handling":0,"subscription_id":0,)"
            R"("effective":["a/+"]}],"errors":[{"code":404,"reason":"no session 'gone'"}]})");
  ASSERT_EQ(hooks_.new_subscriptions.size(), 1u);
  EXPECT_EQ(hooks_.new_subscriptions[0].token_key, standard_);
  EXPECT_EQ(Call("POST", "/mqtt/sessions/gone/subscriptions", R"({"topic":"a"})").status, 404);
  EXPECT_EQ(Call("POST", "/mqtt/sessions/c1/subscriptions", R"({"topic":"a/#/"})").status, 400);
  EXPECT_EQ(hooks_.new_subscriptions.size(), 1u);
  r = Call("DELETE", "/mqtt/sessions/c1/subscriptions/a%2F%2B,b");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(hooks_.last_filters.ids, (std::vector<std::string>{"a/+", "b"}));
  EXPECT_FALSE(hooks_.last_filters.all);
  r = Call("DELETE", "/mqtt/sessions/c1/subscriptions");
  EXPECT_TRUE(hooks_.last_filters.all);
  r = Call("GET", "/mqtt/sessions/c1/subscriptions/nothing");
  EXPECT_EQ(r.body, R"({"result":[]})");
  r = Call("GET", "/mqtt/sessions/c1/subscriptions/%23");
  EXPECT_EQ(Items(r).size(), 1u);
}

TEST_F(ApiTest, AsynchronousAnswers) {
  hooks_.defer = true;
  HttpRequest req;
  req.method = "GET";
  req.path = "/mqtt/sessions/all";
  req.authorization = "Bearer " + master_;
  int answered = 0;
  api_.Handle(req, [&](const HttpResponse& r) {
    EXPECT_EQ(r.status, 200);
    ++answered;
  });
  EXPECT_EQ(answered, 0);
  ASSERT_EQ(hooks_.deferred.size(), 1u);
  hooks_.deferred[0]();
  EXPECT_EQ(answered, 1);
}

TEST_F(ApiTest, PublishValidation) {
  const int64_t before = route::SteadyNowMs();
  HttpResponse r = Call("POST", "/mqtt/messages",
                        R"([{"topic":"a/b","payload":"hi","qos":1,"retain":true,)"
                        R"("properties":{"content_type":"text/plain","message_expiry_interval":60,)"
                        R"("user_properties":{"k":"v"},"correlation_data":"AAE="}},)"
                        R"({"topic":"bin","payload":"AP8=","encoding":"base64"}])");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":[{"topic":"a/b"},{"topic":"bin"}]})");
  ASSERT_EQ(hooks_.published.size(), 2u);
  const route::Message& first = *hooks_.published[0];
  EXPECT_EQ(first.qos, 1);
  EXPECT_TRUE(first.retain);
  // A deadline 60 s from when the body was parsed, on the messages' clock.
  EXPECT_GT(first.expires_at_ms, before + 59'000);
  EXPECT_LE(first.expires_at_ms, route::SteadyNowMs() + 60'000);
  EXPECT_EQ(first.content_type, "text/plain");
  EXPECT_EQ(first.correlation_data, std::string("\0\1", 2));
  EXPECT_EQ(first.user_properties[0].second, "v");
  EXPECT_EQ(hooks_.published[1]->payload, std::string("\0\xff", 2));
  EXPECT_EQ(hooks_.published[1]->expires_at_ms, 0);  // none
  // An empty content type or correlation data is none (an empty response topic is invalid).
  ASSERT_EQ(Call("POST", "/mqtt/messages",
                 R"({"topic":"e","properties":{"content_type":"","correlation_data":""}})")
                .status,
            200);
  ASSERT_EQ(hooks_.published.size(), 3u);
  EXPECT_FALSE(hooks_.published[2]->content_type.has_value());
  EXPECT_FALSE(hooks_.published[2]->correlation_data.has_value());
  hooks_.published.pop_back();
  const char* bad[] = {
      R"({"payload":"x"})",
      R"({"topic":"a/+"})",
      R"({"topic":"a","qos":3})",
      R"({"topic":"a","qos":"1"})",
      R"({"topic":"a","retain":1})",
      R"({"topic":"a","payload":"!!","encoding":"base64"})",
      R"({"topic":"a","encoding":"hex"})",
      R"({"topic":"a","properties":{"nope":1}})",
      R"({"topic":"a","properties":{"response_topic":""}})",
      R"({"topic":"a","properties":{"message_expiry_interval":4294967296}})",
      R"({"topic":"a","payload":"/w==","encoding":"base64","properties":{"payload_format_indicator":1}})",
      R"({"topic":"a","topic":"b"})",
      "[]",
      "nope",
  };
  for (const char* body : bad) {
    EXPECT_EQ(Call("POST", "/mqtt/messages", body).status, 400) << body;
  }
  EXPECT_EQ(hooks_.published.size(), 2u);
}

TEST_F(ApiTest, PublishToSysTopicRefused) {
  // $SYS/... is the broker's own: nobody publishes there over REST either (nothing of a batch).
  for (const char* body :
       {R"({"topic":"$SYS/broker/uptime","payload":"0 seconds"})",
        R"({"topic":"$SYS","retain":true})", R"([{"topic":"a/b"},{"topic":"$SYS/x"}])"}) {
    HttpResponse r = Call("POST", "/mqtt/messages", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find("$SYS"), std::string::npos) << r.body;
  }
  EXPECT_TRUE(hooks_.published.empty());
  EXPECT_EQ(Call("POST", "/mqtt/messages", R"({"topic":"$share-like/x"})").status, 200);
}

TEST_F(ApiTest, RetainedMessagesAndMetrics) {
  auto m = std::make_shared<route::Message>();
  m->topic = "a/b";
  m->payload = std::string("\x01\xff", 2);
  m->qos = 1;
  m->retain = true;
  hooks_.retained.push_back(m);
  auto e = std::make_shared<route::Message>();  // expires in 9.5 s: shown as 10, as MQTT sends it
  e->topic = "a/c";
  e->retain = true;
  e->expires_at_ms = route::SteadyNowMs() + 9'500;
  e->content_type = "";  // an empty property is not shown
  hooks_.retained.push_back(e);
  HttpResponse r = Call("GET", "/mqtt/messages/a/%23");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(hooks_.last_filter, "a/#");
  EXPECT_EQ(r.body, R"({"result":[{"topic":"a/b","payload":"Af8=","encoding":"base64","qos":1,)"
                    R"("retain":true,"properties":{}},{"topic":"a/c","payload":"",)"
                    R"("encoding":"text","qos":0,"retain":true,)"
                    R"("properties":{"message_expiry_interval":10}}]})");
  EXPECT_EQ(Call("GET", "/mqtt/messages/a/%23/b").status, 400);
  EXPECT_EQ(Call("GET", "/mqtt/messages/$share/g/a").status, 400);
  r = Call("DELETE", "/mqtt/messages/+/b");
  EXPECT_EQ(r.body, R"({"result":[{"topic":"a/b"},{"topic":"a/c"}]})");
  EXPECT_EQ(hooks_.last_filter, "+/b");
  EXPECT_EQ(Call("PUT", "/mqtt/messages/a").status, 405);
  r = Call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("ringmq_connections{shard=\"0\"} 3\n"), std::string::npos);
  EXPECT_NE(r.body.find("ringmq_tokens 2\n"), std::string::npos);
}

TEST(ApiNoBroker, HookEndpointsAnswer503) {
  TempDir dir;
  TokenStore store(dir.path());
  std::string error;
  ASSERT_TRUE(store.Open(&error));
  std::vector<acl::Token> t(1);
  ASSERT_TRUE(acl::GenerateTokenKey(&t[0].key));
  t[0].access.type = acl::AccessType::kMaster;
  StoreError e;
  ASSERT_TRUE(store.Insert(&t, &e));
  Api api(
      &store, nullptr, [] { return int64_t{1}; }, Api::Limits{});
  HttpRequest req;
  req.method = "GET";
  req.path = "/mqtt/sessions/all";
  req.authorization = "Bearer " + t[0].key;
  int status = 0;
  api.Handle(req, [&](const HttpResponse& r) { status = r.status; });
  EXPECT_EQ(status, 503);
}

// A backend as a cluster's: other writers' changes arrive through Api::ApplyRemote, tokens
// written elsewhere a moment ago through Fetch, and unused ttl tokens get a grace period.
class SharedBackend final : public TokenBackend {
 public:
  std::map<int64_t, acl::Token> remote;  // what other writers stored (Fetch finds them)
  std::vector<std::string> commits;      // "touch:<ids>", "write"
  int64_t grace = 0;
  int fail_status = 0;  // non-zero: Commit fails with it

  bool Load(int64_t* next_id, std::vector<acl::Token>* tokens, bool* may_seed,
            std::string*) override {
    *next_id = 1;
    tokens->clear();
    *may_seed = false;
    return true;
  }
  bool ReserveIds(size_t, int64_t next_id, int64_t* first, StoreError*) override {
    *first = next_id + 100;  // another writer took some meanwhile
    return true;
  }
  bool Commit(const Change& change, StoreError* error) override {
    if (fail_status != 0) {
      *error = {fail_status, "changed elsewhere"};
      return false;
    }
    std::string ids;
    for (const auto& [before, after] : change.updated) ids += std::to_string(after->id) + ",";
    commits.push_back(change.touch_only ? "touch:" + ids : "write");
    return true;
  }
  int64_t ttl_grace_s() const override { return grace; }
  std::optional<Remote> Fetch(int64_t id, std::string_view key) override {
    for (const auto& [rid, t] : remote) {
      if (rid == id || t.key == key) return Remote{rid, t};
    }
    return std::nullopt;
  }
};

class SharedApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = std::make_unique<SharedBackend>();
    backend_ = b.get();
    store_ = std::make_unique<TokenStore>(std::move(b));
    std::string error;
    ASSERT_TRUE(store_->Open(&error)) << error;
    EXPECT_FALSE(store_->may_seed());  // a joining node generates no master token
    api_ = std::make_unique<Api>(
        store_.get(), &hooks_, [this] { return now_; }, Api::Limits{});
  }
  acl::Token Remote(int64_t id, std::string topic) {
    acl::Token t;
    t.id = id;
    EXPECT_TRUE(acl::GenerateTokenKey(&t.key));
    t.ttl = 60;
    t.created = t.accessed = now_;
    t.access.type = acl::AccessType::kAcl;
    t.access.acl.push_back({std::move(topic), acl::kActionSubscribe, 0});
    return t;
  }

  SharedBackend* backend_ = nullptr;
  std::unique_ptr<TokenStore> store_;
  FakeHooks hooks_;
  int64_t now_ = 1'000'000;
  std::unique_ptr<Api> api_;
};

TEST_F(SharedApiTest, ChangesOfOtherNodesReachTheShards) {
  const acl::Token t = Remote(7, "data/u1/#");
  api_->ApplyRemote({7, t});  // created elsewhere: nothing to tell the shards yet
  EXPECT_TRUE(hooks_.events.empty());
  ASSERT_NE(store_->FindByKey(t.key), nullptr);
  EXPECT_EQ(store_->next_id(), 8);  // ids of other writers are never handed out here

  store_->Touch(7, now_ + 30);  // used here since: the later `accessed` stays
  acl::Token narrowed = t;
  narrowed.access.acl[0].topic = "data/u1/a/#";
  api_->ApplyRemote({7, narrowed});
  ASSERT_EQ(hooks_.events.size(), 1u);
  EXPECT_EQ(hooks_.events[0].rfind("changed:7:v", 0), 0u) << hooks_.events[0];
  EXPECT_EQ(store_->FindById(7)->access.acl[0].topic, "data/u1/a/#");
  EXPECT_EQ(store_->FindById(7)->accessed, now_ + 30);

  acl::Token info_only = narrowed;
  info_only.info = "renamed";
  api_->ApplyRemote({7, info_only});  // nothing the shards hold
  EXPECT_EQ(hooks_.events.size(), 1u);

  api_->ApplyRemote({7, std::nullopt});  // deleted elsewhere: its connections close here too
  EXPECT_EQ(hooks_.events.back(), "revoked:7:deleted");
  EXPECT_EQ(store_->FindById(7), nullptr);
  EXPECT_EQ(store_->FindByKey(t.key), nullptr);
  api_->ApplyRemote({7, std::nullopt});  // twice: once is enough
  EXPECT_EQ(hooks_.events.size(), 2u);
}

TEST_F(SharedApiTest, ATokenMintedElsewhereAMomentAgoAuthenticates) {
  const acl::Token t = Remote(3, "data/#");
  backend_->remote[3] = t;
  const Api::AuthResult r = api_->Authenticate(t.key);
  EXPECT_EQ(r.status, Api::AuthStatus::kOk);
  EXPECT_EQ(r.token_id, 3);
  EXPECT_EQ(api_->Authenticate(acl::Credentials{3, t.key.substr(0, 16)}).status,
            Api::AuthStatus::kOk);
  EXPECT_EQ(api_->Authenticate(std::string(64, 'x')).status, Api::AuthStatus::kUnknown);
}

TEST_F(SharedApiTest, ATokenMintedElsewhereAMomentAgoIsFoundByItsId) {
  acl::Token master = Remote(1, "x");
  master.access = {acl::AccessType::kMaster, {}};
  api_->ApplyRemote({1, master});
  backend_->remote[9] = Remote(9, "data/#");  // not heard of here yet
  HttpRequest req;
  req.method = "GET";
  req.path = "/platform/tokens/9,10";
  req.authorization = "FlespiToken " + master.key;
  HttpResponse out;
  api_->Handle(req, [&](HttpResponse r) { out = std::move(r); });
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_NE(out.body.find("\"id\":9"), std::string::npos) << out.body;
  EXPECT_NE(out.body.find("token 10 not found"), std::string::npos) << out.body;
  EXPECT_NE(store_->FindById(9), nullptr);
}

TEST_F(SharedApiTest, NewIdsComeFromTheBackendAndConflictsAnswerItsStatus) {
  acl::Token master = Remote(1, "x");
  master.access = {acl::AccessType::kMaster, {}};
  api_->ApplyRemote({1, master});
  HttpRequest req;
  req.method = "POST";
  req.path = "/platform/tokens";
  req.body = R"({"ttl":60})";
  req.authorization = "FlespiToken " + master.key;
  HttpResponse out;
  api_->Handle(req, [&](HttpResponse r) { out = std::move(r); });
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_NE(out.body.find("\"id\":102"), std::string::npos) << out.body;  // ReserveIds' first
  backend_->fail_status = 409;
  req.method = "PATCH";
  req.path = "/platform/tokens/102";
  req.body = R"({"info":"x"})";
  api_->Handle(req, [&](HttpResponse r) { out = std::move(r); });
  EXPECT_EQ(out.status, 409);
  EXPECT_NE(out.body.find("changed elsewhere"), std::string::npos) << out.body;
  EXPECT_TRUE(store_->FindById(102)->info.empty());  // nothing changed here either
}

TEST_F(SharedApiTest, AnUnusedTtlTokenIsDeletedOnlyAfterTheGrace) {
  backend_->grace = 30;
  api_->ApplyRemote({5, Remote(5, "a/#")});  // ttl 60, accessed now_
  now_ += 61;
  EXPECT_EQ(api_->Authenticate(store_->FindById(5)->key).status, Api::AuthStatus::kExpired);
  api_->Sweep();  // refused, but another node may still report a use of it
  ASSERT_NE(store_->FindById(5), nullptr);
  now_ += 30;
  api_->Sweep();
  EXPECT_EQ(store_->FindById(5), nullptr);
  EXPECT_EQ(hooks_.events, std::vector<std::string>{"revoked:5:expired"});
}

TEST_F(SharedApiTest, UsesReachTheBackendAsTouches) {
  api_->ApplyRemote({5, Remote(5, "a/#")});
  now_ += 20;
  ASSERT_EQ(api_->Authenticate(store_->FindById(5)->key).status, Api::AuthStatus::kOk);
  api_->Sweep();
  EXPECT_EQ(backend_->commits, std::vector<std::string>{"touch:5,"});
}

}  // namespace
}  // namespace ringmq::rest
