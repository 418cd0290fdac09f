// Configuration loading: CLI11 for flags, toml++ for the file. Exceptions are used here only, at
// startup, and never escape LoadConfig.
#include "broker/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <ostream>
#include <set>
#include <thread>

#include "base/log.h"

namespace ringmq::broker {
namespace {

// The names of each enum setting, as the file and the flags spell them.
template <typename E>
using Names = std::map<std::string, E>;
const Names<Scheme> kSchemes = {
    {"mqtt", Scheme::kMqtt}, {"mqtts", Scheme::kMqtts}, {"ws", Scheme::kWs}, {"wss", Scheme::kWss}};
const Names<QueueFullPolicy> kQueueFullPolicies = {{"drop-new", QueueFullPolicy::kDropNew},
                                                   {"drop-oldest", QueueFullPolicy::kDropOldest},
                                                   {"disconnect", QueueFullPolicy::kDisconnect}};
const Names<wal::WalDurability> kDurabilities = {{"sync", wal::WalDurability::kSync},
                                                 {"batch", wal::WalDurability::kBatch},
                                                 {"none", wal::WalDurability::kNone}};

template <typename E>
const char* NameOf(const Names<E>& names, E value) {
  for (const auto& [name, v] : names) {
    if (v == value) return name.c_str();
  }
  return "?";
}

// "a, b or c", for error messages.
template <typename E>
std::string OneOf(const Names<E>& names) {
  std::string out;
  size_t i = 0;
  for (const auto& entry : names) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += entry.first;
    ++i;
  }
  return out;
}

}  // namespace

const char* SchemeName(Scheme s) { return NameOf(kSchemes, s); }
const char* QueueFullPolicyName(QueueFullPolicy p) { return NameOf(kQueueFullPolicies, p); }
const char* DurabilityName(wal::WalDurability d) { return NameOf(kDurabilities, d); }

bool ParseListener(const std::string& url, Listener* out, std::string* error) {
  const size_t sep = url.find("://");
  if (sep == std::string::npos) {
    *error = "listener '" + url + "' must look like mqtt://HOST:PORT";
    return false;
  }
  Listener l;
  const auto scheme = kSchemes.find(url.substr(0, sep));
  if (scheme == kSchemes.end()) {
    *error = "listener scheme '" + url.substr(0, sep) + "' is not supported (mqtt, mqtts, ws, wss)";
    return false;
  }
  l.scheme = scheme->second;
  std::string rest = url.substr(sep + 3);
  if (size_t slash = rest.find('/'); slash != std::string::npos) {
    l.path = rest.substr(slash);
    rest.resize(slash);
  }
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size()) {
    *error = "listener '" + url + "' has no port";
    return false;
  }
  l.host = rest.substr(0, colon);
  if (l.host.size() >= 2 && l.host.front() == '[' && l.host.back() == ']') {
    l.host = l.host.substr(1, l.host.size() - 2);
  }
  if (l.host.empty()) {
    *error = "listener '" + url + "' has no host";
    return false;
  }
  const std::string port = rest.substr(colon + 1);
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (*end != '\0' || p < 0 || p > 65535) {
    *error = "listener '" + url + "' has an invalid port";
    return false;
  }
  l.port = static_cast<uint16_t>(p);
  if (l.websocket() && l.path.empty()) l.path = "/mqtt";
  *out = l;
  return true;
}

namespace {

// Copies a TOML value into a setting when present.
// Reads the settings of a TOML file, remembering which keys it knows so that a misspelt key or a
// value of the wrong type is an error rather than silently ignored.
class TomlReader {
 public:
  explicit TomlReader(const toml::table& t) : t_(t) {}

