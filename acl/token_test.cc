#include "acl/token.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "acl/acl.h"
#include "acl/token_json.h"
#include "base/json.h"

namespace ringmq::acl {
namespace {

Token Base() {
  Token t;
  t.id = 1;
  EXPECT_TRUE(GenerateTokenKey(&t.key));
  t.created = t.accessed = 1000;
  return t;
}

TEST(Token, KeysAre64AlphanumericCharactersAndDistinct) {
  std::set<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    std::string k;
    ASSERT_TRUE(GenerateTokenKey(&k));
    EXPECT_EQ(k.size(), kGeneratedKeyChars);
    for (char c : k) {
      EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
          << "'" << c << "' in " << k;
    }
    std::string error;
    EXPECT_TRUE(ValidateTokenKey(k, &error)) << error;
    keys.insert(k);
  }
  EXPECT_EQ(keys.size(), 100u);
}

// Rejection sampling: each of the 62 characters is drawn with probability 1/62. A plain
// `byte % 62` would give the first 8 characters 5/256 and the others 4/256 (25% more): over
// 640,000 characters that is ~2,500 extra per favoured character against a standard deviation of
// ~100, so the 4% band below catches it while a fair generator stays inside (5 sigma).
TEST(Token, KeyCharactersAreUniform) {
  std::map<char, int> counts;
  constexpr int kKeys = 10000;
  for (int i = 0; i < kKeys; ++i) {
    std::string k;
    ASSERT_TRUE(GenerateTokenKey(&k));
    for (char c : k) ++counts[c];
  }
  ASSERT_EQ(counts.size(), 62u);
  const double expected = kKeys * 64.0 / 62.0;
  for (const auto& [c, n] : counts) {
    EXPECT_NEAR(n, expected, expected * 0.04) << "character '" << c << "'";
  }
}

TEST(Token, KeyValidation) {
  std::string error;
  EXPECT_FALSE(ValidateTokenKey("short", &error));
  EXPECT_FALSE(ValidateTokenKey("abcdefghijklmnop/", &error));
  EXPECT_FALSE(ValidateTokenKey(std::string(129, 'a'), &error));
  EXPECT_TRUE(ValidateTokenKey("abcdefghijklmnop", &error));
  // Keys of older stores (base64url) keep working.
  EXPECT_TRUE(ValidateTokenKey("abc-def_ghijklmnop", &error));
}

TEST(Token, ValidWhileExpireOrTtlHolds) {
  Token t = Base();
  EXPECT_FALSE(HasExpiry(t));
  EXPECT_EQ(CheckToken(t, 5000), TokenState::kValid);  // neither: does not expire
  t.expire = 2000;
  EXPECT_EQ(CheckToken(t, 1999), TokenState::kValid);
  EXPECT_EQ(CheckToken(t, 2000), TokenState::kExpired);
  t.expire = 0;
  t.ttl = 60;
  EXPECT_EQ(CheckToken(t, 1059), TokenState::kValid);
  EXPECT_EQ(CheckToken(t, 1060), TokenState::kExpired);
  t.accessed = 1050;
  EXPECT_EQ(CheckToken(t, 1060), TokenState::kValid);
  // Either one suffices: expire passed but used recently, or unused but expire ahead.
  t.expire = 1055;
  EXPECT_EQ(CheckToken(t, 1100), TokenState::kValid);
  EXPECT_EQ(CheckToken(t, 1110), TokenState::kExpired);
  t.expire = 3000;
  EXPECT_EQ(CheckToken(t, 2999), TokenState::kValid);
  EXPECT_EQ(CheckToken(t, 3000), TokenState::kExpired);
  t.enabled = false;
  EXPECT_EQ(CheckToken(t, 1060), TokenState::kDisabled);
  EXPECT_EQ(CheckToken(t, 5000), TokenState::kExpired);
  EXPECT_STREQ(TokenStateName(TokenState::kDisabled), "disabled");
}

TEST(Json, Escaping) {
  EXPECT_EQ(base::JsonString("a\"b\\c\n\t\x01\x1f/é"), "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f/é\"");
  EXPECT_EQ(base::JsonString(""), "\"\"");
}

// --- Parsing request bodies ---

bool Parse(std::string_view body, std::vector<TokenUpdate>* u, std::string* error) {
  return ParseTokenUpdates(body, true, 100, u, error);
}

std::string ParseError(std::string_view body) {
  std::vector<TokenUpdate> u;
  std::string error;
  EXPECT_FALSE(Parse(body, &u, &error)) << body;
  return error;
}

TEST(TokenJson, ParsesAFullObject) {
  std::vector<TokenUpdate> u;
  std::string error;
  ASSERT_TRUE(Parse(R"({"info":"user 42","enabled":false,"expire":1700000000,"ttl":3600,
      "metadata":{"a":[1,2,{"b":null}]},
      "access":{"type":2,"acl":[{"uri":"mqtt","topic":"data/42/#","actions":["subscribe"]},
                                {"topic":"cmd/42","actions":["publish","subscribe"]}]}})",
                    &u, &error))
      << error;
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(*u[0].info, "user 42");
  EXPECT_EQ(*u[0].enabled, false);
  EXPECT_EQ(*u[0].expire, 1700000000);
  EXPECT_EQ(*u[0].ttl, 3600);
  EXPECT_EQ(*u[0].metadata, R"({"a":[1,2,{"b":null}]})");
  EXPECT_EQ(*u[0].access_type, AccessType::kAcl);
  ASSERT_EQ(u[0].acl->size(), 2u);
  EXPECT_EQ((*u[0].acl)[0].topic, "data/42/#");
  EXPECT_EQ((*u[0].acl)[0].actions, kActionSubscribe);
  EXPECT_EQ((*u[0].acl)[1].actions, kActionPublish | kActionSubscribe);
}

