// A shard's answers to the admin shard (REST API): sessions, subscriptions, publishing, retained
// messages and metrics. Runs on the shard's thread, as tasks posted by broker/admin_bridge.cc.
#include <fmt/format.h>

#include "admin_api/broker_hooks.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/shard.h"
#include "proto/topic.h"

namespace ringmq::broker {

admin_api::SessionInfo Shard::SessionView(const std::string& id, Session& s) const {
  admin_api::SessionInfo i;
  i.client_id = id;
  i.connected = s.connection != nullptr;
  i.protocol_version = static_cast<uint8_t>(s.version);
  i.clean = s.clean_start;
  i.expiry_interval = s.expiry_interval_s;
  i.token_id = s.owner_token_id;
  i.shard = id_;
  i.subscriptions = s.subscriptions().size();
  i.queued = s.queued_count();
  i.inflight = s.inflight_count();
  if (const Connection* c = s.connection) {
    i.keep_alive = c->keep_alive_s;
    i.peer = c->peer;
    i.connected_since = c->connected_ns / 1'000'000'000;
  }
  return i;
}

void Shard::CollectSessions(const admin_api::IdSet& sel, std::vector<admin_api::SessionInfo>* out) {
  owner_.Check();
  for (const auto& [id, s] : sessions_) {
    if (sel.Contains(id)) out->push_back(SessionView(id, *s));
  }
}

void Shard::DeleteSessions(const admin_api::IdSet& sel, std::vector<std::string>* out) {
  owner_.Check();
  std::vector<Session*> doomed;
  for (const auto& [id, s] : sessions_) {
    if (sel.Contains(id)) doomed.push_back(s.get());
  }
  // A close is queued (it publishes a will and ends the session, whose deliveries could otherwise
  // close and destroy sessions still in `doomed`); destroying an offline session only delivers.
  for (Session* s : doomed) {
    out->push_back(s->client_id());
    s->expiry_interval_s = 0;  // the session ends with its connection
    if (s->connection != nullptr) {
      QueueClose(*s->connection, proto::ReasonCode::kAdministrativeAction,
                 "session deleted over the REST API");
    } else {
      sessions_.Destroy(*s);
    }
  }
}

void Shard::CollectSubscriptions(const admin_api::IdSet& sel,
                                 std::vector<admin_api::SubscriptionInfo>* out) {
  owner_.Check();
  for (const auto& [id, s] : sessions_) {
    if (!sel.Contains(id)) continue;
    for (const auto& [filter, sub] : s->subscriptions()) {
      admin_api::SubscriptionInfo i;
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

void Shard::PublishFromAdmin(route::MessagePtr m) {
  owner_.Check();
  stats_.messages_in.Add();
  (void)router_.Publish(std::move(m), {});
}

void Shard::CollectRetained(const std::string& filter, std::vector<route::MessagePtr>* out) {
  owner_.Check();
  const int64_t now = NowMs();
  for (const auto& [topic, m] : retained_) {
    if (!Expired(*m, now) && proto::Matches(filter, topic)) out->push_back(m);
  }
}

void Shard::DeleteRetained(const std::string& filter, std::vector<std::string>* out) {
  owner_.Check();
  for (auto it = retained_.begin(); it != retained_.end();) {
    if (proto::Matches(filter, it->first)) {
      out->push_back(it->first);
      Log(wal::WalRetainedCleared{it->first});
      it = retained_.Erase(it);
    } else {
      ++it;
    }
  }
}

void Shard::CollectMetrics(base::MetricsText* out) {
  owner_.Check();
  // On this shard's thread: its own state is exact; other shards' ring indices are read with the
  // ordering SpscRing::SizeApprox documents.
  const std::string shard = fmt::format("shard=\"{}\"", id_);
  size_t connected = 0, subscriptions = 0, queued = 0, inflight = 0, spilled = 0;
  uint64_t queued_bytes = 0;
  conns_.ForEach([&connected](const Connection& c) {
    connected += c.state == Connection::State::kActive ? 1 : 0;
  });
  for (const auto& [id, s] : sessions_) {
    subscriptions += s->subscriptions().size();
    queued += s->queued_count();
    queued_bytes += s->queued_bytes();
    spilled += s->spilled_count();
    inflight += s->inflight_count();
  }
  out->Add(base::Metric::kConnections, shard, connected);
  out->Add(base::Metric::kConnectsTotal, shard, stats_.connections.Get());
  out->Add(base::Metric::kSessions, shard, sessions_.size());
  out->Add(base::Metric::kSubscriptions, shard, subscriptions);
  out->Add(base::Metric::kRetained, shard, retained_.size());
  out->Add(base::Metric::kQueued, shard, queued);
  out->Add(base::Metric::kQueuedBytes, shard, queued_bytes);
  out->Add(base::Metric::kSpilledMessages, shard, spilled);
  out->Add(base::Metric::kQueueMemoryBytes, shard, spill_.memory_used);
  out->Add(base::Metric::kInflight, shard, inflight);
  out->Add(base::Metric::kMessagesIn, shard, stats_.messages_in.Get());
  out->Add(base::Metric::kMessagesOut, shard, stats_.messages_out.Get());
  out->Add(base::Metric::kBytesIn, shard, stats_.bytes_in.Get());
  out->Add(base::Metric::kBytesOut, shard, stats_.bytes_out.Get());
  const std::pair<const char*, const base::Counter*> drops[] = {
      {"qos0_output_full", &stats_.dropped_qos0},
      {"queue_full", &stats_.dropped_queue_full},
      {"no_shared_member", &stats_.dropped_no_member},
      {"rate_limited", &stats_.dropped_rate_limited},
      {"not_authorized", &stats_.dropped_not_authorized},
      {"acl", &stats_.dropped_acl},
      {"queue_disk_full", &stats_.dropped_queue_disk},
      {"spill_read_error", &stats_.dropped_spill_lost},
  };
  for (const auto& [reason, counter] : drops) {
    out->Add(base::Metric::kDropped, fmt::format("{},reason=\"{}\"", shard, reason),
             counter->Get());
  }
  const std::pair<const char*, const base::Counter*> refusals[] = {
      {"max_connections", &stats_.refused_max_connections},
      {"max_connections_per_token", &stats_.refused_max_connections_per_token},
      {"max_retained_bytes", &stats_.refused_max_retained_bytes},
      {"wal_failed", &stats_.unacknowledged_not_durable},
  };
  for (const auto& [reason, counter] : refusals) {
    out->Add(base::Metric::kRefused, fmt::format("{},reason=\"{}\"", shard, reason),
             counter->Get());
  }
  out->Add(base::Metric::kRetainedBytes, shard, retained_.bytes());
  out->Add(base::Metric::kSharedRoundRobin, shard, router_.round_robin_entries());
  if (id_ == 0) {
    // Broker-wide: what max_connections and max_retained_bytes are checked against.
    out->Add(base::Metric::kClientsCounted, "", broker_.connection_quota().total());
    out->Add(base::Metric::kRetainedBytesTotal, "", broker_.retained_quota().total());
    out->Add(base::Metric::kQueueDiskBytes, "", broker_.queue_disk().used());
    // Process-wide: log lines lost because stderr was not read fast enough (base/log.h).
    out->Add(base::Metric::kLogLinesDropped, "", base::LogLinesDropped());
  }
  const ShardRings& rings = broker_.rings();
  for (uint16_t to = 0; to < broker_.shard_count(); ++to) {
    if (to == id_) continue;
    const std::string pair = fmt::format("from=\"{}\",to=\"{}\"", id_, to);
    out->Add(base::Metric::kRingMessages, pair, rings.SizeApprox(id_, to));
    out->Add(base::Metric::kOutboxMessages, pair, to < outbox_.size() ? outbox_[to].size() : 0);
  }
  out->Add(base::Metric::kInputPauses, shard, stats_.input_pauses.Get());
  out->Add(base::Metric::kAcceptPauses, shard, stats_.accept_pauses.Get());
  const uint64_t pausing_ns =
      outbox_backlogged_ ? static_cast<uint64_t>(MonoNs() - backlog_since_ns_) : 0;
  out->AddSeconds(base::Metric::kInputPausedSeconds, shard,
                  stats_.input_paused_ns.Get() + pausing_ns);
  out->AddHistogram(base::Metric::kLoopTurn, shard, stats_.loop_turn.Read());
  static const wal::WalWriter::Stats kNoWal;
  const wal::WalWriter::Stats& wal = log_.stats() != nullptr ? *log_.stats() : kNoWal;
  out->Add(base::Metric::kWalRecords, shard, wal.records);
  out->Add(base::Metric::kWalBytes, shard, wal.bytes);
  out->Add(base::Metric::kWalSyncs, shard, wal.syncs);
  out->AddHistogram(base::Metric::kWalFsync, shard, wal.fsync.Read());
}

}  // namespace ringmq::broker
