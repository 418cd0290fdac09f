// Routing on a shard: publish to the interested shards, match the local trie, deliver to sessions
// with flow control, retained messages, wills and the end of sessions (DESIGN.md section 4).
#include <algorithm>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/shard.h"
#include "proto/topic.h"

namespace ringmq::broker {

using proto::ReasonCode;

void Shard::Publish(route::MessagePtr m, bool store_retained) {
  const uint64_t shards = broker_.index().ShardsFor(m->topic);
  for (uint64_t rest = shards & ~(uint64_t{1} << id_); rest != 0; rest &= rest - 1) {
    ShardMsg msg;
    msg.kind = ShardMsg::Kind::kDeliver;
    msg.from = id_;
    msg.msg = m;
    PostToShard(static_cast<uint16_t>(__builtin_ctzll(rest)), std::move(msg));
  }
  if (shards & (uint64_t{1} << id_)) DeliverLocal(m);
  RouteShared(m, nullptr);
  if (m->retain && store_retained) {
    // Retained messages live on the shard that owns hash(topic).
    const uint16_t owner = ShardOfKey(m->topic);
    if (owner == id_) {
      StoreRetained(m);
    } else {
      ShardMsg msg;
      msg.kind = ShardMsg::Kind::kRetain;
      msg.from = id_;
      msg.msg = std::move(m);
      PostToShard(owner, std::move(msg));
    }
  }
}

void Shard::DeliverLocal(const route::MessagePtr& m) {
  // The walk below holds pointers into trie_ and calls Deliver, which never changes trie_ or
  // sessions_: it queues, sends or drops, and a close it decides is queued (QueueClose), so no
  // will is published and no session ends during the walk. The match list is a local all the
  // same (reusing match_scratch_'s capacity): a nested call would start with a list of its own.
  std::vector<const LocalSub*> matches = std::move(match_scratch_);
  matches.clear();
  trie_.Match(m->topic, [&matches](const LocalSub& l) { matches.push_back(&l); });
  // Overlapping subscriptions of one session: one delivery with the highest QoS and every
  // subscription identifier (MQTT 5.0 section 3.3.4) — 3.1.1 allows the same.
  std::sort(matches.begin(), matches.end(),
            [](const LocalSub* a, const LocalSub* b) { return a->session < b->session; });
  for (size_t i = 0; i < matches.size();) {
    Session& s = *matches[i]->session;
    Delivery d;
    bool any = false;
    bool rap = false;
    for (; i < matches.size() && matches[i]->session == &s; ++i) {
      const SubOptions& o = matches[i]->options;
      if (o.no_local && m->origin_client_id == s.client_id()) continue;  // [MQTT-3.8.3-3]
      any = true;
      d.qos = std::max(d.qos, o.qos);
      rap = rap || o.retain_as_published;
      if (o.subscription_id != 0) d.subscription_ids.push_back(o.subscription_id);
    }
    if (!any) continue;
    d.qos = std::min(d.qos, m->qos);
    // Live messages carry the retain flag only with Retain As Published [MQTT-3.3.1-12/13].
    d.retain = rap && m->retain;
    d.msg = m;
    Deliver(s, std::move(d));
  }
  match_scratch_ = std::move(matches);
}

void Shard::Deliver(Session& s, Delivery d) {
  Connection* c = s.connection;
  if (c != nullptr && d.qos == 0) {
    // QoS 0 fast path: straight to the output, dropped (and counted) when the client is too slow.
    if (c->out.size() + c->sending.size() > cfg_.max_output_bytes) {
      stats_.dropped_qos0.Add();
      return;
    }
    proto::Publish p = ToPublish(*d.msg, 0, d.retain, 0, NowMs());
    if (c->version == proto::Version::kV5) p.props.subscription_identifiers = d.subscription_ids;
    if (QueuePublish(*c, p)) {
      stats_.messages_out.Add();
      MarkDirty(*c);
    }
    return;
  }
  const uint8_t qos = d.qos;
  LogQueued(s, d);
  const uint64_t wal_id = d.wal_id;
  const bool queued = s.Enqueue(std::move(d), c != nullptr);
  if (!queued && wal_id != 0) Log(wal::WalMessageAcked{s.client_id(), wal_id});
  LogFinished(s);  // drop-oldest may have pushed out a logged message
  if (!queued) {
    if (qos == 0) return;
    stats_.dropped_queue_full.Add();
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
  s.Pump(window, now, [&](const Delivery& d, uint16_t packet_id) {
    proto::Publish p = ToPublish(*d.msg, d.qos, d.retain, packet_id, now);
    if (c->version == proto::Version::kV5) p.props.subscription_identifiers = d.subscription_ids;
    if (!QueuePublish(*c, p)) {
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
  MarkDirty(*c);
}

bool Shard::QueuePublish(Connection& c, proto::Publish& p) {
  if (c.client_topic_alias_maximum != 0) {
    // Assignment policy: the first topics sent get an alias each until the client's maximum is
    // reached; later topics are sent in full. Cheap and stable for telemetry's repeated topics.
    auto it = c.outbound_aliases.find(std::string(p.topic));
    if (it != c.outbound_aliases.end()) {
      p.props.topic_alias = it->second;
      const std::string_view topic = p.topic;
      p.topic = {};
      if (c.Queue(p)) return true;
      p.topic = topic;  // too large even without the topic: give up below
      p.props.topic_alias.reset();
    } else if (c.outbound_aliases.size() < c.client_topic_alias_maximum) {
      const auto alias = static_cast<uint16_t>(c.outbound_aliases.size() + 1);
      p.props.topic_alias = alias;
      if (!c.Queue(p)) return false;
      c.outbound_aliases.emplace(p.topic, alias);
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

// Shared subscriptions. Every member session is registered in the TopicIndex under its group; a
// connected member also under kLivePrefix + group ('#' never occurs in a group name). The publisher
// picks a shard among those with connected members (or, when none is connected, among all members)
// round robin, and that shard picks one of its members round robin, preferring connected ones.
namespace {
constexpr char kLivePrefix = '#';
}  // namespace

void Shard::RouteShared(const route::MessagePtr& m, const SharedKey* only) {
  struct Pick {
    SharedKey key;
    uint64_t all = 0;
    uint64_t live = 0;
  };
  std::vector<Pick> picks;
  broker_.index().SharedGroupsFor(
      m->topic, [&](std::string_view group, std::string_view filter, uint64_t mask) {
        const bool live = !group.empty() && group.front() == kLivePrefix;
        if (live) group.remove_prefix(1);
        if (only != nullptr && (group != only->group || filter != only->filter)) return;
        auto it = std::find_if(picks.begin(), picks.end(), [&](const Pick& p) {
          return p.key.group == group && p.key.filter == filter;
        });
        if (it == picks.end()) {
          picks.push_back(Pick{SharedKey{std::string(group), std::string(filter)}});
          it = picks.end() - 1;
        }
        (live ? it->live : it->all) |= mask;
      });
  for (Pick& p : picks) {
    uint64_t mask = p.live != 0 ? p.live : p.all;
    if (mask == 0) continue;
    uint32_t nth = shared_rr_[p.key]++ % static_cast<uint32_t>(__builtin_popcountll(mask));
    while (nth-- > 0) mask &= mask - 1;
    const auto shard = static_cast<uint16_t>(__builtin_ctzll(mask));
    auto local = shared_.find(p.key);
    SharedKeyPtr key =
        local != shared_.end() ? local->second.key : std::make_shared<const SharedKey>(p.key);
    if (shard == id_) {
      DeliverShared(m, key);
    } else {
      ShardMsg msg;
      msg.kind = ShardMsg::Kind::kDeliverShared;
      msg.from = id_;
      msg.msg = m;
      msg.shared = std::move(key);
      PostToShard(shard, std::move(msg));
    }
  }
}

void Shard::SweepSharedRoundRobin() {
  // shared_rr_ gains an entry for every group this shard publishes to; an entry lives as long as
  // its group has a member on some shard. A bounded slice per tick (a loop turn stays short):
  // a group that lost its last member is forgotten within size / kSweepPerTick ticks.
  constexpr size_t kSweepPerTick = 256;
  auto it = shared_rr_.lower_bound(shared_rr_sweep_from_);
  for (size_t n = 0; n < kSweepPerTick && it != shared_rr_.end(); ++n) {
    if (broker_.index().SharedShards(it->first.group, it->first.filter) == 0) {
      it = shared_rr_.erase(it);
    } else {
      ++it;
    }
  }
  shared_rr_sweep_from_ = it == shared_rr_.end() ? SharedKey{} : it->first;
}

void Shard::DeliverShared(const route::MessagePtr& m, const SharedKeyPtr& key) {
  auto it = shared_.find(*key);
  if (it == shared_.end() || it->second.members.empty()) {
    stats_.dropped_no_member.Add();  // the last member left while the message was on its way
    return;
  }
  SharedGroup& g = it->second;
  const size_t n = g.members.size();
  size_t chosen = n;
  for (size_t i = 0; i < n && chosen == n; ++i) {
    if (g.members[(g.next + i) % n].first->connection != nullptr) chosen = (g.next + i) % n;
  }
  if (chosen == n) chosen = g.next % n;  // no member connected here: queue for one (persistent)
  g.next = (chosen + 1) % n;
  Session* pick = g.members[chosen].first;
  const SubOptions& o = g.members[chosen].second;
  Delivery d;
  d.msg = m;
  d.qos = std::min(o.qos, m->qos);
  d.retain = o.retain_as_published && m->retain;
  if (o.subscription_id != 0) d.subscription_ids.push_back(o.subscription_id);
  d.shared = g.key;
  Deliver(*pick, std::move(d));
}

void Shard::AddSharedMember(Session& s, const SharedKey& key, const SubOptions& o) {
  SharedGroup& g = shared_[key];
  if (!g.key) g.key = std::make_shared<const SharedKey>(key);
  g.members.emplace_back(&s, o);
  (void)broker_.index().AddShared(id_, key.group, key.filter);
  if (s.connection != nullptr) {
    (void)broker_.index().AddShared(id_, kLivePrefix + key.group, key.filter);
  }
}

void Shard::RemoveSharedMember(Session& s, const SharedKey& key) {
  auto it = shared_.find(key);
  if (it == shared_.end()) return;
  auto& members = it->second.members;
  members.erase(
      std::remove_if(members.begin(), members.end(), [&s](const auto& m) { return m.first == &s; }),
      members.end());
  (void)broker_.index().RemoveShared(id_, key.group, key.filter);
  if (s.connection != nullptr) {
    (void)broker_.index().RemoveShared(id_, kLivePrefix + key.group, key.filter);
  }
  if (members.empty()) shared_.erase(it);
}

void Shard::SetSharedLive(Session& s, bool live) {
  for (const auto& [requested, sub] : s.subscriptions()) {
    for (const std::string& filter : sub.effective) {
      auto sf = proto::ParseSharedFilter(filter);
      if (!sf) continue;
      const std::string group = kLivePrefix + std::string(sf->group);
      if (live) {
        (void)broker_.index().AddShared(id_, group, sf->filter);
      } else {
        (void)broker_.index().RemoveShared(id_, group, sf->filter);
      }
    }
  }
}

void Shard::Attach(Session& s, const Subscription& sub) {
  for (const std::string& filter : sub.effective) {
    if (auto sf = proto::ParseSharedFilter(filter)) {
      AddSharedMember(s, SharedKey{std::string(sf->group), std::string(sf->filter)}, sub.options);
    } else {
      trie_.Insert(filter, LocalSub{&s, sub.options});
      (void)broker_.index().Add(id_, filter);
    }
  }
}

void Shard::Detach(Session& s, const Subscription& sub) {
  for (const std::string& filter : sub.effective) {
    if (auto sf = proto::ParseSharedFilter(filter)) {
      RemoveSharedMember(s, SharedKey{std::string(sf->group), std::string(sf->filter)});
    } else {
      // One entry per effective filter was inserted; remove just one.
      bool removed = false;
      trie_.Erase(filter, [&](const LocalSub& l) {
        if (removed || l.session != &s) return false;
        return removed = true;
      });
      (void)broker_.index().Remove(id_, filter);
    }
  }
}

void Shard::PublishWill(Session& s) {
  if (!s.will) return;
  route::MessagePtr m = std::move(s.will->msg);
  s.will.reset();
  s.will_due_ms = 0;
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
  Publish(std::move(m), store);
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
  SetSharedLive(*s, false);
  s->connection = nullptr;
  s->offline_since_ms = NowMs();
  if (s->expiry_interval_s != 0) LogSessionEnd(*s, /*removed=*/false);
  if (c.publish_will && s->will) {
    if (s->will->delay_s == 0 || s->expiry_interval_s == 0) {
      PublishWill(*s);
    } else {
      s->will_due_ms = s->offline_since_ms + int64_t{s->will->delay_s} * 1000;
    }
  } else {
    s->will.reset();
  }
  if (s->expiry_interval_s == 0) DestroySession(*s);
}

void Shard::DestroySession(Session& s) {
  if (s.will && s.will_due_ms != 0) PublishWill(s);  // the session ends before the will delay
  LogSessionEnd(s, /*removed=*/true);
  for (const auto& [requested, sub] : s.subscriptions()) Detach(s, sub);
  // Messages that reached this member of a shared subscription but not its client go to another
  // member (MQTT 5.0 section 4.8.2).
  std::vector<Delivery> undelivered;
  s.ForEachUndelivered([&](const Delivery& d) {
    if (d.shared && d.msg) undelivered.push_back(d);
  });
  for (const Delivery& d : undelivered) RouteShared(d.msg, d.shared.get());
  if (s.connection != nullptr) s.connection->session = nullptr;
  const std::string id = s.client_id();
  sessions_.erase(id);  // frees s
}

}  // namespace ringmq::broker
