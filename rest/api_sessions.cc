// Sessions and subscriptions created over REST (doc/rest-api.md, "MQTT sessions"):
// POST /mqtt/sessions and POST/GET/DELETE /mqtt/sessions/{sel}/subscriptions[/{sub-sel}].
// Everything the admin shard can check is checked before a shard is asked (body, tokens, ACL
// intersections, sessions that exist already), so a bad request changes nothing; the home shards
// check the rest (topic limits, max_subscriptions, a session created meanwhile by a CONNECT).
#include <algorithm>
#include <map>
#include <memory>

#include "base/json.h"
#include "rest/api.h"
#include "rest/internal/session_body.h"
#include "rest/internal/session_json.h"

namespace ringmq::rest {

namespace {

using Outcome = admin_api::SessionResult::Outcome;

int StatusOf(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return 200;
    case Outcome::kNotFound:
      return 404;
    case Outcome::kInvalid:
      return 400;
    case Outcome::kNotAuthorized:
      return 403;
    case Outcome::kExists:
    case Outcome::kQuotaExceeded:
      break;
  }
  return 409;
}

// {"result": [...], "errors": [...]}: 200 when something succeeded (the errors say what did not),
// else the first error's status.
HttpResponse Partial(const std::vector<std::string>& items,
                     const std::vector<std::pair<int, std::string>>& errors) {
  if (errors.empty()) return JsonResult(200, items);
  if (items.empty() && errors.size() == 1) return JsonError(errors[0].first, errors[0].second);
  HttpResponse r = JsonResult(items.empty() ? errors[0].first : 200, items);
  r.body.pop_back();  // the closing '}'
  r.body.append(",\"errors\":[");
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) r.body.push_back(',');
    r.body.append("{\"code\":").append(std::to_string(errors[i].first)).append(",\"reason\":");
    base::AppendJsonString(&r.body, errors[i].second);
    r.body.push_back('}');
  }
  r.body.append("]}");
  return r;
}

// The shards' results in the order of `order` (client ids of the request).
void Sort(std::vector<admin_api::SessionResult>* results, const std::vector<std::string>& order) {
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < order.size(); ++i) rank.emplace(order[i], i);
  std::sort(results->begin(), results->end(),
            [&](const admin_api::SessionResult& a, const admin_api::SessionResult& b) {
              return rank[a.client_id] < rank[b.client_id];
            });
}

// Whether every filter keeps something under acl (nullptr: no ACL); else *error names it.
bool AclAllows(const acl::AclPtr& acl, const std::vector<admin_api::NewSubscription>& subs,
               const std::string& whose, std::string* error) {
  if (acl == nullptr || acl->AllowsEverything()) return true;
  for (const admin_api::NewSubscription& s : subs) {
    if (acl->EffectiveFilters(s.filter).empty()) {
      *error = whose + ": the token's ACL allows nothing of topic filter '" + s.filter + "'";
      return false;
    }
  }
  return true;
}

}  // namespace

bool Api::OwnerAcl(int64_t id, acl::AclPtr* acl, std::string* key, int* status,
                   std::string* error) {
  const acl::Token* token = store_->FindById(id);
  if (token == nullptr) {
    *status = 404;
    *error = "no token " + std::to_string(id);
    return false;
  }
  const acl::TokenState state = acl::CheckToken(*token, clock_());
  if (state != acl::TokenState::kValid) {
    *status = state == acl::TokenState::kDisabled ? 409 : 404;
    *error = "token " + std::to_string(id) + " is " + acl::TokenStateName(state);
    return false;
  }
  *acl = acl::CompiledAcl::Compile(*token, NextVersion());
  *key = token->key;
  return true;
}

void Api::CreateSessions(const HttpRequest& req, const Respond& respond) {
  std::vector<admin_api::NewSession> sessions;
  std::string error;
  if (!ParseSessionsBody(req.body, limits_.max_items, &sessions, &error)) {
    return respond(JsonError(400, error));
  }
  admin_api::IdSet ids;
  for (admin_api::NewSession& n : sessions) {
    int status = 0;
    const std::string whose = "session '" + n.client_id + "'";
    if (!OwnerAcl(n.token_id, &n.acl, &n.token_key, &status, &error)) {
      return respond(JsonError(status, whose + ": token_id: " += error));
    }
    if (!AclAllows(n.acl, n.subscriptions, whose, &error)) return respond(JsonError(403, error));
    ids.ids.push_back(n.client_id);
  }
  if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
  auto pending = std::make_shared<std::vector<admin_api::NewSession>>(std::move(sessions));
  admin_api::BrokerHooks* hooks = hooks_;
  hooks_->ListSessions(
      ids, [hooks, pending, respond, order = ids.ids](
               const std::string& error, const std::vector<admin_api::SessionInfo>& found) {
        if (!error.empty()) return respond(JsonError(503, error));
        if (!found.empty()) {  // nothing is created
          std::vector<std::pair<int, std::string>> errors;
          errors.reserve(found.size());
          for (const admin_api::SessionInfo& s : found) {
            errors.emplace_back(409, "client id '" + s.client_id + "' has a session already");
          }
          return respond(Partial({}, errors));
        }
        hooks->CreateSessions(std::move(*pending),
                              [respond, order](const std::string& error,
                                               std::vector<admin_api::SessionResult> results) {
                                if (!error.empty()) return respond(JsonError(503, error));
                                Sort(&results, order);
                                std::vector<std::string> items;
                                std::vector<std::pair<int, std::string>> errors;
                                for (const admin_api::SessionResult& r : results) {
                                  if (r.outcome == Outcome::kOk) {
                                    items.push_back(SessionJson(r.session));
                                  } else {
                                    errors.emplace_back(StatusOf(r.outcome), r.detail);
                                  }
                                }
                                respond(Partial(items, errors));
                              });
      });
}

