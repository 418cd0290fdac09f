// The admin shard over a real socket on 127.0.0.1 (ephemeral port): raw HTTP/1.1 bytes in,
// responses parsed by hand. Skips (exit code 77 semantics via GTEST_SKIP) when io_uring is
// unavailable.
#include "rest/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rest/test_util.h"

namespace ringmq::rest {
namespace {

using testing::FakeHooks;
using testing::TempDir;

int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

struct Response {
  int status = 0;
  std::string head;
  std::string body;
};

// Reads one response (Content-Length framed) from fd, using *buffer for bytes read ahead.
// status 0: the connection closed (or timed out) first.
Response ReadResponse(int fd, std::string* buffer) {
  Response r;
  for (;;) {
    const size_t end = buffer->find("\r\n\r\n");
    if (end != std::string::npos) {
      r.head = buffer->substr(0, end);
      size_t length = 0;
      const size_t cl = r.head.find("Content-Length: ");
      if (cl != std::string::npos) length = std::stoul(r.head.substr(cl + 16));
      if (buffer->size() >= end + 4 + length) {
        r.status = std::stoi(r.head.substr(9, 3));
        r.body = buffer->substr(end + 4, length);
        buffer->erase(0, end + 4 + length);
        return r;
      }
    }
    char chunk[65536];
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return Response{};
    buffer->append(chunk, static_cast<size_t>(n));
  }
}

bool PeerClosed(int fd) {
  char c;
  const ssize_t n = recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

class AdminServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpLimits limits = HttpLimits{}, int64_t tick_ms = 1000) {
    AdminOptions o;
    o.tick_ms = tick_ms;
    o.on_event = [this](std::string_view what) {
      std::lock_guard<std::mutex> lock(seen_mu_);
      events_.push_back(std::string(what));
    };
    o.host = "127.0.0.1";
    o.port = 0;
    o.data_dir = dir_.path();
    o.limits = limits;
    o.master_key = master_key_;
    o.on_request = [this](std::string_view method, std::string_view path, int status) {
      std::lock_guard<std::mutex> lock(seen_mu_);
      seen_.push_back(std::string(method) + " " + std::string(path) + " " + std::to_string(status));
    };
    server_ = std::make_unique<AdminServer>(std::move(o), &hooks_);
    std::string error;
    auto info = server_->Start(&error);
    if (!info && error.find("io_uring") != std::string::npos) GTEST_SKIP() << error;
    ASSERT_TRUE(info.has_value()) << error;
    port_ = info->port;
    address_ = info->address;
    if (!info->generated_master_key.empty()) master_ = info->generated_master_key;
  }

  // One request on a fresh connection.
  Response Request(const std::string& method, const std::string& target,
                   const std::string& body = "", bool auth = true) {
    const int fd = Connect(port_);
    EXPECT_GE(fd, 0);
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
    if (auth) req += "Authorization: FlespiToken " + master_ + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    SendAll(fd, req);
    std::string buffer;
    Response r = ReadResponse(fd, &buffer);
    close(fd);
    return r;
  }

  TempDir dir_;
  FakeHooks hooks_;
  std::unique_ptr<AdminServer> server_;
  std::string master_key_;
  std::string master_;
  uint16_t port_ = 0;
  std::string address_;
  std::mutex seen_mu_;
  std::vector<std::string> seen_;    // what on_request reported: "METHOD PATH STATUS"
  std::vector<std::string> events_;  // what on_event reported
};

TEST_F(AdminServerTest, FirstStartCreatesAMasterTokenAndPersistsAcrossRestarts) {
  StartServer();
  ASSERT_FALSE(master_.empty());
  EXPECT_EQ(address_, "127.0.0.1:" + std::to_string(port_));
  Response r =
      Request("POST", "/platform/tokens?fields=id,info", R"({"info":"survivor","ttl":3600})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"result":[{"id":2,"info":"survivor"}]})");
  server_->Stop();
  server_.reset();

  const std::string old_master = master_;
  master_.clear();
  StartServer();  // same data dir
  EXPECT_TRUE(master_.empty()) << "a second master token was generated";
  master_ = old_master;
  r = Request("GET", "/platform/tokens/all?fields=id,info");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"x({"result":[{"id":1,"info":"master (created at first start)"},)x"
                    R"({"id":2,"info":"survivor"}]})");
  // The first master token is the broker's own bootstrap credential: neither ttl nor expire
  // (doc/rest-api.md, The first master token), and its key is flespi's alphabet.
  r = Request("GET", "/platform/tokens/1?fields=key,ttl,expire");
  EXPECT_EQ(r.body, R"({"result":[{"key":")" + master_ + R"(","expire":0,"ttl":0}]})");
  EXPECT_EQ(master_.size(), 64u);
  EXPECT_EQ(
      master_.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
      std::string::npos);
}

