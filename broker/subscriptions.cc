// SUBSCRIBE and UNSUBSCRIBE (broker/subscriptions.h), and the shard's side of them: the answers,
// and the retained messages a new subscription gets from every shard.
#include "broker/subscriptions.h"

#include "base/log.h"
#include "broker/broker.h"
#include "broker/internal/mqtt_rules.h"
#include "broker/shard.h"
#include "proto/topic.h"

namespace ringmq::broker {

using internal::WithinTopicLimits;
using proto::ReasonCode;

SubscribeResult Subscribe(Session& s, proto::Version version, const proto::Subscribe& sub,
                          const Config& cfg, SubscriptionSink& sink, uint16_t shard) {
  SubscribeResult result;
  proto::Suback& ack = result.suback;
  ack.packet_id = sub.packet_id;
  const uint32_t sub_id =
      sub.props.subscription_identifiers.empty() ? 0 : sub.props.subscription_identifiers[0];
  // Filters refused by max_subscriptions: one log line per packet, not one per filter.
  std::size_t over_limit = 0;
  std::string_view first_over_limit;
  for (const proto::Subscription& req : sub.subscriptions) {
    ReasonCode code = proto::ValidateTopicFilter(req.filter);
    if (code == ReasonCode::kSuccess && !WithinTopicLimits(req.filter, cfg)) {
      code = ReasonCode::kTopicFilterInvalid;
    }
    if (code != ReasonCode::kSuccess) {
      LOG_INFO_S(kMqtt, "shard {}: {} SUBSCRIBE '{}' refused: {}", shard, base::Cut(s.client_id()),
                 base::Cut(req.filter), proto::ReasonCodeName(code));
      ack.reasons.push_back(code);
      continue;
    }
    SubOptions o{req.qos, req.no_local, req.retain_as_published, req.retain_handling, sub_id};
    if (version != proto::Version::kV5) o = SubOptions{req.qos, false, false, 0, 0};
    Subscription next{o, {std::string(req.filter)}};
    if (s.acl && !s.acl->AllowsEverything()) {
      // The token's ACL: subscribe to the intersections of the filter with what it allows.
      next.effective = s.acl->EffectiveFilters(req.filter);
      if (next.effective.empty()) {
        LOG_INFO_S(kMqtt, "shard {}: {} SUBSCRIBE '{}' refused by the token's ACL", shard,
                   base::Cut(s.client_id()), base::Cut(req.filter));
        ack.reasons.push_back(ReasonCode::kNotAuthorized);
        continue;
      }
    }
    std::string filter(req.filter);
    auto it = s.subscriptions().find(filter);
    const bool added = it == s.subscriptions().end();
    if (added && cfg.max_subscriptions != 0 && s.subscriptions().size() >= cfg.max_subscriptions) {
      if (over_limit++ == 0) first_over_limit = req.filter;
      ack.reasons.push_back(ReasonCode::kQuotaExceeded);
      continue;
    }
    if (!added) sink.Detach(s, it->second);  // an identical filter replaces it [MQTT-3.8.4-3]
    Subscription& stored = s.SubscriptionFor(filter);
    stored = std::move(next);
    sink.Attach(s, stored);
    sink.LogSubscription(s, filter, &stored);
    ack.reasons.push_back(static_cast<ReasonCode>(req.qos));
    // Retained messages are not sent on a shared subscription (MQTT 5.0 section 4.8.2).
    if (proto::ParseSharedFilter(filter)) continue;
    if (o.retain_handling == 0 || (o.retain_handling == 1 && added)) {
      for (const std::string& eff : stored.effective) result.retained.push_back({filter, eff, o});
    }
  }
  if (over_limit != 0) {
    LOG_INFO_S(kMqtt,
               "shard {}: {} SUBSCRIBE: {} filter(s) from '{}' on refused: max_subscriptions "
               "({}) reached",
               shard, base::Cut(s.client_id()), over_limit, base::Cut(first_over_limit),
               cfg.max_subscriptions);
  }
  return result;
}

proto::Unsuback Unsubscribe(Session& s, const proto::Unsubscribe& u, SubscriptionSink& sink) {
  proto::Unsuback ack;
  ack.packet_id = u.packet_id;
  for (std::string_view f : u.filters) {
    auto it = s.subscriptions().find(std::string(f));
    if (it == s.subscriptions().end()) {
      ack.reasons.push_back(ReasonCode::kNoSubscriptionExisted);
      continue;
    }
    sink.Detach(s, it->second);
    sink.LogSubscription(s, it->first, nullptr);
    s.subscriptions().erase(it);
    ack.reasons.push_back(ReasonCode::kSuccess);
  }
  return ack;
}

// ---- The shard's side ---------------------------------------------------------------------------

void Shard::HandleSubscribe(Connection& c, const proto::Subscribe& sub) {
  Session& s = *c.session;
  SubscribeResult r = Subscribe(s, c.version, sub, cfg_, *this, id_);
  c.Queue(r.suback);
  MarkDirty(c);
  RequestRetained(s, r.retained);
}

void Shard::HandleUnsubscribe(Connection& c, const proto::Unsubscribe& u) {
  c.Queue(Unsubscribe(*c.session, u, *this));
  MarkDirty(c);
}

void Shard::Attach(Session& s, const Subscription& sub) { router_.Attach(s, sub); }

void Shard::Detach(Session& s, const Subscription& sub) { router_.Detach(s, sub); }

void Shard::RequestRetained(Session& s, const std::vector<RetainedWanted>& wanted) {
  // Retained messages are partitioned by topic hash: ask every shard [MQTT-3.3.1-6].
  for (const RetainedWanted& r : wanted) {
    for (uint16_t to = 0; to < broker_.shard_count(); ++to) {
      auto q = std::make_unique<RetainQuery>();
      q->filter = r.filter;
      q->client_id = s.client_id();
      q->sub_filter = r.requested;
      q->options = r.options;
      if (to == id_) {
        AnswerRetainQuery(*q);
        SendRetained(s, q->sub_filter, q->options, q->matches);
      } else {
        ShardMsg m;
        m.kind = ShardMsg::Kind::kRetainQuery;
        m.from = id_;
        m.query = std::move(q);
        (void)PostToShard(to, std::move(m));
      }
    }
  }
}

}  // namespace ringmq::broker
