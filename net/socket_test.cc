#include "net/socket.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <string>

#include "net/internal/test_util.h"

namespace ringmq::net {
namespace {

struct Valid {
  const char* text;
  const char* host;
  uint16_t port;
};

TEST(ParseEndpoint, AcceptsHostPortAndBracketedIpv6) {
  const Valid cases[] = {
      {"127.0.0.1:1883", "127.0.0.1", 1883},
      {"0.0.0.0:65535", "0.0.0.0", 65535},
      {"localhost:0", "localhost", 0},
      {"mqtt-1.example_host.com:8883", "mqtt-1.example_host.com", 8883},
      {":1883", "", 1883},
      {"[::1]:8883", "::1", 8883},
      {"[::]:1", "::", 1},
      {"[fe80::1%eth0]:1883", "fe80::1%eth0", 1883},
      {"[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80},
      {"127.0.0.1:00080", "127.0.0.1", 80},
  };
  for (const Valid& v : cases) {
    std::string error;
    const std::optional<Endpoint> ep = ParseEndpoint(v.text, &error);
    ASSERT_TRUE(ep.has_value()) << v.text << ": " << error;
    EXPECT_EQ(ep->host, v.host) << v.text;
    EXPECT_EQ(ep->port, v.port) << v.text;
  }
}

TEST(ParseEndpoint, RejectsMalformedText) {
  const char* cases[] = {
      "",
      "1883",
      "127.0.0.1",
      "127.0.0.1:",
      "127.0.0.1:65536",
      "127.0.0.1:-1",
      "127.0.0.1:+1",
      "127.0.0.1:abc",
      "127.0.0.1:18 83",
      "127.0.0.1:1883 ",
      "::1:1883",
      "[::1]1883",
      "[::1]",
      "[::1",
      "[]:1883",
      "[not-v6]:1",
      "[127.0.0.1]:1",
      "a b:1",
      "host/x:1",
      "[::1]:99999",
      "127.0.0.1:123456",
  };
  for (const char* text : cases) {
    std::string error;
    EXPECT_FALSE(ParseEndpoint(text, &error).has_value()) << "'" << text << "' was accepted";
    EXPECT_NE(error.find("bad endpoint"), std::string::npos) << text;
  }
}

TEST(ParseEndpoint, FormatIsTheInverse) {
  for (const char* text : {"127.0.0.1:1883", "[::1]:8883", "localhost:0", "[fe80::1%lo]:1"}) {
    std::string error;
    const std::optional<Endpoint> ep = ParseEndpoint(text, &error);
    ASSERT_TRUE(ep.has_value()) << error;
    EXPECT_EQ(FormatEndpoint(*ep), text);
  }
}

TEST(ListenTcp, PortZeroThenReusePortForEveryShard) {
  std::string error;
  const int first = ListenTcp("127.0.0.1", 0, &error);
  ASSERT_GE(first, 0) << error;
  const uint16_t port = LocalPort(first);
  ASSERT_NE(port, 0);
  EXPECT_EQ(LocalAddress(first), "127.0.0.1:" + std::to_string(port));
  const int second = ListenTcp("127.0.0.1", port, &error);  // SO_REUSEPORT: a second shard
  ASSERT_GE(second, 0) << error;
  EXPECT_EQ(LocalPort(second), port);

  const int client = testing::ConnectTcp(port);
  ASSERT_GE(client, 0);
  EXPECT_EQ(PeerAddress(client), "127.0.0.1:" + std::to_string(port));
  close(client);
  close(first);
  close(second);
}

TEST(ListenTcp, Ipv6Loopback) {
  std::string error;
  const int fd = ListenTcp("::1", 0, &error);
  if (fd < 0) GTEST_SKIP() << "no IPv6 loopback here: " << error;
  EXPECT_EQ(LocalAddress(fd), "[::1]:" + std::to_string(LocalPort(fd)));
  close(fd);
}

TEST(ListenTcp, FailsWithAReadableError) {
  std::string error;
  EXPECT_LT(ListenTcp("no-such-host.invalid", 0, &error), 0);
  EXPECT_NE(error.find("no-such-host.invalid"), std::string::npos) << error;
  error.clear();
  EXPECT_LT(ListenTcp("192.0.2.1", 0, &error), 0);  // TEST-NET-1: not an address of this host
  EXPECT_NE(error.find("cannot listen on 192.0.2.1:0"), std::string::npos) << error;
}

TEST(SetSocketOptions, SetsNoDelayAndBufferSizes) {
  testing::TcpPair pair;
  std::string error;
  ASSERT_TRUE(testing::MakeTcpPair(&pair, &error)) << error;
  ASSERT_TRUE(SetSocketOptions(pair.server, 16384, 32768));
  int value = 0;
  socklen_t len = sizeof(value);
  ASSERT_EQ(getsockopt(pair.server, IPPROTO_TCP, TCP_NODELAY, &value, &len), 0);
  EXPECT_NE(value, 0);
  ASSERT_EQ(getsockopt(pair.server, SOL_SOCKET, SO_SNDBUF, &value, &len), 0);
  EXPECT_EQ(value, 2 * 16384);  // the kernel doubles it for bookkeeping
  ASSERT_EQ(getsockopt(pair.server, SOL_SOCKET, SO_RCVBUF, &value, &len), 0);
  EXPECT_EQ(value, 2 * 32768);
  EXPECT_FALSE(SetSocketOptions(-1, 0, 0));
}

TEST(FormatAddress, UnknownFamilyIsAQuestionMark) {
  sockaddr sa{};
  sa.sa_family = AF_UNIX;
  EXPECT_EQ(FormatAddress(&sa, sizeof(sa)), "?");
  EXPECT_EQ(PeerAddress(-1), "?");
}

}  // namespace
}  // namespace ringmq::net
