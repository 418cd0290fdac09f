// Shard: one pinned thread with its own io_uring, owning its listeners' accepted connections, the
// sessions homed on it, its part of the retained store and its local subscription trie
// (DESIGN.md sections 2-4, doc/threading.md).
//
// Threading model (the rules every file in broker/ follows):
//   1. Everything a Shard owns is touched only by its own thread. The only exceptions are the
//      cross-thread entry points named for it: PostToShard (via the Broker's RingMatrix) and
//      WakeFromAnyThread / RequestStop, which only write an eventfd or an atomic flag.
//   2. The shared structures are the Broker's TopicIndex and RetainedQuota (read without locks,
//      updated by atomic operations; the shard passes a Qsbr quiescent point once per loop turn
//      and goes offline before it blocks in the kernel) and its ConnectionQuota (a mutex, taken
//      only on the connect path).
//   3. Messages (route/message.h) are immutable and reference-counted; whichever shard drops the
//   last
//      reference frees it.
//   4. A client id has one home shard, ShardOfKey(client_id); its connection and session live there
//      only, so takeover and session state need no synchronisation.
// No mutex is taken on any per-message path.
#ifndef RINGMQ_BROKER_SHARD_H_
#define RINGMQ_BROKER_SHARD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "acl/acl_cache.h"
#include "base/metrics.h"
#include "base/owner_thread.h"
#include "broker/ack_gate.h"
#include "broker/config.h"
#include "broker/connection.h"
#include "broker/router.h"
#include "broker/session.h"
#include "broker/sessions.h"
#include "broker/shard_log.h"
#include "broker/shard_msg.h"
#include "broker/subscriptions.h"
#include "net/buffer_ring.h"
#include "net/ring.h"
#include "net/slot_table.h"
#include "route/message.h"
#include "route/retained_store.h"
#include "smp/key_shard.h"
#include "wal/wal.h"

namespace ringmq::admin_api {
struct IdSet;
struct SessionInfo;
struct NewSession;
struct NewSubscription;
struct SessionSubscriptions;
struct SessionResult;
struct SubscriptionInfo;
}  // namespace ringmq::admin_api

