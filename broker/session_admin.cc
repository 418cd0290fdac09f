// Sessions and subscriptions created over the REST API (POST /mqtt/sessions,
// POST/DELETE /mqtt/sessions/{sel}/subscriptions): on the client id's home shard, as tasks posted
// by broker/admin_bridge.cc. A session created here is what a CONNECT with clean start 0 and an
// expiry interval would have made, then disconnected: it is logged with the same records
// (session-created, session-disconnected, subscription-added: doc/wal-format.md), so a restart
// restores it like any other, and its subscriptions go through the same Attach as a SUBSCRIBE,
// so a message published after the task ran is queued for it.
#include <algorithm>

#include "admin_api/broker_hooks.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/connect_rules.h"
#include "broker/shard.h"
#include "proto/topic.h"

namespace ringmq::broker {

namespace {

using Outcome = admin_api::SessionResult::Outcome;

bool Fails(admin_api::SessionResult* out, Outcome outcome, std::string detail) {
  out->outcome = outcome;
  out->detail = std::move(detail);
  return false;
}

}  // namespace

bool Shard::CheckAdminSubscriptions(Session* s, const acl::AclPtr& acl,
                                    const std::vector<admin_api::NewSubscription>& subs,
                                    admin_api::SessionResult* out) const {
  const Config& cfg = cfg_;
  size_t added = 0;
  for (const admin_api::NewSubscription& n : subs) {
    if (n.filter.size() > cfg.max_topic_length ||
        static_cast<size_t>(std::count(n.filter.begin(), n.filter.end(), '/')) >=
            cfg.max_topic_levels) {
      return Fails(out, Outcome::kInvalid,
                   "topic filter '" + n.filter + "' exceeds max_topic_length or max_topic_levels");
    }
    if (acl != nullptr && !acl->AllowsEverything() && acl->EffectiveFilters(n.filter).empty()) {
      return Fails(out, Outcome::kNotAuthorized,
                   "the token's ACL allows nothing of topic filter '" + n.filter + "'");
    }
    if (s == nullptr || !s->subscriptions().contains(n.filter)) ++added;
  }
  const size_t have = s == nullptr ? 0 : s->subscriptions().size();
  if (cfg.max_subscriptions != 0 && have + added > cfg.max_subscriptions) {
    return Fails(out, Outcome::kQuotaExceeded,
                 "max_subscriptions (" + std::to_string(cfg.max_subscriptions) + ") reached");
  }
  return true;
}

void Shard::ApplyAdminSubscriptions(Session& s, const acl::AclPtr& acl,
                                    const std::vector<admin_api::NewSubscription>& subs) {
  for (const admin_api::NewSubscription& n : subs) {
    Subscription next{
        SubOptions{n.qos, n.no_local, n.retain_as_published, n.retain_handling, n.subscription_id},
        {n.filter}};
    if (acl != nullptr && !acl->AllowsEverything())
      next.effective = acl->EffectiveFilters(n.filter);
    auto it = s.subscriptions().find(n.filter);
    if (it != s.subscriptions().end())
      router_.Detach(s, it->second);  // the same filter replaces it
    Subscription& stored = s.SubscriptionFor(n.filter);
    stored = std::move(next);
    router_.Attach(s, stored);
    LogSubscription(s, n.filter, &stored);
  }
}

void Shard::CreateSessionFromAdmin(const admin_api::NewSession& n, admin_api::SessionResult* out) {
  owner_.Check();
  const Config& cfg = cfg_;
  out->client_id = n.client_id;
  if (sessions_.contains(n.client_id)) {
    (void)Fails(out, Outcome::kExists, "client id '" + n.client_id + "' has a session already");
    return;
  }
  const uint32_t expiry = std::min(n.expiry_interval, cfg.max_session_expiry);
  if (expiry == 0) {
    (void)Fails(out, Outcome::kInvalid, "max_session_expiry is 0: no session outlives its client");
    return;
  }
  if (!CheckAdminSubscriptions(nullptr, n.acl, n.subscriptions, out)) return;
  Session& s = sessions_.Create(n.client_id, QueueLimitsOf(cfg, &spill_));
  s.version = proto::Version::kV5;  // until its client connects and says
  s.clean_start = false;
  s.expiry_interval_s = expiry;
  s.owner_token_id = n.token_id;
  s.token_key = n.token_key;
  s.acl = n.acl;
  s.offline_since_ms = NowMs();  // it expires `expiry` seconds from now unless its client comes
  LogSessionStart(s);            // persistent from here: may_persist() is true (SetLogged)
  LogSessionEnd(s, /*removed=*/false);  // offline since now, also after a restart
  ApplyAdminSubscriptions(s, n.acl, n.subscriptions);
  out->session = SessionView(n.client_id, s);
  LOG_INFO_S(kMqtt,
             "shard {}: session {} created over the REST API for token {} ({} subscription(s))",
             id_, n.client_id, n.token_id, n.subscriptions.size());
}

void Shard::AddSubscriptionsFromAdmin(const admin_api::SessionSubscriptions& a,
                                      admin_api::SessionResult* out) {
  owner_.Check();
  out->client_id = a.client_id;
  Session* found = sessions_.Find(a.client_id);
  if (found == nullptr) {
    (void)Fails(out, Outcome::kNotFound, "no session '" + a.client_id + "'");
    return;
  }
  Session& s = *found;
  // The ACL of the token the session uses now; for one restored from the log whose client has not
  // connected since (no ACL known), the owner's that the admin shard looked up.
  acl::AclPtr acl = s.acl != nullptr ? s.acl : a.acl;
  if (!CheckAdminSubscriptions(&s, acl, a.subscriptions, out)) return;
  if (s.acl == nullptr && a.acl != nullptr && s.token_key.empty()) {
    s.acl = a.acl;
    s.token_key = a.token_key;
  }
  ApplyAdminSubscriptions(s, acl, a.subscriptions);
  out->session = SessionView(a.client_id, s);
  LOG_INFO_S(kMqtt, "shard {}: {} subscription(s) of {} set over the REST API", id_,
             a.subscriptions.size(), a.client_id);
}

void Shard::DeleteSubscriptionsFromAdmin(const admin_api::IdSet& sessions,
                                         const admin_api::IdSet& filters,
                                         std::vector<admin_api::SubscriptionInfo>* out) {
  owner_.Check();
  for (auto& [id, s] : sessions_) {
    if (!sessions.Contains(id)) continue;
    std::vector<std::string> doomed;
    for (const auto& [filter, sub] : s->subscriptions()) {
      if (filters.Contains(filter)) doomed.push_back(filter);
    }
    for (const std::string& filter : doomed) {
      auto it = s->subscriptions().find(filter);
      admin_api::SubscriptionInfo i;
      i.client_id = id;
      i.filter = filter;
      i.qos = it->second.options.qos;
      i.effective = it->second.effective;
      router_.Detach(*s, it->second);
      LogSubscription(*s, filter, nullptr);
      s->subscriptions().erase(it);
      out->push_back(std::move(i));
    }
  }
}

}  // namespace ringmq::broker
