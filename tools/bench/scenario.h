// Plan: what a scenario means in clients. MakePlan turns the options into one ClientSpec per
// connection (role, client id, topic or filter, connect group) plus what the run can expect, so the
// workers run any scenario with the same state machine. Thread-safety: built before the workers
// start, then read-only.
//
// Connect groups: group 0 connects (and subscribes) first, then group 1. Subscribers are in group
// 0 so that no message is published before every subscription exists; in `retained` the seeder is
// in group 0 and the subscribers, whose subscribe storm is what is measured, in group 1.
#ifndef RINGMQ_TOOLS_BENCH_SCENARIO_H_
#define RINGMQ_TOOLS_BENCH_SCENARIO_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/bench/options.h"

namespace ringmq::bench {

enum class Role : uint8_t {
  kIdle,        // connects and holds the connection
  kPublisher,   // publishes to `topic` during the run
  kSubscriber,  // subscribes to `filter`, checks what arrives
  kSeeder,      // publishes retained messages to the topic template before the subscribe storm
};

struct ClientSpec {
  Role role = Role::kIdle;
  uint8_t group = 0;
  uint32_t index = 0;         // the %i of this client
  uint32_t publisher_id = 0;  // in every payload header (publishers only)
  std::string client_id;
  bool clean = true;            // CONNECT clean session (3.1.x) / clean start (5)
  uint32_t session_expiry = 0;  // MQTT 5 Session Expiry Interval, sent when !clean
  std::string topic;            // publisher
  std::string filter;           // subscriber
};

struct Plan {
  std::vector<ClientSpec> clients;
  uint32_t publishers = 0;
  uint32_t subscribers = 0;
  uint32_t group_size[2] = {0, 0};
  // Deliveries each published message should cause (0: unknown, e.g. `pub` alone); with it the
  // report counts lost messages, not only gaps.
  uint64_t deliveries_per_publish = 0;
  // Per-publisher order/duplicate checks make sense only when each subscriber sees the whole stream
  // of the publishers it hears (not in `shared`, where the group splits it).
  bool check_order = true;
  bool has_run_phase = true;  // false for `retained`: the subscribe storm is the run
};

// `tmpl` with every "%i" replaced by `i`.
std::string ExpandTemplate(std::string_view tmpl, uint64_t i);
// `tmpl` with every topic level that contains "%i" replaced by "+": the filter that matches the
// topics of all clients.
std::string WildcardOf(std::string_view tmpl);

bool MakePlan(const Options& options, Plan* plan, std::string* error);

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_SCENARIO_H_
