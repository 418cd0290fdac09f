// Session state machines for QoS 1 and 2 (MQTT 5.0 section 4.3, 4.4).
#include "broker/session.h"

#include <algorithm>

namespace ringmq::broker {

size_t QueuedBytes(const Delivery& d) {
  size_t n = sizeof(Delivery) + d.subscription_ids.size() * sizeof(uint32_t);
  if (d.msg == nullptr) return n;
  const route::Message& m = *d.msg;
  auto size = [](const std::optional<std::string>& v) { return v ? v->size() : 0; };
  n += m.topic.size() + m.payload.size() + size(m.content_type) + size(m.response_topic) +
       size(m.correlation_data);
  for (const auto& [k, v] : m.user_properties) n += k.size() + v.size();
  return n;
}

bool Session::Fits(size_t bytes) const {
  return queued_bytes_ + bytes <= limits_.max_bytes &&
         (limits_.max_messages == 0 || queued_count() < limits_.max_messages);
}

Session::~Session() { SubMemory(memory_bytes_); }

const std::unordered_set<uint64_t>& Session::removed_spilled() const {
  static const std::unordered_set<uint64_t> kNone;
  return spill_ ? spill_->removed : kNone;
}

const std::string& Session::spill_error() const {
  static const std::string kNone;
  return spill_ ? spill_->error : kNone;
}

void Session::PushInMemory(Delivery& d, uint64_t bytes) {
  queued_bytes_ += bytes;
  memory_bytes_ += bytes;
  if (limits_.spill != nullptr) limits_.spill->memory_used += bytes;
  queue_.push_back(std::move(d));
}

void Session::SubMemory(uint64_t bytes) {
  memory_bytes_ -= bytes;
  if (limits_.spill != nullptr) limits_.spill->memory_used -= bytes;
}

bool Session::ShardMemoryFull(uint64_t bytes) const {
  return limits_.spill != nullptr && limits_.spill->memory_max != 0 &&
         limits_.spill->memory_used + bytes > limits_.spill->memory_max;
}

bool Session::PushQueued(Delivery& d, size_t bytes, bool must) {
  // The oldest message always stays in memory: the queue moves on whatever the bounds.
  const bool to_disk =
      limits_.spill != nullptr &&
      (spilled_count_ != 0 || (!queue_.empty() && (memory_bytes_ + bytes > limits_.memory_bytes ||
                                                   ShardMemoryFull(bytes))));
  if (!to_disk) {
    PushInMemory(d, bytes);
    return true;
  }
  if (spill_ == nullptr) spill_ = std::make_unique<Spill>();
  Spill& sp = *spill_;
  if (sp.file == nullptr) sp.file = SpillFile::Create(*limits_.spill, &sp.error);
  if (sp.file == nullptr ||
      !sp.file->AppendEncoded([&d](std::string* out) { EncodeSpillEntry(d, out); })) {
    if (sp.file != nullptr) sp.error = sp.file->error();
    if (!must) return false;
    // Memory must take it, after what is spilled (invariant 2).
    while (RefillOne()) {
    }
    PushInMemory(d, bytes);
    return true;
  }
  ++spilled_count_;
  sp.bytes += bytes;
  queued_bytes_ += bytes;
  return true;
}

void Session::PopQueued(size_t bytes) {
  queued_bytes_ -= bytes;
  SubMemory(bytes);
  queue_.pop_front();
}

bool Session::RefillOne() {
  std::string_view entry;
  bool got = false;
  while (!got && spilled_count_ != 0) {
    Spill& sp = *spill_;           // invariant 7
    if (!sp.file->Next(&entry)) {  // unreadable: what is left of the spill is lost
      sp.error = sp.file->error();
      sp.lost += spilled_count_;
      spilled_count_ = 0;
      break;
    }
    --spilled_count_;
    Delivery d;
    if (!DecodeSpillEntry(entry, &d)) {
      sp.error = "a spill file entry is damaged";
      ++sp.lost;
      continue;
    }
    const size_t bytes = QueuedBytes(d);
    sp.bytes -= bytes;
    queued_bytes_ -= bytes;
    if (d.wal_id != 0 && sp.removed.erase(d.wal_id) != 0) continue;  // invariant 6
    if (d.msg->topic.empty()) continue;  // a placeholder of a restored snapshot (DropPlaceholders)
    if (sp.check_acl_on_refill && acl != nullptr && !acl->AllowsEverything() &&
        !acl->CanReceive(d.msg->topic)) {
      if (d.wal_id != 0) finished_.push_back(d.wal_id);
      ++sp.acl_dropped;
      continue;
    }
    PushInMemory(d, bytes);
    got = true;
  }
  if (spilled_count_ == 0 && spill_ != nullptr && spill_->file != nullptr) {
    // Emptied: bytes of entries that could not be read are no longer queued either, and the
    // file is closed (a snapshot thread reading it keeps it open until it is done).
    Spill& sp = *spill_;
    queued_bytes_ -= sp.bytes;
    sp.bytes = 0;
    sp.removed.clear();
    sp.check_acl_on_refill = false;
    sp.file.reset();
  }
  return got;
}

void Session::Refill() {
  while ((queue_.empty() || (memory_bytes_ < limits_.memory_bytes && !ShardMemoryFull(0))) &&
         RefillOne()) {
  }
}

size_t Session::DropDisallowedSpilled(const std::function<bool(const route::Message&)>& allowed) {
  if (spilled_count_ == 0) return 0;
  Spill& sp = *spill_;  // invariant 7
  // A first pass reads only: most changes of a token leave what its sessions hold allowed.
  bool any = false;
  const bool readable = sp.file->ForEachUnread([&](std::string_view entry) {
    Delivery d;
    if (!any && DecodeSpillEntry(entry, &d)) any = !allowed(*d.msg);
  });
  if (readable && !any) return 0;
  std::shared_ptr<SpillFile> fresh = SpillFile::Create(*limits_.spill, &sp.error);
  size_t kept = 0, dropped = 0, damaged = 0;
  uint64_t kept_bytes = 0;
  std::vector<uint64_t> finished;
  bool ok = readable && fresh != nullptr;
  ok = ok && sp.file->ForEachUnread([&](std::string_view entry) {
    Delivery d;
    if (!ok) return;
    if (!DecodeSpillEntry(entry, &d)) {
      ++damaged;
      return;
    }
    if (d.wal_id != 0 && sp.removed.contains(d.wal_id)) return;  // invariant 6
    if (!allowed(*d.msg)) {
      if (d.wal_id != 0) finished.push_back(d.wal_id);
      ++dropped;
      return;
    }
    ok = fresh->Append(entry);
    ++kept;
    kept_bytes += QueuedBytes(d);
  });
  if (!ok) {  // the old file stays: its entries are checked as they are read back
    if (fresh != nullptr && !fresh->error().empty()) sp.error = fresh->error();
    sp.check_acl_on_refill = true;
    return 0;
  }
  finished_.insert(finished_.end(), finished.begin(), finished.end());
  sp.lost += damaged;
  queued_bytes_ -= sp.bytes - kept_bytes;
  sp.bytes = kept_bytes;
  spilled_count_ = kept;
  sp.removed.clear();
  // (A snapshot thread reading the old file keeps it open.)
  if (kept != 0) {
    sp.file = std::move(fresh);
  } else {
    sp.file.reset();
  }
  return dropped;
}

bool Session::ForEachSpilled(const std::function<void(const Delivery&)>& fn) const {
  if (spilled_count_ == 0) return true;
  return spill_->file->ForEachUnread([&](std::string_view entry) {
    Delivery d;
    if (!DecodeSpillEntry(entry, &d)) return;
    if (d.wal_id != 0 && spill_->removed.contains(d.wal_id)) return;
    fn(d);
  });
}

bool Session::Enqueue(Delivery d, bool online) {
  if (d.qos == 0 && !online) return false;
  const size_t bytes = QueuedBytes(d);
  if (!Fits(bytes) && (limits_.policy == QueuePolicy::kDropNew || bytes > limits_.max_bytes)) {
    ++dropped_;
    return false;
  }
  // Queued first: if the spill cannot take it, nothing older is dropped for it.
  if (!PushQueued(d, bytes, /*must=*/false)) {
    ++spill_->refused;  // PushQueued tried the spill (invariant 7's state exists)
    return false;
  }
  // drop-oldest: the oldest make room (never the new one: it fits alone).
  while (queued_bytes_ > limits_.max_bytes ||
         (limits_.max_messages != 0 && queued_count() > limits_.max_messages)) {
    if (queue_.empty() && !RefillOne()) break;
    if (queue_.front().wal_id != 0) finished_.push_back(queue_.front().wal_id);
    PopQueued(QueuedBytes(queue_.front()));
    ++dropped_;
  }
  return true;
}

void Session::RestoreQueued(Delivery d) {
  // Accepted before the restart and in the log: when the disk cannot take it now, memory must.
  (void)PushQueued(d, QueuedBytes(d), /*must=*/true);
}

uint16_t Session::NextPacketId() {
  if (++last_packet_id_ == 0) last_packet_id_ = 1;
  if (inflight_.empty()) {
    ids_in_order_ = true;
    return last_packet_id_;
  }
  // In order (invariant 5), the ids in flight lie on the walk from the oldest one's up to the
  // last one given: the next id is taken only when the walk went all the way round to it.
  if (ids_in_order_ && last_packet_id_ != inflight_.front().packet_id) return last_packet_id_;
  // Wrapped round to an id still in flight, or restored ids in any order: skip every id in use
  // (linear, and from now on until nothing is in flight).
  ids_in_order_ = false;
  for (;;) {
    const uint16_t id = last_packet_id_;
    if (std::none_of(inflight_.begin(), inflight_.end(),
                     [id](const Inflight& f) { return f.packet_id == id; })) {
      return id;
    }
    if (++last_packet_id_ == 0) last_packet_id_ = 1;
  }
}

namespace {

template <typename Q>
auto FindId(Q& q, uint16_t id) {
  return std::find_if(q.begin(), q.end(), [id](const Inflight& f) { return f.packet_id == id; });
}

}  // namespace

bool Session::OnPuback(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end() || it->state != Inflight::State::kAwaitPuback) return false;
  if (it->delivery.wal_id != 0) finished_.push_back(it->delivery.wal_id);
  inflight_.erase(it);
  return true;
}

