// Api: the REST endpoints of the admin shard (doc/rest-api.md), independent of sockets: the HTTP
// server hands it parsed requests, it answers through a Respond callback (at once for token
// endpoints, later for endpoints answered by the shards through BrokerHooks).
//
// It is also where the admin shard serves the MQTT side of tokens: Authenticate (a shard's cache
// miss), Touch (tokens in use by live connections) and Sweep (expiry).
//
// Thread-safety: admin thread only, like the TokenStore it writes.
// Invariants:
//   1. A request that fails validation changes nothing (the store is written once per request,
//      after every item was validated).
//   2. Hooks hear of a change only after it is durable, in change order; every TokenChanged
//      carries an ACL version larger than any earlier one.
//   3. Every request is answered exactly once.
#ifndef RINGMQ_REST_API_H_
#define RINGMQ_REST_API_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acl/acl.h"
#include "acl/credentials.h"
#include "acl/token.h"
#include "admin_api/broker_hooks.h"
#include "rest/http.h"
#include "rest/selector.h"
#include "rest/token_store.h"

namespace ringmq::rest {

class Api {
 public:
  using Clock = std::function<int64_t()>;  // Unix time, seconds

  struct Limits {
    size_t max_items = 1000;  // tokens per POST, ids per selector, messages per POST
  };

  enum class AuthStatus { kOk, kUnknown, kDisabled, kExpired };
  struct AuthResult {
    AuthStatus status = AuthStatus::kUnknown;
    acl::AclPtr acl;  // set when kOk
    int64_t token_id = 0;
    std::string key;  // set when kOk: the token's key (a login by id presents only a prefix)
  };

  // `hooks` may be null (no broker attached: session, message and metrics endpoints answer 503).
  Api(TokenStore* store, admin_api::BrokerHooks* hooks, Clock clock, Limits limits);

  void Handle(const HttpRequest& request, const Respond& respond);
  // For a request head whose client waits for "100 Continue" (Expect: 100-continue): the answer
  // Handle would give without looking at the body (404 no such endpoint, 401/403 authorization),
  // or nullopt when the body may be sent. `head` has no body yet.
  std::optional<HttpResponse> CheckHead(const HttpRequest& head);

  // Credentials presented over MQTT (CONNECT): a key, or a token id with the first 16 characters
  // of its key (compared in constant time). Refreshes `accessed` when valid. The peer's origin is
  // the shard's to check (CompiledAcl::AllowsPeer).
  AuthResult Authenticate(const acl::Credentials& credentials);
  AuthResult Authenticate(std::string_view key) {
    return Authenticate(acl::Credentials{0, std::string(key)});
  }
  // Keys of tokens in use by live MQTT connections: refreshes their `accessed`.
  void Touch(const std::vector<std::string>& keys);
  // Deletes expired tokens (TokenRevoked kExpired each) and writes refreshed `accessed` values,
  // at most every flush_interval seconds. Call about once a second.
  void Sweep();
  // A token another node created, changed or deleted (cluster mode): applied to the store, and
  // the shards told as for a change made here (TokenChanged, TokenRevoked).
  void ApplyRemote(TokenBackend::Remote remote);

  // Cluster mode (doc/cluster.md): what this node's NATS bridge reports, called on the admin
  // thread. Unset without --cluster (GET /cluster answers 404).
  struct ClusterView {
    // Whether this node's NATS connection is up (else /healthz answers 503), with a JSON object.
    std::function<bool(std::string* json)> health;
    std::function<std::vector<std::string>()> nodes;  // GET /cluster: one JSON object per node
    std::function<std::string()> metrics;             // Prometheus text for GET /metrics
  };
  void set_cluster(ClusterView view) { cluster_ = std::move(view); }

  // Extra Prometheus lines for GET /metrics (the HTTP server's counters).
  void set_extra_metrics(std::function<std::string()> fn) { extra_metrics_ = std::move(fn); }

 private:
  // Token endpoints (api.cc).
  void CreateTokens(const HttpRequest& req, const Respond& respond);
  void GetTokens(const HttpRequest& req, std::string_view sel, const Respond& respond);
  void UpdateTokens(const HttpRequest& req, std::string_view sel, bool patch,
                    const Respond& respond);
  void DeleteTokens(const HttpRequest& req, std::string_view sel, const Respond& respond);
  // MQTT endpoints (api_mqtt.cc).
  void HandleSessions(const HttpRequest& req, const std::vector<std::string_view>& segments,
                      const Respond& respond);
  // `limited`: the ACL token calling (api_mqtt_acl.cc), nullptr for a master token.
  void HandleMessages(const HttpRequest& req, std::string_view rest, const acl::Token* limited,
                      const Respond& respond);
  // DELETE /mqtt/messages: removes the retained messages of `topics`, or of `filter` when
  // `topics` is empty, and answers the topics removed.
  void DeleteRetainedTopics(const std::string& filter, std::vector<std::string> topics,
                            const Respond& respond);
  // A session selector as the broker takes it (admin_api/broker_hooks.h): `sel` itself when it
  // needs no fields, else the client ids whose session view matches (one ListSessions(all) first);
  // answers 503 itself when that fails. REQUIRES: hooks_ != nullptr.
  void ResolveSessions(const Selector& sel, const Respond& respond,
                       std::function<void(const admin_api::IdSet&)> next);
  // Sessions and subscriptions created over REST (api_sessions.cc). sub_sel: the {sub-sel} of
  // .../subscriptions/{sub-sel}, empty when absent.
  void CreateSessions(const HttpRequest& req, const Respond& respond);
  void HandleSubscriptions(const HttpRequest& req, const admin_api::IdSet& sessions,
                           std::string_view sub_sel, const Respond& respond);
  void AddSubscriptions(std::vector<admin_api::NewSubscription> subs,
                        const admin_api::IdSet& sessions,
                        const std::vector<admin_api::SessionInfo>& found, const Respond& respond);
  // The ACL and key of token `id` that a session belongs to; false (*status, *error) when it is
  // not a valid token.
  bool OwnerAcl(int64_t id, acl::AclPtr* acl, std::string* key, int* status, std::string* error);
  void HandleMetrics(const Respond& respond);

  // Checks Authorization: a valid token (401 otherwise) called from one of its origins (403), a
  // master token or an ACL token whose entries list this method of the /mqtt/messages API (403
  // otherwise). Returns the token, or nullptr after answering.
  const acl::Token* Authorize(const HttpRequest& req, const Respond& respond);
  // Resolves a token selector; answers 400/404 itself and returns false otherwise. Ids of a list
  // that match no token are added to *missing as errors "token N not found" (404 each): the
  // caller answers the tokens found with them (a partial result); when none was found this
  // answers 404 with those errors itself.
  bool SelectTokens(std::string_view sel, std::vector<const acl::Token*>* tokens,
                    std::vector<ApiError>* missing, const Respond& respond);
  void Notify(const acl::Token& before, const acl::Token& after);
  // A token another node created a moment ago (TokenBackend::Fetch), applied; false if none.
  bool FetchRemote(int64_t id, std::string_view key);
  uint64_t NextVersion() { return ++version_; }

  TokenStore* store_;
  admin_api::BrokerHooks* hooks_;
  Clock clock_;
  Limits limits_;
  uint64_t version_ = 0;
  int64_t last_flush_ = 0;
  std::function<std::string()> extra_metrics_;
  ClusterView cluster_;
};

}  // namespace ringmq::rest

#endif  // RINGMQ_REST_API_H_
