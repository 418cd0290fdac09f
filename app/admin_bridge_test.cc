// AdminBridge with a real broker and a real admin shard: a REST call whose shard tasks can no
// longer run (the shards stopped while the admin shard still serves) is answered 503 instead of
// hanging. Skips when io_uring is unavailable.
#include "broker/admin_bridge.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "broker/broker.h"
#include "broker/config.h"
#include "net/internal/test_util.h"
#include "rest/admin_server.h"

namespace ringmq::broker {
namespace {

// One request on a fresh connection; the status, or 0 when no answer came within 5 s.
int Status(uint16_t port, const std::string& method, const std::string& target,
           const std::string& key, const std::string& body = "") {
  const int fd = net::testing::ConnectTcp(port);
  if (fd < 0) return -1;
  timeval tv{5, 0};  // a call that never answers fails the test in 5 s
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string req = method + " " + target + " HTTP/1.1\r\nAuthorization: Bearer " + key +
                          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)!send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string in;
  char chunk[4096];
  while (in.size() < 12) {
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    in.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  return in.size() >= 12 ? std::atoi(in.substr(9, 3).c_str()) : 0;
}

TEST(AdminBridge, CallsToStoppedShardsAnswer503) {
  char tmpl[] = "/tmp/ringmq-bridge-test-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  Config config;
  config.listeners.push_back(Listener{Scheme::kMqtt, "127.0.0.1", 0, ""});
  config.shards = 2;
  config.data_dir = dir;
  config.sys_interval_s = 0;
  {
    Broker broker(config);
    AdminBridge bridge(broker);
    rest::AdminOptions options;
    options.port = 0;
    options.data_dir = dir;
    const std::string key(64, 'k');
    options.master_key = key;
    rest::AdminServer admin(std::move(options), &bridge);
    bridge.set_post_to_admin(
        [&admin](std::function<void()> fn) { return admin.Post(std::move(fn)); });
    std::string error;
    if (!broker.Start(&error)) {
      std::filesystem::remove_all(dir);
      if (error.find("io_uring") != std::string::npos) GTEST_SKIP() << error;
      FAIL() << error;
    }
    auto started = admin.Start(&error);
    ASSERT_TRUE(started.has_value()) << error;
    const uint16_t port = started->port;
    EXPECT_EQ(Status(port, "GET", "/mqtt/sessions/all", key), 200);

    broker.Stop();  // the shard loops end; the admin shard still serves
    EXPECT_EQ(Status(port, "GET", "/mqtt/sessions/all", key), 503);
    EXPECT_EQ(Status(port, "GET", "/mqtt/messages/%23", key), 503);
    EXPECT_EQ(Status(port, "POST", "/mqtt/messages", key, R"({"topic":"a"})"), 503);
    EXPECT_EQ(Status(port, "GET", "/metrics", key), 503);
    EXPECT_EQ(Status(port, "GET", "/healthz", key), 200);  // the admin shard itself is fine
    admin.Stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringmq::broker
