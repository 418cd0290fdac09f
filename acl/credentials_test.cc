#include "acl/credentials.h"

#include <gtest/gtest.h>

#include "acl/acl_cache.h"

namespace ringmq::acl {
namespace {

using Sv = std::optional<std::string_view>;

constexpr std::string_view kKey =
    "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzAB";

TEST(Credentials, KeyInUserNameBareOrFlespiTokenPasswordIgnored) {
  Credentials c = CredentialsFromConnect(Sv(kKey), Sv("whatever"));
  EXPECT_EQ(c.token_id, 0);
  EXPECT_EQ(c.secret, kKey);
  c = CredentialsFromConnect(Sv("FlespiToken " + std::string(kKey)), std::nullopt);
  EXPECT_EQ(c.secret, kKey);
}

TEST(Credentials, KeyInPasswordWithEmptyOrNoUserName) {
  EXPECT_EQ(CredentialsFromConnect(Sv(""), Sv(kKey)).secret, kKey);
  EXPECT_EQ(CredentialsFromConnect(std::nullopt, Sv(kKey)).secret, kKey);
  EXPECT_TRUE(CredentialsFromConnect(std::nullopt, std::nullopt).empty());
  EXPECT_TRUE(CredentialsFromConnect(Sv(""), Sv("")).empty());
}

TEST(Credentials, TokenIdAsUserNameWithAPassword) {
  Credentials c = CredentialsFromConnect(Sv("42"), Sv(kKey.substr(0, 16)));
  EXPECT_EQ(c.token_id, 42);
  EXPECT_EQ(c.secret, kKey.substr(0, 16));
  EXPECT_EQ(CredentialsFromConnect(Sv("FlespiToken 7"), Sv("x")).token_id, 7);
  // Without a password, or with 16+ digits (a key's length), or 0, the user name is a key.
  EXPECT_EQ(CredentialsFromConnect(Sv("42"), std::nullopt).token_id, 0);
  EXPECT_EQ(CredentialsFromConnect(Sv("1234567890123456"), Sv("p")).token_id, 0);
  EXPECT_EQ(CredentialsFromConnect(Sv("0"), Sv("p")).token_id, 0);
  EXPECT_EQ(CredentialsFromConnect(Sv("4a"), Sv("p")).token_id, 0);
}

TEST(Credentials, KeyPrefixMatchesExactlySixteenCharacters) {
  EXPECT_TRUE(KeyPrefixMatches(kKey, kKey.substr(0, 16)));
  EXPECT_FALSE(KeyPrefixMatches(kKey, kKey.substr(0, 15)));
  EXPECT_FALSE(KeyPrefixMatches(kKey, kKey.substr(0, 17)));
  EXPECT_FALSE(KeyPrefixMatches(kKey, kKey));
  EXPECT_FALSE(KeyPrefixMatches(kKey, kKey.substr(1, 16)));
  EXPECT_FALSE(KeyPrefixMatches("short", "short"));
  std::string wrong_last(kKey.substr(0, 16));
  wrong_last.back() = 'x';
  EXPECT_FALSE(KeyPrefixMatches(kKey, wrong_last));
}

TEST(Credentials, DigestsDifferPerKey) {
  EXPECT_EQ(DigestKey(kKey), DigestKey(std::string(kKey)));
  EXPECT_NE(DigestKey(kKey), DigestKey(kKey.substr(1)));
}

AclPtr AclOf(int64_t id, uint64_t version) {
  Token t;
  t.id = id;
  return CompiledAcl::Compile(t, version);
}

TEST(AclCacheIdLogin, FindsByIdAndPrefixAndForgetsOnInvalidate) {
  AclCache cache;
  const std::string key(kKey);
  ASSERT_TRUE(cache.Put(key, AclOf(5, 1)));
  std::string found;
  AclPtr a = cache.FindByIdLogin(5, key.substr(0, 16), &found);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(found, key);
  EXPECT_EQ(cache.FindByIdLogin(5, "wrong-prefix-xxx", &found), nullptr);
  EXPECT_EQ(cache.FindByIdLogin(6, key.substr(0, 16), &found), nullptr);
  EXPECT_NE(cache.Find(key), nullptr);
  EXPECT_TRUE(cache.Invalidate(key));
  EXPECT_EQ(cache.FindByIdLogin(5, key.substr(0, 16), &found), nullptr);
  EXPECT_EQ(cache.Find(key), nullptr);
}

TEST(AclCacheIdLogin, ALoginByIdFindsTheKeyCachedLast) {
  AclCache cache;
  const std::string old_key(kKey);
  const std::string new_key = "Z" + old_key.substr(1);
  ASSERT_TRUE(cache.Put(old_key, AclOf(5, 1)));
  ASSERT_TRUE(cache.Put(new_key, AclOf(5, 2)));
  std::string found;
  ASSERT_NE(cache.FindByIdLogin(5, new_key.substr(0, 16), &found), nullptr);
  EXPECT_EQ(found, new_key);
  EXPECT_EQ(cache.FindByIdLogin(5, old_key.substr(0, 16), &found), nullptr);
  EXPECT_TRUE(cache.Invalidate(old_key));  // does not unlink the id from the newer key
  EXPECT_NE(cache.FindByIdLogin(5, new_key.substr(0, 16), &found), nullptr);
}

TEST(AclCacheIdLogin, EvictionKeepsBothIndexesTogether) {
  AclCache cache(2);
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) {
    keys.push_back(std::string(1, static_cast<char>('a' + i)) + std::string(kKey.substr(1)));
    ASSERT_TRUE(cache.Put(keys.back(), AclOf(i + 1, 1)));
  }
  EXPECT_EQ(cache.size(), 2u);
  int by_id = 0;
  for (int i = 0; i < 5; ++i) {
    std::string found;
    const AclPtr a = cache.FindByIdLogin(i + 1, keys[static_cast<size_t>(i)].substr(0, 16), &found);
    EXPECT_EQ(a != nullptr, cache.Find(keys[static_cast<size_t>(i)]) != nullptr);
    by_id += a != nullptr;
  }
  EXPECT_EQ(by_id, 2);
}

}  // namespace
}  // namespace ringmq::acl
