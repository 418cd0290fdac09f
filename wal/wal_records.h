// WAL records: the plain structs a shard logs for what must survive a restart (persistent
// sessions, their subscriptions, queued and in-flight messages, retained messages), their compact
// versioned body encoding, and the record frame shared by WAL segments and snapshots:
//
//   frame = length (u32 LE, of body) | type (u8) | CRC32C over type + body (u32 LE) | body
//
// Pure functions over bytes: no I/O, no session state. The byte layout is in doc/wal-format.md.
//
// Thread-safety: pure; safe from any thread.
// Invariants:
//   1. Every body starts with its version byte (kWalBodyVersion today). A newer version may only
//      append fields: a decoder reads the fields it knows and ignores the rest of a body whose
//      version is newer than its own; a body of a known version must be consumed exactly.
//   2. Decode* and ParseWalFrame never read outside their input and never crash, whatever the
//      bytes (fuzzed by wal/fuzz/wal_fuzz.cc); garbage is reported as false / a status.
//   3. Decode(Encode(r)) == r for every record type.
//   4. Wall-clock times are milliseconds since the Unix epoch; 0 means "none" where noted.
//   5. A message in a record is the broker's own route::Message (one type from the wire to the
//      log and the REST view), with two differences of meaning: its expires_at_ms is wall-clock
//      time here (the broker's is steady-clock: converted when written, Ref records, and read),
//      and origin_client_id is not logged (No Local applies when a message is routed, once).
#ifndef RINGMQ_WAL_WAL_RECORDS_H_
#define RINGMQ_WAL_WAL_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "route/message.h"
#include "wal/internal/codec.h"

