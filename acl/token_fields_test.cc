// cid, origins and the REST methods of ACL entries (doc/rest-api.md, issue 15 row 3).
#include <gtest/gtest.h>

#include "acl/acl.h"
#include "acl/rest_access.h"
#include "acl/token_json.h"

namespace ringmq::acl {
namespace {

// Parses one token body and applies it to a fresh token (as POST does).
bool Make(std::string_view body, Token* t, std::string* error) {
  std::vector<TokenUpdate> u;
  if (!ParseTokenUpdates(body, false, 1, &u, error)) return false;
  t->key = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzAB";
  t->id = 3;
  return ApplyTokenUpdate(u[0], UpdateMode::kCreate, t, error);
}

std::string Refused(std::string_view body) {
  Token t;
  std::string error;
  EXPECT_FALSE(Make(body, &t, &error)) << body;
  return error;
}

TEST(TokenFields, CidAndOriginsAreStoredAndReturnedInTheirShape) {
  Token t;
  std::string error;
  ASSERT_TRUE(Make(R"({"ttl":60,"cid":123456,"origins":["10.0.0.0/8",{"ip":"2001:db8::/32"}]})", &t,
                   &error))
      << error;
  EXPECT_EQ(t.cid, 123456);
  ASSERT_EQ(t.origins.size(), 2u);
  EXPECT_EQ(TokenToJson(t, kFieldCid | kFieldOrigins),
            R"({"cid":123456,"origins":["10.0.0.0/8",{"ip":"2001:db8::/32"}]})");
  // Through the store file and back.
  int64_t next = 0;
  std::vector<Token> back;
  ASSERT_TRUE(ParseTokenFile(SerializeTokenFile(4, {&t}), &next, &back, &error)) << error;
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], t);
  FieldMask mask = 0;
  ASSERT_TRUE(ParseFieldSelection("cid,origins", &mask, &error));
  EXPECT_EQ(mask, kFieldCid | kFieldOrigins);
}

TEST(TokenFields, UnsetCidAndOriginsReadAsZeroAndEmpty) {
  Token t;
  std::string error;
  ASSERT_TRUE(Make(R"({"ttl":60,"origins":null})", &t, &error)) << error;
  EXPECT_EQ(TokenToJson(t, kFieldCid | kFieldOrigins), R"({"cid":0,"origins":[]})");
}

TEST(TokenFields, BadCidAndOriginsAreRefusedByField) {
  EXPECT_EQ(Refused(R"({"cid":-1})"), "cid: must not be negative");
  EXPECT_EQ(Refused(R"({"cid":"7"})"), "cid: must be an integer, not a string");
  EXPECT_EQ(Refused(R"({"cid":18446744073709551615})"), "cid: out of range");
  EXPECT_EQ(Refused(R"({"origins":"10.0.0.0/8"})"),
            "origins: must be an array or null, not a string");
  EXPECT_NE(Refused(R"({"origins":["10.0.0.0/33"]})").find("origins[0]: prefix length"),
            std::string::npos);
  EXPECT_NE(Refused(R"({"origins":["ok",1]})").find("origins[0]: \"ok\" is not an IPv4"),
            std::string::npos);
  EXPECT_EQ(Refused(R"({"origins":[1]})"), "origins[0]: must be a string, not an integer");
  EXPECT_NE(Refused(R"({"origins":[{"referer":"x"}]})").find("origins[0].referer: unknown field"),
            std::string::npos);
  EXPECT_EQ(Refused(R"({"origins":[{}]})"), "origins[0].ip: missing");
  std::string many = R"({"origins":[)";
  for (size_t i = 0; i <= kMaxOrigins; ++i) many += (i ? ",\"::1\"" : "\"::1\"");
  EXPECT_EQ(Refused(many + "]}"), "origins: more than 64 entries");
  EXPECT_EQ(Refused(R"({"customer":1})"), "customer: unknown field");
}

