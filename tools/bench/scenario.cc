// Scenarios as client lists.
#include "tools/bench/scenario.h"

namespace ringmq::bench {

std::string ExpandTemplate(std::string_view tmpl, uint64_t i) {
  std::string out;
  out.reserve(tmpl.size() + 8);
  const std::string n = std::to_string(i);
  for (size_t p = 0; p < tmpl.size();) {
    if (tmpl.compare(p, 2, "%i") == 0) {
      out += n;
      p += 2;
    } else {
      out += tmpl[p++];
    }
  }
  return out;
}

std::string WildcardOf(std::string_view tmpl) {
  std::string out;
  size_t start = 0;
  for (;;) {
    const size_t slash = tmpl.find('/', start);
    const std::string_view level = tmpl.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    out += level.find("%i") == std::string_view::npos ? std::string(level) : std::string("+");
    if (slash == std::string_view::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

bool MakePlan(const Options& o, Plan* plan, std::string* error) {
  *plan = Plan();
  auto add = [&](Role role, uint8_t group, uint32_t ordinal, const char* tag) -> ClientSpec& {
    ClientSpec& c = plan->clients.emplace_back();
    c.role = role;
    c.group = group;
    c.index = o.start_number + ordinal;
    c.client_id = o.client_prefix + tag + std::to_string(c.index);
    c.clean = o.clean && !(role == Role::kSubscriber && o.sub_persistent);
    c.session_expiry = c.clean ? 0 : o.session_expiry;
    ++plan->group_size[group];
    if (role == Role::kPublisher || role == Role::kSeeder) {
      c.publisher_id = o.start_number + plan->publishers++;
    } else if (role == Role::kSubscriber) {
      ++plan->subscribers;
    }
    return c;
  };
  const std::string wildcard = WildcardOf(o.topic);
  switch (o.scenario) {
    case ScenarioKind::kConn:
      for (uint32_t i = 0; i < o.clients; ++i) add(Role::kIdle, 0, i, "c");
      plan->has_run_phase = true;
      break;
    case ScenarioKind::kPub:
      for (uint32_t i = 0; i < o.clients; ++i) {
        ClientSpec& c = add(Role::kPublisher, 1, i, "p");
        c.topic = ExpandTemplate(o.topic, c.index);
      }
      break;
    case ScenarioKind::kSub:
      for (uint32_t i = 0; i < o.clients; ++i) {
        ClientSpec& c = add(Role::kSubscriber, 0, i, "s");
        c.filter = ExpandTemplate(o.filter.empty() ? o.topic : o.filter, c.index);
      }
      break;
    case ScenarioKind::kFanIn:
    case ScenarioKind::kFanOut:
    case ScenarioKind::kShared: {
      const bool shared = o.scenario == ScenarioKind::kShared;
      for (uint32_t i = 0; i < o.subs; ++i) {
        ClientSpec& c = add(Role::kSubscriber, 0, i, "s");
        c.filter = shared ? "$share/" + o.share_group + "/" + wildcard : wildcard;
      }
      for (uint32_t i = 0; i < o.pubs; ++i) {
        ClientSpec& c = add(Role::kPublisher, 1, i, "p");
        c.topic = ExpandTemplate(o.topic, c.index);
      }
      plan->deliveries_per_publish = shared ? 1 : o.subs;
      plan->check_order = !shared;
      break;
    }
    case ScenarioKind::kP2p:
      for (uint32_t i = 0; i < o.clients; ++i) {
        ClientSpec& c = add(Role::kSubscriber, 0, i, "s");
        c.filter = ExpandTemplate(o.topic, c.index);
      }
      for (uint32_t i = 0; i < o.clients; ++i) {
        ClientSpec& c = add(Role::kPublisher, 1, i, "p");
        c.topic = ExpandTemplate(o.topic, c.index);
      }
      plan->deliveries_per_publish = 1;
      break;
    case ScenarioKind::kRetained: {
      ClientSpec& seeder = add(Role::kSeeder, 0, 0, "seed");
      seeder.topic = o.topic;  // the template: one topic per retained message
      for (uint32_t i = 0; i < o.clients; ++i) {
        ClientSpec& c = add(Role::kSubscriber, 1, i, "s");
        c.filter = wildcard;
      }
      plan->has_run_phase = false;
      plan->check_order = false;
      break;
    }
  }
  if (plan->clients.empty()) {
    *error = "the scenario has no clients";
    return false;
  }
  if ((o.scenario == ScenarioKind::kRetained || o.scenario == ScenarioKind::kFanIn ||
       o.scenario == ScenarioKind::kShared) &&
      wildcard == o.topic && plan->publishers > 1) {
    *error = "--topic needs a %i level so that publishers have distinct topics: " + o.topic;
    return false;
  }
  return true;
}

}  // namespace ringmq::bench