namespace ringmq::wal {

// Record types (the frame's type byte). Values are on disk: never renumber, only add.
enum class WalType : uint8_t {
  kSessionCreated = 1,
  kSessionRemoved = 2,
  kSubscriptionAdded = 3,
  kSubscriptionRemoved = 4,
  kMessageQueued = 5,
  kMessageAcked = 6,
  kInflightState = 7,
  kRetainedSet = 8,
  kRetainedCleared = 9,
  kSessionDisconnected = 10,
  kSnapshotEnd = 11,  // last record of a snapshot file; never in a segment
};
inline constexpr uint8_t kWalTypeMax = 11;
const char* WalTypeName(WalType t);

// Version 2 appended owner_token_id to session-created; every other body is as in version 1.
inline constexpr uint8_t kWalBodyVersion = 2;

// A persistent session was created, or resumed by a new connection (an upsert: replaces the
// expiry interval, version and owner, and clears any disconnected-at time).
struct WalSessionCreated {
  static constexpr WalType kType = WalType::kSessionCreated;
  std::string client_id;
  uint32_t expiry_interval_s = 0;
  uint8_t protocol_version = 0;  // 3, 4 or 5 (the CONNECT protocol level)
  int64_t created_ms = 0;        // wall clock
  // The id of the token that owns the session; 0: anonymous, or a version 1 body (no owner).
  int64_t owner_token_id = 0;
  bool operator==(const WalSessionCreated&) const = default;
};

// The session ended (expired, clean start, or removed by the admin): forget it and everything of
// it.
struct WalSessionRemoved {
  static constexpr WalType kType = WalType::kSessionRemoved;
  std::string client_id;
  bool operator==(const WalSessionRemoved&) const = default;
};

// The session's connection ended; the session expires at disconnected_ms + expiry_interval_s.
struct WalSessionDisconnected {
  static constexpr WalType kType = WalType::kSessionDisconnected;
  std::string client_id;
  int64_t disconnected_ms = 0;     // wall clock
  uint32_t expiry_interval_s = 0;  // in effect at the disconnect (DISCONNECT may change it)
  bool operator==(const WalSessionDisconnected&) const = default;
};

// A subscription was added or replaced (same client id and filter: the later record wins).
struct WalSubscriptionAdded {
  static constexpr WalType kType = WalType::kSubscriptionAdded;
  // Bits of `options` (the MQTT 5 Subscription Options byte without the QoS bits).
  static constexpr uint8_t kNoLocal = 0x04;
  static constexpr uint8_t kRetainAsPublished = 0x08;
  static constexpr uint8_t kRetainHandlingShift = 4;  // 2 bits
  std::string client_id;
  std::string filter;  // as requested, including any $share/{group}/ prefix
  uint8_t qos = 0;
  uint8_t options = 0;
  uint32_t subscription_id = 0;        // 0: none
  std::vector<std::string> effective;  // filters actually subscribed (ACL); empty: `filter`
  bool operator==(const WalSubscriptionAdded&) const = default;
};

struct WalSubscriptionRemoved {
  static constexpr WalType kType = WalType::kSubscriptionRemoved;
  std::string client_id;
  std::string filter;
  bool operator==(const WalSubscriptionRemoved&) const = default;
};

// A message entered a persistent session's queue. qos/retain in `message` are the delivery's
// (granted QoS, Retain As Published applied).
struct WalMessageQueued {
  static constexpr WalType kType = WalType::kMessageQueued;
  std::string client_id;
  uint64_t message_id = 0;  // unique per shard, never reused (survives restarts via recovery)
  route::Message message;   // invariant 5
  std::vector<uint32_t> subscription_ids;
  bool operator==(const WalMessageQueued&) const = default;
};

// The session is done with a message (PUBACK, PUBCOMP, discarded, expired, dropped).
struct WalMessageAcked {
  static constexpr WalType kType = WalType::kMessageAcked;
  std::string client_id;
  uint64_t message_id = 0;
  bool operator==(const WalMessageAcked&) const = default;
};

// Packet id state of one QoS 1/2 exchange.
enum class WalInflightPhase : uint8_t {
  kAwaitPuback = 1,   // outgoing QoS 1 sent with packet_id
  kAwaitPubrec = 2,   // outgoing QoS 2 sent with packet_id
  kAwaitPubcomp = 3,  // outgoing QoS 2 past PUBREC (resend PUBREL, not PUBLISH)
  kIncomingQos2 = 4,  // incoming QoS 2 packet_id received, PUBREC sent (message_id 0)
  kIncomingDone = 5,  // incoming QoS 2 packet_id released by PUBREL (message_id 0)
};
inline constexpr uint8_t kWalInflightPhaseMax = 5;

struct WalInflightState {
  static constexpr WalType kType = WalType::kInflightState;
  std::string client_id;
  uint64_t message_id = 0;
  uint16_t packet_id = 0;
  WalInflightPhase phase = WalInflightPhase::kAwaitPuback;
  bool operator==(const WalInflightState&) const = default;
};

// A retained message was stored (replacing any on its topic). message.retain is ignored.
struct WalRetainedSet {
  static constexpr WalType kType = WalType::kRetainedSet;
  route::Message message;  // invariant 5
  bool operator==(const WalRetainedSet&) const = default;
};

struct WalRetainedCleared {
  static constexpr WalType kType = WalType::kRetainedCleared;
  std::string topic;
  bool operator==(const WalRetainedCleared&) const = default;
};

// Closes a snapshot file: the number of records before it. A snapshot without it is invalid.
struct WalSnapshotEnd {
  static constexpr WalType kType = WalType::kSnapshotEnd;
  uint64_t record_count = 0;
  bool operator==(const WalSnapshotEnd&) const = default;
};

using WalRecord =
    std::variant<WalSessionCreated, WalSessionRemoved, WalSessionDisconnected, WalSubscriptionAdded,
                 WalSubscriptionRemoved, WalMessageQueued, WalMessageAcked, WalInflightState,
                 WalRetainedSet, WalRetainedCleared, WalSnapshotEnd>;

// --- Bodies. Encode appends the body to *out; Decode parses exactly one body (invariant 1). ---

void Encode(const WalSessionCreated& r, std::string* out);
void Encode(const WalSessionRemoved& r, std::string* out);
void Encode(const WalSessionDisconnected& r, std::string* out);
void Encode(const WalSubscriptionAdded& r, std::string* out);
void Encode(const WalSubscriptionRemoved& r, std::string* out);
void Encode(const WalMessageQueued& r, std::string* out);
void Encode(const WalMessageAcked& r, std::string* out);
void Encode(const WalInflightState& r, std::string* out);
void Encode(const WalRetainedSet& r, std::string* out);
void Encode(const WalRetainedCleared& r, std::string* out);
void Encode(const WalSnapshotEnd& r, std::string* out);

[[nodiscard]] bool Decode(std::string_view body, WalSessionCreated* r);
[[nodiscard]] bool Decode(std::string_view body, WalSessionRemoved* r);
[[nodiscard]] bool Decode(std::string_view body, WalSessionDisconnected* r);
[[nodiscard]] bool Decode(std::string_view body, WalSubscriptionAdded* r);
[[nodiscard]] bool Decode(std::string_view body, WalSubscriptionRemoved* r);
[[nodiscard]] bool Decode(std::string_view body, WalMessageQueued* r);
[[nodiscard]] bool Decode(std::string_view body, WalMessageAcked* r);
[[nodiscard]] bool Decode(std::string_view body, WalInflightState* r);
[[nodiscard]] bool Decode(std::string_view body, WalRetainedSet* r);
[[nodiscard]] bool Decode(std::string_view body, WalRetainedCleared* r);
[[nodiscard]] bool Decode(std::string_view body, WalSnapshotEnd* r);

// A WalMessageQueued body written straight from / read straight into a message held elsewhere
// (the one a session queues), with no record in between: the bytes of
// Encode/Decode(WalMessageQueued). `qos` and `retain` are the delivery's; a non-zero expiry is
// written plus expiry_offset_ms and read back as written. client_id may be nullptr when decoding
// (skipped); *m and *subscription_ids must be empty.
template <typename M>
void EncodeMessageQueued(std::string_view client_id, uint64_t message_id, const M& m, uint8_t qos,
                         bool retain, int64_t expiry_offset_ms,
                         const std::vector<uint32_t>& subscription_ids, std::string* out) {
  using namespace wal_internal;  // NOLINT(google-build-using-namespace): the codec's primitives
  PutU8(kWalBodyVersion, out);
  PutString(client_id, out);
  PutVarint(message_id, out);
  PutMessage(m, qos, retain, expiry_offset_ms, out);
  PutVarint(subscription_ids.size(), out);
  for (uint32_t id : subscription_ids) PutVarint(id, out);
}

template <typename M>
[[nodiscard]] bool DecodeMessageQueued(std::string_view body, std::string* client_id,
                                       uint64_t* message_id, M* m,
                                       std::vector<uint32_t>* subscription_ids) {
  wal_internal::Reader in(body);
  std::string_view id;
  uint64_t n = 0;
  if (!in.Version() || !in.StringView(&id) || !in.Varint(message_id) ||
      !wal_internal::GetMessage(in, m) || !in.Varint(&n)) {
    return false;
  }
  if (client_id != nullptr) client_id->assign(id);
  for (uint64_t i = 0; i < n; ++i) {
    if (!in.U32(&subscription_ids->emplace_back())) return false;
  }
  return in.Done(kWalBodyVersion);
}

// A message-queued record whose parts are elsewhere (a broker's message and delivery): logged with
// WalWriter::Append like a WalMessageQueued, encoded as one, copying nothing first.
struct WalMessageQueuedRef {
  static constexpr WalType kType = WalType::kMessageQueued;
  std::string_view client_id;
  uint64_t message_id = 0;
  const route::Message* message = nullptr;  // required
  uint8_t qos = 0;
  bool retain = false;
  int64_t expiry_offset_ms = 0;  // added to a non-zero expiry (to make it wall-clock time)
  const std::vector<uint32_t>* subscription_ids = nullptr;  // required
};

inline void Encode(const WalMessageQueuedRef& r, std::string* out) {
  EncodeMessageQueued(r.client_id, r.message_id, *r.message, r.qos, r.retain, r.expiry_offset_ms,
                      *r.subscription_ids, out);
}

// A retained-set record of a message held elsewhere (the retained store's), encoded as a
// WalRetainedSet without copying the message first.
struct WalRetainedSetRef {
  static constexpr WalType kType = WalType::kRetainedSet;
  const route::Message* message = nullptr;  // required
  int64_t expiry_offset_ms = 0;             // added to a non-zero expiry (wall-clock time)
};

void Encode(const WalRetainedSetRef& r, std::string* out);

// Decodes a body of any type into the matching alternative; nullopt for an unknown type or a
// malformed body.
std::optional<WalRecord> DecodeWalRecord(WalType type, std::string_view body);
// The type of the alternative held.
WalType TypeOf(const WalRecord& r);

// --- Frames ---

inline constexpr size_t kWalFrameHeaderSize = 9;
// Bodies larger than this are refused (an MQTT packet is at most 256 MiB).
inline constexpr uint32_t kWalMaxBodySize = 260u << 20;

// Appends a whole frame (header + body) to *out. REQUIRES: body.size() <= kWalMaxBodySize.
void AppendWalFrame(WalType type, std::string_view body, std::string* out);

// Fills in the header of the frame at (*out)[frame_start], whose body runs to the end of *out.
// REQUIRES: kWalFrameHeaderSize bytes were reserved at frame_start; the body is within limits.
void FinishWalFrame(WalType type, size_t frame_start, std::string* out);

// Encodes `r` as a frame directly into *out (no intermediate body copy).
template <typename R>
void AppendWalRecord(const R& r, std::string* out) {
  const size_t start = out->size();
  out->append(kWalFrameHeaderSize, '\0');
  Encode(r, out);
  FinishWalFrame(R::kType, start, out);
}
// The same for a variant.
void AppendWalRecord(const WalRecord& r, std::string* out);

enum class WalFrameStatus : uint8_t {
  kOk,
  kTruncated,  // the input ends inside the header or the body
  kBadHeader,  // unknown type or a length over kWalMaxBodySize
  kBadCrc,     // the checksum does not match
};

struct WalFrame {
  WalType type;
  std::string_view body;  // views into the input
  size_t size;            // of the whole frame
};

// Parses the frame at the start of `in`.
WalFrameStatus ParseWalFrame(std::string_view in, WalFrame* frame);

// Writes a little-endian integer into 4 bytes at p, and reads one back.
void StoreWalLe32(uint32_t v, char* p);
uint32_t LoadWalLe32(const char* p);

}  // namespace ringmq::wal

#endif  // RINGMQ_WAL_WAL_RECORDS_H_
