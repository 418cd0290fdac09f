// Command line of ringmq-bench (CLI11, at startup only).
#include "tools/bench/options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "tools/bench/payload.h"

namespace ringmq::bench {

const char* ScenarioName(ScenarioKind kind) {
  switch (kind) {
    case ScenarioKind::kConn:
      return "conn";
    case ScenarioKind::kPub:
      return "pub";
    case ScenarioKind::kSub:
      return "sub";
    case ScenarioKind::kFanIn:
      return "fan-in";
    case ScenarioKind::kFanOut:
      return "fan-out";
    case ScenarioKind::kP2p:
      return "p2p";
    case ScenarioKind::kShared:
      return "shared";
    case ScenarioKind::kRetained:
      return "retained";
  }
  return "?";
}

bool ParseOptions(int argc, char** argv, Options* o, int* exit_code) {
  CLI::App app{
      "ringmq-bench: an io_uring MQTT load generator.\n"
      "Scenarios: conn, pub, sub, fan-in, fan-out, p2p, shared, retained."};
  const std::map<std::string, ScenarioKind> scenarios = {
      {"conn", ScenarioKind::kConn},      {"pub", ScenarioKind::kPub},
      {"sub", ScenarioKind::kSub},        {"fan-in", ScenarioKind::kFanIn},
      {"fan-out", ScenarioKind::kFanOut}, {"p2p", ScenarioKind::kP2p},
      {"shared", ScenarioKind::kShared},  {"retained", ScenarioKind::kRetained}};
  int version = 4;
  int qos = 0;
  std::string clean = "true";
  app.add_option("scenario", o->scenario, "What to run")
      ->required()
      ->transform(CLI::CheckedTransformer(scenarios, CLI::ignore_case));
  app.add_option("-H,--host", o->host, "Broker host")->capture_default_str();
  app.add_option("-p,--port", o->port, "Broker port")->capture_default_str();
  app.add_option("--transport", o->transport,
                 "Transport: tcp (mqtt://), tls (mqtts://), ws (ws://), wss (wss://)")
      ->check(CLI::IsMember({"tcp", "tls", "ws", "wss"}))
      ->capture_default_str();
  app.add_option("--ws-path", o->ws_path, "WebSocket request path (ws, wss)")
      ->capture_default_str();
  auto* cafile = app.add_option("--cafile", o->cafile,
                                "PEM CA bundle to verify the broker's certificate (tls, wss; "
                                "default: the system store)");
  app.add_flag("--insecure", o->insecure, "Do not verify the broker's certificate (tls, wss)")
      ->excludes(cafile);
  app.add_option("-t,--threads", o->threads, "Load generator threads, one io_uring each")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  app.add_option("-c,--clients", o->clients,
                 "Clients (conn, pub, sub, retained subscribers) or pairs (p2p)");
  app.add_option("--pubs", o->pubs, "Publishers of fan-in / fan-out / shared");
  app.add_option("--subs", o->subs, "Subscribers of fan-in / fan-out / shared");
  app.add_option("-n,--start-number", o->start_number,
                 "First client index (%i) and publisher id; give each process its own range");
  app.add_option("-R,--connect-rate", o->connect_rate, "Connections per second, 0 = unlimited")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-pending", o->max_pending, "Connects awaiting CONNACK, per thread")
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  app.add_option("--prefix", o->client_prefix, "Client id prefix (default rmqb<pid>-)");
  app.add_option("-V,--version", version, "MQTT version: 3 (3.1), 4 (3.1.1) or 5")
      ->check(CLI::IsMember({3, 4, 5}))
      ->capture_default_str();
  app.add_option("-C,--clean", clean, "Clean session / clean start")
      ->check(CLI::IsMember({"true", "false"}))
      ->capture_default_str();
  app.add_option("-x,--session-expiry", o->session_expiry,
                 "MQTT 5 session expiry (s) when --clean false")
      ->capture_default_str();
  app.add_flag("--sub-persistent", o->sub_persistent,
               "Subscribers use a persistent session (clean session 0 / clean start 0 with "
               "--session-expiry) and fixed client ids (prefix rmqb- unless --prefix)");
  app.add_option("-k,--keepalive", o->keepalive, "Keep alive, seconds")->capture_default_str();
  app.add_option("-u,--username", o->username, "Username");
  app.add_option("-P,--password", o->password, "Password");
  app.add_option("--topic", o->topic,
                 "Topic template, %i = client index (default per scenario, e.g. bench/%i)");
  app.add_option("--filter", o->filter, "Subscription filter of `sub` (default: the topic)");
  app.add_option("--share-group", o->share_group, "Group of the shared scenario")
      ->capture_default_str();
  app.add_option("-r,--rate", o->rate,
                 "Messages per second per publisher (open loop), 0 = unlimited")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("-s,--size", o->size, "Payload bytes (>= 16: timestamp, sequence, publisher)")
      ->check(CLI::Range(static_cast<uint32_t>(kPayloadHeader), 256u << 20))
      ->capture_default_str();
  app.add_option("-q,--qos", qos, "QoS of publishes and subscriptions")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
  app.add_option("-w,--inflight", o->inflight, "QoS 1/2 window per publisher")
      ->check(CLI::Range(1, 65000))
      ->capture_default_str();
  app.add_option("--retained-topics", o->retained_topics, "Retained topics seeded (retained)")
      ->check(CLI::Range(1u, 10'000'000u))
      ->capture_default_str();
  app.add_option("-d,--duration", o->duration_s, "Seconds of publishing (or holding, for conn)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-L,--count", o->count, "Messages per publisher (instead of --duration)");
  app.add_option("--drain", o->drain_s, "Seconds to wait for in-flight messages at the end")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--connect-timeout", o->connect_timeout_s,
                 "Seconds for each connect phase before giving up")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--json", o->json, "Print the result as one JSON object on stdout");
  app.add_flag("--quiet", o->quiet, "No human summary");
  app.add_flag("!--no-progress", o->progress, "No progress line on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return false;
  }
  o->version = static_cast<proto::Version>(version);
  o->qos = static_cast<uint8_t>(qos);
  o->clean = clean == "true";
  if (o->sub_persistent && o->version == proto::Version::kV5 && o->session_expiry == 0) {
    std::fprintf(stderr, "ringmq-bench: --sub-persistent with -V 5 needs --session-expiry > 0\n");
    *exit_code = 1;
    return false;
  }
  if (o->client_prefix.empty()) {
    // Stable ids let a persistent subscriber resume its session in the next run.
    o->client_prefix = o->sub_persistent ? "rmqb-" : "rmqb" + std::to_string(getpid()) + "-";
  }

