// BrokerHooks: the seam between the admin shard (rest/) and the broker (broker/).
//
// The REST server knows nothing of shards, sessions or routing; everything that lives in the
// shards is reached through this interface, which the broker implements by sending messages to its
// shards (DESIGN.md section 2) and gathering their answers (broker/admin_bridge.h). rest/ and
// broker/ do not link each other: app/main.cc builds both and passes the implementation to
// AdminServer.
//
// Direction admin -> broker: every method below is called on the admin thread and must return
// quickly (post messages, never block on shards).
// Direction broker -> admin: a method with a `done` callback completes by calling it exactly once,
// ON THE ADMIN THREAD: either synchronously inside the call, or later through
// AdminServer::Post(...) (the thread-safe entry point of the admin thread). An `error` argument
// that is not empty fails the request with HTTP 503 and that reason; on success it is empty.
// Callbacks must not be invoked after AdminServer::Stop() returned (Post drops them then).
//
// Token events: the admin shard is the single writer of the token store. After a change is
// durable it calls TokenChanged or TokenRevoked once per affected token, in the order of the
// changes, so the broker can forward them to every shard's AclCache and live connections. The
// versions in CompiledAcl grow with every change of a token.
//
// Session selectors: a hook is given an IdSet, `all` or a list of client ids; the REST shard
// resolves field and expression selectors (rest/selector.h) on the session views first
// (ListSessions with `all`), so the shards never evaluate expressions.
//
// Thread-safety: see above; an implementation may keep state that only the admin thread touches.
#ifndef RINGMQ_ADMIN_API_BROKER_HOOKS_H_
#define RINGMQ_ADMIN_API_BROKER_HOOKS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "acl/acl.h"
#include "acl/token.h"
#include "route/message.h"

namespace ringmq::admin_api {

// What a request names: all (sessions, subscriptions of a session), or those of the listed ids
// (client ids, topic filters).
struct IdSet {
  bool all = false;
  std::vector<std::string> ids;
  bool Contains(const std::string& id) const;
};

// One MQTT session as GET /mqtt/sessions reports it.
struct SessionInfo {
  std::string client_id;
  bool connected = false;
  uint8_t protocol_version = 0;  // 3 (3.1), 4 (3.1.1) or 5
  bool clean = true;             // clean session / clean start
  uint32_t expiry_interval = 0;  // seconds
  uint16_t keep_alive = 0;       // seconds
  int64_t token_id = 0;          // 0: anonymous
  std::string peer;              // "ip:port", empty when not connected
  uint32_t shard = 0;
  int64_t connected_since = 0;  // Unix time, 0 when not connected
  uint64_t subscriptions = 0;
  uint64_t queued = 0;    // messages waiting in the session queue
  uint64_t inflight = 0;  // QoS 1/2 messages sent and not yet acknowledged
};

// One subscription of a session.
struct SubscriptionInfo {
  std::string client_id;
  std::string filter;  // as requested, including any "$share/g/" prefix
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;        // 0: none
  std::vector<std::string> effective;  // the ACL intersections actually subscribed
};

// A subscription to create over REST (POST /mqtt/sessions, POST .../subscriptions): a valid
// topic filter (a "$share/{group}/" prefix allowed) and the MQTT 5 subscription options.
struct NewSubscription {
  std::string filter;
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;   // 0-2
  uint32_t subscription_id = 0;  // 0: none, else 1-268435455
};

// A persistent session to create before its client first connects (POST /mqtt/sessions). It
// belongs to token `token_id` (doc/rest-api.md, "Session ownership"); `acl` is that token's
// compiled ACL, which intersects the subscriptions as an MQTT SUBSCRIBE would.
struct NewSession {
  std::string client_id;         // valid MQTT UTF-8, 1 to 65535 bytes
  uint32_t expiry_interval = 0;  // seconds, > 0; 0xFFFFFFFF: never expires
  int64_t token_id = 0;
  std::string token_key;
  acl::AclPtr acl;
  std::vector<NewSubscription> subscriptions;
};

// Subscriptions to add to one existing session, with its owner's ACL (nullptr: the session has no
// owner, nothing is intersected) and key.
struct SessionSubscriptions {
  std::string client_id;
  acl::AclPtr acl;
  std::string token_key;
  std::vector<NewSubscription> subscriptions;
};

// How a shard answered for one session of CreateSessions or AddSubscriptions.
struct SessionResult {
  enum class Outcome : uint8_t {
    kOk,             // done; `session` describes it afterwards
    kExists,         // CreateSessions: the client id has a session already (HTTP 409)
    kNotFound,       // AddSubscriptions: no such session (any more) (HTTP 404)
    kInvalid,        // a filter beyond the topic limits, or no session expiry allowed (HTTP 400)
    kNotAuthorized,  // a filter the ACL allows nothing of (HTTP 403)
    kQuotaExceeded,  // max_subscriptions (HTTP 409)
  };
  std::string client_id;
  Outcome outcome = Outcome::kOk;
  std::string detail;   // why, when not kOk
  SessionInfo session;  // when kOk
};

enum class RevokeReason {
  kDeleted,   // DELETE /platform/tokens
  kDisabled,  // enabled set to false
  kExpired,   // expire passed or ttl ran out (the token is deleted from the store)
};
const char* RevokeReasonName(RevokeReason reason);  // "deleted", "disabled", "expired"

// The admin thread's thread-safe entry point (AdminServer::Post): runs `fn` on the admin thread, in
// posting order, or returns false and drops it once the admin shard stopped. The broker gets it
// from app/ so that it answers REST calls without knowing the REST server.
using PostToAdmin = std::function<bool(std::function<void()> fn)>;

class BrokerHooks {
 public:
  template <typename T>
  using Done = std::function<void(std::string error, T value)>;

