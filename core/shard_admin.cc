// A shard's answers to the admin shard (REST API): sessions, subscriptions, publishing, retained
// messages and metrics. Runs on the shard's thread, as tasks posted by core/admin_bridge.cc.
#include <fmt/format.h>

#include "core/broker.h"
#include "core/shard.h"
#include "proto/topic.h"
#include "rest/broker_hooks.h"

namespace ringmq::core {

void Shard::CollectSessions(const rest::Selector& sel, std::vector<rest::SessionInfo>* out) {
  for (const auto& [id, s] : sessions_) {
    if (!sel.Contains(id)) continue;
    rest::SessionInfo i;
    i.client_id = id;
    i.connected = s->connection != nullptr;
    i.protocol_version = static_cast<uint8_t>(s->version);
    i.clean = s->clean_start;
    i.expiry_interval = s->expiry_interval_s;
    i.token_id = s->acl ? s->acl->token_id() : 0;
    i.shard = id_;
    i.subscriptions = s->subscriptions().size();
    i.queued = s->queued_count();
    i.inflight = s->inflight_count();
    if (const Connection* c = s->connection) {
      i.keep_alive = c->keep_alive_s;
      i.peer = c->peer;
      i.connected_since = c->connected_unix;
    }
    out->push_back(std::move(i));
  }
}

void Shard::DeleteSessions(const rest::Selector& sel, std::vector<std::string>* out) {
  std::vector<Session*> doomed;
  for (const auto& [id, s] : sessions_) {
    if (sel.Contains(id)) doomed.push_back(s.get());
  }
  for (Session* s : doomed) {
    out->push_back(s->client_id());
    s->expiry_interval_s = 0;  // the session ends with its connection
    if (s->connection != nullptr) {
      ProtocolClose(*s->connection, proto::ReasonCode::kAdministrativeAction,
                    "session deleted over the REST API");
    } else {
      DestroySession(*s);
    }
  }
}

void Shard::CollectSubscriptions(const rest::Selector& sel,
                                 std::vector<rest::SubscriptionInfo>* out) {
  for (const auto& [id, s] : sessions_) {
    if (!sel.Contains(id)) continue;
    for (const auto& [filter, sub] : s->subscriptions()) {
      rest::SubscriptionInfo i;
      i.client_id = id;
      i.filter = filter;
      i.qos = sub.options.qos;
      i.no_local = sub.options.no_local;
      i.retain_as_published = sub.options.retain_as_published;
      i.retain_handling = sub.options.retain_handling;
      i.subscription_id = sub.options.subscription_id;
      i.effective = sub.effective;
      out->push_back(std::move(i));
    }
  }
}

void Shard::PublishFromAdmin(const rest::MqttMessage& m) {
  auto msg = std::make_shared<Message>();
  msg->topic = m.topic;
  msg->payload = m.payload;
  msg->qos = m.qos;
  msg->retain = m.retain;
  msg->payload_format_indicator = m.payload_format_indicator;
  if (!m.content_type.empty()) msg->content_type = m.content_type;
  if (!m.response_topic.empty()) msg->response_topic = m.response_topic;
  if (!m.correlation_data.empty()) msg->correlation_data = m.correlation_data;
  msg->user_properties = m.user_properties;
  if (m.message_expiry_interval) {
    msg->expires_at_ms = NowMs() + int64_t{*m.message_expiry_interval} * 1000;
  }
  stats_.messages_in.Add();
  Publish(std::move(msg));
}

void Shard::CollectRetained(const std::string& filter, std::vector<rest::MqttMessage>* out) {
  const int64_t now = NowMs();
  for (const auto& [topic, m] : retained_) {
    if (Expired(*m, now) || !proto::Matches(filter, topic)) continue;
    rest::MqttMessage r;
    r.topic = topic;
    r.payload = m->payload;
    r.qos = m->qos;
    r.retain = true;
    r.payload_format_indicator = m->payload_format_indicator;
    if (m->content_type) r.content_type = *m->content_type;
    if (m->response_topic) r.response_topic = *m->response_topic;
    if (m->correlation_data) r.correlation_data = *m->correlation_data;
    r.user_properties = m->user_properties;
    if (m->expires_at_ms != 0) {
      r.message_expiry_interval = static_cast<uint32_t>((m->expires_at_ms - now + 999) / 1000);
    }
    out->push_back(std::move(r));
  }
}

void Shard::DeleteRetained(const std::string& filter, std::vector<std::string>* out) {
  for (auto it = retained_.begin(); it != retained_.end();) {
    if (proto::Matches(filter, it->first)) {
      out->push_back(it->first);
      Log(WalRetainedCleared{it->first});
      it = retained_.Erase(it);
    } else {
      ++it;
    }
  }
}

void Shard::CollectMetrics(std::vector<std::string>* out) {
  size_t connected = 0;
  for (const auto& c : conns_) connected += c && c->state == Connection::State::kActive;
  out->push_back(fmt::format(
      "ringmq_connections{{shard=\"{0}\"}} {1}\n"
      "ringmq_sessions{{shard=\"{0}\"}} {2}\n"
      "ringmq_retained_messages{{shard=\"{0}\"}} {3}\n"
      "ringmq_messages_in_total{{shard=\"{0}\"}} {4}\n"
      "ringmq_messages_out_total{{shard=\"{0}\"}} {5}\n"
      "ringmq_dropped_total{{shard=\"{0}\",reason=\"qos0_output_full\"}} {6}\n"
      "ringmq_dropped_total{{shard=\"{0}\",reason=\"queue_full\"}} {7}\n"
      "ringmq_dropped_total{{shard=\"{0}\",reason=\"no_shared_member\"}} {8}\n"
      "ringmq_dropped_total{{shard=\"{0}\",reason=\"cross_shard_backlog\"}} {9}\n"
      "ringmq_dropped_total{{shard=\"{0}\",reason=\"rate_limited\"}} {10}\n"
      "ringmq_refused_total{{shard=\"{0}\",reason=\"max_connections\"}} {11}\n"
      "ringmq_refused_total{{shard=\"{0}\",reason=\"max_connections_per_token\"}} "
      "{12}\n"
      "ringmq_refused_total{{shard=\"{0}\",reason=\"max_retained_bytes\"}} {13}\n"
      "ringmq_retained_bytes{{shard=\"{0}\"}} {14}\n",
      id_, connected, sessions_.size(), retained_.size(), stats_.messages_in.Get(),
      stats_.messages_out.Get(), stats_.dropped_qos0.Get(), stats_.dropped_queue_full.Get(),
      stats_.dropped_no_member.Get(), stats_.dropped_cross_shard.Get(),
      stats_.dropped_rate_limited.Get(), stats_.refused_max_connections.Get(),
      stats_.refused_max_connections_per_token.Get(), stats_.refused_max_retained_bytes.Get(),
      retained_.bytes()));
  if (id_ == 0) {
    // Broker-wide: what max_connections and max_retained_bytes are checked against.
    out->push_back(fmt::format("ringmq_clients_counted {}\nringmq_retained_bytes_total {}\n",
                               broker_.connection_quota().total(),
                               broker_.retained_quota().total()));
  }
}

}  // namespace ringmq::core
