// AdminServer: the admin shard (DESIGN.md sections 2 and 6). One thread with its own io_uring
// serving the REST API (rest/api.h over rest/http_server.h), and the single writer of the token
// store (rest/token_store.h). It talks to the broker only through admin_api::BrokerHooks (admin ->
// broker) and the Post/Queue* entry points below (broker -> admin).
//
//   rest::AdminServer admin(options, &hooks);
//   std::string error;
//   auto started = admin.Start(&error);          // prints nothing
//   if (!started) { log(error); exit(1); }
//   log("listening http://" + started->address);
//   if (!started->generated_master_key.empty()) log("master token: " + ...);  // once, first start
//   ...
//   admin.Stop();
//
// Thread-safety: Start and Stop from one controlling thread. Post, QueueAuthenticate,
// QueueTouch and ReloadTls from any thread (a mutex-protected inbox and an eventfd wake-up: the
// admin path is not a per-message path). Everything else runs on the admin thread. Invariants:
//   1. After Start returned true and until Stop returned, the admin thread owns the store, the
//      Api and the HTTP server; no other thread touches them.
//   2. Functions posted before Stop run on the admin thread in posting order, or are destroyed
//      unrun when Stop wins the race; Post after Stop returns false and drops the function.
#ifndef RINGMQ_REST_ADMIN_SERVER_H_
#define RINGMQ_REST_ADMIN_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "admin_api/broker_hooks.h"
#include "net/tls.h"
#include "rest/api.h"
#include "rest/http_server.h"
#include "rest/token_store.h"

namespace ringmq::rest {

struct AdminOptions {
  std::string host = "127.0.0.1";  // "" = every interface
  uint16_t port = 9080;            // 0 = ephemeral (tests)
  std::string data_dir = "data";   // tokens.json lives here
  HttpLimits limits;
  Api::Limits api_limits;
  // A master key to ensure at start (RINGMQ_MASTER_TOKEN or the config): created as a master
  // token if no token has it. Empty: on first start (empty store) a key is generated instead.
  std::string master_key;
  Api::Clock clock;        // Unix seconds; default: the system clock
  int64_t tick_ms = 1000;  // expiry sweep and idle-connection check period
  // Called on the admin thread for every answered request (the broker logs it); may be empty.
  HttpServer::RequestObserver on_request;
  // Called on the admin thread for every connection the HTTP server cuts or refuses to protect
  // itself (deadlines, connection limits: HttpLimits); the broker logs it. May be empty.
  HttpServer::EventObserver on_event;
  // HTTPS: the certificate, key and optional client CA (net/tls.h), loaded on the admin thread at
  // Start (a bad file fails Start) and again by ReloadTls. Unset: plain HTTP.
  std::optional<net::TlsConfig> tls;
  // Cluster mode: the node's NATS bridge, for /healthz, GET /cluster and /metrics.
  Api::ClusterView cluster;
  // Where the tokens live; unset: tokens.json in data_dir (cluster mode: the shared bucket,
  // cluster/token_bucket.h). Start takes it.
  std::unique_ptr<TokenBackend> token_backend;
};

struct AdminStartInfo {
  std::string address;  // "HOST:PORT" actually bound
  uint16_t port = 0;
  std::string generated_master_key;  // non-empty once, when the first master token was created
};

// The value of RINGMQ_MASTER_TOKEN, or empty (for AdminOptions::master_key).
std::string MasterKeyFromEnv();

class AdminServer {
 public:
  // `hooks` may be null (no broker: session/message/metrics endpoints answer 503). It must outlive
  // the server.
  AdminServer(AdminOptions options, admin_api::BrokerHooks* hooks);
  ~AdminServer();  // Stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Opens the store (creating the first master token if needed), binds, and starts the admin
  // thread. Prints nothing. On failure returns nullopt with *error and nothing keeps running.
  // REQUIRES: not started.
  std::optional<AdminStartInfo> Start(std::string* error);
  // Stops the thread, closes every connection, writes refreshed `accessed` values and releases
  // the token store (and its backend). Idempotent.
  void Stop();

  // --- Cross-thread entry points (any thread) ---

  // Runs fn on the admin thread (how BrokerHooks implementations deliver their callbacks).
  bool Post(std::function<void()> fn);
  // Authenticates the credentials of an MQTT CONNECT (a key, or a token id and key prefix):
  // done(result) runs on the admin thread; the core forwards the result to the asking shard by
  // its own messages.
  bool QueueAuthenticate(acl::Credentials credentials, std::function<void(Api::AuthResult)> done);
  // Reports keys in use by live MQTT connections (call every few seconds per shard) so tokens with
  // a ttl stay valid while used.
  bool QueueTouch(std::vector<std::string> keys);
  // SIGHUP: reads the HTTPS certificate files again (new connections use them, live ones keep
  // theirs; on failure the old ones stay). done("" or the error) runs on the admin thread; not at
  // all without HTTPS or once stopping.
  bool ReloadTls(std::function<void(std::string error)> done);

 private:
  void ThreadMain(std::string* init_error, std::atomic<int>* init_state);
  void DrainInbox();

  AdminOptions options_;
  admin_api::BrokerHooks* hooks_;
  std::unique_ptr<TokenStore> store_;
  std::unique_ptr<Api> api_;
  // Admin thread only while it runs (then the controlling thread's, after the join); it outlives
  // the HttpServer and so every TLS session (net/tls.h invariant 3).
  std::unique_ptr<net::TlsContext> tls_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;

  std::mutex inbox_mu_;
  std::vector<std::function<void()>> inbox_;  // guarded by inbox_mu_
  bool accepting_ = false;                    // guarded by inbox_mu_
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_ADMIN_SERVER_H_