bool Session::OnPubrec(uint16_t id, uint64_t* wal_id) {
  if (wal_id != nullptr) *wal_id = 0;
  auto it = FindId(inflight_, id);
  if (it == inflight_.end()) return false;
  if (it->state == Inflight::State::kAwaitPuback) return false;
  // The message is now stored by the receiver: drop it, keep the id until PUBCOMP.
  if (it->state == Inflight::State::kAwaitPubrec && wal_id != nullptr) {
    *wal_id = it->delivery.wal_id;
  }
  it->state = Inflight::State::kAwaitPubcomp;
  it->delivery.msg.reset();
  return true;
}

bool Session::OnPubcomp(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end() || it->state != Inflight::State::kAwaitPubcomp) return false;
  if (it->delivery.wal_id != 0) finished_.push_back(it->delivery.wal_id);
  inflight_.erase(it);
  return true;
}

bool Session::Discard(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end()) return false;
  if (it->delivery.wal_id != 0) finished_.push_back(it->delivery.wal_id);
  inflight_.erase(it);
  return true;
}

void Session::RemoveQueued(uint64_t wal_id) {
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [wal_id](const Delivery& d) { return d.wal_id == wal_id; });
  if (it != queue_.end()) {
    const size_t bytes = QueuedBytes(*it);
    queued_bytes_ -= bytes;
    SubMemory(bytes);
    queue_.erase(it);
    // Acknowledgements come oldest first: keep the next ones in memory.
    if (spilled_count_ != 0 && memory_bytes_ <= limits_.memory_bytes / 2) Refill();
    return;
  }
  auto f = std::find_if(inflight_.begin(), inflight_.end(),
                        [wal_id](const Inflight& i) { return i.delivery.wal_id == wal_id; });
  if (f != inflight_.end()) {
    inflight_.erase(f);
  } else if (spilled_count_ != 0) {
    spill_->removed.insert(wal_id);  // skipped when read back (invariant 6)
  }
}

