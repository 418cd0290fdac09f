// Delivery on a shard: a message reaching a session (flow control, the output queue), retained
// messages, wills and the end of sessions (DESIGN.md section 4). Routing is broker/router.h.
#include <algorithm>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/shard.h"
#include "proto/topic.h"

namespace ringmq::broker {

using proto::ReasonCode;

void Shard::Deliver(Session& s, Delivery d) {
  Connection* c = s.connection;
  if (c != nullptr && d.qos == 0) {
    // QoS 0 fast path: straight to the output, dropped (and counted) when the client is too slow.
    if (c->out.size() + c->sending.size() > cfg_.max_output_bytes) {
      stats_.dropped_qos0.Add();
      return;
    }
    if (QueueDelivery(*c, d, 0, 0, NowMs())) {
      stats_.messages_out.Add();
      MarkDirty(*c);
    }
    return;
  }
  const uint8_t qos = d.qos;
  LogQueued(s, d);
  const uint64_t wal_id = d.wal_id;
  const Session::Counters before = s.counters();
  const bool queued = s.Enqueue(std::move(d), c != nullptr);
  if (!queued && wal_id != 0) Log(wal::WalMessageAcked{s.client_id(), wal_id});
  LogFinished(s);  // drop-oldest may have pushed out logged messages
  // drop-new: this one; drop-oldest: the older ones that made room for it.
  CountDrops(s, before);
  if (!queued) {
    if (qos == 0) return;
    ++refused_deliveries_;
    if (c != nullptr && cfg_.queue_full_policy == QueueFullPolicy::kDisconnect) {
      // Not now: closing publishes the will and may end the session, while the caller may be
      // walking a match list (DeliverLocal) or the sessions (Tick, DestroySession).
      QueueClose(*c, ReasonCode::kQuotaExceeded, "session queue full");
      return;
    }
    if (s.queued_count() == 0) return;  // drop-new with an empty queue: nothing to pump
  }
  if (c != nullptr) PumpSession(s);
}

void Shard::PumpSession(Session& s) {
  Connection* c = s.connection;
  if (c == nullptr || c->state != Connection::State::kActive) return;
  const uint16_t window = std::min(cfg_.max_inflight, c->client_receive_maximum);
  const int64_t now = NowMs();
  std::vector<uint16_t> too_large;
  const Session::Counters before = s.counters();
  s.Pump(window, now, [&](const Delivery& d, uint16_t packet_id) {
    if (!QueueDelivery(*c, d, d.qos, packet_id, now)) {
      // Larger than the client's Maximum Packet Size: discarded for it [MQTT-3.1.2-25].
      if (packet_id != 0) too_large.push_back(packet_id);
      return;
    }
    if (d.wal_id != 0) {
      LogInflight(
          s, d.wal_id, packet_id,
          d.qos == 1 ? wal::WalInflightPhase::kAwaitPuback : wal::WalInflightPhase::kAwaitPubrec);
    }
    stats_.messages_out.Add();
  });
  for (uint16_t id : too_large) (void)s.Discard(id);
  LogFinished(s);
  CountDrops(s, before);  // read back from the spill: refused by a new ACL, or unreadable
  MarkDirty(*c);
}

void Shard::CountDrops(const Session& s, const Session::Counters& before) {
  const Session::Counters now = s.counters();
  if (now.dropped != before.dropped) stats_.dropped_queue_full.Add(now.dropped - before.dropped);
  if (now.acl_dropped != before.acl_dropped) {
    stats_.dropped_acl.Add(now.acl_dropped - before.acl_dropped);
  }
  const uint64_t disk = now.disk_refused - before.disk_refused;
  const uint64_t lost = now.spill_lost - before.spill_lost;
  if (disk == 0 && lost == 0) return;
  stats_.dropped_queue_disk.Add(disk);
  stats_.dropped_spill_lost.Add(lost);
  // Once a second per shard at most: a full disk refuses every message of every spilling session.
  const int64_t t = NowMs();
  if (t < next_spill_log_ms_) return;
  next_spill_log_ms_ = t + 1000;
  if (lost != 0) {
    LOG_ERROR_S(kMqtt, "shard {}: {} queued message(s) of {} lost: {}", id_, lost, s.client_id(),
                s.spill_error());
  } else {
    LOG_WARN_S(kMqtt,
               "shard {}: a message for {} was dropped: its queue is past queue_memory_bytes and "
               "cannot spill: {} (ringmq_dropped_total{{reason=\"queue_disk_full\"}})",
               id_, s.client_id(), s.spill_error());
  }
}

bool Shard::QueueDelivery(Connection& c, const Delivery& d, uint8_t qos, uint16_t packet_id,
                          int64_t now) {
  // Encoded once for every subscriber of the message (route/encoded_publish.h), unless this one
  // needs bytes of its own: its subscription identifiers, a topic alias, or an expiry interval
  // that counts down.
  const bool own = d.msg->expires_at_ms != 0 || c.client_topic_alias_maximum != 0 ||
                   (c.version == proto::Version::kV5 && !d.subscription_ids.empty());
  if (!own) {
    const route::EncodedPublish::Bytes b = encoded_.Get(d.msg, c.version, qos, d.retain);
    if (!b.packet.empty()) return c.QueueEncoded(b.packet, b.id_offset, packet_id);
  }
  proto::Publish p = ToPublish(*d.msg, qos, d.retain, packet_id, now);
  if (c.version == proto::Version::kV5) p.props.subscription_identifiers = d.subscription_ids;
  return QueuePublish(c, p);
}

bool Shard::QueuePublish(Connection& c, proto::Publish& p) {
  if (c.client_topic_alias_maximum != 0) {
    // Assignment policy: the first topics sent get an alias each until the client's maximum is
    // reached; later topics are sent in full. Cheap and stable for telemetry's repeated topics.
    if (c.aliases == nullptr) c.aliases = std::make_unique<Connection::TopicAliases>();
    std::unordered_map<std::string, uint16_t>& out = c.aliases->out;
    auto it = out.find(std::string(p.topic));
    if (it != out.end()) {
      p.props.topic_alias = it->second;
      const std::string_view topic = p.topic;
      p.topic = {};
      if (c.Queue(p)) return true;
      p.topic = topic;  // too large even without the topic: give up below
      p.props.topic_alias.reset();
    } else if (out.size() < c.client_topic_alias_maximum) {
      const auto alias = static_cast<uint16_t>(out.size() + 1);
      p.props.topic_alias = alias;
      if (!c.Queue(p)) return false;
      out.emplace(p.topic, alias);
      return true;
    }
  }
  return c.Queue(p);
}

bool Shard::RetainedQuotaExceeded(std::string_view topic, size_t payload_size) {
  const uint64_t max = cfg_.max_retained_bytes;
  if (max == 0 || payload_size == 0) return false;  // unlimited, or a deletion
  // Checked here, on the publisher's shard, against what the owner shards have stored so far
  // (route/retained_quota.h): the owner of the topic may be another shard.
  const uint64_t hash = smp::KeyHash(topic);
  const bool exceeded = broker_.retained_quota().WouldExceed(
      smp::ShardOfHash(hash, broker_.shard_count()), hash, topic.size() + payload_size, max);
  if (exceeded) stats_.refused_max_retained_bytes.Add();
  return exceeded;
}

void Shard::StoreRetained(const route::MessagePtr& m) {
  LogRetained(*m);
  if (m->payload.empty()) {
    retained_.Erase(m->topic);  // [MQTT-3.3.1-10]: an empty retained message deletes
  } else {
    retained_.Set(m);
  }
}

void Shard::ToCluster(const route::MessagePtr& m) {
  if (ClusterLink* link = broker_.cluster_link()) link->Publish(id_, m);
}

void Shard::ClusterInterest(std::string_view filter, bool add) {
  if (ClusterLink* link = broker_.cluster_link()) link->Interest(id_, filter, add);
}

void Shard::ClusterSharedInterest(const SharedKey& key, bool add) {
  if (ClusterLink* link = broker_.cluster_link()) {
    link->SharedInterest(id_, key.group, key.filter, add);
  }
}

bool Shard::SharedAcrossNodes() const { return broker_.cluster_link() != nullptr; }

void Shard::AnswerRetainQuery(RetainQuery& q) {
  retained_.EraseExpired(NowMs());
  for (const auto& [topic, m] : retained_) {
    if (proto::Matches(q.filter, topic)) q.matches.push_back(m);
  }
}

void Shard::SendRetained(Session& s, const std::string& sub_filter, const SubOptions& o,
                         const std::vector<route::MessagePtr>& matches) {
  if (matches.empty() || s.subscriptions().count(sub_filter) == 0) return;  // unsubscribed since
  for (const route::MessagePtr& m : matches) {
    if (o.no_local && m->origin_client_id == s.client_id()) continue;
    Delivery d;
    d.msg = m;
    d.qos = std::min(o.qos, m->qos);
    d.retain = true;  // retained messages sent on subscribe keep the flag [MQTT-3.3.1-8]
    if (o.subscription_id != 0) d.subscription_ids.push_back(o.subscription_id);
    Deliver(s, std::move(d));
  }
}

void Shard::PublishWill(const Session& s, route::MessagePtr m) {
  if (!MayPublish(s.acl.get(), m->topic)) {
    // Allowed at CONNECT, but the token's ACL changed since: the will is a publish by this
    // client, with the rights it has now.
    stats_.dropped_not_authorized.Add();
    LOG_INFO_S(kMqtt, "shard {}: will of {} on '{}' not published: not allowed by the token", id_,
               base::Cut(s.client_id()), base::Cut(m->topic));
    return;
  }
  LOG_DEBUG_S(kMqtt, "shard {}: publishing will of {} to {}", id_, base::Cut(s.client_id()),
              base::Cut(m->topic));
  bool store = true;
  if (m->retain && RetainedQuotaExceeded(m->topic, m->payload.size())) {
    // Nobody to tell: the will is delivered, not stored as retained.
    LOG_INFO_S(kMqtt,
               "shard {}: retained will of {} on '{}' not stored: max_retained_bytes reached", id_,
               base::Cut(s.client_id()), base::Cut(m->topic));
    store = false;
  }
  (void)router_.Publish(std::move(m), {.store_retained = store});
}

void Shard::ReleaseConnectionQuota(Connection& c) {
  if (!c.quota_counted) return;
  c.quota_counted = false;
  broker_.connection_quota().Release(c.quota_key);
  c.quota_key.clear();
}

void Shard::ConnectionLost(Connection& c, const char* why, std::optional<ReasonCode> code) {
  ReleaseConnectionQuota(c);
  Session* s = c.session;
  if (s == nullptr) return;
  LogDisconnected(c, *s, why, code);
  c.session = nullptr;
  sessions_.Disconnected(*s, NowMs(), c.publish_will);
}

}  // namespace ringmq::broker