  template <typename T>
  void Get(const char* key, T* setting) {
    known_.insert(key);
    if (!t_.contains(key)) return;
    if (auto v = t_[key].value<T>()) {
      *setting = *v;
    } else if (error_.empty()) {
      error_ = std::string("setting '") + key + "' has the wrong type";
    }
  }
  // An enum setting, given by one of `names`.
  template <typename E>
  void Get(const char* key, const Names<E>& names, E* setting) {
    std::string name;
    Get(key, &name);
    if (name.empty()) return;
    if (auto it = names.find(name); it != names.end()) {
      *setting = it->second;
    } else if (error_.empty()) {
      error_ =
          std::string("setting '") + key + "' must be " + OneOf(names) + ", not '" + name + "'";
    }
  }
  void Known(const char* key) { known_.insert(key); }
  // The first problem found, or "".
  std::string Finish() {
    for (const auto& [key, value] : t_) {
      if (error_.empty() && known_.count(std::string(key.str())) == 0) {
        error_ = "unknown setting '" + std::string(key.str()) + "'";
      }
    }
    return error_;
  }

 private:
  const toml::table& t_;
  std::set<std::string> known_;
  std::string error_;
};

}  // namespace

namespace {

// Loads the TOML file into *c and *listen. Throws toml::parse_error.
std::string LoadToml(const std::string& file, Config* c, std::vector<std::string>* listen,
                     std::string& rest_url_from_file) {
  toml::table t = toml::parse_file(file);
  TomlReader r(t);
  r.Known("listen");
  if (auto arr = t["listen"].as_array()) {
    for (auto& v : *arr) {
      if (auto s = v.value<std::string>()) listen->push_back(*s);
    }
  }
  r.Get("shards", &c->shards);
  r.Get("data_dir", &c->data_dir);
  r.Get("allow_anonymous", &c->allow_anonymous);
  r.Get("log_level", &c->log_level);
  r.Get("log_levels", &c->log_levels);
  r.Get("log_format", &c->log_format);
  r.Get("master_token", &c->master_token);
  r.Get("cluster", &c->cluster);
  r.Get("node_id", &c->node_id);
  r.Get("cluster_prefix", &c->cluster_prefix);
  r.Get("cluster_subject_levels", &c->cluster_subject_levels);
  r.Get("cluster_replicas", &c->cluster_replicas);
  r.Get("rest", &rest_url_from_file);
  r.Get("rest_max_connections", &c->rest_max_connections);
  r.Get("rest_max_connections_per_address", &c->rest_max_connections_per_address);
  r.Get("rest_header_timeout", &c->rest_header_timeout_s);
  r.Get("rest_body_timeout", &c->rest_body_timeout_s);
  r.Get("max_packet_size", &c->max_packet_size);
  r.Get("max_connections", &c->max_connections);
  r.Get("max_connections_per_token", &c->max_connections_per_token);
  r.Get("max_retained_bytes", &c->max_retained_bytes);
  r.Get("max_topic_levels", &c->max_topic_levels);
  r.Get("max_topic_length", &c->max_topic_length);
  r.Get("max_inflight", &c->max_inflight);
  r.Get("receive_maximum", &c->receive_maximum);
  r.Get("max_queued_messages", &c->max_queued_messages);
  r.Get("max_session_queue_bytes", &c->max_session_queue_bytes);
  r.Get("queue_memory_bytes", &c->queue_memory_bytes);
  r.Get("max_queue_memory_bytes", &c->max_queue_memory_bytes);
  r.Get("max_queue_disk_bytes", &c->max_queue_disk_bytes);
  r.Get("max_output_bytes", &c->max_output_bytes);
  r.Get("max_publish_rate", &c->max_publish_rate);
  r.Get("max_publish_bytes_rate", &c->max_publish_bytes_rate);
  r.Get("max_subscriptions", &c->max_subscriptions);
  r.Get("max_message_expiry", &c->max_message_expiry);
  r.Get("queue_full_policy", kQueueFullPolicies, &c->queue_full_policy);
  r.Get("connect_timeout", &c->connect_timeout_s);
  r.Get("sys_interval", &c->sys_interval_s);
  r.Get("durability", kDurabilities, &c->durability);
  r.Get("wal_batch_ms", &c->wal_batch_ms);
  r.Get("snapshot_interval", &c->snapshot_interval_s);
  r.Get("snapshot_log_bytes", &c->snapshot_log_bytes);
  r.Get("tls_cert", &c->tls_cert);
  r.Get("tls_key", &c->tls_key);
  r.Get("tls_ca", &c->tls_ca);
  r.Get("tls_require_client_cert", &c->tls_require_client_cert);
  r.Get("max_keepalive", &c->max_keepalive);
  r.Get("socket_send_buffer", &c->socket_send_buffer);
  r.Get("socket_recv_buffer", &c->socket_recv_buffer);
  return r.Finish();
}

// The --config FILE (or --config=FILE) among the arguments, "" when none.
std::string ConfigFileArgument(int argc, char** argv) {
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) file = argv[i + 1];
    if (a.starts_with("--config=")) file = std::string(a.substr(9));
  }
  return file;
}