void Api::HandleSubscriptions(const HttpRequest& req, const admin_api::IdSet& sessions,
                              std::string_view sub_sel, const Respond& respond) {
  admin_api::IdSet filters;
  filters.all = sub_sel.empty();
  std::string error;
  if (!sub_sel.empty() && !ParseFilterSelector(sub_sel, limits_.max_items, &filters, &error)) {
    return respond(JsonError(400, error));
  }
  const auto subscription_items = [](const std::vector<admin_api::SubscriptionInfo>& v,
                                     const admin_api::IdSet& wanted) {
    std::vector<std::string> items;
    for (const admin_api::SubscriptionInfo& s : v) {
      if (wanted.Contains(s.filter)) items.push_back(SubscriptionJson(s));
    }
    return items;
  };
  if (req.method == "GET") {
    if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
    return hooks_->ListSubscriptions(
        sessions, [respond, filters, subscription_items](
                      const std::string& error, const std::vector<admin_api::SubscriptionInfo>& v) {
          if (!error.empty()) return respond(JsonError(503, error));
          respond(JsonResult(200, subscription_items(v, filters)));
        });
  }
  if (req.method == "DELETE") {
    if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
    return hooks_->DeleteSubscriptions(
        sessions, filters,
        [respond, subscription_items](const std::string& error,
                                      const std::vector<admin_api::SubscriptionInfo>& v) {
          if (!error.empty()) return respond(JsonError(503, error));
          respond(JsonResult(200, subscription_items(v, admin_api::IdSet{true, {}})));
        });
  }
  if (req.method != "POST" || !sub_sel.empty()) {
    return respond(JsonError(405,
                             "method not allowed (POST/GET/DELETE /mqtt/sessions/{selector}/"
                             "subscriptions, GET/DELETE .../subscriptions/{filters})"));
  }
  std::vector<admin_api::NewSubscription> subs;
  if (!ParseSubscriptionsBody(req.body, limits_.max_items, &subs, &error)) {
    return respond(JsonError(400, error));
  }
  if (hooks_ == nullptr) return respond(JsonError(503, "no broker attached"));
  // Which sessions, and whose: their owners' ACLs intersect the filters.
  hooks_->ListSessions(
      sessions, [this, sessions, subs = std::move(subs), respond](
                    const std::string& error, const std::vector<admin_api::SessionInfo>& found) {
        if (!error.empty()) return respond(JsonError(503, error));
        AddSubscriptions(subs, sessions, found, respond);
      });
}

void Api::AddSubscriptions(std::vector<admin_api::NewSubscription> subs,
                           const admin_api::IdSet& sessions,
                           const std::vector<admin_api::SessionInfo>& found,
                           const Respond& respond) {
  std::vector<admin_api::SessionSubscriptions> targets;
  std::vector<std::string> order;
  std::vector<std::pair<int, std::string>> missing;  // ids of the selector without a session
  for (const std::string& id : sessions.ids) {
    if (std::none_of(found.begin(), found.end(),
                     [&](const admin_api::SessionInfo& s) { return s.client_id == id; })) {
      missing.emplace_back(404, "no session '" + id + "'");
    }
  }
  for (const admin_api::SessionInfo& s : found) {
    admin_api::SessionSubscriptions t;
    t.client_id = s.client_id;
    t.subscriptions = subs;
    const std::string whose = "session '" + s.client_id + "'";
    int status = 0;
    std::string error;
    if (s.token_id != 0 && !OwnerAcl(s.token_id, &t.acl, &t.token_key, &status, &error)) {
      return respond(JsonError(status, whose + ": its token: " += error));
    }
    if (!AclAllows(t.acl, subs, whose, &error)) return respond(JsonError(403, error));
    order.push_back(s.client_id);
    targets.push_back(std::move(t));
  }
  if (targets.empty()) {
    return respond(missing.empty() ? JsonError(404, "no such session") : Partial({}, missing));
  }
  // The answer lists each subscription as GET would, with the intersections of its owner's ACL.
  std::map<std::string, acl::AclPtr> acls;
  for (const admin_api::SessionSubscriptions& t : targets) acls.emplace(t.client_id, t.acl);
  hooks_->AddSubscriptions(
      std::move(targets),
      [respond, order, acls, missing, subs = std::move(subs)](
          const std::string& error, std::vector<admin_api::SessionResult> results) {
        if (!error.empty()) return respond(JsonError(503, error));
        Sort(&results, order);
        std::vector<std::string> items;
        std::vector<std::pair<int, std::string>> errors = missing;
        for (const admin_api::SessionResult& r : results) {
          if (r.outcome != Outcome::kOk) {
            errors.emplace_back(StatusOf(r.outcome), r.detail);
            continue;
          }
          const acl::AclPtr& acl = acls.at(r.client_id);
          for (const admin_api::NewSubscription& n : subs) {
            admin_api::SubscriptionInfo i{
                r.client_id,       n.filter,          n.qos,     n.no_local, n.retain_as_published,
                n.retain_handling, n.subscription_id, {n.filter}};
            if (acl != nullptr && !acl->AllowsEverything()) {
              i.effective = acl->EffectiveFilters(n.filter);
            }
            items.push_back(SubscriptionJson(i));
          }
        }
        respond(Partial(items, errors));
      });
}

}  // namespace ringmq::rest