  // Defaults that depend on the scenario.
  auto set = [](uint32_t& v, uint32_t d) {
    if (v == 0) v = d;
  };
  switch (o->scenario) {
    case ScenarioKind::kConn:
    case ScenarioKind::kPub:
    case ScenarioKind::kSub:
      set(o->clients, 1);
      if (o->topic.empty()) o->topic = "bench/%i";
      break;
    case ScenarioKind::kFanIn:
      set(o->pubs, o->clients ? o->clients : 16);
      set(o->subs, 1);
      if (o->topic.empty()) o->topic = "bench/in/%i";
      break;
    case ScenarioKind::kFanOut:
      set(o->pubs, 1);
      set(o->subs, o->clients ? o->clients : 100);
      if (o->topic.empty()) o->topic = "bench/out/%i";
      break;
    case ScenarioKind::kP2p:
      set(o->clients, 100);
      if (o->topic.empty()) o->topic = "bench/p2p/%i";
      break;
    case ScenarioKind::kShared:
      set(o->pubs, 4);
      set(o->subs, 4);
      if (o->topic.empty()) o->topic = "bench/shared/%i";
      break;
    case ScenarioKind::kRetained:
      set(o->clients, 100);
      if (o->topic.empty()) o->topic = "bench/retained/%i";
      break;
  }
  return true;
}

}  // namespace ringmq::bench
