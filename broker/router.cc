// Router (broker/router.h): publish to the interested shards, match the local trie, pick shared
// group members.
#include "broker/router.h"

#include <algorithm>

#include "proto/topic.h"
#include "smp/key_shard.h"

namespace ringmq::broker {

namespace {
// Every member session of a shared group is registered in the TopicIndex under its group; a
// connected member also under kLivePrefix + group ('#' never occurs in a group name). The publisher
// picks a shard among those with connected members (or, when none is connected, among all members)
// round robin, and that shard picks one of its members round robin, preferring connected ones.
constexpr char kLivePrefix = '#';

uint16_t LowestShard(uint64_t mask) { return static_cast<uint16_t>(__builtin_ctzll(mask)); }
}  // namespace

Router::Router(uint16_t shard, uint16_t shard_count, route::TopicIndex& index, Host& host,
               base::Counter& dropped_no_member, const base::OwnerThread& owner)
    : shard_(shard),
      shard_count_(shard_count),
      index_(index),
      host_(host),
      dropped_no_member_(dropped_no_member),
      owner_(owner) {}

ShardMsg Router::Post(ShardMsg::Kind kind, route::MessagePtr m) const {
  ShardMsg msg;
  msg.kind = kind;
  msg.from = shard_;
  msg.msg = std::move(m);
  return msg;
}

ShardMsg Router::PostDelivery(ShardMsg::Kind kind, route::MessagePtr m,
                              const PublishOptions& options) const {
  ShardMsg msg = Post(kind, std::move(m));
  msg.confirm = options.await_durable;
  msg.value = options.answer_tag;
  return msg;
}

uint32_t Router::Publish(route::MessagePtr m, PublishOptions options) {
  owner_.Check();
  if (options.to_cluster) host_.ToCluster(m);
  // In a cluster the shared groups get it back from NATS, which picks one node per group.
  const bool shared_here = !options.to_cluster || !host_.SharedAcrossNodes();
  return Route(std::move(m), options, shared_here);
}

void Router::PublishFromCluster(route::MessagePtr m, bool store_retained) {
  owner_.Check();
  (void)Route(std::move(m), {.store_retained = store_retained}, /*shared=*/false);
}

uint32_t Router::Route(route::MessagePtr m, const PublishOptions& options, bool shared) {
  uint32_t durable = 0;
  const uint64_t self = uint64_t{1} << shard_;
  const uint64_t shards = index_.ShardsFor(m->topic);
  for (uint64_t rest = shards & ~self; rest != 0; rest &= rest - 1) {
    durable +=
        host_.PostToShard(LowestShard(rest), PostDelivery(ShardMsg::Kind::kDeliver, m, options))
            ? 1
            : 0;
  }
  if (shards & self) DeliverLocal(m);
  if (shared) durable += RouteShared(m, nullptr, options);
  if (m->retain && options.store_retained) {
    // Retained messages live on the shard that owns hash(topic).
    const uint16_t owner = smp::ShardOfKey(m->topic, shard_count_);
    if (owner == shard_) {
      host_.StoreRetained(m);
    } else {
      ShardMsg msg = Post(ShardMsg::Kind::kRetain, std::move(m));
      msg.confirm = options.await_durable;
      durable += host_.PostToShard(owner, std::move(msg)) ? 1 : 0;
    }
  }
  return durable;
}

void Router::DeliverLocal(const route::MessagePtr& m) {
  owner_.Check();
  // The walk below holds pointers into trie_ and calls Host::Deliver, which never changes it
  // (invariant 4). The match list is a local all the same (reusing match_scratch_'s capacity): a
  // nested call would start with a list of its own.
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
    host_.Deliver(s, std::move(d));
  }
  match_scratch_ = std::move(matches);
}

