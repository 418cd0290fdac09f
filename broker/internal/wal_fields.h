// What a shard's log code shares (broker/persistence.cc, broker/shard_log.cc): how its state maps
// onto write-ahead log fields, and the back-off of reopening a failed log.
#ifndef RINGMQ_BROKER_INTERNAL_WAL_FIELDS_H_
#define RINGMQ_BROKER_INTERNAL_WAL_FIELDS_H_

#include <chrono>
#include <cstdint>
#include <string_view>

#include "broker/session.h"
#include "wal/wal.h"

namespace ringmq::broker::internal {

// Between attempts to reopen a failed log: each captures the whole state on the loop, so the
// interval doubles while the disk stays full.
inline constexpr int64_t kWalReopenFirstMs = 1000;
inline constexpr int64_t kWalReopenMaxMs = 16'000;

// Wall-clock milliseconds: what the log records as times (the loop's clock is monotonic).
inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The log's phase of an outgoing QoS 1/2 message in flight.
inline wal::WalInflightPhase PhaseOf(Inflight::State s) {
  switch (s) {
    case Inflight::State::kAwaitPuback:
      return wal::WalInflightPhase::kAwaitPuback;
    case Inflight::State::kAwaitPubrec:
      return wal::WalInflightPhase::kAwaitPubrec;
    case Inflight::State::kAwaitPubcomp:
      break;
  }
  return wal::WalInflightPhase::kAwaitPubcomp;
}

// A subscription's options as the WalSubscriptionAdded flags byte.
inline uint8_t OptionsByte(const SubOptions& o) {
  return static_cast<uint8_t>(
      (o.no_local ? wal::WalSubscriptionAdded::kNoLocal : 0) |
      (o.retain_as_published ? wal::WalSubscriptionAdded::kRetainAsPublished : 0) |
      (o.retain_handling << wal::WalSubscriptionAdded::kRetainHandlingShift));
}

// The options a WalSubscriptionAdded record keeps (OptionsByte's inverse, and the QoS and id).
inline SubOptions SubOptionsOf(const wal::WalSubscriptionAdded& rec) {
  return SubOptions{
      rec.qos, (rec.options & wal::WalSubscriptionAdded::kNoLocal) != 0,
      (rec.options & wal::WalSubscriptionAdded::kRetainAsPublished) != 0,
      static_cast<uint8_t>((rec.options >> wal::WalSubscriptionAdded::kRetainHandlingShift) & 3),
      rec.subscription_id};
}

// d, queued for client_id, as a kMessageQueued record encoded from d without a copy.
// clock_offset_ms: wall minus steady clock (expiry is logged in wall time). A delivery past PUBREC
// has no message left: its record has an empty one (only the packet id matters then). The record
// is used before d changes.
inline wal::WalMessageQueuedRef QueuedRecord(std::string_view client_id, uint64_t message_id,
                                             const Delivery& d, int64_t clock_offset_ms) {
  static const route::Message kNone;
  return {
      client_id,       message_id,         d.msg != nullptr ? d.msg.get() : &kNone, d.qos, d.retain,
      clock_offset_ms, &d.subscription_ids};
}

// A message read from the log (its expiry in wall-clock time, wal_records.h invariant 5) as the
// broker keeps it: clock_offset_ms is steady minus wall clock.
inline route::MessagePtr FromLog(const route::Message& logged, int64_t clock_offset_ms) {
  auto m = std::make_shared<route::Message>(logged);
  if (m->expires_at_ms != 0) m->expires_at_ms += clock_offset_ms;
  return m;
}

}  // namespace ringmq::broker::internal

#endif  // RINGMQ_BROKER_INTERNAL_WAL_FIELDS_H_
