// ringmq: the broker's entry point. Loads the configuration, starts the shards and the admin shard
// (REST API), waits for SIGINT or SIGTERM and shuts down cleanly (exit 0).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string_view>

#include "base/log.h"
#include "broker/admin_bridge.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "cluster/nats_bridge.h"
#include "cluster/token_bucket.h"
#include "net/socket.h"
#include "rest/admin_server.h"

using ringmq::broker::AdminBridge;
using ringmq::broker::Broker;
using ringmq::broker::Config;
namespace rest = ringmq::rest;

int main(int argc, char** argv) {
  // Whatever way main returns, what is still queued for stderr gets out, within a bound
  // (base/log.h: a reader that never reads must not keep the broker from exiting).
  struct FlushLogsAtExit {
    ~FlushLogsAtExit() { (void)ringmq::base::FlushLogs(std::chrono::seconds(2)); }
  } flush_logs_at_exit;
  Config config;
  int exit_code = 0;
  if (!ringmq::broker::LoadConfig(argc, argv, &config, &exit_code)) return exit_code;
  (void)ringmq::base::ConfigureLogging(config.log_level, config.log_levels, config.log_format);
  // A descriptor per client: the soft limit goes up to the hard one, and a limit that holds back
  // clients is said at start, not found later as connects that hang in the listen backlog.
  const uint64_t open_files = ringmq::net::RaiseOpenFileLimit();
  if (config.max_connections != 0 && open_files < config.max_connections) {
    LOG_WARN_S(kBroker,
               "the open file limit ({}) allows fewer clients than max_connections ({}); raise "
               "it with ulimit -n, or LimitNOFILE= under systemd",
               open_files, config.max_connections);
  }

  // Signals are taken by sigwait on this thread only; every other thread inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A file size limit (ulimit -f) must fail the write with EFBIG, which the WAL handles, rather
  // than kill the broker.
  std::signal(SIGXFSZ, SIG_IGN);

  Broker broker(config);
  AdminBridge bridge(broker);
  // Cluster mode: connected before the broker starts (its recovered sessions subscribe), fed
  // after (Activate), stopped around the broker's stop (doc/cluster.md).
  std::unique_ptr<ringmq::cluster::NatsBridge> cluster;
  if (!config.cluster.empty()) {
    cluster = std::make_unique<ringmq::cluster::NatsBridge>(
        ringmq::cluster::NatsBridge::Options{
            ringmq::cluster::NatsBridge::ParseServers(config.cluster), config.node_id,
            config.cluster_prefix, config.cluster_subject_levels, config.cluster_replicas},
        broker);
    std::string error;
    if (!cluster->Connect(&error)) {
      LOG_ERROR_S(kCluster, "start failed: {}", error);
      return 1;
    }
    broker.SetClusterLink(cluster.get());
  }
  rest::AdminOptions options;
  options.host = config.rest_host;
  options.port = config.rest_port;
  options.data_dir = config.data_dir;
  options.master_key = config.master_token.empty() ? rest::MasterKeyFromEnv() : config.master_token;
  // The REST subsystem's access log: one debug line per answered request (never the token key).
  options.on_request = [](std::string_view method, std::string_view path, int status) {
    LOG_EVENT(kRest, debug,
              ringmq::base::LogEvent("request")
                  .Str("method", method)
                  .Str("path", path)
                  .Int("status", status));
  };
  options.limits.max_connections = config.rest_max_connections;
  options.limits.max_connections_per_address = config.rest_max_connections_per_address;
  options.limits.header_timeout_ms = int64_t{config.rest_header_timeout_s} * 1000;
  options.limits.body_timeout_ms = int64_t{config.rest_body_timeout_s} * 1000;
  // Connections the REST server cut or refused to protect itself (slow or stalled clients).
  options.on_event = [](std::string_view what) { LOG_WARN_S(kRest, "{}", what); };
  if (config.rest_tls) {  // the certificate options of the mqtts:// and wss:// listeners
    ringmq::net::TlsConfig tls;
    tls.cert_file = config.tls_cert;
    tls.key_file = config.tls_key;
    tls.ca_file = config.tls_ca;
    tls.require_client_cert = config.tls_require_client_cert;
    options.tls = tls;
  }
  if (cluster && config.rest_enabled) {
    // The tokens live in the cluster's bucket, shared by every node (doc/cluster.md "Tokens").
    auto bucket =
        std::make_unique<ringmq::cluster::TokenBucket>(ringmq::cluster::TokenBucket::Options{
            ringmq::cluster::NatsBridge::ParseServers(config.cluster), config.node_id,
            config.cluster_prefix, config.cluster_replicas, config.data_dir});
    std::string error;
    switch (bucket->Open(&error)) {
      case ringmq::cluster::TokenBucket::OpenResult::kOk:
        options.token_backend = std::move(bucket);
        break;
      case ringmq::cluster::TokenBucket::OpenResult::kNoJetStream:
        LOG_WARN_S(kCluster,
                   "cluster: {}: tokens stay per node (tokens.json; a token minted on one node "
                   "is unknown to the others); start nats-server with -js to share them",
                   error);
        break;
      case ringmq::cluster::TokenBucket::OpenResult::kFailed:
        LOG_ERROR_S(kCluster, "start failed: {}", error);
        return 1;
    }
  }
  if (cluster) {
    ringmq::cluster::NatsBridge* c = cluster.get();
    options.cluster.health = [c](std::string* json) { return c->HealthJson(json); };
    options.cluster.nodes = [c] { return c->NodesJson(); };
    options.cluster.metrics = [c] { return c->MetricsText(); };
  }
  rest::AdminServer admin(std::move(options), &bridge);
  bridge.set_post_to_admin(
      [&admin](std::function<void()> fn) { return admin.Post(std::move(fn)); });
  if (config.rest_enabled) {
    broker.SetTokenLookup(
        [&admin](const ringmq::acl::Credentials& credentials, Broker::TokenReply reply) {
          auto shared_reply = std::make_shared<Broker::TokenReply>(std::move(reply));
          const bool queued =
              admin.QueueAuthenticate(credentials, [shared_reply](const rest::Api::AuthResult& r) {
                const bool ok = r.status == rest::Api::AuthStatus::kOk;
                (*shared_reply)(ok ? r.acl : nullptr, ok ? r.key : std::string());
              });
          if (!queued) (*shared_reply)(nullptr, std::string());  // the admin shard is stopping
        });
    broker.SetTokenTouch(
        [&admin](std::vector<std::string> keys) { admin.QueueTouch(std::move(keys)); });
  }

  std::string error;
  if (!broker.Start(&error)) {
    LOG_ERROR_S(kBroker, "start failed: {}", error);
    return 1;
  }
  if (cluster) cluster->Activate();
  if (config.rest_enabled) {
    auto started = admin.Start(&error);
    if (!started) {
      LOG_ERROR_S(kRest, "REST API: start failed: {}", error);
      if (cluster) cluster->StopInbound();
      broker.Stop();
      return 1;
    }
    std::printf("listening %s://%s\n", config.rest_tls ? "https" : "http",
                started->address.c_str());
    if (!started->generated_master_key.empty()) {
      // Printed once, at the first start; it is not shown again.
      std::printf("master token: %s\n", started->generated_master_key.c_str());
    }
    std::fflush(stdout);
  }
  int sig = 0;
  for (;;) {
    sigwait(&stop_signals, &sig);
    if (sig != SIGHUP) break;
    // Reload: the same command line again (so the file is read again and flags still win).
    // Errors go to the log (in its format), not straight to stderr.
    Config fresh;
    int ignored = 0;
    std::ostringstream errors;
    if (ringmq::broker::LoadConfig(argc, argv, &fresh, &ignored, errors)) {
      broker.Reload(std::move(fresh));
      // The REST API's certificate too (its files are those of the start: like the listeners,
      // --rest changes only with a restart).
      (void)admin.ReloadTls([](const std::string& e) {
        if (e.empty()) {
          LOG_INFO_S(kTls, "REST API: TLS certificate reloaded");
        } else {
          LOG_ERROR_S(kTls, "REST API: TLS reload failed, the old certificate stays: {}", e);
        }
      });
    } else {
      std::string why = errors.str();
      while (!why.empty() && why.back() == '\n') why.pop_back();
      LOG_ERROR_S(kBroker, "reload: the configuration is invalid; the running one stays: {}", why);
    }
  }
  LOG_INFO_S(kBroker, "signal {}: shutting down", sig);
  admin.Stop();
  if (cluster) cluster->StopInbound();
  broker.Stop();
  if (cluster) cluster->Close();
  return 0;
}
