#include "acl/merge_patch.h"

#include <gtest/gtest.h>

namespace ringmq::acl {
namespace {

std::string Merged(std::string_view target, std::string_view patch) {
  std::string out;
  std::string error;
  EXPECT_TRUE(MergePatchObject(target, patch, &out, &error)) << error;
  return out;
}

TEST(MergePatch, KeysAreMergedAndNullRemoves) {
  EXPECT_EQ(Merged(R"({"a":1,"b":2})", R"({"b":3,"c":4})"), R"({"a":1,"b":3,"c":4})");
  EXPECT_EQ(Merged(R"({"a":1,"b":2})", R"({"a":null})"), R"({"b":2})");
  EXPECT_EQ(Merged(R"({"a":1})", R"({"zz":null})"), R"({"a":1})");
  EXPECT_EQ(Merged(R"({"a":1})", R"({})"), R"({"a":1})");
  EXPECT_EQ(Merged("", R"({"a":1,"b":null})"), R"({"a":1})");
}

TEST(MergePatch, NestedObjectsMergeOtherValuesReplace) {
  EXPECT_EQ(Merged(R"({"a":{"b":1,"c":2}})", R"({"a":{"c":null,"d":[1,2]}})"),
            R"({"a":{"b":1,"d":[1,2]}})");
  // An array or a scalar is replaced as a whole, and an object replaces a scalar.
  EXPECT_EQ(Merged(R"({"a":[1,2,3]})", R"({"a":[4]})"), R"({"a":[4]})");
  EXPECT_EQ(Merged(R"({"a":5})", R"({"a":{"x":null,"y":1}})"), R"({"a":{"y":1}})");
  EXPECT_EQ(Merged(R"({"a":{"x":1}})", R"({"a":"s"})"), R"({"a":"s"})");
}

// RFC 7386 appendix A examples that apply to objects.
TEST(MergePatch, Rfc7386Examples) {
  EXPECT_EQ(Merged(R"({"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},)"
                   R"("tags":["example","sample"],"content":"This will be unchanged"})",
                   R"({"title":"Hello!","phoneNumber":"+01-123-456-7890",)"
                   R"("author":{"familyName":null},"tags":["example"]})"),
            R"({"title":"Hello!","author":{"givenName":"John"},"tags":["example"],)"
            R"("content":"This will be unchanged","phoneNumber":"+01-123-456-7890"})");
  EXPECT_EQ(Merged(R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})"), R"({"a":{"b":"d"}})");
}

TEST(MergePatch, KeysKeepTheirEscapes) {
  EXPECT_EQ(Merged(R"({"q\"k":1})", R"({"n\\k":"v\n"})"), R"({"q\"k":1,"n\\k":"v\n"})");
}

TEST(MergePatch, RefusesWhatIsNotAnObject) {
  std::string out;
  std::string error;
  EXPECT_FALSE(MergePatchObject(R"({"a":1})", "[1]", &out, &error));
  EXPECT_FALSE(MergePatchObject("[1]", R"({"a":1})", &out, &error));
}

}  // namespace
}  // namespace ringmq::acl