// Reads the TOML file into c (its listeners into *listen, its REST URL into *rest_url): "" or the
// error.
std::string LoadConfigFile(const std::string& file, Config* c, std::vector<std::string>* listen,
                           std::string* rest_url) {
  try {
    if (std::string e = LoadToml(file, c, listen, *rest_url); !e.empty()) return file + ": " + e;
  } catch (const toml::parse_error& e) {
    return file + ": " + std::string(e.description()) + " (line " +
           std::to_string(e.source().begin.line) + ")";
  }
  return "";
}

// The command line's options: where the broker listens, the REST API, logs, TLS.
void AddServerOptions(CLI::App& app, Config& c, std::string& config_file,
                      std::vector<std::string>& listen, std::string& rest_url) {
  app.add_option("--config", config_file, "TOML configuration file (flags override it)");
  app.add_option("--listen", listen, "Listener URL, repeatable (default mqtt://0.0.0.0:1883)");
  app.add_option("--shards", c.shards, "Shard threads (default: online cores)");
  app.add_option("--data-dir", c.data_dir, "Data directory");
  app.add_option("--cluster", c.cluster,
                 "Cluster mode: NATS server URLs, nats://HOST:PORT[,nats://HOST:PORT...]");
  app.add_option("--node-id", c.node_id, "This node's name in the cluster (default: host name)");
  app.add_option("--rest", rest_url,
                 "REST admin API listener http://HOST:PORT, https://HOST:PORT (TLS with --tls-cert "
                 "and --tls-key), or none");
  app.add_option("--rest-max-connections", c.rest_max_connections,
                 "REST API connections; at the limit the oldest stalled one makes room")
      ->check(CLI::Range(1u, 1'000'000u));
  app.add_option("--rest-max-connections-per-address", c.rest_max_connections_per_address,
                 "REST API connections per client IP address (0: unlimited)");
  app.add_option("--rest-header-timeout", c.rest_header_timeout_s,
                 "Seconds a REST client has to send a whole request head (else 408)")
      ->check(CLI::Range(1u, 3600u));
  app.add_option("--rest-body-timeout", c.rest_body_timeout_s,
                 "Seconds a REST client has to send a whole request body (else 408)")
      ->check(CLI::Range(1u, 3600u));
  app.add_flag("--allow-anonymous{true},--deny-anonymous{false}", c.allow_anonymous,
               "Accept clients without a token (default: refused, CONNACK 0x87 / 5)");
  app.add_option("--log-level", c.log_level, "error, warn, info or debug")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  app.add_option("--log-levels", c.log_levels,
                 "Per-subsystem levels over --log-level, e.g. wal=debug,rest=warn "
                 "(broker, mqtt, wal, rest, tls, cluster)");
  app.add_option("--log-format", c.log_format, "Log lines: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--tls-cert", c.tls_cert, "PEM certificate chain for mqtts:// and wss://");
  app.add_option("--tls-key", c.tls_key, "PEM private key for mqtts:// and wss://");
  app.add_option("--tls-ca", c.tls_ca, "PEM CA bundle: ask clients for certificates signed by it");
  app.add_flag("--tls-require-client-cert,!--no-tls-require-client-cert", c.tls_require_client_cert,
               "With --tls-ca: refuse TLS clients without a certificate (default true; "
               "--tls-require-client-cert=false only verifies those that send one)");
}