TEST_F(AdminServerTest, MasterKeyFromTheEnvironment) {
  master_key_ = "operator-chosen-key-0123456789";
  StartServer();
  EXPECT_TRUE(master_.empty());  // nothing generated: the operator knows the key
  master_ = master_key_;
  EXPECT_EQ(Request("GET", "/platform/tokens/all").status, 200);
}

TEST_F(AdminServerTest, KeepAliveAndPipelining) {
  StartServer();
  admin_api::SessionInfo session;
  session.client_id = "c1";
  hooks_.sessions.push_back(session);
  const int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  const std::string auth = "Authorization: Bearer " + master_ + "\r\n";
  std::string pipelined;
  for (int i = 0; i < 5; ++i) {
    pipelined += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    pipelined += "GET /mqtt/sessions/all HTTP/1.1\r\n" + auth + "\r\n";
    const std::string body = "{\"info\":\"p" + std::to_string(i) + "\",\"ttl\":60}";
    pipelined += "POST /platform/tokens?fields=info HTTP/1.1\r\n";
    pipelined += auth;
    pipelined += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    pipelined += body;
  }
  // Send in small pieces: the parser must cope with any split.
  const std::string_view all = pipelined;
  for (size_t i = 0; i < all.size(); i += 7) {
    SendAll(fd, all.substr(i, 7));
  }
  std::string buffer;
  for (int i = 0; i < 5; ++i) {
    Response r = ReadResponse(fd, &buffer);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"result":[{"status":"ok"}]})");
    r = ReadResponse(fd, &buffer);
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"client_id\":\"c1\""), std::string::npos) << r.body;
    r = ReadResponse(fd, &buffer);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"result\":[{\"info\":\"p" + std::to_string(i) + "\"}]}");
  }
  // Still open: one more request on the same connection.
  SendAll(fd, "GET /healthz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ReadResponse(fd, &buffer).status, 200);
  // Connection: close is honoured.
  SendAll(fd, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
  Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(buffer.empty());
  EXPECT_TRUE(PeerClosed(fd));
  close(fd);
}

TEST_F(AdminServerTest, AsynchronousAnswersKeepRequestOrder) {
  StartServer();
  hooks_.defer = true;  // the fake core answers later, through Post, in reverse order
  const int fd = Connect(port_);
  const std::string auth = "Authorization: Bearer " + master_ + "\r\n";
  SendAll(fd, "GET /mqtt/sessions/all HTTP/1.1\r\n" + auth + "\r\n" + "GET /metrics HTTP/1.1\r\n" +
                  auth + "\r\n" + "GET /healthz HTTP/1.1\r\n\r\n");
  // Wait until both hook calls arrived, then answer them from another thread via Post.
  std::vector<std::function<void()>> calls;
  for (int i = 0; i < 200 && calls.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    server_->Post([&] {
      for (auto& f : hooks_.deferred) calls.push_back(std::move(f));
      hooks_.deferred.clear();
    });
  }
  ASSERT_EQ(calls.size(), 2u);
  ASSERT_TRUE(server_->Post([&] { calls[1](); }));
  ASSERT_TRUE(server_->Post([&] { calls[0](); }));
  std::string buffer;
  Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("result"), std::string::npos);
  r = ReadResponse(fd, &buffer);
  EXPECT_NE(r.body.find("ringmq_tokens"), std::string::npos) << r.body;
  r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.body, R"({"result":[{"status":"ok"}]})");
  close(fd);
}

