// The broker's configuration: one struct, loaded once at startup from an optional TOML file and
// the command line (flags override the file). Documented setting by setting in
// doc/configuration.md. Thread-safety: built before the shards start, then read-only.
#ifndef RINGMQ_BROKER_CONFIG_H_
#define RINGMQ_BROKER_CONFIG_H_

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "wal/durability.h"

namespace ringmq::broker {

// Settings with a fixed set of values are parsed into these enums when loaded (the names are the
// ones of the file and the flags); nothing compares setting strings later.
enum class Scheme : uint8_t {
  kMqtt,   // mqtt://   TCP
  kMqtts,  // mqtts://  TLS
  kWs,     // ws://     WebSocket
  kWss,    // wss://    WebSocket over TLS
};
const char* SchemeName(Scheme s);  // "mqtt", "mqtts", "ws", "wss"

enum class QueueFullPolicy : uint8_t { kDropNew, kDropOldest, kDisconnect };
const char* QueueFullPolicyName(QueueFullPolicy p);  // "drop-new", "drop-oldest", "disconnect"
const char* DurabilityName(wal::WalDurability d);    // "sync", "batch", "none"

struct Listener {
  Scheme scheme = Scheme::kMqtt;
  std::string host;   // as given: "0.0.0.0", "127.0.0.1", "::"
  uint16_t port = 0;  // 0 picks a free port
  std::string path;   // WebSocket path, default "/mqtt" ("/" is accepted too)
  bool tls() const { return scheme == Scheme::kMqtts || scheme == Scheme::kWss; }
  bool websocket() const { return scheme == Scheme::kWs || scheme == Scheme::kWss; }
};

struct Config {
  std::vector<Listener> listeners;  // default: mqtt://0.0.0.0:1883
  unsigned shards = 0;              // 0 = number of online cores
  std::string data_dir = "data";
  bool allow_anonymous = false;
  std::string log_level = "info";       // error, warn, info, debug
  std::string log_levels;               // per subsystem, over log_level: "wal=debug,rest=warn"
  std::string log_format = "text";      // text, json (one object per line)
  std::string rest_host = "127.0.0.1";  // the REST admin API (http://HOST:PORT)
  uint16_t rest_port = 9080;
  bool rest_enabled = true;  // --rest none disables it
  bool rest_tls = false;     // --rest https://...: TLS with tls_cert, tls_key (and tls_ca)
  // REST API connections (rest/http_server.h): limits against slow and stalled clients.
  uint32_t rest_max_connections = 256;
  uint32_t rest_max_connections_per_address = 64;  // 0: unlimited
  uint32_t rest_header_timeout_s = 10;             // a whole request head, else 408
  uint32_t rest_body_timeout_s = 30;               // a whole request body after its head, else 408
  std::string master_token;  // ensured to exist as a master token (or RINGMQ_MASTER_TOKEN)
  // Cluster mode (doc/cluster.md): NATS server URLs, comma-separated ("" = a single node), this
  // node's name (default: the host name) and the NATS subject prefix every node shares.
  std::string cluster;
  std::string node_id;
  std::string cluster_prefix = "ringmq";
  unsigned cluster_subject_levels = 1;  // topic levels in the subjects a node subscribes to
  unsigned cluster_replicas = 3;        // NATS servers keeping the retained messages' stream
  std::string tls_cert;                 // PEM chain for mqtts:// and wss:// listeners
  std::string tls_key;                  // PEM private key
  std::string tls_ca;                   // optional: request client certificates signed by these CAs
  bool tls_require_client_cert = true;  // with tls_ca: refuse clients without a certificate

  // Limits.
  uint32_t max_packet_size = 1 << 20;    // bytes, whole packet, both directions
  uint32_t max_connections = 1'000'000;  // connected clients, whole broker, 0: unlimited
  uint32_t max_connections_per_token =
      0;                            // per token key (a token may say otherwise), 0: unlimited
  uint64_t max_retained_bytes = 0;  // topic + payload of every retained message, 0: unlimited
  uint16_t max_topic_levels = 64;
  uint16_t max_topic_length = 65535;
  uint16_t max_inflight = 256;      // outgoing QoS 1/2 window per client
  uint16_t receive_maximum = 1024;  // incoming QoS 1/2 window we announce (MQTT 5)
  // Per session, QoS 1/2 messages waiting to be sent (Session::QueueLimits): their bytes
  // (QueuedBytes), and optionally their number (0: no limit by count). The oldest
  // queue_memory_bytes of a queue are in memory, the rest in a spill file (broker/spill.h); the
  // spill files of the whole broker use at most max_queue_disk_bytes (0: no spilling, every
  // queue in memory). The in-memory parts of all queues together stay near
  // max_queue_memory_bytes (shared equally by the shards; 0: no bound but the per-queue one):
  // past it, a queue keeps its oldest message in memory and spills the rest.
  uint64_t max_session_queue_bytes = 1ull << 30;
  uint32_t max_queued_messages = 0;
  uint64_t queue_memory_bytes = 1ull << 20;
  uint64_t max_queue_memory_bytes = 256ull << 20;
  uint64_t max_queue_disk_bytes = 16ull << 30;
  uint32_t max_output_bytes = 4 << 20;  // per connection, before QoS 0 is dropped
  uint32_t max_publish_rate = 0;        // PUBLISH packets per second per connection, 0: unlimited
  uint32_t max_publish_bytes_rate = 0;  // PUBLISH bytes per second per connection, 0: unlimited
  uint32_t max_subscriptions = 1000;    // per session, 0: unlimited
  uint32_t max_message_expiry = 0;      // seconds; longer (or no) expiry is capped, 0: no cap
  QueueFullPolicy queue_full_policy = QueueFullPolicy::kDropNew;
  uint16_t connect_timeout_s = 10;  // from accept to a complete CONNECT
  // WAL: sync (fdatasync every loop turn), batch, none.
  wal::WalDurability durability = wal::WalDurability::kSync;
  uint32_t wal_batch_ms = 10;                 // durability = batch: flush period
  uint32_t snapshot_interval_s = 300;         // a shard snapshots at most this long after a change
  uint64_t snapshot_log_bytes = 64ull << 20;  // ... or once this much log was written since
  bool recover_strict = false;     // refuse to start on a corrupt WAL instead of skipping it
  uint32_t sys_interval_s = 10;    // $SYS/broker/... publication period, 0: off
  uint16_t max_keepalive = 65535;  // seconds; clients asking for more are told this
  uint32_t max_session_expiry = 0xFFFFFFFF;
  int socket_send_buffer = 0;  // SO_SNDBUF, 0 = kernel default
  int socket_recv_buffer = 0;  // SO_RCVBUF, 0 = kernel default
};

// Parses "mqtt://HOST:PORT" (IPv6 hosts in brackets). Returns false with *error set on failure.
bool ParseListener(const std::string& url, Listener* out, std::string* error);

// Builds the configuration from argv (and the TOML file named by --config). On --help or an error,
// prints to stdout (help) or `err` (errors) and returns false with *exit_code set.
bool LoadConfig(int argc, char** argv, Config* config, int* exit_code, std::ostream& err);
bool LoadConfig(int argc, char** argv, Config* config, int* exit_code);  // errors to std::cerr

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_CONFIG_H_