void Session::DropPlaceholders() {
  // (Placeholders come first in a snapshot: in memory, not spilled.)
  queue_.EraseIf([this](const Delivery& d) {
    if (d.msg != nullptr && !d.msg->topic.empty()) return false;
    const size_t bytes = QueuedBytes(d);
    queued_bytes_ -= bytes;
    SubMemory(bytes);
    return true;
  });
}

bool Session::RestoreInflight(uint64_t wal_id, uint16_t packet_id, Inflight::State state) {
  auto f = std::find_if(inflight_.begin(), inflight_.end(),
                        [wal_id](const Inflight& i) { return i.delivery.wal_id == wal_id; });
  if (f == inflight_.end()) {
    auto q = std::find_if(queue_.begin(), queue_.end(),
                          [wal_id](const Delivery& d) { return d.wal_id == wal_id; });
    if (q == queue_.end()) {
      // Deliveries enter flight oldest first: one on disk is found by reading the spill up to it.
      bool found = false;
      while (!found && RefillOne()) found = queue_.back().wal_id == wal_id;
      if (!found) return false;
      q = queue_.end() - 1;
    }
    const size_t bytes = QueuedBytes(*q);
    queued_bytes_ -= bytes;
    SubMemory(bytes);
    inflight_.push_back(Inflight{packet_id, state, std::move(*q)});
    queue_.erase(q);
    f = inflight_.end() - 1;
  }
  f->packet_id = packet_id;
  f->state = state;
  if (state == Inflight::State::kAwaitPubcomp) f->delivery.msg.reset();  // only the id matters
  last_packet_id_ = packet_id;  // new ids continue after the restored ones
  ids_in_order_ = false;        // ... which may be in any order
  return true;
}

}  // namespace ringmq::broker
