// Options: everything ringmq-bench is told on its command line, parsed once at startup (CLI11;
// exceptions stay inside ParseOptions). Modelled on emqtt-bench. Thread-safety: built before the
// worker threads start, then read-only.
#ifndef RINGMQ_TOOLS_BENCH_OPTIONS_H_
#define RINGMQ_TOOLS_BENCH_OPTIONS_H_

#include <cstdint>
#include <string>

#include "proto/packet.h"

namespace ringmq::bench {

enum class ScenarioKind : uint8_t { kConn, kPub, kSub, kFanIn, kFanOut, kP2p, kShared, kRetained };

const char* ScenarioName(ScenarioKind kind);

struct Options {
  ScenarioKind scenario = ScenarioKind::kPub;
  std::string host = "127.0.0.1";
  uint16_t port = 1883;
  std::string transport = "tcp";  // tcp | tls | ws | wss
  std::string ws_path = "/mqtt";  // ws, wss: the request path of the upgrade
  std::string cafile;             // tls, wss: CA bundle that signs the broker's certificate
  bool insecure = false;          // tls, wss: do not verify the broker's certificate
  unsigned threads = 1;

  // Clients. `clients` is the count for conn/pub/sub and the pair count of p2p; composite
  // scenarios use pubs/subs (defaults depend on the scenario, see ParseOptions).
  uint32_t clients = 0;
  uint32_t pubs = 0;
  uint32_t subs = 0;
  uint32_t start_number = 0;   // added to %i and to publisher ids (for several processes)
  double connect_rate = 0;     // new connections per second, all threads; 0 = unlimited
  uint32_t max_pending = 100;  // connects awaiting CONNACK per thread
  std::string client_prefix;   // client id prefix; default "rmqb<pid>-" ("rmqb-": sub_persistent)
  proto::Version version = proto::Version::kV311;
  bool clean = true;
  uint32_t session_expiry = 300;  // MQTT 5, when clean is false (or for --sub-persistent)
  // Subscribers keep a persistent session (3.1.1 clean session 0; MQTT 5 clean start 0 with
  // session_expiry) whatever `clean` says, and client ids are stable across runs ("rmqb-s0"
  // unless --prefix): what a durable consumer does, so every message it gets is logged.
  bool sub_persistent = false;
  uint16_t keepalive = 300;  // seconds
  std::string username;
  std::string password;

  // Messages.
  std::string topic;   // template, %i = client index; default per scenario
  std::string filter;  // subscription filter for `sub` (default: topic, %i substituted)
  std::string share_group = "bench";
  double rate = 0;     // messages per second per publisher; 0 = unlimited
  uint32_t size = 64;  // payload bytes, >= 16
  uint8_t qos = 0;
  uint16_t inflight = 64;  // QoS 1/2 publish window per publisher
  uint32_t retained_topics = 1000;

  // Length of the run: --count messages per publisher, else --duration seconds.
  double duration_s = 10;
  uint64_t count = 0;
  double drain_s = 5;  // after publishing stops, wait this long at most for stragglers
  double connect_timeout_s = 60;

  bool json = false;
  bool progress = true;
  bool quiet = false;  // no human summary (with --json)
};

// Parses argv. On --help or an error prints to stdout/stderr and returns false with *exit_code.
bool ParseOptions(int argc, char** argv, Options* options, int* exit_code);

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_OPTIONS_H_