// The command line's options: limits, queues, durability, periodic work.
void AddLimitOptions(CLI::App& app, Config& c) {
  app.add_option("--max-packet-size", c.max_packet_size, "Largest MQTT packet in bytes");
  app.add_option("--max-connections", c.max_connections,
                 "Connected MQTT clients, whole broker (0: unlimited)");
  app.add_option("--max-connections-per-token", c.max_connections_per_token,
                 "Connected MQTT clients per token (0: unlimited)");
  app.add_option("--max-retained-bytes", c.max_retained_bytes,
                 "Topic + payload bytes of all retained messages (0: unlimited)");
  app.add_option("--max-inflight", c.max_inflight, "Outgoing QoS 1/2 window per client");
  app.add_option("--max-session-queue-bytes", c.max_session_queue_bytes,
                 "Bytes of the QoS 1/2 messages queued per session");
  app.add_option("--max-queued-messages", c.max_queued_messages,
                 "QoS 1/2 messages queued per session (0: no limit by count)");
  app.add_option("--queue-memory-bytes", c.queue_memory_bytes,
                 "Bytes of a session's queue kept in memory; the rest spills to disk");
  app.add_option(
      "--max-queue-memory-bytes", c.max_queue_memory_bytes,
      "Memory bytes of all session queues together; the rest spills (0: per queue only)");
  app.add_option("--max-queue-disk-bytes", c.max_queue_disk_bytes,
                 "Disk bytes of all spilled session queues (0: no spilling, queues in memory)");
  app.add_option("--max-keepalive", c.max_keepalive, "Largest keep-alive granted, seconds");
  app.add_option("--max-publish-rate", c.max_publish_rate,
                 "PUBLISH packets per second per connection (0: unlimited)");
  app.add_option("--max-publish-bytes-rate", c.max_publish_bytes_rate,
                 "PUBLISH bytes per second per connection (0: unlimited)");
  app.add_option("--max-subscriptions", c.max_subscriptions,
                 "Subscriptions per session (0: unlimited)");
  app.add_option("--max-message-expiry", c.max_message_expiry,
                 "Cap on message expiry intervals, seconds (0: no cap)");
  app.add_option("--queue-full-policy", c.queue_full_policy,
                 "When a session queue is full: drop-new, drop-oldest or disconnect")
      ->transform(CLI::CheckedTransformer(kQueueFullPolicies));
  app.add_option("--durability", c.durability,
                 "Persistent sessions and retained messages: sync, batch or none")
      ->transform(CLI::CheckedTransformer(kDurabilities));
  app.add_flag("--recover-strict", c.recover_strict,
               "Refuse to start when the write-ahead log is corrupt");
  app.add_option("--sys-interval", c.sys_interval_s,
                 "Seconds between $SYS/broker/... updates, 0 disables them");
  app.add_option("--connect-timeout", c.connect_timeout_s,
                 "Seconds a new connection has to send its CONNECT");
}

// --rest URL (http://HOST:PORT, https://HOST:PORT or none) into c: "" or the error.
std::string ApplyRestUrl(const std::string& rest_url, Config* c) {
  if (rest_url == "none") {
    c->rest_enabled = false;
    return "";
  }
  Listener rest;
  std::string error;
  c->rest_tls = rest_url.starts_with("https://");
  std::string as_mqtt = rest_url.starts_with("http://")
                            ? "mqtt://" + rest_url.substr(7)
                            : (c->rest_tls ? "mqtt://" + rest_url.substr(8) : "");
  if (as_mqtt.empty() || !ParseListener(as_mqtt, &rest, &error)) {
    return "--rest must look like http://HOST:PORT, https://HOST:PORT or be none";
  }
  if (c->rest_tls && (c->tls_cert.empty() || c->tls_key.empty())) {
    return "--rest " + rest_url + " needs --tls-cert and --tls-key";
  }
  c->rest_host = rest.host;
  c->rest_port = rest.port;
  return "";
}