uint32_t Router::RouteShared(const route::MessagePtr& m, const SharedKey* only,
                             PublishOptions options) {
  owner_.Check();
  struct Pick {
    SharedKey key;
    uint64_t all = 0;
    uint64_t live = 0;
  };
  uint32_t durable = 0;
  std::vector<Pick> picks;
  index_.SharedGroupsFor(
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
    const uint16_t shard = LowestShard(mask);
    auto local = shared_.find(p.key);
    SharedKeyPtr key =
        local != shared_.end() ? local->second.key : std::make_shared<const SharedKey>(p.key);
    if (shard == shard_) {
      DeliverShared(m, key);
    } else {
      ShardMsg msg = PostDelivery(ShardMsg::Kind::kDeliverShared, m, options);
      msg.shared = std::move(key);
      durable += host_.PostToShard(shard, std::move(msg)) ? 1 : 0;
    }
  }
  return durable;
}

void Router::SweepSharedRoundRobin() {
  owner_.Check();
  // A bounded slice per tick (a loop turn stays short): a group that lost its last member is
  // forgotten within size / kSweepPerTick ticks.
  constexpr size_t kSweepPerTick = 256;
  auto it = shared_rr_.lower_bound(shared_rr_sweep_from_);
  for (size_t n = 0; n < kSweepPerTick && it != shared_rr_.end(); ++n) {
    if (index_.SharedShards(it->first.group, it->first.filter) == 0) {
      it = shared_rr_.erase(it);
    } else {
      ++it;
    }
  }
  shared_rr_sweep_from_ = it == shared_rr_.end() ? SharedKey{} : it->first;
}

void Router::DeliverShared(const route::MessagePtr& m, const SharedKeyPtr& key) {
  owner_.Check();
  auto it = shared_.find(*key);
  if (it == shared_.end() || it->second.members.empty()) {
    dropped_no_member_.Add();  // the last member left while the message was on its way
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
  host_.Deliver(*pick, std::move(d));
}

void Router::AddSharedMember(Session& s, const SharedKey& key, const SubOptions& o) {
  SharedGroup& g = shared_[key];
  if (!g.key) g.key = std::make_shared<const SharedKey>(key);
  g.members.emplace_back(&s, o);
  if (index_.AddShared(shard_, key.group, key.filter)) host_.ClusterSharedInterest(key, true);
  if (s.connection != nullptr) (void)index_.AddShared(shard_, kLivePrefix + key.group, key.filter);
}

void Router::RemoveSharedMember(Session& s, const SharedKey& key) {
  auto it = shared_.find(key);
  if (it == shared_.end()) return;
  auto& members = it->second.members;
  members.erase(
      std::remove_if(members.begin(), members.end(), [&s](const auto& m) { return m.first == &s; }),
      members.end());
  bool last = false;
  if (index_.RemoveShared(shard_, key.group, key.filter, &last) && last) {
    host_.ClusterSharedInterest(key, false);
  }
  if (s.connection != nullptr) {
    (void)index_.RemoveShared(shard_, kLivePrefix + key.group, key.filter);
  }
  if (members.empty()) shared_.erase(it);
}

void Router::SetSharedLive(Session& s, bool live) {
  owner_.Check();
  for (const auto& [requested, sub] : s.subscriptions()) {
    for (const std::string& filter : sub.effective) {
      auto sf = proto::ParseSharedFilter(filter);
      if (!sf) continue;
      const std::string group = kLivePrefix + std::string(sf->group);
      if (live) {
        (void)index_.AddShared(shard_, group, sf->filter);
      } else {
        (void)index_.RemoveShared(shard_, group, sf->filter);
      }
    }
  }
}

void Router::Attach(Session& s, const Subscription& sub) {
  owner_.Check();
  for (const std::string& filter : sub.effective) {
    if (auto sf = proto::ParseSharedFilter(filter)) {
      AddSharedMember(s, SharedKey{std::string(sf->group), std::string(sf->filter)}, sub.options);
    } else {
      trie_.Insert(filter, LocalSub{&s, sub.options});
      if (index_.Add(shard_, filter)) host_.ClusterInterest(filter, true);
    }
  }
}

void Router::Detach(Session& s, const Subscription& sub) {
  owner_.Check();
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
      bool last = false;
      if (index_.Remove(shard_, filter, &last) && last) host_.ClusterInterest(filter, false);
    }
  }
}

}  // namespace ringmq::broker
