// Session: the MQTT state of one client id that outlives its network connection (MQTT 5.0 section
// 4.1): subscriptions, the outgoing QoS 1/2 window and queue, incoming QoS 2 packet ids, the will.
//
// Thread-safety: owned by the client id's home shard; only that shard's thread touches it.
// Invariants:
//   1. inflight holds at most `window` deliveries with distinct non-zero packet ids, in send order.
//   2. The queue holds deliveries not yet sent (offline, or window full), oldest first, within the
//      QueueLimits (queued_bytes_ is the sum of their QueuedBytes); QoS 0 is never queued for an
//      offline session. Its oldest part is in queue_ (memory_bytes_ of them), the rest, newer, in
//      the spill file (spilled_count_ entries of spill_->bytes): once something is spilled,
//      every new delivery goes there until the spill is read back empty.
//   3. A packet id is in incoming_qos2 from the PUBREC the broker sent until the client's PUBREL.
//   4. A logged delivery (wal_id != 0) is reported by DrainFinished exactly once, when the session
//      is done with it: PUBACK, PUBCOMP, refused, discarded, expired or dropped. Until then it is
//      live in the WAL (past PUBREC only its packet id matters, but the record stays so that a
//      restart still sends PUBREL).
//   5. While ids_in_order_, the packet ids in flight, oldest first, are met in that order walking
//      from the oldest one's id up (1..65535, wrapping) to last_packet_id_, which is not passed:
//      so NextPacketId needs no search unless the walk came round to the oldest id.
//   6. A spilled delivery whose wal id is in spill_->removed was removed while on disk
//      (RemoveQueued at restore): it is skipped when read back.
//   7. spilled_count_ != 0 implies spill_ != nullptr and spill_->file != nullptr.
// The session does no network I/O: Pump and Resend hand packets to a callback. Its queue's tail
// is in a spill file (broker/spill.h) when QueueLimits::spill is set.
#ifndef RINGMQ_BROKER_SESSION_H_
#define RINGMQ_BROKER_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "acl/acl.h"
#include "base/ring_deque.h"
#include "broker/spill.h"
#include "proto/packet.h"
#include "route/message.h"

namespace ringmq::broker {

class Connection;

// Options of one subscription, as granted.
struct SubOptions {
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;  // 0 = none
};

// The shared subscription ($share/{group}/{filter}) a delivery came through.
struct SharedKey {
  std::string group;
  std::string filter;
  bool operator<(const SharedKey& o) const {
    return group < o.group || (group == o.group && filter < o.filter);
  }
};
using SharedKeyPtr = std::shared_ptr<const SharedKey>;

// One subscription as the client asked for it, and the filters actually subscribed: the requested
// filter itself, or with an ACL its intersections with the token's subscribe filters (each may keep
// a "$share/{group}/" prefix).
struct Subscription {
  SubOptions options;
  std::vector<std::string> effective;
};

// One message on its way to this session.
struct Delivery {
  route::MessagePtr msg;
  uint8_t qos = 0;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  SharedKeyPtr shared;  // set when delivered through a shared subscription
  uint64_t wal_id = 0;  // its WalMessageQueued record (persistent sessions), 0: not logged
};

struct Inflight {
  enum class State : uint8_t { kAwaitPuback, kAwaitPubrec, kAwaitPubcomp };
  uint16_t packet_id = 0;
  State state = State::kAwaitPuback;
  Delivery delivery;
};

struct WillMessage {
  route::MessagePtr msg;
  uint32_t delay_s = 0;
};

// What a delivery counts against max_session_queue_bytes: the message's topic, payload and
// properties, and the queue entry itself (so that empty messages are not free).
size_t QueuedBytes(const Delivery& d);

class Session {
 public:
  // What Enqueue does when the queue is full.
  enum class QueuePolicy : uint8_t { kDropNew, kDropOldest };
  struct QueueLimits {
    uint64_t max_bytes = UINT64_MAX;  // QueuedBytes of the queue
    uint32_t max_messages = 0;        // 0: no limit by count
    QueuePolicy policy = QueuePolicy::kDropNew;
    // Past this many bytes in memory, the queue's tail goes to a spill file (when `spill` is
    // set; otherwise everything stays in memory).
    uint64_t memory_bytes = UINT64_MAX;
    // Also the shard-wide bound of memory (SpillContext::memory_max), which the session's
    // in-memory part counts in.
    SpillContext* spill = nullptr;
  };

  Session(std::string client_id, QueueLimits limits)
      : client_id_(std::move(client_id)), limits_(limits) {}
  explicit Session(std::string client_id) : Session(std::move(client_id), QueueLimits()) {}
  ~Session();
  // Not copied: its in-memory bytes are counted in the shard's SpillContext.
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& client_id() const { return client_id_; }