TEST_F(AdminServerTest, BadRequestsAndLimits) {
  HttpLimits limits;
  limits.max_body_bytes = 1024;
  limits.max_header_bytes = 2048;
  limits.max_connections = 4;
  StartServer(limits);

  // Garbage: 400 and closed.
  int fd = Connect(port_);
  SendAll(fd, "THIS IS NOT HTTP\r\n\r\n");
  std::string buffer;
  Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("malformed HTTP request"), std::string::npos) << r.body;
  EXPECT_TRUE(PeerClosed(fd));
  close(fd);

  // Body over the limit: 413 from Content-Length alone, before the body arrives.
  fd = Connect(port_);
  SendAll(fd, "POST /platform/tokens HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
  buffer.clear();
  EXPECT_EQ(ReadResponse(fd, &buffer).status, 413);
  close(fd);

  // Chunked body over the limit: 413 as well.
  fd = Connect(port_);
  SendAll(fd,
          "POST /platform/tokens HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          "800\r\n" +
              std::string(0x800, 'x') + "\r\n0\r\n\r\n");
  buffer.clear();
  EXPECT_EQ(ReadResponse(fd, &buffer).status, 413);
  close(fd);

  // Headers over the limit: 431.
  fd = Connect(port_);
  SendAll(fd, "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  buffer.clear();
  EXPECT_EQ(ReadResponse(fd, &buffer).status, 431);
  close(fd);

  // Auth failures.
  EXPECT_EQ(Request("GET", "/platform/tokens/all", "", false).status, 401);
  master_ = "wrong-key-wrong-key-wrong-key";
  EXPECT_EQ(Request("GET", "/platform/tokens/all").status, 401);

  // Connection limit: a fifth connection closes the oldest stalled one (the first, idle since
  // its accept); the others still work.
  std::vector<int> fds;
  fds.reserve(4);
  for (int i = 0; i < 4; ++i) fds.push_back(Connect(port_));
  const int extra = Connect(port_);
  EXPECT_TRUE(PeerClosed(fds[0]));
  SendAll(extra, "GET /healthz HTTP/1.1\r\n\r\n");
  buffer.clear();
  EXPECT_EQ(ReadResponse(extra, &buffer).status, 200);
  close(extra);
  SendAll(fds[1], "GET /healthz HTTP/1.1\r\n\r\n");
  buffer.clear();
  EXPECT_EQ(ReadResponse(fds[1], &buffer).status, 200);
  for (int f : fds) close(f);

  // Random bytes never crash the server.
  uint32_t x = 12345;
  for (int round = 0; round < 20; ++round) {
    fd = Connect(port_);
    ASSERT_GE(fd, 0);
    std::string junk = round % 2 ? "GET / HTTP/1.1\r\n" : "";
    for (int i = 0; i < 300; ++i) {
      x = x * 1103515245 + 12345;
      junk.push_back(static_cast<char>(x >> 16));
    }
    SendAll(fd, junk);
    close(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(Request("GET", "/healthz", "", false).status, 200);
}

TEST_F(AdminServerTest, ExpectContinue) {
  StartServer();
  const int fd = Connect(port_);
  SendAll(fd, "POST /platform/tokens?fields=info HTTP/1.1\r\nAuthorization: Bearer " + master_ +
                  "\r\nExpect: 100-continue\r\nContent-Length: 21\r\n\r\n");
  std::string buffer;
  char chunk[256];
  const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(chunk, static_cast<size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  SendAll(fd, R"({"info":"e","ttl":60})");
  Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"result":[{"info":"e"}]})");
  close(fd);
}

TEST_F(AdminServerTest, ExpectContinueIsAnsweredOnlyForAnAuthorizedRequest) {
  StartServer();
  // No Authorization: the final answer (401) instead of 100 Continue, and the body is not read.
  int fd = Connect(port_);
  SendAll(fd,
          "POST /platform/tokens HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\n");
  std::string buffer;
  Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 401) << r.head;
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos) << r.head;
  EXPECT_TRUE(PeerClosed(fd));
  close(fd);
  // An unknown token: 401, no 100 Continue either.
  fd = Connect(port_);
  SendAll(fd,
          "POST /platform/tokens HTTP/1.1\r\nAuthorization: Bearer nosuchkey\r\n"
          "Expect: 100-continue\r\nContent-Length: 12\r\n\r\n");
  buffer.clear();
  EXPECT_EQ(ReadResponse(fd, &buffer).status, 401);
  close(fd);
}

