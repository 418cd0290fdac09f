// Token origins on the REST API, REST methods of ACL tokens, and MQTT login by token id
// (doc/rest-api.md "Origins", "REST calls by ACL tokens", "MQTT authentication").
#include <gtest/gtest.h>

#include "rest/api.h"
#include "rest/test_util.h"

namespace ringmq::rest {
namespace {

using testing::FakeHooks;
using testing::TempDir;

class ApiAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(store_.Open(&error)) << error;
    acl::Token master;
    master.access.type = acl::AccessType::kMaster;
    master.created = master.accessed = now_;
    ASSERT_TRUE(acl::GenerateTokenKey(&master.key));
    master_ = master.key;
    std::vector<acl::Token> tokens{std::move(master)};
    StoreError e;
    ASSERT_TRUE(store_.Insert(&tokens, &e)) << e.text;
  }

  HttpResponse Call(std::string method, std::string path, std::string body = "",
                    const std::string& key = "", std::string peer = "127.0.0.1") {
    HttpRequest req;
    req.method = std::move(method);
    req.path = std::move(path);
    req.body = std::move(body);
    req.peer = std::move(peer);
    req.authorization = "FlespiToken " + (key.empty() ? master_ : key);
    HttpResponse out;
    out.status = -1;
    api_.Handle(req, [&](HttpResponse r) { out = std::move(r); });
    return out;
  }

  // Creates a token from `body` with the master token; returns its key.
  std::string Mint(const std::string& body) {
    const HttpResponse r = Call("POST", "/platform/tokens", body);
    EXPECT_EQ(r.status, 200) << r.body;
    const size_t at = r.body.find("\"key\":\"");
    return at == std::string::npos ? "" : r.body.substr(at + 7, 64);
  }

  TempDir dir_;
  TokenStore store_{dir_.path()};
  FakeHooks hooks_;
  int64_t now_ = 1'000'000;
  Api api_{&store_, &hooks_, [this] { return now_; }, Api::Limits{}};
  std::string master_;
};

TEST_F(ApiAuthTest, OriginsRefuseOtherAddressesWith403) {
  const std::string key = Mint(R"({"ttl":60,"access":{"type":1},"origins":["10.0.0.0/8"]})");
  EXPECT_EQ(Call("GET", "/platform/tokens/all", "", key, "10.9.8.7").status, 200);
  const HttpResponse r = Call("GET", "/platform/tokens/all", "", key, "192.0.2.1");
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("may not be used from 192.0.2.1 (not in its origins)"), std::string::npos);
  EXPECT_EQ(Call("GET", "/platform/tokens/all", "", key, "").status, 403);  // unknown address
  EXPECT_EQ(Call("GET", "/platform/tokens/all", "", master_, "192.0.2.1").status, 200);
}

TEST_F(ApiAuthTest, AclTokenCallsOnlyTheMessageMethodsItsEntriesList) {
  const std::string key = Mint(
      R"({"ttl":60,"access":{"type":2,"acl":[{"uri":"mqtt","topic":"u1/#","actions":["subscribe"],)"
      R"("methods":["POST","GET"]},{"uri":"mqtt","topic":"u1/tmp/+","methods":["DELETE"]}]}})");
  // POST inside the entry: published; outside: 403 and nothing published.
  EXPECT_EQ(Call("POST", "/mqtt/messages", R"({"topic":"u1/a","payload":"x"})", key).status, 200);
  EXPECT_EQ(Call("POST", "/mqtt/messages", R"([{"topic":"u1/b"},{"topic":"u2/a"}])", key).status,
            403);
  ASSERT_EQ(hooks_.published.size(), 1u);
  EXPECT_EQ(hooks_.published[0]->topic, "u1/a");
  // GET lists only retained messages its GET entries match, whatever the filter asked.
  for (const char* topic : {"u1/x", "u2/x"}) {
    auto m = std::make_shared<route::Message>();
    m->topic = topic;
    hooks_.retained.push_back(m);
  }
  HttpResponse r = Call("GET", "/mqtt/messages/%23", "", key);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("u1/x"), std::string::npos);
  EXPECT_EQ(r.body.find("u2/x"), std::string::npos);
  EXPECT_EQ(Call("GET", "/mqtt/messages/u2/%23", "", key).status, 403);
  // DELETE only inside a DELETE entry.
  EXPECT_EQ(Call("DELETE", "/mqtt/messages/u1/%23", "", key).status, 403);
  EXPECT_EQ(hooks_.retained.size(), 2u);
  EXPECT_EQ(Call("DELETE", "/mqtt/messages/u1/tmp/a", "", key).status, 200);
  // Everything else stays the master's.
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/platform/tokens/all"},
                                                        {"GET", "/mqtt/sessions/all"},
                                                        {"GET", "/metrics"},
                                                        {"PUT", "/mqtt/messages/u1/a"}}) {
    EXPECT_EQ(Call(method, path, "", key).status, 403) << method << " " << path;
  }
  // A token whose entries list no methods, and a standard token, get nothing of REST.
  const std::string plain =
      Mint(R"({"ttl":60,"access":{"type":2,"acl":[{"topic":"#","actions":["publish"]}]}})");
  EXPECT_EQ(Call("POST", "/mqtt/messages", R"({"topic":"u1/a"})", plain).status, 403);
  const std::string standard = Mint(R"({"ttl":60,"access":{"type":0}})");
  EXPECT_EQ(Call("GET", "/mqtt/messages/%23", "", standard).status, 403);
}

TEST_F(ApiAuthTest, MqttLoginByIdAndKeyPrefix) {
  const std::string key = Mint(R"({"ttl":60,"access":{"type":0}})");
  const int64_t id = store_.FindByKey(key)->id;
  Api::AuthResult r = api_.Authenticate(acl::Credentials{id, key.substr(0, 16)});
  ASSERT_EQ(r.status, Api::AuthStatus::kOk);
  EXPECT_EQ(r.key, key);
  EXPECT_EQ(r.token_id, id);
  std::string wrong = key.substr(0, 16);
  wrong[15] = wrong[15] == 'a' ? 'b' : 'a';
  EXPECT_EQ(api_.Authenticate(acl::Credentials{id, wrong}).status, Api::AuthStatus::kUnknown);
  EXPECT_EQ(api_.Authenticate(acl::Credentials{id, key}).status, Api::AuthStatus::kUnknown);
  EXPECT_EQ(api_.Authenticate(acl::Credentials{id + 100, key.substr(0, 16)}).status,
            Api::AuthStatus::kUnknown);
  EXPECT_EQ(api_.Authenticate(key).key, key);
}

TEST_F(ApiAuthTest, ChangingOriginsReachesTheShards) {
  const std::string key = Mint(R"({"ttl":60,"access":{"type":0}})");
  const int64_t id = store_.FindByKey(key)->id;
  hooks_.events.clear();
  ASSERT_EQ(
      Call("PATCH", "/platform/tokens/" + std::to_string(id), R"({"origins":["::1"]})").status,
      200);
  ASSERT_EQ(hooks_.events.size(), 1u);
  EXPECT_EQ(hooks_.events[0].rfind("changed:", 0), 0u);
}

}  // namespace
}  // namespace ringmq::rest