TEST(TokenJson, ParsesArraysAndEmptyObjects) {
  std::vector<TokenUpdate> u;
  std::string error;
  ASSERT_TRUE(Parse(R"([{}, {"info":"x"}])", &u, &error)) << error;
  ASSERT_EQ(u.size(), 2u);
  EXPECT_FALSE(u[0].info.has_value());
  EXPECT_EQ(*u[1].info, "x");
  EXPECT_FALSE(ParseTokenUpdates("[{}]", false, 100, &u, &error));
  EXPECT_NE(error.find("must be an object"), std::string::npos) << error;
  EXPECT_FALSE(ParseTokenUpdates("[{},{},{}]", true, 2, &u, &error));
  EXPECT_NE(error.find("more than 2"), std::string::npos) << error;
}

TEST(TokenJson, UnicodeEscapesAreDecoded) {
  std::vector<TokenUpdate> u;
  std::string error;
  ASSERT_TRUE(Parse(R"({"info":"caf\u00e9 \ud83d\ude00 \"q\""})", &u, &error)) << error;
  EXPECT_EQ(*u[0].info, "café 😀 \"q\"");
  // Field names may be escaped too.
  ASSERT_TRUE(Parse(R"({"\u0069nfo":"x"})", &u, &error)) << error;
  EXPECT_EQ(*u[0].info, "x");
}