// An Upgrade request used to be carried out and then answered 400 as well: it gets one answer.
TEST_F(AdminServerTest, UpgradeRequestIsRefusedAndNotCarriedOut) {
  StartServer();
  const int fd = Connect(port_);
  SendAll(fd, "POST /platform/tokens HTTP/1.1\r\nAuthorization: Bearer " + master_ +
                  "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n{}");
  std::string buffer;
  const Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("protocol upgrade not supported"), std::string::npos) << r.body;
  EXPECT_TRUE(PeerClosed(fd));
  close(fd);
  const Response all = Request("GET", "/platform/tokens/all?fields=id");
  EXPECT_EQ(all.body, R"({"result":[{"id":1}]})");  // nothing was created
}

TEST_F(AdminServerTest, DuplicateAuthorizationHeaderIsRefused) {
  StartServer();
  const int fd = Connect(port_);
  SendAll(fd,
          "GET /platform/tokens/all HTTP/1.1\r\nAuthorization: Bearer nosuchkey\r\n"
          "Authorization: Bearer " +
              master_ + "\r\n\r\n");
  std::string buffer;
  const Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("duplicate Authorization header"), std::string::npos) << r.body;
  EXPECT_TRUE(PeerClosed(fd));
  close(fd);
  // One header (any case) is fine.
  const int ok = Connect(port_);
  SendAll(ok, "GET /platform/tokens/all HTTP/1.1\r\nauthorization: Bearer " + master_ + "\r\n\r\n");
  buffer.clear();
  EXPECT_EQ(ReadResponse(ok, &buffer).status, 200);
  close(ok);
}

// Slowloris: more half-sent requests than the connection limit must not lock the operator out.
TEST_F(AdminServerTest, HalfSentRequestsDoNotLockOutTheOperator) {
  HttpLimits limits;
  limits.max_connections = 8;
  StartServer(limits);
  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(Connect(port_));
    ASSERT_GE(slow.back(), 0);
    SendAll(slow.back(), "GET /platform/tokens/all HTTP/1.1\r\nHost: x\r\nX-Slow: aaa");
  }
  const Response r = Request("GET", "/platform/tokens/all?fields=id");
  EXPECT_EQ(r.status, 200) << r.body;
  // The oldest half-sent requests made room; the newest are still open.
  EXPECT_TRUE(PeerClosed(slow.front()));
  for (int fd : slow) close(fd);
  server_->Stop();
  std::lock_guard<std::mutex> lock(seen_mu_);
  EXPECT_TRUE(std::any_of(events_.begin(), events_.end(), [](const std::string& e) {
    return e.find("closed: the oldest stalled connection") != std::string::npos;
  }));
}

TEST_F(AdminServerTest, TricklingHeadIsCutAtItsDeadline) {
  HttpLimits limits;
  limits.header_timeout_ms = 300;
  StartServer(limits, /*tick_ms=*/50);
  const int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  SendAll(fd, "GET /healthz HTTP/1.1\r\n");
  // One byte every 50 ms: each would have reset an idle timer.
  const std::string trickle = "X-Slow: " + std::string(200, 'a');
  const auto start = std::chrono::steady_clock::now();
  std::string buffer;
  char chunk[4096];
  for (size_t i = 0; i < trickle.size(); ++i) {
    SendAll(fd, trickle.substr(i, 1));
    const ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      buffer.append(chunk, static_cast<size_t>(n));
      break;
    }
    if (n == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const Response r = ReadResponse(fd, &buffer);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 408) << r.head;
  EXPECT_NE(r.body.find("request head not complete within 300 ms"), std::string::npos) << r.body;
  EXPECT_LT(waited, std::chrono::seconds(3));
  EXPECT_TRUE(PeerClosed(fd));
  close(fd);
  // A connection that sends nothing is cut as well, and a prompt one is served.
  const int silent = Connect(port_);
  buffer.clear();
  EXPECT_EQ(ReadResponse(silent, &buffer).status, 408);
  close(silent);
  EXPECT_EQ(Request("GET", "/healthz").status, 200);
  server_->Stop();
  std::lock_guard<std::mutex> lock(seen_mu_);
  EXPECT_TRUE(std::any_of(events_.begin(), events_.end(), [](const std::string& e) {
    return e.find("REST connection from 127.0.0.1 timed out: request head") != std::string::npos;
  }));
}