// The MQTT listeners' URLs into c->listeners: "" or the error.
std::string ApplyListeners(const std::vector<std::string>& listen, Config* c) {
  for (const std::string& url : listen) {
    Listener l;
    std::string error;
    if (!ParseListener(url, &l, &error)) return error;
    if (l.tls() && (c->tls_cert.empty() || c->tls_key.empty())) {
      return url + " needs --tls-cert and --tls-key";
    }
    c->listeners.push_back(l);
  }
  return "";
}

// Settings that only make sense together, and the defaults that depend on the machine: "" or
// the error.
std::string Finish(Config* c) {
  if (c->shards == 0) c->shards = std::max(1u, std::thread::hardware_concurrency());
  if (c->shards > 64) return "at most 64 shards are supported";
  if (!c->cluster.empty()) {
    // The cluster bridge feeds the shards through the ring matrix as one more producer.
    if (c->shards > 63) return "at most 63 shards are supported in cluster mode";
    if (c->node_id.empty()) {
      char host[256] = {};
      if (gethostname(host, sizeof(host) - 1) == 0) c->node_id = host;
      if (c->node_id.empty()) c->node_id = "ringmq";
    }
    if (c->cluster_subject_levels < 1 || c->cluster_subject_levels > 16) {
      return "cluster_subject_levels must be 1 to 16";
    }
    if (c->cluster_replicas < 1 || c->cluster_replicas > 5) {
      return "cluster_replicas must be 1 to 5 (JetStream's limit)";
    }
    if (c->cluster_prefix.empty() ||
        c->cluster_prefix.find_first_of(" \t*>") != std::string::npos ||
        c->cluster_prefix.front() == '.' || c->cluster_prefix.back() == '.') {
      return "cluster_prefix must be a NATS subject without wildcards";
    }
  }
  if (std::string e = base::CheckLogSettings(c->log_level, c->log_levels, c->log_format);
      !e.empty()) {
    return e;
  }
  if (c->max_packet_size < 16) c->max_packet_size = 16;
  if (c->rest_max_connections == 0 || c->rest_header_timeout_s == 0 ||
      c->rest_body_timeout_s == 0) {
    return "rest_max_connections, rest_header_timeout and rest_body_timeout must be at least 1";
  }
  return "";
}

}  // namespace

bool LoadConfig(int argc, char** argv, Config* config, int* exit_code, std::ostream& err) {
  Config c;
  std::vector<std::string> file_listen;
  std::string rest_url = "http://127.0.0.1:9080";
  const auto fail = [&](const std::string& error) {
    err << "ringmq: " << error << "\n";
    *exit_code = 2;
    return false;
  };
  // The file is read first so that flags override it.
  std::string config_file = ConfigFileArgument(argc, argv);
  if (!config_file.empty()) {
    if (std::string e = LoadConfigFile(config_file, &c, &file_listen, &rest_url); !e.empty()) {
      return fail(e);
    }
  }
  CLI::App app{"ringmq: an MQTT 3.1.1 / 5.0 broker on io_uring"};
  std::vector<std::string> listen;
  AddServerOptions(app, c, config_file, listen, rest_url);
  AddLimitOptions(app, c);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e, std::cout, err);
    return false;
  }
  if (listen.empty()) listen = file_listen;
  if (listen.empty()) listen.push_back("mqtt://0.0.0.0:1883");
  std::string error = ApplyRestUrl(rest_url, &c);
  if (error.empty()) error = ApplyListeners(listen, &c);
  if (error.empty()) error = Finish(&c);
  if (!error.empty()) return fail(error);
  *config = c;
  return true;
}

bool LoadConfig(int argc, char** argv, Config* config, int* exit_code) {
  return LoadConfig(argc, argv, config, exit_code, std::cerr);
}

}  // namespace ringmq::broker