TEST(TokenFields, MethodsInAnMqttEntry) {
  Token t;
  std::string error;
  ASSERT_TRUE(
      Make(R"({"ttl":60,"access":{"type":2,"acl":[)"
           R"({"uri":"mqtt","topic":"a/#","actions":["subscribe"],"methods":["POST","GET"]},)"
           R"({"uri":"mqtt","topic":"b/#","methods":["DELETE"]}]}})",
           &t, &error))
      << error;
  ASSERT_EQ(t.access.acl.size(), 2u);
  EXPECT_EQ(t.access.acl[0].methods, kMethodGet | kMethodPost);
  EXPECT_EQ(t.access.acl[1].actions, 0);
  EXPECT_EQ(TokenToJson(t, kFieldAccess),
            R"({"access":{"type":2,"acl":[{"uri":"mqtt","topic":"a/#","actions":["subscribe"],)"
            R"("methods":["GET","POST"]},{"uri":"mqtt","topic":"b/#","actions":[],)"
            R"("methods":["DELETE"]}]}})");
  // An entry with methods only grants nothing over MQTT.
  const AclPtr acl = CompiledAcl::Compile(t, 1);
  EXPECT_FALSE(acl->CanPublish("b/x"));
  EXPECT_TRUE(acl->EffectiveFilters("b/#").empty());
  EXPECT_EQ(acl->EffectiveFilters("#"), std::vector<std::string>{"a/#"});
}

TEST(TokenFields, BadMethodsAreRefused) {
  EXPECT_NE(Refused(R"({"access":{"type":2,"acl":[{"topic":"a","methods":["FETCH"]}]}})")
                .find("access.acl[0].methods[0]: unknown method \"FETCH\""),
            std::string::npos);
  EXPECT_EQ(Refused(R"({"access":{"type":2,"acl":[{"topic":"a","methods":"GET"}]}})"),
            "access.acl[0].methods: must be an array, not a string");
  EXPECT_EQ(Refused(R"({"access":{"type":2,"acl":[{"topic":"a","methods":[]}]}})"),
            "access.acl[0].actions: missing (or name REST methods in \"methods\")");
  EXPECT_EQ(Refused(R"({"access":{"type":2,"acl":[{"topic":"a","actions":[]}]}})"),
            "access.acl[0].actions: must name at least one action (or the entry a method)");
}

TEST(RestAccess, MethodsGrantTopicsOfTheirEntriesOnly) {
  const std::vector<AclEntry> acl = {{"a/#", kActionSubscribe, kMethodGet | kMethodPost},
                                     {"b/+/x", 0, kMethodDelete}};
  Token t;
  t.access.type = AccessType::kAcl;
  t.access.acl = acl;
  EXPECT_TRUE(ListsMethod(t, kMethodGet));
  EXPECT_TRUE(ListsMethod(t, kMethodDelete));
  EXPECT_FALSE(ListsMethod(t, kMethodPut));
  t.access.type = AccessType::kStandard;
  EXPECT_FALSE(ListsMethod(t, kMethodGet));
  EXPECT_TRUE(MethodAllowsTopic(acl, kMethodPost, "a/1"));
  EXPECT_FALSE(MethodAllowsTopic(acl, kMethodPost, "b/1/x"));
  EXPECT_FALSE(MethodAllowsTopic(acl, kMethodDelete, "a/1"));
  EXPECT_TRUE(MethodMeetsFilter(acl, kMethodGet, "#"));
  EXPECT_TRUE(MethodMeetsFilter(acl, kMethodGet, "a/b"));
  EXPECT_FALSE(MethodMeetsFilter(acl, kMethodGet, "b/#"));
  EXPECT_TRUE(MethodCoversFilter(acl, kMethodDelete, "b/1/x"));
  EXPECT_TRUE(MethodCoversFilter(acl, kMethodDelete, "b/+/x"));
  EXPECT_FALSE(MethodCoversFilter(acl, kMethodDelete, "b/#"));
  EXPECT_FALSE(MethodCoversFilter(acl, kMethodDelete, "#"));
}

}  // namespace
}  // namespace ringmq::acl
