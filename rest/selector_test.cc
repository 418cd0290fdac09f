#include "rest/selector.h"

#include <gtest/gtest.h>

#include <string>

#include "rest/json_fields.h"

namespace ringmq::rest {
namespace {

constexpr const char* kToken =
    R"({"id":42,"info":"user 42","enabled":true,"ttl":0,"expire":1700000000,)"
    R"("metadata":{"user_id":42,"tags":["a","b"],"x":{"y":"deep"},"n":null},"empty":""})";

// Parses `sel` (raw, as in the path) and evaluates it on kToken (or `json`).
bool Eval(const std::string& sel, const char* json = kToken) {
  Selector s;
  std::string error;
  EXPECT_TRUE(Selector::Parse(sel, Selector::IdKind::kTokenId, 1000, &s, &error)) << error;
  JsonFields fields;
  EXPECT_TRUE(fields.Parse(json));
  return s.Matches("42", fields);
}

// The error of a selector that must not parse.
std::string Error(const std::string& sel, Selector::IdKind kind = Selector::IdKind::kTokenId) {
  Selector s;
  std::string error;
  EXPECT_FALSE(Selector::Parse(sel, kind, 3, &s, &error)) << sel;
  return error;
}

TEST(Selector, AllAndIds) {
  Selector s;
  std::string error;
  ASSERT_TRUE(Selector::Parse("all", Selector::IdKind::kTokenId, 10, &s, &error));
  EXPECT_EQ(s.form(), Selector::Form::kAll);
  EXPECT_TRUE(s.Contains("anything"));
  ASSERT_TRUE(Selector::Parse("3,9,3,12", Selector::IdKind::kTokenId, 10, &s, &error));
  EXPECT_EQ(s.form(), Selector::Form::kIds);
  EXPECT_EQ(s.ids(), (std::vector<std::string>{"3", "9", "12"}));
  EXPECT_FALSE(s.needs_fields());
  EXPECT_TRUE(s.Contains("9"));
  EXPECT_FALSE(s.Contains("4"));
  // Client ids: each part percent-decoded, so %2C is a comma inside an id.
  ASSERT_TRUE(Selector::Parse("c%2C2%2Fx,zz", Selector::IdKind::kClientId, 10, &s, &error));
  EXPECT_EQ(s.ids(), (std::vector<std::string>{"c,2/x", "zz"}));
}

TEST(Selector, BadIds) {
  EXPECT_EQ(Error("1,x"),
            "selector: expected all, a token id (a positive integer), a comma list of them, "
            "field=value or {expression} at 2");
  EXPECT_NE(Error("0").find("at 0"), std::string::npos);
  EXPECT_NE(Error("-1").find("at 0"), std::string::npos);
  EXPECT_NE(Error("99999999999999999999").find("at 0"), std::string::npos);
  EXPECT_NE(Error("a,,b", Selector::IdKind::kClientId).find("at 2"), std::string::npos);
  EXPECT_EQ(Error("1,2,3,4"), "selector: lists more than 3 ids");
  EXPECT_EQ(Error("%zz"), "selector: malformed percent-encoding");
  EXPECT_EQ(Error(std::string(5000, 'a')), "selector: longer than 4096 bytes (decoded)");
}

TEST(Selector, FieldTerms) {
  EXPECT_TRUE(Eval("info=user*"));
  EXPECT_TRUE(Eval("info=user%2042"));  // percent-decoded: "user 42"
  EXPECT_TRUE(Eval("info=user?42"));
  EXPECT_FALSE(Eval("info=user"));
  EXPECT_TRUE(Eval("info=user*,enabled=true"));  // comma = AND
  EXPECT_FALSE(Eval("info=user*,enabled=false"));
  EXPECT_TRUE(Eval("id=42"));
  EXPECT_TRUE(Eval("id=4*"));
  EXPECT_TRUE(Eval("metadata.user_id=42"));
  EXPECT_TRUE(Eval("metadata.x.y=d*p"));
  EXPECT_TRUE(Eval("metadata.n=null"));
  EXPECT_TRUE(Eval("metadata.tags.1=b"));
  EXPECT_TRUE(Eval("empty="));
  EXPECT_FALSE(Eval("metadata=*"));  // an object has no text
  EXPECT_FALSE(Eval("missing=*"));
  EXPECT_NE(Error("info=a,9=b").find("expected a field name at 7"), std::string::npos);
  EXPECT_NE(Error("info=a,x.=b").find("at 9"), std::string::npos);
}

TEST(Selector, ExpressionComparisons) {
  EXPECT_TRUE(Eval("{info==\"user 42\" || metadata.user_id==42}"));
  EXPECT_TRUE(Eval("{info==\"user*\"}"));
  EXPECT_TRUE(Eval("{\"user ?2\"==info}"));   // the wildcard literal may be on either side
  EXPECT_FALSE(Eval("{info==\"user\\*\"}"));  // escaped: a literal star
  EXPECT_TRUE(Eval(R"({info!="x*"})"));
  EXPECT_TRUE(Eval("{id==42 && id!=43 && id<43 && id<=42 && id>41 && id>=42}"));
  EXPECT_FALSE(Eval("{id<42}"));
  EXPECT_TRUE(Eval("{expire>=1.7e9}"));
  EXPECT_TRUE(Eval("{id==42.0}"));
  EXPECT_FALSE(Eval("{id==\"42\"}"));  // types differ
  EXPECT_FALSE(Eval("{id<\"5\"}"));    // order only between like types
  EXPECT_TRUE(Eval("{info<\"user 5\" && info>\"user 1\"}"));
  EXPECT_TRUE(Eval("{enabled==true && enabled!=false}"));
  EXPECT_TRUE(Eval("{metadata.n==null && missing==null && info!=null}"));
  EXPECT_FALSE(Eval("{metadata==metadata}"));  // objects equal nothing
  EXPECT_TRUE(Eval("{metadata.x.y==\"deep\"}"));
  EXPECT_TRUE(Eval("{metadata.tags.0==\"a\"}"));
  EXPECT_FALSE(Eval("{metadata.tags.7==\"a\"}"));
}

TEST(Selector, ExpressionLogic) {
  EXPECT_TRUE(Eval("{enabled}"));
  EXPECT_FALSE(Eval("{!enabled}"));
  EXPECT_TRUE(Eval("{!!enabled}"));
  EXPECT_FALSE(Eval("{ttl}"));
  EXPECT_FALSE(Eval("{empty}"));
  EXPECT_TRUE(Eval("{metadata}"));
  EXPECT_FALSE(Eval("{missing}"));
  EXPECT_TRUE(Eval("{ ( ttl || enabled ) && !(id == 1) }"));
  EXPECT_FALSE(Eval("{ttl || !enabled || id == 1}"));
  // && binds tighter than ||.
  EXPECT_TRUE(Eval("{id==1 && ttl || enabled}"));
  EXPECT_FALSE(Eval("{id==1 && (ttl || enabled)}"));
  EXPECT_TRUE(Eval("%7Binfo%3D%3D%22user%2042%22%7D"));  // percent-encoded whole
}

TEST(Selector, ExpressionErrorsNameTheOffset) {
  EXPECT_EQ(Error("{(info==\"a\" || id==1"), "selector: expected ')' at 20");
  EXPECT_EQ(Error("{info==\"a\""), "selector: expected '}' at 10");
  EXPECT_EQ(Error("{}"), "selector: expected a field, string, number, true, false or null at 1");
  EXPECT_EQ(Error("{info=\"a\"}"), "selector: expected '==' (or '!=', '<', '<=', '>', '>=') at 5");
  EXPECT_EQ(Error("{info==\"a}"), "selector: unterminated string at 10");
  EXPECT_EQ(Error("{info==\"\\n\"}"), "selector: unknown escape (only \\\" \\\\ \\* \\?) at 8");
  EXPECT_EQ(Error("{id==1.}"), "selector: expected a digit at 7");
  EXPECT_EQ(Error("{id==1e999}"), "selector: number out of range at 5");
  EXPECT_EQ(Error("{id==12ab}"), "selector: unexpected character at 7");
  EXPECT_EQ(Error("{id==1} x"), "selector: unexpected text after '}' at 8");
  EXPECT_EQ(Error("{id==1 &&}"),
            "selector: expected a field, string, number, true, false or null at 9");
  EXPECT_EQ(Error("{a. b}"), "selector: expected a field name at 3");
}

TEST(Selector, DepthIsBounded) {
  std::string ok = "{" + std::string(kMaxDepth, '(') + "id==42" + std::string(kMaxDepth, ')') + "}";
  EXPECT_TRUE(Eval(ok));
  const std::string deep =
      "{" + std::string(kMaxDepth + 1, '(') + "id==42" + std::string(kMaxDepth + 1, ')') + "}";
  EXPECT_EQ(Error(deep), "selector: nesting deeper than 32 at 33");
  EXPECT_EQ(Error("{" + std::string(kMaxDepth + 1, '!') + "id}"),
            "selector: nesting deeper than 32 at 33");
  // Hostile but shallow: a long chain is one n-ary node, within the length limit.
  std::string chain = "{id==1";
  while (chain.size() < kMaxSelectorBytes - 16) chain += "||id==1";
  chain += "||id==42}";
  EXPECT_TRUE(Eval(chain));
  // The stack does not depend on the input: thousands of '(' stop at the limit.
  EXPECT_NE(Error("{" + std::string(4000, '(')).find("nesting deeper"), std::string::npos);
}

TEST(Selector, WildcardsBacktrackWithoutBlowingUp) {
  const std::string text(1000, 'a');
  const std::string json = R"({"info":")" + text + R"("})";
  EXPECT_TRUE(Eval("{info==\"*a*a*a*a*a*a*a*a*\"}", json.c_str()));
  EXPECT_FALSE(Eval("{info==\"*a*a*a*a*a*a*a*b\"}", json.c_str()));
  EXPECT_TRUE(Eval("info=*", json.c_str()));
}

TEST(Selector, CopiesShareTheParsedTree) {
  Selector a;
  std::string error;
  ASSERT_TRUE(Selector::Parse("{id==42}", Selector::IdKind::kTokenId, 10, &a, &error));
  const Selector b = a;  // NOLINT(performance-unnecessary-copy-initialization): the point
  JsonFields fields;
  ASSERT_TRUE(fields.Parse(kToken));
  EXPECT_TRUE(b.needs_fields());
  EXPECT_TRUE(b.Matches("", fields));
  const Selector ids = Selector::Ids({"x", "y"});
  EXPECT_TRUE(ids.Contains("y"));
  EXPECT_FALSE(ids.Contains("z"));
}

TEST(JsonFields, NotAnObjectReadsAsMissing) {
  JsonFields f;
  EXPECT_FALSE(f.Parse("[1]"));
  EXPECT_EQ(f.Get({"a"}).type, FieldValue::Type::kMissing);
  EXPECT_FALSE(f.Parse("{"));
  EXPECT_TRUE(f.Parse(R"({"a":{"b":[true]}})"));
  EXPECT_EQ(f.Get({"a", "b"}).type, FieldValue::Type::kComposite);
  EXPECT_EQ(f.Get({"a", "b", "0"}).type, FieldValue::Type::kBool);
  EXPECT_EQ(f.Get({"a", "b", "x"}).type, FieldValue::Type::kMissing);
  EXPECT_EQ(f.Get({"a", "b", "0", "c"}).type, FieldValue::Type::kMissing);
}

}  // namespace
}  // namespace ringmq::rest
