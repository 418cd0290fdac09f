// SlotTable: the connection table of an io_uring loop (the MQTT shards' and the REST server's).
// A connection lives in a slot; its io_uring operations carry (slot, generation) in user_data
// (net/user_data.h), so a completion that arrives after the connection was freed, or after its slot
// was reused, finds nothing instead of the wrong connection. Output is flushed once per loop turn:
// MarkDirty lists a connection at most once, DrainDirty visits the list in order.
//
//   SlotTable<Conn> table;
//   Conn* c = table.Add([&](uint32_t slot, uint32_t gen) { return std::make_unique<Conn>(fd, slot,
//   gen); }); ring.PrepRecv(..., PackUserData(kRecv, gen, slot));
//   ... on its completion: if (Conn* c = table.Find(ud.index, ud.generation)) ...
//   table.Remove(slot);
//
// Thread-safety: none; the loop's thread only.
// Invariants:
//   1. Find(slot, generation) returns the entry Add created with that pair while it lives, and
//      nullptr before Add and after Remove of it, whatever reuses the slot meanwhile (until the
//      generation counter wraps after kGenerationMask adds, far beyond any operation's lifetime).
//   2. Generations are never 0 (user_data of operations without a connection use 0).
//   3. DrainDirty visits each entry marked since the last drain once, in marking order, skipping
//      entries removed meanwhile; entries marked during the drain are visited in the same drain.
#ifndef RINGMQ_NET_SLOT_TABLE_H_
#define RINGMQ_NET_SLOT_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "net/user_data.h"

namespace ringmq::net {

template <typename T>
class SlotTable {
 public:
  // make(slot, generation) -> std::unique_ptr<T>. Returns the new entry.
  template <typename Make>
  T* Add(Make&& make) {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<uint32_t>(entries_.size());
      entries_.emplace_back();
    }
    Entry& e = entries_[slot];
    e.generation = next_generation_;
    next_generation_ = next_generation_ == kGenerationMask ? 1 : next_generation_ + 1;
    e.dirty = false;
    e.item = make(slot, e.generation);
    ++live_;
    return e.item.get();
  }
  // The entry of an operation's (slot, generation), nullptr when it is gone (invariant 1).
  T* Find(uint32_t slot, uint32_t generation) const {
    if (slot >= entries_.size()) return nullptr;
    const Entry& e = entries_[slot];
    return e.item != nullptr && e.generation == generation ? e.item.get() : nullptr;
  }
  // Frees the entry of `slot`. REQUIRES: it lives.
  void Remove(uint32_t slot) {
    entries_[slot].item.reset();
    free_.push_back(slot);
    --live_;
  }
  size_t live() const { return live_; }
  // f(T&) for every live entry, in slot order. f may Remove any entry (it is then not visited)
  // and Add (entries added in slots not yet reached are visited).
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (T* item = entries_[i].item.get()) f(*item);
    }
  }
  // Lists the entry for the next DrainDirty, once.
  void MarkDirty(uint32_t slot) {
    Entry& e = entries_[slot];
    if (e.dirty) return;
    e.dirty = true;
    dirty_.emplace_back(slot, e.generation);
  }
  // f(T&) for each entry listed by MarkDirty (invariant 3). f may Add, Remove and MarkDirty.
  template <typename F>
  void DrainDirty(F&& f) {
    for (size_t i = 0; i < dirty_.size(); ++i) {
      const auto [slot, generation] = dirty_[i];
      T* item = Find(slot, generation);
      if (item == nullptr) continue;
      entries_[slot].dirty = false;
      f(*item);
    }
    dirty_.clear();
  }

 private:
  struct Entry {
    std::unique_ptr<T> item;
    uint32_t generation = 0;
    bool dirty = false;
  };
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_;
  std::vector<std::pair<uint32_t, uint32_t>> dirty_;  // (slot, generation)
  uint32_t next_generation_ = 1;
  size_t live_ = 0;
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_SLOT_TABLE_H_