TEST(TokenJson, Rejections) {
  EXPECT_NE(ParseError("").find("malformed JSON"), std::string::npos);
  EXPECT_NE(ParseError("{").find("malformed JSON"), std::string::npos);
  EXPECT_NE(ParseError(R"({"info":"x",})").find("malformed JSON"), std::string::npos);
  EXPECT_NE(ParseError("{\"info\":\"\xff\"}").find("malformed JSON"), std::string::npos);
  EXPECT_NE(ParseError(R"({"info":"\ud800"})").find("malformed JSON"), std::string::npos);
  EXPECT_NE(ParseError("[]").find("empty array"), std::string::npos);
  EXPECT_NE(ParseError("42").find("must be an object or an array"), std::string::npos);
  EXPECT_EQ(ParseError("[1]"), "[0]: must be an object, not an integer");
  EXPECT_EQ(ParseError(R"({"nope":1})"), "nope: unknown field");
  EXPECT_EQ(ParseError(R"({"id":1})"), "id: read-only field");
  EXPECT_EQ(ParseError(R"({"key":"abc"})"), "key: read-only field");
  EXPECT_EQ(ParseError(R"({"info":1})"), "info: must be a string, not an integer");
  EXPECT_EQ(ParseError(R"({"info":"a","info":"b"})"), "info: duplicate field");
  EXPECT_EQ(ParseError(R"({"enabled":"yes"})"), "enabled: must be a boolean, not a string");
  EXPECT_EQ(ParseError(R"({"ttl":-1})"), "ttl: must not be negative");
  EXPECT_EQ(ParseError(R"({"ttl":1.5})"), "ttl: must be an integer, not a number");
  EXPECT_EQ(ParseError(R"({"ttl":null})"), "ttl: must be an integer, not null");
  EXPECT_EQ(ParseError(R"({"expire":18446744073709551615})"), "expire: out of range");
  EXPECT_NE(ParseError(R"({"expire":99999999999999999999999})").find("malformed JSON"),
            std::string::npos);
  EXPECT_NE(ParseError(R"({"expire":253402300800})").find("out of range"), std::string::npos);
  EXPECT_EQ(ParseError(R"({"metadata":[1]})"), "metadata: must be an object or null, not an array");
  EXPECT_EQ(ParseError(R"({"access":{"type":3}})"),
            "access.type: must be 0 (standard), 1 (master) or 2 (acl)");
  EXPECT_EQ(ParseError(R"({"access":{"type":"2"}})"),
            "access.type: must be an integer, not a string");
  EXPECT_EQ(ParseError(R"({"access":{"level":2}})"), "access.level: unknown field");
  EXPECT_EQ(ParseError(R"({"access":{"type":2,"acl":{}}})"),
            "access.acl: must be an array, not an object");
  EXPECT_EQ(ParseError(R"({"access":{"type":2,"acl":[{"topic":"a/#/b","actions":["publish"]}]}})"),
            "access.acl[0].topic: invalid topic filter");
  EXPECT_EQ(
      ParseError(R"({"access":{"type":2,"acl":[{"topic":"$share/g/a","actions":["publish"]}]}})"),
      "access.acl[0].topic: a $share filter cannot be an ACL topic");
  EXPECT_EQ(ParseError(R"({"access":{"type":2,"acl":[{"topic":"a","actions":["read"]}]}})"),
            "access.acl[0].actions[0]: unknown action \"read\" (expected \"publish\" or "
            "\"subscribe\")");
  EXPECT_EQ(ParseError(R"({"access":{"type":2,"acl":[{"topic":"a","actions":[]}]}})"),
            "access.acl[0].actions: must name at least one action (or the entry a method)");
  EXPECT_EQ(ParseError(R"({"access":{"type":2,"acl":[{"topic":"a"}]}})"),
            "access.acl[0].actions: missing (or name REST methods in \"methods\")");
  EXPECT_EQ(ParseError(R"({"access":{"type":2,"acl":[{"actions":["publish"]}]}})"),
            "access.acl[0].topic: missing");
  EXPECT_EQ(
      ParseError(R"({"access":{"type":2,"acl":[{"uri":"gw","topic":"a","actions":["publish"]}]}})"),
      "access.acl[0].uri: only \"mqtt\" is supported");
  EXPECT_EQ(ParseError(R"([{}, {"ttl":"1"}])"), "[1].ttl: must be an integer, not a string");
}

TEST(TokenJson, DeepNestingIsRefusedNotCrashing) {
  std::string deep = R"({"metadata":)" + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_NE(ParseError(deep).find("malformed JSON"), std::string::npos);
}

// --- Applying updates ---

TEST(TokenJson, ApplyModes) {
  Token t = Base();
  std::vector<TokenUpdate> u;
  std::string error;
  ASSERT_TRUE(Parse(R"({"info":"a","ttl":60,"access":{"type":2,"acl":[{"topic":"x/#",
      "actions":["subscribe"]}]}})",
                    &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kCreate, &t, &error)) << error;
  EXPECT_EQ(t.info, "a");
  EXPECT_EQ(t.access.type, AccessType::kAcl);

  // PATCH: only the given fields; acl alone keeps the type.
  ASSERT_TRUE(Parse(R"({"access":{"acl":[{"topic":"y","actions":["publish"]}]}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error)) << error;
  EXPECT_EQ(t.info, "a");
  EXPECT_EQ(t.ttl, 60);
  ASSERT_EQ(t.access.acl.size(), 1u);
  EXPECT_EQ(t.access.acl[0].topic, "y");

  // PATCH of the type away from 2 drops the acl.
  ASSERT_TRUE(Parse(R"({"access":{"type":0}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error)) << error;
  EXPECT_TRUE(t.access.acl.empty());

  // acl with a non-acl type is refused and changes nothing.
  const Token before = t;
  ASSERT_TRUE(Parse(R"({"info":"zzz","access":{"acl":[{"topic":"y","actions":["publish"]}]}})", &u,
                    &error));
  EXPECT_FALSE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error));
  EXPECT_EQ(error, "access.acl: allowed only with access.type 2");
  EXPECT_EQ(t, before);

  // PUT changes only what the body gives (flespi): `PUT {"enabled":false}` keeps the rest.
  ASSERT_TRUE(Parse(R"({"metadata":{"k":"v","n":{"x":1,"y":2}}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error)) << error;
  const Token kept = t;
  ASSERT_TRUE(Parse(R"({"enabled":false})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error)) << error;
  EXPECT_FALSE(t.enabled);
  t.enabled = true;
  EXPECT_EQ(t, kept);

  // PUT replaces a nested object as a whole: metadata, and access with its defaults.
  ASSERT_TRUE(Parse(R"({"metadata":{"n":{"x":9}}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error)) << error;
  EXPECT_EQ(t.metadata, R"({"n":{"x":9}})");
  ASSERT_TRUE(
      Parse(R"({"access":{"type":2,"acl":[{"topic":"z","actions":["publish"]}]}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error)) << error;
  ASSERT_TRUE(Parse(R"({"access":{}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error)) << error;
  EXPECT_EQ(t.access, Access{});
  EXPECT_EQ(t.info, "a");
  EXPECT_EQ(t.ttl, 60);

  // PATCH merges metadata (JSON Merge Patch): keys added and replaced, null removes.
  ASSERT_TRUE(Parse(R"({"metadata":{"k":"v","n":{"x":1,"y":2}}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error)) << error;
  ASSERT_TRUE(Parse(R"({"metadata":{"k":null,"n":{"y":3},"m":[1]}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error)) << error;
  EXPECT_EQ(t.metadata, R"({"n":{"x":1,"y":3},"m":[1]})");

  // metadata null clears it, in both modes.
  ASSERT_TRUE(Parse(R"({"metadata":null})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error));
  EXPECT_EQ(t.metadata, "");
  ASSERT_TRUE(Parse(R"({"metadata":{"k":"v"}})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error));
  EXPECT_EQ(t.metadata, R"({"k":"v"})");
  ASSERT_TRUE(Parse(R"({"metadata":null})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error));
  EXPECT_EQ(t.metadata, "");
  EXPECT_EQ(t.id, before.id);
  EXPECT_EQ(t.key, before.key);
}

TEST(TokenJson, MergedMetadataIsBounded) {
  Token t = Base();
  t.metadata = R"({"a":")" + std::string(kMaxMetadataBytes - 20, 'x') + R"("})";
  std::vector<TokenUpdate> u;
  std::string error;
  ASSERT_TRUE(Parse(R"({"metadata":{"b":")" + std::string(100, 'y') + R"("}})", &u, &error));
  const Token before = t;
  EXPECT_FALSE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error));
  EXPECT_EQ(error, "metadata: larger than 65536 bytes once merged");
  EXPECT_EQ(t, before);
}

// --- Serialization ---

TEST(TokenJson, SerializesAndRoundTripsThroughTheStoreFile) {
  Token t = Base();
  t.info = "quote \" backslash \\ newline \n ctl \x02 é";
  t.metadata = R"({"a":1})";
  t.access.type = AccessType::kAcl;
  t.access.acl = {{"data/+/x", kActionPublish | kActionSubscribe}, {"a/#", kActionSubscribe}};
  const std::string json = TokenToJson(t);
  EXPECT_NE(json.find(R"("info":"quote \" backslash \\ newline \n ctl \u0002 é")"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("access":{"type":2,"acl":[{"uri":"mqtt","topic":"data/+/x",)"
                      R"("actions":["publish","subscribe"]},{"uri":"mqtt","topic":"a/#",)"
                      R"("actions":["subscribe"]}]})"),
            std::string::npos)
      << json;

  Token t2 = Base();
  t2.id = 7;
  const std::string file = SerializeTokenFile(9, {&t, &t2});
  int64_t next_id = 0;
  std::vector<Token> back;
  std::string error;
  ASSERT_TRUE(ParseTokenFile(file, &next_id, &back, &error)) << error << "\n" << file;
  EXPECT_EQ(next_id, 9);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0], t);
  EXPECT_EQ(back[1], t2);

  EXPECT_FALSE(ParseTokenFile(SerializeTokenFile(7, {&t, &t2}), &next_id, &back, &error));
  EXPECT_FALSE(ParseTokenFile(SerializeTokenFile(9, {&t, &t}), &next_id, &back, &error));
  EXPECT_FALSE(ParseTokenFile(file.substr(0, file.size() / 2), &next_id, &back, &error));
}

TEST(TokenJson, FieldSelection) {
  FieldMask mask = 0;
  std::string error;
  ASSERT_TRUE(ParseFieldSelection("id,info", &mask, &error));
  EXPECT_EQ(mask, kFieldId | kFieldInfo);
  ASSERT_TRUE(ParseFieldSelection("", &mask, &error));
  EXPECT_EQ(mask, kAllFields);
  EXPECT_FALSE(ParseFieldSelection("id,password", &mask, &error));
  EXPECT_EQ(error, "fields: unknown field \"password\"");
  EXPECT_FALSE(ParseFieldSelection("id,", &mask, &error));
  Token t = Base();
  t.info = "i";
  EXPECT_EQ(TokenToJson(t, kFieldId | kFieldInfo | kFieldMetadata),
            R"({"id":1,"info":"i","metadata":null})");
  EXPECT_EQ(TokenToJson(t, kFieldAccess), R"({"access":{"type":0}})");
}

TEST(TokenJson, MaxConnectionsIsOptionalAndWrittenOnlyWhenSet) {
  std::vector<TokenUpdate> u;
  std::string error;
  ASSERT_TRUE(Parse(R"({"info":"a","max_connections":3})", &u, &error)) << error;
  Token t = Base();
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kCreate, &t, &error)) << error;
  EXPECT_EQ(t.max_connections, 3u);
  EXPECT_EQ(CompiledAcl::Compile(t, 1)->max_connections(), 3u);
  EXPECT_NE(TokenToJson(t).find(R"("max_connections":3)"), std::string::npos);
  EXPECT_EQ(TokenToJson(t, kFieldMaxConnections), R"({"max_connections":3})");

  // Round trip through the store file.
  const std::string file = SerializeTokenFile(9, {&t});
  int64_t next_id = 0;
  std::vector<Token> back;
  ASSERT_TRUE(ParseTokenFile(file, &next_id, &back, &error)) << error;
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], t);

  // PATCH and PUT without it keep it; set to 0, the full object leaves it out (the objects stay
  // as flespi's), while fields= naming it shows it.
  ASSERT_TRUE(Parse(R"({"info":"b"})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kPatch, &t, &error));
  EXPECT_EQ(t.max_connections, 3u);
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error));
  EXPECT_EQ(t.max_connections, 3u);
  ASSERT_TRUE(Parse(R"({"max_connections":0})", &u, &error));
  ASSERT_TRUE(ApplyTokenUpdate(u[0], UpdateMode::kReplace, &t, &error));
  EXPECT_EQ(t.max_connections, 0u);
  EXPECT_EQ(TokenToJson(t).find("max_connections"), std::string::npos);
  EXPECT_EQ(TokenToJson(t, kFieldId | kFieldMaxConnections), R"({"id":1,"max_connections":0})");

  EXPECT_EQ(ParseError(R"({"max_connections":-1})"), "max_connections: must be 0 to 4294967295");
  EXPECT_EQ(ParseError(R"({"max_connections":4294967296})"),
            "max_connections: must be 0 to 4294967295");
  EXPECT_EQ(ParseError(R"({"max_connections":"2"})"),
            "max_connections: must be an integer, not a string");
}

}  // namespace
}  // namespace ringmq::acl
