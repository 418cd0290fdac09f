#include "rest/token_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "rest/test_util.h"

namespace ringmq::rest {
namespace {

acl::Token Make(std::string info) {
  acl::Token t;
  EXPECT_TRUE(acl::GenerateTokenKey(&t.key));
  t.info = std::move(info);
  t.created = t.accessed = 100;
  return t;
}

TEST(TokenStore, PersistsEveryChange) {
  testing::TempDir dir;
  std::string error;
  StoreError e;
  {
    TokenStore store(dir.path() + "/sub/dir");
    ASSERT_TRUE(store.Open(&error)) << error;
    EXPECT_EQ(store.size(), 0u);
    std::vector<acl::Token> tokens = {Make("a"), Make("b"), Make("c")};
    ASSERT_TRUE(store.Insert(&tokens, &e)) << e.text;
    EXPECT_EQ(tokens[0].id, 1);
    EXPECT_EQ(tokens[2].id, 3);
    acl::Token b = tokens[1];
    b.info = "b2";
    ASSERT_TRUE(store.Update({b}, &e)) << e.text;
    ASSERT_TRUE(store.Erase({1, 99}, &e)) << e.text;
    store.Touch(3, 500);
    EXPECT_TRUE(store.dirty());
    struct stat st;
    ASSERT_EQ(stat((dir.path() + "/sub/dir/tokens.json").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  TokenStore store(dir.path() + "/sub/dir");
  ASSERT_TRUE(store.Open(&error)) << error;
  ASSERT_EQ(store.size(), 2u);
  EXPECT_EQ(store.FindById(1), nullptr);
  EXPECT_EQ(store.FindById(2)->info, "b2");
  EXPECT_EQ(store.FindById(3)->accessed, 100);  // Touch is not durable without Flush
  EXPECT_EQ(store.FindByKey(store.FindById(3)->key)->id, 3);
  EXPECT_EQ(store.next_id(), 4);  // ids are never reused
  std::vector<acl::Token> more = {Make("d")};
  ASSERT_TRUE(store.Insert(&more, &e));
  EXPECT_EQ(more[0].id, 4);
  store.Touch(3, 600);
  ASSERT_TRUE(store.Flush(&e));
  TokenStore again(dir.path() + "/sub/dir");
  ASSERT_TRUE(again.Open(&error));
  EXPECT_EQ(again.FindById(3)->accessed, 600);
}

TEST(TokenStore, RefusesDuplicateKeysAndUnknownIds) {
  testing::TempDir dir;
  std::string error;
  StoreError e;
  TokenStore store(dir.path());
  ASSERT_TRUE(store.Open(&error));
  std::vector<acl::Token> tokens = {Make("a")};
  ASSERT_TRUE(store.Insert(&tokens, &e));
  std::vector<acl::Token> dup = {tokens[0]};
  EXPECT_FALSE(store.Insert(&dup, &e));
  EXPECT_EQ(e.status, 409);
  acl::Token ghost = Make("ghost");
  ghost.id = 42;
  EXPECT_FALSE(store.Update({ghost}, &e));
  acl::Token rekeyed = tokens[0];
  rekeyed.key = std::string(20, 'k');
  EXPECT_FALSE(store.Update({rekeyed}, &e));
  EXPECT_EQ(store.size(), 1u);
}

TEST(TokenStore, FailedWriteChangesNothing) {
  testing::TempDir dir;
  std::string error;
  StoreError e;
  TokenStore store(dir.path());
  ASSERT_TRUE(store.Open(&error));
  // A directory where the temp file should go makes the write fail.
  ASSERT_EQ(mkdir((dir.path() + "/tokens.json.tmp").c_str(), 0700), 0);
  std::vector<acl::Token> tokens = {Make("a")};
  EXPECT_FALSE(store.Insert(&tokens, &e));
  EXPECT_NE(e.text.find("tokens.json.tmp"), std::string::npos) << e.text;
  EXPECT_EQ(e.status, 500);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.next_id(), 1);
}

TEST(TokenStore, CorruptFileIsAnError) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/tokens.json") << "{\"format\":1,\"next_id\":2,\"tokens\":[{";
  TokenStore store(dir.path());
  std::string error;
  EXPECT_FALSE(store.Open(&error));
  EXPECT_NE(error.find("malformed JSON"), std::string::npos) << error;
}

}  // namespace
}  // namespace ringmq::rest