  // Subscriptions by their requested filter text (including any $share/ prefix).
  // Frees the storage of the queue and the in-flight window when both are empty, so that a
  // session that received once and went quiet costs what an idle one does (Sessions::Expire,
  // once per tick; never per message).
  void ReleaseIdleStorage() {
    queue_.Release();
    inflight_.Release();
  }
  std::unordered_map<std::string, Subscription>& subscriptions() { return subscriptions_; }
  // The subscription stored under `filter`, created when absent. The first one sizes the map to 2
  // buckets (libstdc++ allocates 13 at a first insert: 104 bytes for a client's one filter).
  Subscription& SubscriptionFor(const std::string& filter) {
    if (subscriptions_.bucket_count() == 1) subscriptions_.reserve(1);
    return subscriptions_[filter];
  }

  // --- Outgoing, broker to client ---

  // Adds a delivery; true when it was queued. When it does not fit the QueueLimits, kDropNew
  // refuses it and kDropOldest drops the oldest queued ones until it fits (refused when it cannot
  // fit even alone); each message dropped counts in dropped() (logged ones are reported by
  // DrainFinished). A delivery the spill file cannot take (disk budget used up, disk full) is
  // refused and counted in disk_refused() (spill_error() says why). QoS 0 for an offline session
  // is not queued (false, not counted).
  bool Enqueue(Delivery d, bool online);
  // Restoring from the WAL: adds a delivery the broker accepted before, whatever the limits.
  void RestoreQueued(Delivery d);

  // Sends queued deliveries while the window has room: QoS 0 leave at once, QoS 1/2 get a packet id
  // and enter inflight. Expired messages are discarded. send(const Delivery&, uint16_t packet_id).
  template <typename F>
  void Pump(uint16_t window, int64_t now_ms, F&& send) {
    for (;;) {
      if (spilled_count_ != 0 && memory_bytes_ <= limits_.memory_bytes / 2) Refill();
      if (queue_.empty()) return;
      Delivery& d = queue_.front();
      const size_t bytes = QueuedBytes(d);  // before d is moved from
      if (Expired(*d.msg, now_ms)) {
        if (d.wal_id != 0) finished_.push_back(d.wal_id);
        PopQueued(bytes);
        continue;
      }
      if (d.qos > 0 && inflight_.size() >= window) return;
      uint16_t id = 0;
      if (d.qos > 0) {
        id = NextPacketId();
        inflight_.push_back(
            Inflight{id, d.qos == 1 ? Inflight::State::kAwaitPuback : Inflight::State::kAwaitPubrec,
                     std::move(d)});
        send(inflight_.back().delivery, id);
      } else {
        send(d, 0);
      }
      PopQueued(bytes);
    }
  }

  // On reconnect with a kept session: PUBLISH again with DUP for unacknowledged QoS 1/2, PUBREL for
  // those past PUBREC, in the original order. resend(const Inflight&).
  template <typename F>
  void Resend(F&& resend) {
    for (const Inflight& f : inflight_) resend(f);
  }

  // Calls fn(Delivery&, const Inflight* or nullptr when queued) for every delivery, in flight
  // first (send order), then queued (when a session becomes persistent, to log what it holds:
  // rare, so the spilled part is read back into memory first).
  template <typename F>
  void ForEachDelivery(F&& fn) {
    while (RefillOne()) {
    }
    for (Inflight& f : inflight_) fn(f.delivery, &f);
    for (Delivery& d : queue_) fn(d, static_cast<const Inflight*>(nullptr));
  }
  // The session's token no longer allows some topics: drops every delivery whose message the
  // client does not have yet and allowed(const Message&) refuses - the queued ones and, with
  // `inflight_too` (nothing in flight was written to the current connection: the session is
  // offline, or about to resend), those in flight before PUBREC. Logged ones are reported by
  // DrainFinished. Returns how many were dropped. The spilled part is rewritten without them (a
  // pass over the file, on the caller's thread); when that cannot be done (no disk) it is checked
  // as it is read back, against the session's `acl` then (counted in acl_dropped()).
  template <typename F>
  size_t DropDisallowed(bool inflight_too, F&& allowed) {
    size_t n = DropDisallowedSpilled(allowed);
    auto drop = [&](const Delivery& d) {
      if (d.msg == nullptr || allowed(*d.msg)) return false;
      if (d.wal_id != 0) finished_.push_back(d.wal_id);
      ++n;
      return true;
    };
    queue_.EraseIf([&](const Delivery& d) {
      const size_t bytes = QueuedBytes(d);
      if (!drop(d)) return false;
      queued_bytes_ -= bytes;
      SubMemory(bytes);
      return true;
    });
    if (inflight_too) {
      inflight_.EraseIf([&](const Inflight& f) {
        return f.state != Inflight::State::kAwaitPubcomp && drop(f.delivery);
      });
    }
    return n;
  }
  // Restoring from the WAL: drops queued deliveries whose message is a placeholder (empty
  // topic: a past-PUBREC entry of a snapshot whose packet id state was lost to corruption).
  void DropPlaceholders();