TEST_F(AdminServerTest, SlowBodyIsCutAtItsDeadline) {
  HttpLimits limits;
  limits.body_timeout_ms = 300;
  StartServer(limits, /*tick_ms=*/50);
  const int fd = Connect(port_);
  SendAll(fd, "POST /platform/tokens HTTP/1.1\r\nAuthorization: Bearer " + master_ +
                  "\r\nContent-Length: 20\r\n\r\n{\"in");
  std::string buffer;
  const Response r = ReadResponse(fd, &buffer);
  EXPECT_EQ(r.status, 408) << r.head;
  EXPECT_NE(r.body.find("request body not complete within 300 ms"), std::string::npos) << r.body;
  close(fd);
}

// Slow read: a client that pipelines requests and never reads the answers is closed once its
// answers stop moving for idle_timeout_ms, not kept open for ever.
TEST_F(AdminServerTest, ClientThatDoesNotReadIsClosed) {
  HttpLimits limits;
  limits.idle_timeout_ms = 300;
  StartServer(limits, /*tick_ms=*/50);
  // About 1 MB per answer: 800 tokens with a 1000-byte info each.
  const std::string info(1000, 'i');
  std::string body = "[";
  for (int i = 0; i < 800; ++i)
    body += std::string(i ? "," : "") + R"({"ttl":60,"info":")" + info + "\"}";
  body += "]";
  ASSERT_EQ(Request("POST", "/platform/tokens?fields=id", body).status, 200);
  const int fd = Connect(port_);
  std::string pipelined;
  for (int i = 0; i < 32; ++i) {
    pipelined +=
        "GET /platform/tokens/all HTTP/1.1\r\nAuthorization: Bearer " + master_ + "\r\n\r\n";
  }
  SendAll(fd, pipelined);
  // Wait (reading nothing) until the server reports the cut.
  bool cut = false;
  for (int i = 0; i < 500 && !cut; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard<std::mutex> lock(seen_mu_);
    cut = std::any_of(events_.begin(), events_.end(), [](const std::string& e) {
      return e.find("the client does not read") != std::string::npos;
    });
  }
  EXPECT_TRUE(cut);
  // What was sent before the cut is less than the 32 answers, and then the connection ends.
  size_t received = 0;
  char chunk[65536];
  for (;;) {
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    received += static_cast<size_t>(n);
  }
  EXPECT_LT(received, 32 * 800 * info.size());
  close(fd);
}

