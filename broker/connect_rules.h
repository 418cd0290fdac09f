// The rules of a CONNECT that need no shard state (MQTT 5.0 section 3.1-3.2, 3.1.1
// section 3.1-3.2), as pure functions: which client identifiers are accepted or assigned, who may
// use an existing session, what keep-alive and session expiry the broker grants, and the CONNACK
// that says so. broker/connect.cc applies them; broker/connect_rules_test.cc tests them.
//
// Thread-safety: pure functions.
#ifndef RINGMQ_BROKER_CONNECT_RULES_H_
#define RINGMQ_BROKER_CONNECT_RULES_H_

#include <cstdint>
#include <string_view>

#include "acl/acl.h"
#include "broker/config.h"
#include "broker/session.h"
#include "proto/packet.h"

namespace ringmq::broker {

// The Topic Alias Maximum the broker announces to MQTT 5 clients.
inline constexpr uint16_t kTopicAliasMaximum = 64;

enum class ClientIdRule : uint8_t {
  kAsSent,  // the client id of the CONNECT
  kAssign,  // empty, and allowed: the broker assigns one (MQTT 5 tells the client in the CONNACK)
  kRefuse,  // empty without clean session (3.1.1 [MQTT-3.1.3-8]) or 3.1: identifier rejected
};
ClientIdRule ClientIdRuleFor(const proto::Connect& cn);

// A session belongs to the token that last connected it (doc/rest-api.md, "Session ownership"):
// may a client holding `acl` (nullptr: anonymous) resume or replace the session owned by token
// `owner` (0: nobody)? A master token may; another token or an anonymous client may not.
bool MayUseSession(int64_t owner, const acl::CompiledAcl* acl);

// The keep-alive the broker holds the client to: its own, unless it asks for more than
// max_keepalive, or (max_keepalive below 65535) for none at all (MQTT 5.0 section 3.2.2.3.14).
uint16_t GrantedKeepAlive(uint16_t asked, uint16_t max_keepalive);

// The session expiry interval in seconds: MQTT 5's property, capped by max_session_expiry; 3.1.1
// keeps a session without clean session until it is cleaned (0xFFFFFFFF), else ends it with the
// connection (0).
uint32_t GrantedSessionExpiry(const proto::Connect& cn, uint32_t max_session_expiry);

// A successful CONNACK. For MQTT 5 it announces the broker's limits, an assigned client id, and
// what the broker granted differently from what was asked (keep-alive, session expiry).
// REQUIRES: assigned_client_id outlives the CONNACK (its property is a view).
proto::Connack AcceptingConnack(const proto::Connect& cn, const Config& cfg, bool session_present,
                                std::string_view assigned_client_id, uint16_t keep_alive);

// The queue limits a new session gets: max_session_queue_bytes, max_queued_messages and
// queue_full_policy (disconnect drops new messages in the session; the shard closes the client).
// `spill`: where the queue's tail goes (ignored when max_queue_disk_bytes is 0).
Session::QueueLimits QueueLimitsOf(const Config& cfg, SpillContext* spill);
// A shard's share of max_queue_memory_bytes (SpillContext::memory_max; 0: no bound).
uint64_t ShardQueueMemory(const Config& cfg);

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_CONNECT_RULES_H_