  // Calls fn(const Inflight&) for every delivery in flight, in send order (snapshots).
  template <typename F>
  void ForEachInflight(F&& fn) const {
    for (const Inflight& f : inflight_) fn(f);
  }
  // Calls fn(const Delivery&) for every queued delivery in memory, oldest first (snapshots; the
  // spilled ones follow them: spill()).
  template <typename F>
  void ForEachQueued(F&& fn) const {
    for (const Delivery& d : queue_) fn(d);
  }
  // The spill file when something is spilled, else nullptr; its unread entries are the newest
  // queued deliveries (minus those in removed_spilled(), invariant 6).
  std::shared_ptr<SpillFile> spill() const { return spill_ ? spill_->file : nullptr; }
  size_t spilled_count() const { return spilled_count_; }
  const std::unordered_set<uint64_t>& removed_spilled() const;
  // Calls fn(const Delivery&) for every spilled delivery, oldest first, reading the file. False
  // when it cannot be read.
  bool ForEachSpilled(const std::function<void(const Delivery&)>& fn) const;

  // Calls fn(const Delivery&) for every delivery whose message the client does not have yet:
  // queued, and in flight before PUBREC. Used to hand shared-subscription messages to another
  // member.
  template <typename F>
  void ForEachUndelivered(F&& fn) const {
    for (const Inflight& f : inflight_) {
      if (f.state != Inflight::State::kAwaitPubcomp) fn(f.delivery);
    }
    for (const Delivery& d : queue_) fn(d);
    (void)ForEachSpilled(fn);
  }

  // Client acknowledgements; false when the packet id is unknown or in the wrong state.
  bool OnPuback(uint16_t id);
  // The caller answers PUBREL. *wal_id (when given) receives the delivery's record id when the
  // exchange moved from awaiting PUBREC to awaiting PUBCOMP (0 otherwise).
  bool OnPubrec(uint16_t id, uint64_t* wal_id = nullptr);
  bool OnPubcomp(uint16_t id);
  // Forgets an in-flight delivery whatever its state (the client refused it, or it could not be
  // sent because it exceeds the client's Maximum Packet Size).
  bool Discard(uint16_t id);

  // Calls fn(wal_id) for every logged delivery the session is done with since the last call
  // (acknowledged, refused, expired, dropped), so the shard can log WalMessageAcked.
  template <typename F>
  void DrainFinished(F&& fn) {
    for (uint64_t id : finished_) fn(id);
    finished_.clear();
  }
  // Restoring from the WAL: forgets a queued or in-flight delivery by its record id.
  void RemoveQueued(uint64_t wal_id);
  // Restoring from the WAL: the logged delivery `wal_id` was sent with `packet_id` and is in
  // `state`: it moves from the queue into flight (or changes state there), keeping send order.
  // False when no delivery has that id.
  bool RestoreInflight(uint64_t wal_id, uint16_t packet_id, Inflight::State state);

  size_t inflight_count() const { return inflight_.size(); }
  size_t queued_count() const { return queue_.size() + spilled_count_; }
  uint64_t queued_bytes() const { return queued_bytes_; }
  uint64_t dropped() const { return dropped_; }  // by Enqueue, since the session began
  // by Enqueue: the spill refused them
  uint64_t disk_refused() const { return spill_ ? spill_->refused : 0; }
  // spilled, refused by the ACL on read
  uint64_t acl_dropped() const { return spill_ ? spill_->acl_dropped : 0; }
  // spilled, unreadable (a disk error)
  uint64_t spill_lost() const { return spill_ ? spill_->lost : 0; }
  const std::string& spill_error() const;  // the last one
  struct Counters {
    uint64_t dropped, disk_refused, acl_dropped, spill_lost;
  };
  Counters counters() const { return {dropped_, disk_refused(), acl_dropped(), spill_lost()}; }

  // --- Incoming QoS 2, client to broker ---