TEST_F(AdminServerTest, PerAddressLimitRefusesOnlyWhenEveryConnectionIsBusy) {
  HttpLimits limits;
  limits.max_connections_per_address = 2;
  StartServer(limits);
  hooks_.defer = true;  // /mqtt/sessions answers wait: those connections are not stalled
  std::vector<int> busy;
  for (int i = 0; i < 2; ++i) {
    busy.push_back(Connect(port_));
    SendAll(busy.back(),
            "GET /mqtt/sessions/all HTTP/1.1\r\nAuthorization: Bearer " + master_ + "\r\n\r\n");
  }
  // Both requests reached the (deferring) hooks before the third connection is accepted.
  const auto deferred = [&] {
    std::atomic<int> n{-1};
    EXPECT_TRUE(server_->Post([&] { n = static_cast<int>(hooks_.deferred.size()); }));
    while (n < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return n.load();
  };
  for (int i = 0; i < 1000 && deferred() < 2; ++i) {
  }
  ASSERT_EQ(deferred(), 2);
  const int third = Connect(port_);
  EXPECT_TRUE(PeerClosed(third));
  close(third);
  for (int fd : busy) close(fd);
  server_->Stop();
  std::lock_guard<std::mutex> lock(seen_mu_);
  EXPECT_TRUE(std::any_of(events_.begin(), events_.end(), [](const std::string& e) {
    return e.find("refused: max_connections_per_address reached") != std::string::npos;
  }));
}

TEST_F(AdminServerTest, QueueAuthenticateRunsOnTheAdminThread) {
  StartServer();
  std::atomic<int> status{-1};
  ASSERT_TRUE(server_->QueueAuthenticate(
      acl::Credentials{0, master_},
      [&](const Api::AuthResult& r) { status = static_cast<int>(r.status); }));
  for (int i = 0; i < 200 && status < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(status, static_cast<int>(Api::AuthStatus::kOk));
  server_->Stop();
  EXPECT_FALSE(server_->Post([] {}));
}

TEST_F(AdminServerTest, RequestsAreCountedByMethodAndStatusAndReported) {
  StartServer();
  EXPECT_EQ(Request("GET", "/platform/tokens/all", "", /*auth=*/false).status, 401);
  EXPECT_EQ(Request("GET", "/platform/tokens/all", "", /*auth=*/false).status, 401);
  EXPECT_EQ(Request("GET", "/nowhere").status, 404);
  EXPECT_EQ(Request("DELETE", "/nowhere").status, 404);
  // Too malformed to have a method: counted as OTHER.
  const int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  SendAll(fd, "\x01\x02 garbage\r\n\r\n");
  std::string buffer;
  EXPECT_EQ(ReadResponse(fd, &buffer).status, 400);
  close(fd);
  const Response m = Request("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("ringmq_rest_requests_total{method=\"GET\",code=\"401\"} 2\n"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("ringmq_rest_requests_total{method=\"GET\",code=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.body.find("ringmq_rest_requests_total{method=\"DELETE\",code=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.body.find("ringmq_rest_requests_total{method=\"OTHER\",code=\"400\"} 1\n"),
            std::string::npos);
  // One HELP and TYPE per family.
  EXPECT_EQ(m.body.find("# TYPE ringmq_rest_requests_total counter"),
            m.body.rfind("# TYPE ringmq_rest_requests_total counter"));
  server_->Stop();  // joins the admin thread: seen_ is complete
  std::lock_guard<std::mutex> lock(seen_mu_);
  EXPECT_EQ(std::count(seen_.begin(), seen_.end(), "GET /platform/tokens/all 401"), 2);
  EXPECT_EQ(std::count(seen_.begin(), seen_.end(), "DELETE /nowhere 404"), 1);
  EXPECT_EQ(std::count(seen_.begin(), seen_.end(), "GET /metrics 200"), 1);
}

}  // namespace
}  // namespace ringmq::rest

namespace ringmq::rest {
namespace {

// HTTPS is served end to end in tests/test_https.py; here: a certificate that cannot be loaded
// fails Start (nothing keeps running) instead of serving without TLS.
TEST(AdminServerTls, UnloadableCertificateFailsStart) {
  testing::TempDir dir;
  AdminOptions o;
  o.port = 0;
  o.data_dir = dir.path();
  net::TlsConfig tls;
  tls.cert_file = dir.path() + "/missing.pem";
  tls.key_file = dir.path() + "/missing.key";
  o.tls = tls;
  testing::FakeHooks hooks;
  AdminServer server(std::move(o), &hooks);
  std::string error;
  const auto info = server.Start(&error);
  if (!info && error.find("io_uring") != std::string::npos) GTEST_SKIP() << error;
  EXPECT_FALSE(info.has_value());
  EXPECT_EQ(error.rfind("HTTPS: ", 0), 0u) << error;
  EXPECT_FALSE(server.ReloadTls([](const std::string&) {}));  // not running: nothing posted
}

}  // namespace
}  // namespace ringmq::rest