  virtual ~BrokerHooks() = default;

  // A valid token was modified (PUT/PATCH): every shard replaces the cached ACL of token.key by
  // `acl` and recomputes the effective subscriptions of the connections and sessions using it.
  virtual void TokenChanged(const acl::Token& token, acl::AclPtr acl) = 0;
  // A token may no longer be used: every shard drops it from its AclCache and closes every
  // connection using it (the broker picks and documents the MQTT 5 DISCONNECT reason code, e.g.
  // 0x87 Not authorized), and, if so configured, drops their persistent sessions.
  virtual void TokenRevoked(const acl::Token& token, RevokeReason reason) = 0;

  // GET /mqtt/sessions/{sel}: the sessions (connected or persistent) of the selected client ids.
  virtual void ListSessions(const IdSet& selector, Done<std::vector<SessionInfo>> done) = 0;
  // DELETE /mqtt/sessions/{sel}: closes the connections and removes the sessions; answers the
  // client ids that existed.
  virtual void DeleteSessions(const IdSet& selector, Done<std::vector<std::string>> done) = 0;
  // GET /mqtt/sessions/{sel}/subscriptions.
  virtual void ListSubscriptions(const IdSet& selector,
                                 Done<std::vector<SubscriptionInfo>> done) = 0;
  // POST /mqtt/sessions: creates each session on its client id's home shard, with its
  // subscriptions in the topic index and in the shard's log, unless the client id has a session
  // there already. `done` runs once every home shard answered, so a message published after it
  // is queued for every session created (one result per session, in no particular order).
  virtual void CreateSessions(std::vector<NewSession> sessions,
                              Done<std::vector<SessionResult>> done) = 0;
  // POST /mqtt/sessions/{sel}/subscriptions: adds (or replaces, same filter) subscriptions of
  // existing sessions, each on its home shard: all of a session's or none. Same `done` promise.
  virtual void AddSubscriptions(std::vector<SessionSubscriptions> sessions,
                                Done<std::vector<SessionResult>> done) = 0;
  // DELETE /mqtt/sessions/{sel}/subscriptions[/{filters}]: removes the subscriptions of the
  // selected sessions whose filter `filters` selects (ids: exact filter texts); answers them.
  virtual void DeleteSubscriptions(const IdSet& sessions, const IdSet& filters,
                                   Done<std::vector<SubscriptionInfo>> done) = 0;
  // POST /mqtt/messages: publishes as a master-token client would (no ACL). `done` is called when
  // the messages were handed to the routing (and, with retain, stored).
  // The messages are the broker's own type (route/message.h; expiry a steady-clock deadline).
  virtual void Publish(std::vector<route::MessagePtr> messages, Done<bool> done) = 0;
  // GET /mqtt/messages/{filter}: retained messages matching `filter` (a valid, non-shared filter).
  // The stored messages themselves (immutable, shared).
  virtual void ListRetained(const std::string& filter,
                            Done<std::vector<route::MessagePtr>> done) = 0;
  // DELETE /mqtt/messages/{filter}: removes them; answers the topics removed.
  virtual void DeleteRetained(const std::string& filter, Done<std::vector<std::string>> done) = 0;
  // GET /metrics: Prometheus text exposition of the shards (connections, messages in/out, drops,
  // per shard). The REST server appends its own metrics.
  virtual void Metrics(Done<std::string> done) = 0;
};

}  // namespace ringmq::admin_api

#endif  // RINGMQ_ADMIN_API_BROKER_HOOKS_H_