  // True when this packet id is new (deliver the message); false for a retransmission.
  bool OnIncomingQos2(uint16_t id) {
    if (incoming_qos2_ == nullptr) incoming_qos2_ = std::make_unique<IncomingQos2>();
    return incoming_qos2_->emplace(id, false).second;
  }
  // The id's record is in the WAL (only those go into snapshots: an id whose logging waits for
  // other shards' records must not become durable before them).
  void MarkIncomingQos2Logged(uint16_t id) {
    if (incoming_qos2_ == nullptr) return;
    if (auto it = incoming_qos2_->find(id); it != incoming_qos2_->end()) it->second = true;
  }
  // True when the id was pending; the entry is released either way.
  bool OnPubrel(uint16_t id) { return incoming_qos2_ != nullptr && incoming_qos2_->erase(id) != 0; }
  size_t incoming_qos2_count() const { return incoming_qos2_ ? incoming_qos2_->size() : 0; }
  template <typename F>
  void ForEachLoggedIncomingQos2(F&& fn) const {
    if (incoming_qos2_ == nullptr) return;
    for (const auto& [id, logged] : *incoming_qos2_) {
      if (logged) fn(id);
    }
  }

  // --- Lifecycle, managed by the shard ---
  Connection* connection = nullptr;  // nullptr while offline
  proto::Version version = proto::Version::kV311;
  uint32_t expiry_interval_s = 0;  // 0: ends with the connection
  bool clean_start = true;         // as the last CONNECT asked
  bool logged = false;             // its state is in the shard's WAL (persistent sessions)
  int64_t offline_since_ms = 0;
  std::unique_ptr<WillMessage> will;  // a pointer: most sessions have none
  acl::AclPtr acl;          // of the token the session last connected with; nullptr: anonymous
  std::string token_key;    // empty: anonymous
  int64_t will_due_ms = 0;  // a delayed will waits until then (0: none pending)
  // The id of the token the session belongs to (doc/rest-api.md, "Session ownership"): only
  // it or a master token may use the client id while the session exists. 0: anonymous or
  // unknown (logged before owners were): any client may resume it, and then owns it.
  int64_t owner_token_id = 0;

 private:
  // A non-zero id not in flight: the one after last_packet_id_, in O(1) while ids_in_order_.
  uint16_t NextPacketId();
  // Queues d (moved from when queued), of QueuedBytes `bytes`. False when it should go to the
  // spill file and cannot (Spill::error), unless `must`: then memory takes it.
  bool PushQueued(Delivery& d, size_t bytes, bool must);
  // Removes the front delivery, of QueuedBytes `bytes`.
  void PopQueued(size_t bytes);
  // Reads spilled deliveries back into memory while it has room (at least one when empty).
  void Refill();
  // DropDisallowed for the spill: writes what `allowed` keeps to a new file.
  size_t DropDisallowedSpilled(const std::function<bool(const route::Message&)>& allowed);
  // Reads one spilled delivery back into memory (skipping those removed or no longer allowed);
  // false when nothing is spilled any more.
  bool RefillOne();
  // Whether d fits the limits next to what is queued.
  bool Fits(size_t bytes) const;
  // Appends d to queue_, counting its bytes in queued_bytes_, memory_bytes_ and the shard's count
  // of memory (SpillContext::memory_used). SubMemory takes them back from the last two.
  void PushInMemory(Delivery& d, uint64_t bytes);
  void SubMemory(uint64_t bytes);
  // Whether `bytes` more in memory would pass the shard-wide bound.
  bool ShardMemoryFull(uint64_t bytes) const;

  std::string client_id_;
  QueueLimits limits_;
  uint64_t queued_bytes_ = 0;  // invariant 2
  uint64_t memory_bytes_ = 0;  // of queue_
  std::unordered_map<std::string, Subscription> subscriptions_;
  base::RingDeque<Delivery> queue_;  // an idle session allocates no queue
  // What only a session that spilled (or tried to) needs: allocated at its first spill and
  // kept (its error is reported later); an idle session holds a null pointer.
  struct Spill {
    std::shared_ptr<SpillFile> file;       // shared with a snapshot thread reading it
    uint64_t bytes = 0;                    // QueuedBytes of the spilled entries
    std::unordered_set<uint64_t> removed;  // invariant 6
    bool check_acl_on_refill = false;      // DropDisallowed ran while something was spilled
    std::string error;                     // the last one
    // Counters since the session began: deliveries the spill refused (Enqueue), spilled ones
    // the ACL refused on read, spilled ones that could not be read back.
    uint64_t refused = 0, acl_dropped = 0, lost = 0;
  };
  std::unique_ptr<Spill> spill_;
  size_t spilled_count_ = 0;  // inline: read per message (invariant 7)
  base::RingDeque<Inflight> inflight_;
  // id -> its record is logged; allocated at the first QoS 2 PUBLISH (most clients send none).
  using IncomingQos2 = std::unordered_map<uint16_t, bool>;
  std::unique_ptr<IncomingQos2> incoming_qos2_;
  std::vector<uint64_t> finished_;  // wal ids, see DrainFinished
  uint16_t last_packet_id_ = 0;
  bool ids_in_order_ = true;  // invariant 5
  uint64_t dropped_ = 0;
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_SESSION_H_
