// Sessions: the sessions homed on one shard, by client id, and their lifecycle (MQTT 3.1.1
// sections 3.1.2.4 and 3.1.2.5, MQTT 5.0 sections 3.1.2.11, 3.1.3.2 and 4.1): created or resumed
// at CONNECT (a clean start ends the old one), offline when their connection ends (the will sent
// at once or after its delay), destroyed when they expire, when their client asks or when the
// REST API deletes them (a will still due is sent first, the subscriptions leave routing, and
// messages that reached them through a shared subscription go to another member of the group).
//
// What a session holds (queue, in flight, subscriptions) is Session's (broker/session.h); how a
// will is published, how a session is logged and how routing changes are the shard's, reached
// through Sessions::Host, so that the lifecycle is tested in memory with a fake host
// (broker/sessions_test.cc).
//
// Thread-safety: owned by one shard; only that shard's thread calls it (asserted in debug builds
// against the shard's OwnerThread).
// Invariants:
//   1. One session per client id; a session's connection, when set, is the only connection with
//      the session as its own (Connection::session), and Destroy clears both sides.
//   2. A will is published at most once: it is taken from the session before the host publishes
//      it (will_due_ms is 0 whenever no delayed will waits).
//   3. No walk over the sessions (ForEach, Expire) creates or destroys one while it walks: the
//      host's calls only deliver, and a close they decide is queued (doc/threading.md,
//      "Closing"); sessions to destroy are collected first.
#ifndef RINGMQ_BROKER_SESSIONS_H_
#define RINGMQ_BROKER_SESSIONS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/owner_thread.h"
#include "broker/session.h"
#include "route/message.h"

namespace ringmq::broker {

class Connection;

class Sessions {
 public:
  // What the lifecycle needs of its shard. None of these may create or destroy a session
  // (invariant 3).
  class Host {
   public:
    // The will of `s` (already taken from it): published with the rights its client has now.
    virtual void PublishWill(const Session& s, route::MessagePtr will) = 0;
    // `s` went offline (removed = false) or ends (true): its log records.
    virtual void LogSessionEnd(Session& s, bool removed) = 0;
    // Routing: one of the session's subscriptions leaves it; the session's shared memberships
    // count as connected or not; a message that reached the session through the shared group
    // `key` and not its client goes to another member.
    virtual void Detach(Session& s, const Subscription& sub) = 0;
    virtual void SetSharedLive(Session& s, bool live) = 0;
    virtual void RouteShared(const route::MessagePtr& m, const SharedKey* key) = 0;

   protected:
    ~Host() = default;
  };

  using Map = std::unordered_map<std::string, std::unique_ptr<Session>>;

  // `owner` is the shard's thread check; both outlive the registry.
  Sessions(Host& host, const base::OwnerThread& owner) : host_(host), owner_(owner) {}
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  Session* Find(const std::string& client_id) const;
  bool contains(const std::string& client_id) const { return map_.contains(client_id); }
  size_t size() const { return map_.size(); }
  // Walks (client id, owning pointer) pairs; see invariant 3.
  Map::const_iterator begin() const { return map_.begin(); }
  Map::const_iterator end() const { return map_.end(); }

  // A new, empty session. REQUIRES: client_id has none.
  Session& Create(const std::string& client_id, Session::QueueLimits limits);
  // CONNECT: ends the client id's session when `clean_start`, else resumes it (*present), or
  // creates one; binds it to c. REQUIRES: the session has no connection (a live one was taken
  // over and closed first [MQTT-3.1.4-3]).
  Session& Open(const std::string& client_id, bool clean_start, Session::QueueLimits limits,
                Connection& c, bool* present);
  // The session's connection ended at now_ms (the caller unbound it). It stays, offline, for its
  // expiry interval (none: destroyed now). With `publish_will` (not after a normal DISCONNECT
  // [MQTT-3.14.4-3]) its will is published now, or after its delay when the session outlives
  // the connection [MQTT-3.1.3-9]; without, the will is discarded.
  void Disconnected(Session& s, int64_t now_ms, bool publish_will);
  // Publishes the delayed wills that are due and destroys the offline sessions whose expiry
  // interval has passed (0xFFFFFFFF: never); frees the queue storage of idle sessions.
  void Expire(int64_t now_ms);
  // Ends the session now: its will if one is still delayed (the session ends first
  // [MQTT-3.1.3-9]), the log, its subscriptions, its undelivered shared messages. Frees s.
  void Destroy(Session& s);

 private:
  // Takes the will from s and has the host publish it (invariant 2). Nothing when there is none.
  void PublishWill(Session& s);

  Host& host_;
  const base::OwnerThread& owner_;
  Map map_;
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_SESSIONS_H_