namespace ringmq::broker {

class Broker;

// What a shard counts; on its own cache lines so that shards never share one.
struct alignas(64) ShardStats {
  base::Counter connections;  // accepted CONNECTs, total
  base::Counter messages_in;
  base::Counter messages_out;
  base::Counter bytes_in;
  base::Counter bytes_out;
  base::Counter dropped_qos0;
  base::Counter dropped_queue_full;
  base::Counter dropped_no_member;
  base::Counter dropped_rate_limited;    // max_publish_rate / max_publish_bytes_rate
  base::Counter dropped_not_authorized;  // PUBLISH or will refused: ACL or a $SYS topic
  base::Counter dropped_acl;             // held for a session whose ACL no longer allows it
  base::Counter dropped_queue_disk;  // a spill file could not take it (disk budget or disk full)
  base::Counter dropped_spill_lost;  // spilled and unreadable (a disk error)
  base::Counter unacknowledged_not_durable;  // PUBACK/PUBREC withheld or 0x80: the log failed
  base::Counter refused_max_connections;     // CONNECT refused: max_connections
  base::Counter refused_max_connections_per_token;  // CONNECT refused: max_connections_per_token
  base::Counter refused_max_retained_bytes;  // retained PUBLISH not stored: max_retained_bytes
  // Backpressure between shards (broker/cross_shard.cc): connections whose PUBLISH input paused
  // because an outbox was full, and the time, in nanoseconds, during which input was paused.
  base::Counter input_pauses;
  base::Counter accept_pauses;  // a listener stopped accepting: out of file descriptors
  base::Counter input_paused_ns;
  // Refreshed every tick.
  base::Gauge connected;
  base::Gauge sessions;
  base::Gauge subscriptions;
  base::Gauge retained;
  base::LatencyHistogram loop_turn;  // work time of one loop turn (Run)
};

class Shard final : private Router::Host,
                    private SubscriptionSink,
                    private ShardLog::Host,
                    private Sessions::Host {
 public:
  Shard(Broker& broker, uint16_t id);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Creates the eventfd. Called on the starting thread.
  bool Init(std::string* error);
  // Creates the ring and its buffer ring; the calling thread owns the shard from now on (owner_).
  // REQUIRES: called on the thread that then calls Run.
  bool InitRing(std::string* error);
  // Listening sockets this shard accepts on (SO_REUSEPORT, one per listener per shard).
  // In listener order (Config::listeners), so a listener's index is its number in the config.
  void AddListener(int fd) { listen_fds_.push_back(fd); }
  // The event loop; returns after a stop request once every connection is closed or 2 s passed.
  void Run();

  // Cross-thread entry points.
  void WakeFromAnyThread() override;
  void RequestStop();
  // Runs fn on this shard's thread during its next loop turn. For the control plane only (the
  // admin shard, token answers): it takes a mutex, so it is never used per message. Once the
  // shard's loop has ended, fn is destroyed unrun (here, or on the shard thread if it was queued
  // too late) and PostTask returns false: a task that must answer someone does it from the
  // destructor of something it captures (broker/admin_bridge.cc).
  bool PostTask(std::function<void(Shard&)> fn);
  // Cluster mode, on the client id's home shard: another node accepted a connection with this
  // client id at stamp_ns (ClusterLink::SessionClaimed). A live connection here that claimed it
  // earlier closes (MQTT 5 reason 0x8E Session taken over).
  void ClusterSessionClaimed(const std::string& client_id, int64_t stamp_ns, uint64_t instance);

  // Control-plane operations, REQUIRES: called on this shard's thread (from a task).
  // A token changed: cache the new ACL and re-apply it to every session that uses the token.
  void ApplyTokenChange(const std::string& key, const acl::AclPtr& acl);
  // Durability (broker/persistence.cc). Restore and WriteSnapshot run before the shard thread
  // starts (the broker recovers every shard's log at startup); OpenWal on the shard thread.
  void Restore(const wal::WalRecord& r);
  // After the last Restore: drops what a damaged log left half restored.
  void FinishRestore();
  bool WriteSnapshot(uint64_t seq, std::string* error) {
    return log_.WriteSnapshot(seq, NowMs(), error);
  }
  // ShardLog::Open.
  void OpenWal(uint64_t first_seq, bool snapshot_written) {
    log_.Open(first_seq, snapshot_written);
  }

  // SIGHUP: new limits, log level, anonymous mode; TLS certificates are read again. Live
  // connections keep going. Returns an error (the old TLS credentials stay) or "".
  std::string Reload(const Config& fresh);
  // A token may no longer be used: forget it and close every connection that uses it. With
  // `discard_sessions` (deleted or expired: the owner is gone for good) the sessions it owns end
  // too, so that nobody else ever gets what they hold.
  void RevokeToken(const std::string& key, int64_t token_id, proto::ReasonCode reason,
                   bool discard_sessions);
  // REST requests (broker/shard_admin.cc), each answering for this shard's part.
  void CollectSessions(const admin_api::IdSet& sel, std::vector<admin_api::SessionInfo>* out);
  void DeleteSessions(const admin_api::IdSet& sel, std::vector<std::string>* out);
  void CollectSubscriptions(const admin_api::IdSet& sel,
                            std::vector<admin_api::SubscriptionInfo>* out);
  // Sessions and subscriptions created over REST (broker/session_admin.cc), for client ids homed
  // here: *out says what happened (nothing changes unless kOk).
  void CreateSessionFromAdmin(const admin_api::NewSession& n, admin_api::SessionResult* out);
  void AddSubscriptionsFromAdmin(const admin_api::SessionSubscriptions& a,
                                 admin_api::SessionResult* out);
  void DeleteSubscriptionsFromAdmin(const admin_api::IdSet& sessions,
                                    const admin_api::IdSet& filters,
                                    std::vector<admin_api::SubscriptionInfo>* out);
  void PublishFromAdmin(route::MessagePtr m);
  void CollectRetained(const std::string& filter, std::vector<route::MessagePtr>* out);
  void DeleteRetained(const std::string& filter, std::vector<std::string>* out);
  void CollectMetrics(base::MetricsText* out);

  uint16_t id() const { return id_; }
  // Readable from any thread (see Counter).
  const ShardStats& stats() const { return stats_; }
  // Readable from any thread, relaxed: a publisher on another shard asks whether a message sent
  // here may be logged (and its PUBACK must wait for this shard), and whether this shard's log
  // failed (answers waiting for it never become positive).
  //
  // Why a relaxed load of may_persist() cannot lose an acknowledged message. Let shard B make a
  // session S persistent (SetLogged: the count goes up; only in HandleConnect, LogSessionStart,
  // and in Restore, before the shard threads start, which orders it before everything) and let a
  // publisher on shard A publish a message m that S's subscription matches. m must be kept only if
  // its PUBLISH comes after S is persistent and subscribed, i.e. the client (or anything else)
  // learnt of both before m was sent: from S's CONNACK, and from its SUBACK (for a resumed session
  // that became persistent, an earlier one). Otherwise the publish is concurrent with them, and the
  // broker may as well have routed m before: to a clean session, or to no session at all, and a
  // crash would then lose it too. The CONNACK is queued after the increment in B's program order
  // and leaves through B's io_uring (the SQ tail is stored with release before io_uring_enter); m
  // reaches A's handler through A's io_uring (the CQ tail is loaded with acquire), and the kernel
  // orders everything in between (socket locks). So B's increment happens before A's load, and by
  // read-write coherence the load returns the increment or a later value of the count: never a
  // stale 0. A SUBACK after the CONNACK adds nothing new; besides, the topic index's mask is set
  // with release after the increment and A reads it with acquire before it calls may_persist().
  // Answers sent with B's count at 0 therefore only ever vouch for messages no persistent session
  // had to keep. A stale non-zero value only makes A wait for B's log without need. (The count goes
  // down when a persistent session ends; a message that still reaches it logs nothing.)
  bool may_persist() const { return log_.may_persist(); }
  bool wal_failed() const { return log_.failed(); }

 private:
  friend class ShardTestPeer;  // broker/shard_test.cc: MQTT through a shard, in memory

  // --- I/O (shard.cc) ---
  void ArmAccept(int listen_fd);
  void ArmRecv(Connection& c);
  // One io_uring completion of this shard's ring, by its operation kind (net/user_data.h).
  void OnCompletion(const net::Completion& cqe);
  void OnAccept(int res, bool more, int listener);
  // Passes received bytes through the connection's transports into c.in. False when the
  // connection is closing (a transport failed or closed).
  bool TransportIn(Connection& c, std::span<const uint8_t> data);
  // The WebSocket or TLS layer ended (`why`): its answer (close frame, alert) is sent, then the
  // connection closes (lingering).
  void EndTransport(Connection& c, const char* why);
  void OnRecv(Connection& c, int res, uint32_t flags);
  void OnSend(Connection& c, int res);
  void FlushOutput();
  void StartSend(Connection& c);
  void MarkDirty(Connection& c) { conns_.MarkDirty(c.slot); }
  Connection* NewConnection(int fd, std::string peer);
  // `code`: the reason code that ended it, when there is one (for the log).
  void CloseConnection(Connection& c, const char* why,
                       std::optional<proto::ReasonCode> code = std::nullopt);
  void FreeConnection(Connection& c);
  // Closes `c` as ProtocolClose does, later: in RunQueuedCloses, after this turn's delivery
  // step. For every close decided on the delivery path or inside a walk over the sessions or
  // connections: a close publishes the will and may end the session, which must not happen while
  // a match list or such a list is walked (doc/threading.md, "Closing"). Idempotent; from then on
  // no more input of `c` is handled.
  void QueueClose(Connection& c, proto::ReasonCode reason, const char* why);
  void RunQueuedCloses();
  // The final packet of a closing connection is written: linger (close_when_flushed) or close.
  void AfterFinalPacket(Connection& c);
  // shutdown(SHUT_WR), then read and discard until EOF, kLingerMs or the shard's stop deadline.
  void StartLinger(Connection& c);
  // Between shards (broker/cross_shard.cc).
  void DrainInbox();
  // After a kDeliver / kDeliverShared was handled: tells its sender when a session refused it and
  // the sender's answer asked to know (ShardMsg::value).
  void ReportRefusal(const ShardMsg& m, uint64_t refused_before);
  void FlushOutbox();
  // Before the loop sleeps with messages still in an outbox: true when every such ring is full and
  // its consumer will wake this shard once it frees a slot; false: room already, do not sleep.
  bool OutboxMayWait();
  // Backpressure: c's next PUBLISH waits (with every byte after it) until the outboxes drain; its
  // receive is cancelled meanwhile. ResumeInput (from FlushOutbox) handles the waiting input of
  // every paused connection and reads on. ContinueInput: handle c's input, then read on.
  void PauseInput(Connection& c);
  void ResumeInput();
  void ContinueInput(Connection& c);
  // Router::Host: never drops (backpressure instead: PauseInput). With msg.durable, the message
  // stays flagged durable (returns true) when it can cause records on `to` (a retained message, or
  // a delivery to a shard with persistent sessions); the publisher's answer then waits for that
  // shard (AckGate::NoteRemote).
  bool PostToShard(uint16_t to, ShardMsg msg) override;
  void Tick(int64_t now_ms);
  // Shard 0 publishes the $SYS/broker/... topics every sys_interval seconds.
  void PublishSys(int64_t now_ms);
  void BeginShutdown();

  // --- MQTT (mqtt_handler.cc: dispatch; connect.cc, publish.cc, subscribe.cc: the handlers) ---
  // Parses and handles every complete packet in c.in. Returns false when the connection is closing
  // or gone (handed to another shard): the caller must not touch it or arm a receive.
  bool HandleInput(Connection& c);
  bool HandlePacket(Connection& c, uint8_t byte0, proto::Bytes body);
  enum class ConnectResult : uint8_t { kAccepted, kClosed, kHandedOff, kPending };
  // The admin shard's answer to a token lookup for the connection in `slot`.
  void OnTokenAnswer(uint32_t slot, uint32_t generation, const std::string& key, acl::AclPtr acl);
  void RunTasks();
  // CONNACK with `reason` then close; logged with `why` (client_id may be empty: unknown yet).
  ConnectResult RefuseConnect(Connection& c, proto::ReasonCode reason, std::string_view client_id,
                              const char* why);
  // The connection events of subsystem mqtt (info): refused CONNECTs and ended connections.
  void LogConnectRefused(const Connection& c, std::string_view client_id, proto::ReasonCode code,
                         const char* why);
  void LogDisconnected(const Connection& c, const Session& s, const char* why,
                       std::optional<proto::ReasonCode> code);
  // Sets the session's ACL, recomputes the effective filters of its subscriptions and drops (and
  // counts) what the session holds and the ACL no longer allows (Session::DropDisallowed; in
  // flight too unless `inflight_sent`: the current connection has those already).
  void ApplyAcl(Session& s, const acl::AclPtr& acl, bool inflight_sent);
  // REST subscriptions (broker/session_admin.cc): whether all of `subs` may be added to s (nullptr:
  // a session about to be created) under `acl` (topic limits, ACL, max_subscriptions), else
  // *out says why; then adding them as a SUBSCRIBE would (Attach, logged).
  bool CheckAdminSubscriptions(Session* s, const acl::AclPtr& acl,
                               const std::vector<admin_api::NewSubscription>& subs,
                               admin_api::SessionResult* out) const;
  void ApplyAdminSubscriptions(Session& s, const acl::AclPtr& acl,
                               const std::vector<admin_api::NewSubscription>& subs);
  // GET /mqtt/sessions's view of session `id` (broker/shard_admin.cc).
  admin_api::SessionInfo SessionView(const std::string& id, Session& s) const;
  // CONNECT (broker/connect.cc): HandleConnect runs the phases below in this order; a phase that
  // refuses has answered the client and returns false / a result.
  ConnectResult HandleConnect(Connection& c, uint8_t byte0, proto::Bytes body);
  // The first packet decoded as CONNECT, or nullopt: refused (the connection is closing).
  std::optional<proto::Connect> DecodeFirstPacket(Connection& c, uint8_t byte0, proto::Bytes body);
  // The client id, assigned when empty and allowed (then also in *assigned); false: refused.
  bool ChooseClientId(const Connection& c, const proto::Connect& cn, std::string* client_id,
                      std::string* assigned);
  // Moves the connection, with every byte read so far, to the client id's home shard.
  void HandOff(Connection& c, uint16_t home, const std::string& assigned);
  // The token of the CONNECT (*key, *acl; none for an allowed anonymous client), or the result:
  // refused, or kPending while the admin shard is asked.
  std::optional<ConnectResult> Authenticate(Connection& c, const proto::Connect& cn,
                                            const std::string& client_id, std::string* key,
                                            acl::AclPtr* acl);
  // The will topic, the session's owner and the connection limits: nullopt, or refused.
  std::optional<ConnectResult> CheckConnectRights(Connection& c, const proto::Connect& cn,
                                                  const std::string& client_id,
                                                  const std::string& key, const acl::AclPtr& acl);
  // Takes over a live connection of the client id, ends (clean start) or resumes its session or
  // creates one, and binds it to c. *present: an existing session was resumed.
  Session& OpenSession(Connection& c, const proto::Connect& cn, const std::string& client_id,
                       const std::string& key, const acl::AclPtr& acl, bool* present);
  // The connection's negotiated limits, the CONNACK and the "client connected" event.
  void AcceptConnection(Connection& c, const proto::Connect& cn, const Session& s, bool id_assigned,
                        bool present);
  // Counts the client against max_connections and its token's limit; false (and counted as a
  // refusal) when a limit is reached.
  bool AcquireConnectionQuota(Connection& c, const std::string& client_id, const std::string& key,
                              const acl::AclPtr& acl);
  // May a client holding `acl` (nullptr: anonymous) publish to `topic`, as a PUBLISH or a will?
  // Never to a $SYS topic, whatever the token; otherwise as the token's ACL says.
  static bool MayPublish(const acl::CompiledAcl* acl, std::string_view topic);
  // PUBLISH (broker/publish.cc): HandlePublish checks, then RouteAndAnswer.
  void HandlePublish(Connection& c, proto::Publish& p);
  // The topic, after the client's topic alias; nullopt: a protocol error closed the connection.
  std::optional<std::string_view> InboundTopic(Connection& c, const proto::Publish& p);
  // kSuccess, or the reason max_publish_rate / max_publish_bytes_rate refuses p (counted).
  proto::ReasonCode CheckPublishRate(Connection& c, const proto::Publish& p,
                                     std::string_view topic);
  // Routes p unless `result` refuses it, and answers a QoS 1/2 PUBLISH (now, or once what the
  // answer vouches for is durable).
  void RouteAndAnswer(Connection& c, const proto::Publish& p, std::string_view topic,
                      proto::ReasonCode result, bool store_retained);
  void HandleSubscribe(Connection& c, const proto::Subscribe& s);
  // Asks every shard (itself included) for the retained messages of `wanted`; they are delivered
  // to s as the answers arrive (SendRetained).
  void RequestRetained(Session& s, const std::vector<RetainedWanted>& wanted);
  void HandleUnsubscribe(Connection& c, const proto::Unsubscribe& u);
  void HandleAck(Connection& c, const proto::Ack& a);
  void HandleDisconnect(Connection& c, const proto::Disconnect& d);
  void AdoptHandoff(std::unique_ptr<Handoff> h);
  // MQTT 5: DISCONNECT with `reason` then close; 3.1.1: close.
  void ProtocolClose(Connection& c, proto::ReasonCode reason, const char* why);
  // The connection ended (socket closed, error, timeout): will, session expiry, cleanup; `why` and
  // `code` are logged ("client disconnected").
  void ConnectionLost(Connection& c, const char* why,
                      std::optional<proto::ReasonCode> code = std::nullopt);
  // The connection no longer counts against max_connections(_per_token). Idempotent.
  void ReleaseConnectionQuota(Connection& c);
  // Sessions::Host (the lifecycle is sessions_'s): the will with the rights its client has now,
  // and the routing changes, through router_.
  void PublishWill(const Session& s, route::MessagePtr will) override;
  void SetSharedLive(Session& s, bool live) override { router_.SetSharedLive(s, live); }
  void RouteShared(const route::MessagePtr& m, const SharedKey* key) override {
    (void)router_.RouteShared(m, key);
  }

  // Delivery (broker/delivery.cc); routing is router_'s.
  // Would storing a retained message of topic + payload exceed max_retained_bytes? Counts it.
  bool RetainedQuotaExceeded(std::string_view topic, size_t payload_size);
  void Deliver(Session& s, Delivery d) override;  // Router::Host
  void PumpSession(Session& s);
  // Counts (and logs) what the session dropped since `before` was read.
  void CountDrops(const Session& s, const Session::Counters& before);
  // Queues d's PUBLISH to the client as sent with (qos, packet_id): the bytes encoded once for
  // the message when the client needs none of its own, else through QueuePublish. False when it
  // exceeds the client's Maximum Packet Size (then it is not sent).
  bool QueueDelivery(Connection& c, const Delivery& d, uint8_t qos, uint16_t packet_id,
                     int64_t now);
  // Queues a PUBLISH to the client, with a topic alias when the client allows them. False when it
  // exceeds the client's Maximum Packet Size (then it is not sent).
  bool QueuePublish(Connection& c, proto::Publish& p);
  void SendRetained(Session& s, const std::string& sub_filter, const SubOptions& o,
                    const std::vector<route::MessagePtr>& matches);
  void AnswerRetainQuery(RetainQuery& q);
  void StoreRetained(const route::MessagePtr& m) override;  // Router::Host
  // Router::Host, cluster mode (broker/cluster_link.h); nothing without --cluster.
  void ToCluster(const route::MessagePtr& m) override;
  void ClusterInterest(std::string_view filter, bool add) override;
  bool SharedAcrossNodes() const override;
  void ClusterSharedInterest(const SharedKey& key, bool add) override;
  // The shard owning `key`: the home shard of a client id, the owner of a retained topic.
  uint16_t ShardOfKey(std::string_view key) const;

  // io_uring operation kinds of this shard (net/user_data.h).
  enum OpKind : uint8_t { kOpAccept = 1, kOpRecv, kOpSend, kOpEvent, kOpWal, kOpCancel };

  // Logging to the WAL (broker/persistence.cc); each is a no-op without a WAL.
  template <typename R>
  void Log(const R& record) {
    log_.Append(record);
  }
  void LogSessionStart(Session& s);
  // SubscriptionSink: Attach / Detach go to router_.
  void Attach(Session& s, const Subscription& sub) override;
  void Detach(Session& s, const Subscription& sub) override;
  void LogSubscription(const Session& s, const std::string& filter,
                       const Subscription* sub) override;
  void LogSessionEnd(Session& s, bool removed) override;  // Sessions::Host too
  void LogQueued(Session& s, Delivery& d);
  void LogFinished(Session& s);
  void LogRetained(const route::Message& m);
  void LogInflight(Session& s, uint64_t wal_id, uint16_t packet_id, wal::WalInflightPhase phase);
  void SetLogged(Session& s, bool logged);
  void RestoreInflight(Session& s, const wal::WalInflightState& r);
  // ShardLog::Host: every record of a snapshot of this shard's state.
  bool AddStateRecords(SnapshotRecords& out) override;
  // Once per loop turn: closes the turn's held answers, confirms handled and durable messages to
  // the shards that sent them and sends the answers whose records are durable (and whose
  // refusals, for a tagged answer, are known).
  void EndTurnDurability();
  // Answers a QoS 1/2 PUBLISH now, or holds the answer until what it vouches for is durable (and,
  // with a tag, until the shards the message went to reported their refusals: AckGate::NewTag).
  void AnswerPublish(Connection& c, proto::PacketType type, uint16_t packet_id,
                     proto::ReasonCode reason, bool must_wait, bool log_incoming_qos2 = false,
                     uint64_t tag = 0);
  // The steady clock in milliseconds, read once per loop turn (a clock read per message cost 10 %
  // of a shard's cycles on fan-in): within a turn every caller sees the time the turn woke at.
  // Outside the loop (recovery, tests) it reads the clock.
  int64_t NowMs() const;
  static int64_t MonoNs();  // steady clock, nanoseconds

  Broker& broker_;
  const uint16_t id_;
  int64_t turn_now_ms_ = 0;  // NowMs() within a loop turn; 0 outside the loop
  Config cfg_;               // this shard's copy: replaced (on this thread) by a SIGHUP reload
  net::Ring ring_;
  std::unique_ptr<net::BufferRing> buffers_;
  int event_fd_ = -1;
  uint64_t event_buf_ = 0;
  std::vector<int> listen_fds_;
  // Listeners whose accept failed for want of descriptors (OnAccept): re-armed by the next Tick.
  std::vector<bool> accept_paused_;
  bool accept_pause_logged_ = false;  // once per episode, until an accept succeeds
  net::TlsContext tls_;               // loaded when a listener uses TLS
  std::vector<uint8_t> ws_wire_;      // scratch: WebSocket frames on their way into TLS
  std::atomic<bool> stop_requested_{false};
  std::mutex tasks_mu_;                             // control plane only (PostTask)
  std::vector<std::function<void(Shard&)>> tasks_;  // guarded by tasks_mu_
  bool tasks_closed_ = false;                       // guarded by tasks_mu_: Run has ended
  std::atomic<bool> has_tasks_{false};
  acl::AclCache acl_cache_;
  bool stopping_ = false;
  int64_t stop_deadline_ms_ = 0;

  net::SlotTable<Connection> conns_;  // by slot; dirty: output to flush this turn
  struct QueuedClose {
    uint32_t slot;
    uint32_t generation;
    proto::ReasonCode reason;
    const char* why;  // a string literal
  };
  std::vector<QueuedClose> queued_closes_;  // QueueClose, run by RunQueuedCloses

  // Where sessions spill their queues (broker/spill.h); before sessions_, which count their
  // memory in it until they are destroyed.
  SpillContext spill_;
  // By client id, with their lifecycle (wills, expiry, takeover). Holds owner_ (declared later)
  // by reference only, and its destructor calls none of its methods.
  Sessions sessions_;
  route::RetainedStore retained_;
  // Its log, the snapshots and the answers that wait for it; after cfg_, which it reads. Holds
  // owner_ by reference only (like sessions_).
  ShardLog log_;
  std::vector<std::vector<ShardMsg>> outbox_;  // per destination shard, not yet in its ring
  bool outbox_backlogged_ = false;  // an outbox reached kOutboxHigh: PUBLISH input pauses
  int64_t backlog_since_ns_ = 0;    // MonoNs() when outbox_backlogged_ was set
  struct ConnectionRef {
    uint32_t slot;
    uint32_t generation;
  };
  std::vector<ConnectionRef> paused_;  // PauseInput, until ResumeInput
  int64_t next_tick_ms_ = 0;
  int64_t next_spill_log_ms_ = 0;  // CountDrops logs a spill failure once a second at most
  // QoS 1/2 deliveries a session refused (drop-new, or no disk to spill to), ever: an MQTT 5
  // QoS 1 PUBLISH that raised it while it was routed here (RouteAndAnswer), or while its message
  // was delivered from another shard (ReportRefusal), is answered 0x97.
  uint64_t refused_deliveries_ = 0;
  int64_t last_touch_ms_ = 0;  // when the tokens in use were last reported (token_touch)
  int64_t next_sys_ms_ = 0;
  int64_t started_ms_ = 0;
  double load_in_1min_ = 0, load_out_1min_ = 0;  // $SYS load averages (messages per minute)
  uint64_t last_in_ = 0, last_out_ = 0;
  uint64_t assigned_ids_ = 0;
  ShardStats stats_;
  // Debug builds: asserts that only the shard's thread touches what it owns (bound to the thread
  // that restores the shard's log at start, then to the shard thread in InitRing).
  base::OwnerThread owner_;
  route::EncodedPublish encoded_;  // QueueDelivery: the message being fanned out, encoded once
  Router router_;                  // after stats_ and owner_, which it uses
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_SHARD_H_
