#include "acl/origin.h"

#include <gtest/gtest.h>

namespace ringmq::acl {
namespace {

IpPrefix Prefix(const char* text) {
  IpPrefix p;
  std::string error;
  EXPECT_TRUE(ParseIpPrefix(text, &p, &error)) << text << ": " << error;
  return p;
}

std::string Error(const char* text) {
  IpPrefix p;
  std::string error;
  EXPECT_FALSE(ParseIpPrefix(text, &p, &error)) << text;
  return error;
}

TEST(Origin, Ipv4PrefixContainsItsAddressesOnly) {
  const IpPrefix p = Prefix("10.1.0.0/16");
  EXPECT_TRUE(p.Contains(*ParseIpAddress("10.1.255.7")));
  EXPECT_FALSE(p.Contains(*ParseIpAddress("10.2.0.1")));
  EXPECT_FALSE(p.Contains(*ParseIpAddress("::1")));
  const IpPrefix host = Prefix("192.0.2.7");
  EXPECT_TRUE(host.Contains(*ParseIpAddress("192.0.2.7")));
  EXPECT_FALSE(host.Contains(*ParseIpAddress("192.0.2.8")));
  EXPECT_TRUE(Prefix("0.0.0.0/0").Contains(*ParseIpAddress("203.0.113.1")));
  EXPECT_FALSE(Prefix("0.0.0.0/0").Contains(*ParseIpAddress("2001:db8::1")));
  EXPECT_TRUE(Prefix("10.0.0.0/9").Contains(*ParseIpAddress("10.127.0.1")));
  EXPECT_FALSE(Prefix("10.0.0.0/9").Contains(*ParseIpAddress("10.128.0.1")));
}

TEST(Origin, Ipv6AndMappedIpv4) {
  const IpPrefix p = Prefix("2001:db8::/32");
  EXPECT_TRUE(p.Contains(*ParseIpAddress("2001:db8:1::5")));
  EXPECT_FALSE(p.Contains(*ParseIpAddress("2001:db9::5")));
  // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d: the IPv4 prefix holds it.
  EXPECT_TRUE(Prefix("127.0.0.0/8").Contains(*ParseIpAddress("::ffff:127.0.0.1")));
  EXPECT_EQ(Prefix("::ffff:10.0.0.0/104"), Prefix("10.0.0.0/8"));
}

TEST(Origin, BadPrefixesAreRefusedWithAReason) {
  EXPECT_NE(Error("").find("is not an IPv4 or IPv6 address"), std::string::npos);
  EXPECT_NE(Error("example.com").find("is not an IPv4 or IPv6 address"), std::string::npos);
  EXPECT_NE(Error("10.0.0.256").find("is not an IPv4"), std::string::npos);
  EXPECT_NE(Error("10.0.0.0/33").find("must be 0 to 32"), std::string::npos);
  EXPECT_NE(Error("::/129").find("must be 0 to 128"), std::string::npos);
  EXPECT_NE(Error("10.0.0.0/").find("must be 0 to 32"), std::string::npos);
  EXPECT_NE(Error("10.0.0.0/8x").find("must be 0 to 32"), std::string::npos);
  EXPECT_NE(Error("10.0.0.0/-1").find("must be 0 to 32"), std::string::npos);
  EXPECT_NE(Error("10.1.2.3/8").find("bits set past its prefix"), std::string::npos);
  EXPECT_NE(Error("[::1]").find("is not an IPv4"), std::string::npos);
  EXPECT_NE(Error("10.0.0.1:80").find("is not an IPv4"), std::string::npos);
}

TEST(Origin, PeerAddressesAsConnectionsWriteThem) {
  EXPECT_EQ(ParsePeerAddress("127.0.0.1:51234"), ParseIpAddress("127.0.0.1"));
  EXPECT_EQ(ParsePeerAddress("[::1]:51234"), ParseIpAddress("::1"));
  EXPECT_EQ(ParsePeerAddress("::1"), ParseIpAddress("::1"));
  EXPECT_EQ(ParsePeerAddress("10.0.0.1"), ParseIpAddress("10.0.0.1"));
  EXPECT_FALSE(ParsePeerAddress("?").has_value());
  EXPECT_FALSE(ParsePeerAddress("").has_value());
  EXPECT_FALSE(ParsePeerAddress("[::1").has_value());
}

TEST(Origin, OriginsAllowOnlyListedPeers) {
  const std::vector<IpPrefix> none;
  EXPECT_TRUE(OriginsAllow(none, "?"));  // no origins: no restriction
  const std::vector<IpPrefix> local = {Prefix("127.0.0.0/8"), Prefix("::1")};
  EXPECT_TRUE(OriginsAllow(local, "127.0.0.1:1"));
  EXPECT_TRUE(OriginsAllow(local, "[::1]:1"));
  EXPECT_FALSE(OriginsAllow(local, "192.0.2.1:1"));
  EXPECT_FALSE(OriginsAllow(local, "?"));  // unknown address under a restriction
  const std::vector<Origin> stored = {{"192.0.2.0/24", false}, {"2001:db8::/32", true}};
  EXPECT_TRUE(OriginsAllow(stored, "192.0.2.9"));
  EXPECT_TRUE(OriginsAllow(stored, "2001:db8::1"));
  EXPECT_FALSE(OriginsAllow(stored, "127.0.0.1"));
  EXPECT_FALSE(OriginsAllow(std::vector<Origin>{{"junk", false}}, "127.0.0.1"));
}

}  // namespace
}  // namespace ringmq::acl
