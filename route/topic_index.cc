#include "route/topic_index.h"

#include <cassert>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>

namespace ringmq::route {
namespace {

constexpr uint64_t kDead = uint64_t{1} << 63;
constexpr std::size_t kEnd = std::string_view::npos;  // "no level left" position

// The level starting at `pos` of a topic or filter, and the position of the next level (kEnd when
// this is the last one). REQUIRES: pos != kEnd.
std::string_view LevelAt(std::string_view s, std::size_t pos, std::size_t* next) {
  const std::size_t slash = s.find('/', pos);
  *next = slash == std::string_view::npos ? kEnd : slash + 1;
  return s.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
}

// A slot of a child table holds kEmptySlot, a Node* (8-aligned), or a tombstone: the DEAD node
// that was unlinked from it, with kTomb set. The table keeps that node (it is freed with the table,
// or when an insertion of the same level reuses the slot), so writers can read its level: an
// insertion takes the first empty slot or tombstone of its own level in its probe sequence, and
// slots never become empty again, which keeps "one entry per level" checkable by probing (header
// invariant 2) while a filter subscribed and unsubscribed over and over reuses one slot. Any of
// these with kFrozen set once a writer started replacing the table.
constexpr uintptr_t kEmptySlot = 0;
constexpr uintptr_t kFrozen = 1;
constexpr uintptr_t kTomb = 2;
constexpr uint32_t kMinCapacity = 4;

}  // namespace

// One level of the trie. Fields marked immutable are written before the node is published by the
// release CAS that links it (invariant 5).
struct TopicIndex::Node {
  Node(std::string_view lvl, Node* p, std::size_t shards)
      : level(lvl), parent(p), counts(new std::atomic<uint32_t>[shards]()) {}

  // Acquire pairs with the release CAS that installed the table: its slots were written first.
  ChildTable* Children() const { return children.load(std::memory_order_acquire); }
  ChildTable* Leaves() const { return leaves.load(std::memory_order_acquire); }
  // The table a child with `lvl` belongs to: shared-group leaves ("\0g\0f") apart from levels.
  std::atomic<ChildTable*>& TableFor(std::string_view lvl) {
    return !lvl.empty() && lvl[0] == '\0' ? leaves : children;
  }
  // Acquire pairs with the release RMWs in Add/Remove: a reader that sees a bit also sees the
  // state the subscribing shard published before it.
  uint64_t Mask() const { return mask.load(std::memory_order_acquire); }

  const std::string level;  // immutable
  Node* const parent;       // immutable; nullptr for a root
  // Liveness word (header invariants 1, 4). All RMWs acq_rel: the CAS 0 -> DEAD must order after
  // every earlier unpin, and a pin after a revive.
  std::atomic<uint64_t> refs{1};  // created pinned by its creator
  std::atomic<uint64_t> mask{0};
  std::atomic<ChildTable*> children{nullptr};       // topic levels
  std::atomic<ChildTable*> leaves{nullptr};         // shared-group leaves (shared trie only)
  std::unique_ptr<std::atomic<uint32_t>[]> counts;  // [shards], counts[s] written by shard s only
};

// The children of a node: an open-addressing hash table (linear probing) of Node*, allocated in
// one block: header then `capacity` slots. Writers insert and remove entries in place with a CAS
// on one slot; a writer that finds the table too full (or, after a removal, too empty) freezes
// every slot (sets kFrozen by CAS, after which no CAS of another writer on it can succeed), copies
// the live entries into a fresh table and publishes it with a CAS on the node's table pointer; the
// old one goes to Qsbr. A table is replaced only when its size has doubled or shrunk by 8x since
// it was built, so the memory written and retired per insertion is O(1) amortized (a sorted array
// copied on every insertion costs O(children) each: quadratic in the children of one node).
struct alignas(std::atomic<uintptr_t>) TopicIndex::ChildTable {
  struct Slot {
    std::atomic<uintptr_t>* slot;  // nullptr: probed the whole table, no empty slot
    uintptr_t value;               // what the probe read there
  };

  uint32_t capacity;  // power of two
  // Counters for the resize decisions only (relaxed: a stale value delays or hastens a resize).
  std::atomic<uint32_t> used;  // slots not empty: entries and tombstones
  std::atomic<uint32_t> live;  // entries

  std::atomic<uintptr_t>* slots() { return reinterpret_cast<std::atomic<uintptr_t>*>(this + 1); }
  const std::atomic<uintptr_t>* slots() const {
    return reinterpret_cast<const std::atomic<uintptr_t>*>(this + 1);
  }

  static ChildTable* Make(uint32_t capacity) {
    void* mem = ::operator new(sizeof(ChildTable) + capacity * sizeof(std::atomic<uintptr_t>));
    auto* t = new (mem) ChildTable{capacity, {0}, {0}};
    for (uint32_t i = 0; i < capacity; ++i) new (&t->slots()[i]) std::atomic<uintptr_t>(kEmptySlot);
    return t;
  }
  static void Free(void* p) { ::operator delete(p); }  // header and slots are trivial
  // Frees a table that is no longer reachable, with the DEAD nodes of its tombstones.
  static void FreeWithTombs(void* p) {
    auto* t = static_cast<ChildTable*>(p);
    for (uint32_t i = 0; i < t->capacity; ++i) {
      if (Node* dead = TombOf(t->slots()[i].load(std::memory_order_relaxed))) DeleteNode(dead);
    }
    Free(p);
  }

  // Smallest capacity holding `n` entries at most half full.
  static uint32_t CapacityFor(uint32_t n) {
    uint32_t c = kMinCapacity;
    while (c < 2 * n + 2) c *= 2;
    return c;
  }

  // The live entry of a slot value, or nullptr (empty, tombstone). A slot holds a Node* with its
  // low bits as tags (kTomb, kFrozen), so that one CAS changes entry and tags together: the casts
  // back to pointers are the point of the representation.
  // NOLINTBEGIN(performance-no-int-to-ptr)
  static Node* NodeOf(uintptr_t v) {
    v &= ~kFrozen;
    return v == kEmptySlot || (v & kTomb) != 0 ? nullptr : reinterpret_cast<Node*>(v);
  }
  // The DEAD node of a tombstone, or nullptr.
  static Node* TombOf(uintptr_t v) {
    return (v & kTomb) != 0 ? reinterpret_cast<Node*>(v & ~(kTomb | kFrozen)) : nullptr;
  }
  // NOLINTEND(performance-no-int-to-ptr)

  // For writers: the slot holding the live entry for `level` (hash `h`), else the slot where to
  // insert it (the first empty slot or tombstone of `level` in its probe sequence; nullptr when
  // there is none). Acquire: pairs with the release CAS that stored a node or tombstone (the
  // node's fields are visible). Tombstone nodes are kept by the table, so reading their level is
  // safe while the table is reachable.
  Slot Probe(std::string_view level, uint64_t h) {
    const uint32_t mask = capacity - 1;
    Slot target{nullptr, 0};
    for (uint32_t i = 0; i < capacity; ++i) {
      std::atomic<uintptr_t>* s = &slots()[(h + i) & mask];
      const uintptr_t v = s->load(std::memory_order_acquire);
      if ((v & ~kFrozen) == kEmptySlot) return target.slot != nullptr ? target : Slot{s, v};
      if (const Node* dead = TombOf(v)) {
        if (target.slot == nullptr && dead->level == level) target = {s, v};
        continue;
      }
      if (NodeOf(v)->level == level) return {s, v};
    }
    return target;
  }

  // For readers: the live entry for `level`, or nullptr. Acquire as in Probe.
  Node* Find(std::string_view level, uint64_t h) const {
    const uint32_t mask = capacity - 1;
    for (uint32_t i = 0; i < capacity; ++i) {
      const uintptr_t v = slots()[(h + i) & mask].load(std::memory_order_acquire);
      if ((v & ~kFrozen) == kEmptySlot) return nullptr;
      Node* n = NodeOf(v);
      if (n != nullptr && n->level == level) return n;
    }
    return nullptr;
  }

  // Inserts into a table not yet published (relaxed: the publishing CAS releases).
  void Place(Node* n, uint64_t h) {
    const uint32_t mask = capacity - 1;
    for (uint64_t i = h;; ++i) {
      std::atomic<uintptr_t>& s = slots()[i & mask];
      if (s.load(std::memory_order_relaxed) == kEmptySlot) {
        s.store(reinterpret_cast<uintptr_t>(n), std::memory_order_relaxed);
        used.fetch_add(1, std::memory_order_relaxed);
        live.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
  }
};

namespace {

// Takes a pin on `n` unless it is DEAD (invariant 1).
bool TryPin(std::atomic<uint64_t>& refs) {
  uint64_t r = refs.load(std::memory_order_relaxed);
  while ((r & kDead) == 0) {
    if (refs.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel,
                                   std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

// The pseudo-level that holds group `g` of shared filter `f` below f's node.
std::string SharedLeaf(std::string_view group, std::string_view filter) {
  std::string leaf;
  leaf.reserve(group.size() + filter.size() + 2);
  leaf.push_back('\0');
  leaf.append(group);
  leaf.push_back('\0');
  leaf.append(filter);
  return leaf;
}

}  // namespace

TopicIndex::TopicIndex(smp::Qsbr& qsbr)
    : qsbr_(qsbr),
      shards_(qsbr.shards()),
      root_(new Node("", nullptr, qsbr.shards())),
      shared_root_(new Node("", nullptr, qsbr.shards())),
      hash_key_(base::RandomSipKey()),
      hash_of_hash_(Hash("#")),
      hash_of_plus_(Hash("+")) {
  // The roots keep their creation pin forever, so they never become DEAD.
  linked_nodes_.store(2, std::memory_order_relaxed);
}

TopicIndex::~TopicIndex() {
  DeleteTree(root_);
  DeleteTree(shared_root_);
}

void TopicIndex::DeleteNode(void* node) {
  Node* n = static_cast<Node*>(node);
  // A DEAD node has no tables (Unref detached them); a node freed with the whole index has.
  if (ChildTable* t = n->children.load(std::memory_order_relaxed)) ChildTable::FreeWithTombs(t);
  if (ChildTable* t = n->leaves.load(std::memory_order_relaxed)) ChildTable::FreeWithTombs(t);
  delete n;
}

void TopicIndex::DeleteTree(Node* node) {
  for (ChildTable* t : {node->children.load(std::memory_order_relaxed),
                        node->leaves.load(std::memory_order_relaxed)}) {
    if (t == nullptr) continue;
    for (uint32_t i = 0; i < t->capacity; ++i) {
      if (Node* c = ChildTable::NodeOf(t->slots()[i].load(std::memory_order_relaxed))) {
        DeleteTree(c);
      }
    }
  }
  DeleteNode(node);
}

// Keyed SipHash-1-3 with a key drawn per index: levels are chosen by clients, and a seeded FNV-1a
// still let levels crafted against the unseeded hash share a probe sequence in about 1 index of 100
// (route/topic_index_test.cc). bench/topic_index_bench, medians of 5: ShardsFor 49 -> 63 ns with
// 100 filters, 86 -> 86 ns with 10,000 (memory-bound); add+remove 281 -> 309 ns.
uint64_t TopicIndex::Hash(std::string_view level) const {
  return base::SipHash13(hash_key_, level);
}

std::size_t TopicIndex::ProbeLengthForTest(std::string_view filter) const {
  const std::size_t slash = filter.rfind('/');
  const Node* parent =
      slash == std::string_view::npos ? root_ : FindPath(root_, filter.substr(0, slash), {});
  const std::string_view level =
      slash == std::string_view::npos ? filter : filter.substr(slash + 1);
  const ChildTable* t = parent ? parent->Children() : nullptr;
  if (t == nullptr) return 0;
  const uint64_t h = Hash(level);
  for (uint32_t i = 0; i < t->capacity; ++i) {
    const uintptr_t v = t->slots()[(h + i) & (t->capacity - 1)].load(std::memory_order_acquire);
    const Node* n = ChildTable::NodeOf(v);
    if (n != nullptr && n->level == level) return i + 1;
  }
  return 0;
}

std::size_t TopicIndex::CountRetained(const Node* node) {
  std::size_t n = 1;
  for (const ChildTable* t : {node->Children(), node->Leaves()}) {
    if (t == nullptr) continue;
    for (uint32_t i = 0; i < t->capacity; ++i) {
      const uintptr_t v = t->slots()[i].load(std::memory_order_acquire);
      if (const Node* c = ChildTable::NodeOf(v)) n += CountRetained(c);
      if (const Node* c = ChildTable::TombOf(v)) n += CountRetained(c);
    }
  }
  return n;
}

// ---- Writers -----------------------------------------------------------------------------------

void TopicIndex::ReplaceTable(std::size_t shard, std::atomic<ChildTable*>& table, ChildTable* old) {
  // Freeze every slot. acq_rel: acquire makes the nodes we copy visible; after this loop no slot
  // of `old` changes again.
  uint32_t live = 0;
  for (uint32_t i = 0; i < old->capacity; ++i) {
    std::atomic<uintptr_t>& s = old->slots()[i];
    uintptr_t v = s.load(std::memory_order_acquire);
    while ((v & kFrozen) == 0 && !s.compare_exchange_weak(v, v | kFrozen, std::memory_order_acq_rel,
                                                          std::memory_order_acquire)) {
    }
    if (ChildTable::NodeOf(v) != nullptr) ++live;
  }
  ChildTable* next = ChildTable::Make(ChildTable::CapacityFor(live));
  for (uint32_t i = 0; i < old->capacity; ++i) {
    if (Node* n = ChildTable::NodeOf(old->slots()[i].load(std::memory_order_relaxed))) {
      next->Place(n, Hash(n->level));  // DEAD entries too: their unlinker removes them from `next`
    }
  }
  // Several writers may freeze and copy the same table; their copies are equal and one CAS wins.
  // acq_rel on success: release publishes `next`'s slots.
  ChildTable* expected = old;
  if (table.compare_exchange_strong(expected, next, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
    qsbr_.Retire(shard, old, &ChildTable::FreeWithTombs);  // live entries moved to `next`
  } else {
    ChildTable::Free(next);  // never published
  }
}

TopicIndex::Node* TopicIndex::GetOrCreateChild(std::size_t shard, Node* parent,
                                               std::string_view level) {
  std::atomic<ChildTable*>& table = parent->TableFor(level);
  const uint64_t h = Hash(level);
  Node* fresh = nullptr;  // created once, linked by one of the CASes below or deleted
  auto linked = [&] {
    parent->refs.fetch_add(1, std::memory_order_acq_rel);  // the new child entry
    linked_nodes_.fetch_add(1, std::memory_order_relaxed);
    return fresh;
  };
  for (;;) {
    ChildTable* t = table.load(std::memory_order_acquire);
    if (t == nullptr) {
      if (fresh == nullptr) fresh = new Node(level, parent, shards_);  // pinned for us
      ChildTable* first = ChildTable::Make(kMinCapacity);
      first->Place(fresh, h);
      // acq_rel on success: release publishes the table and the node. Acquire on failure: we
      // read the winner's table next.
      if (table.compare_exchange_strong(t, first, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        return linked();
      }
      ChildTable::Free(first);  // never published
      continue;
    }
    const ChildTable::Slot s = t->Probe(level, h);
    if (Node* c = ChildTable::NodeOf(s.value)) {
      if (TryPin(c->refs)) {
        delete fresh;  // never published (or nullptr)
        return c;
      }
      // DEAD but still linked: help unlink it, then insert a fresh node (invariant 2). `parent`
      // is pinned by us, so dropping its child reference cannot delete it.
      if (Node* p = UnlinkDead(shard, parent, c)) Unref(shard, p);
      continue;
    }
    // No entry for `level`: s is its first empty slot or tombstone of `level`, or none.
    const bool reuse = ChildTable::TombOf(s.value) != nullptr;
    if (s.slot == nullptr || (s.value & kFrozen) != 0 ||
        (!reuse && t->used.load(std::memory_order_relaxed) >= t->capacity / 4 * 3)) {
      ReplaceTable(shard, table, t);
      continue;
    }
    if (fresh == nullptr) fresh = new Node(level, parent, shards_);
    // Before s, the probe sequence holds other levels' entries and tombstones, which never turn
    // into an entry or tombstone of `level`; so no entry for `level` can have appeared earlier
    // since we read it, and a writer inserting it concurrently targets s too (invariant 2).
    // acq_rel on success: release publishes the node's fields. Failure: another writer took the
    // slot, or it froze; probe again.
    uintptr_t expected = s.value;
    if (s.slot->compare_exchange_strong(expected, reinterpret_cast<uintptr_t>(fresh),
                                        std::memory_order_acq_rel, std::memory_order_acquire)) {
      if (reuse) {
        // The tombstone's node is unreachable now, but a reader may still be looking at it.
        qsbr_.Retire(shard, ChildTable::TombOf(s.value), &TopicIndex::DeleteNode);
      } else {
        t->used.fetch_add(1, std::memory_order_relaxed);
      }
      t->live.fetch_add(1, std::memory_order_relaxed);
      return linked();
    }
  }
}

void TopicIndex::Unref(std::size_t shard, Node* node) {
  while (node != nullptr) {
    if (node->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    uint64_t zero = 0;
    // A writer may have pinned it again in the meantime: then it lives on (invariant 1).
    if (!node->refs.compare_exchange_strong(zero, kDead, std::memory_order_acq_rel,
                                            std::memory_order_relaxed)) {
      return;
    }
    assert(node->parent != nullptr);  // roots keep a permanent reference
    // Nothing is linked below a DEAD node again (no writer can pin it), so its tables now hold
    // tombstones only. Detach them here: the tombstone that will keep `node` for its level must
    // keep the node alone, not the DEAD subtree below it (which would grow with every subscribe
    // and unsubscribe under it, invariant 4). A reader still walking them is covered by Qsbr. A
    // writer still replacing one of them fails its CAS (the pointer is nullptr now). Acquire:
    // pairs with the release CAS that installed the table, whose slots FreeWithTombs reads.
    for (std::atomic<ChildTable*>* table : {&node->children, &node->leaves}) {
      if (ChildTable* t = table->exchange(nullptr, std::memory_order_acquire)) {
        qsbr_.Retire(shard, t, &ChildTable::FreeWithTombs);
      }
    }
    node = UnlinkDead(shard, node->parent, node);
  }
}

TopicIndex::Node* TopicIndex::UnlinkDead(std::size_t shard, Node* parent, Node* dead) {
  std::atomic<ChildTable*>& table = parent->TableFor(dead->level);
  const uint64_t h = Hash(dead->level);
  for (;;) {
    ChildTable* t = table.load(std::memory_order_acquire);
    if (t == nullptr) return nullptr;
    const ChildTable::Slot s = t->Probe(dead->level, h);
    // A frozen table holds what its successor will hold, so "not there" is final here too.
    if (ChildTable::NodeOf(s.value) != dead) return nullptr;  // another writer did it
    if ((s.value & kFrozen) != 0) {
      ReplaceTable(shard, table, t);
      continue;
    }
    uintptr_t expected = s.value;
    if (!s.slot->compare_exchange_strong(expected, s.value | kTomb, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      continue;  // frozen meanwhile
    }
    // This CAS removed the entry, so this writer owns the cleanup (invariant 1); the tombstone
    // keeps `dead` until the slot is reused or the table freed, which then frees it.
    linked_nodes_.fetch_sub(1, std::memory_order_relaxed);
    const uint32_t live = t->live.fetch_sub(1, std::memory_order_relaxed) - 1;
    if (t->capacity > kMinCapacity && live < t->capacity / 8) ReplaceTable(shard, table, t);
    return parent;  // the caller drops the parent's reference for that entry
  }
}

bool TopicIndex::AddPath(std::size_t shard, Node* root, std::string_view filter,
                         std::string_view leaf) {
  assert(shard < shards_);
  Node* node = root;
  const bool pinned = TryPin(node->refs);
  assert(pinned);
  (void)pinned;
  // Hand over hand: pin the child, then release the parent.
  for (std::size_t pos = 0; pos != kEnd;) {
    std::size_t next;
    const std::string_view level = LevelAt(filter, pos, &next);
    Node* child = GetOrCreateChild(shard, node, level);
    Unref(shard, node);
    node = child;
    pos = next;
  }
  if (!leaf.empty()) {
    Node* child = GetOrCreateChild(shard, node, leaf);
    Unref(shard, node);
    node = child;
  }
  // Our pin becomes the reference of this subscription (refs counts subscriptions).
  std::atomic<uint32_t>& count = node->counts[shard];
  const uint32_t c = count.load(std::memory_order_relaxed);  // single writer (invariant 3)
  count.store(c + 1, std::memory_order_relaxed);
  if (c != 0) return false;
  node->mask.fetch_or(uint64_t{1} << shard, std::memory_order_release);
  return true;
}

bool TopicIndex::RemovePath(std::size_t shard, Node* root, std::string_view filter,
                            std::string_view leaf, bool* last) {
  assert(shard < shards_);
  // If this shard subscribes to the filter, its node holds a reference and is live and linked.
  Node* node = const_cast<Node*>(FindPath(root, filter, leaf));
  if (node == nullptr) return false;
  std::atomic<uint32_t>& count = node->counts[shard];
  const uint32_t c = count.load(std::memory_order_relaxed);  // single writer (invariant 3)
  if (c == 0) return false;
  count.store(c - 1, std::memory_order_relaxed);
  if (last != nullptr) *last = c == 1;
  if (c == 1) node->mask.fetch_and(~(uint64_t{1} << shard), std::memory_order_release);
  Unref(shard, node);
  return true;
}

bool TopicIndex::Add(std::size_t shard, std::string_view filter) {
  return AddPath(shard, root_, filter, {});
}

bool TopicIndex::Remove(std::size_t shard, std::string_view filter, bool* last) {
  return RemovePath(shard, root_, filter, {}, last);
}

bool TopicIndex::AddShared(std::size_t shard, std::string_view group, std::string_view filter) {
  return AddPath(shard, shared_root_, filter, SharedLeaf(group, filter));
}

bool TopicIndex::RemoveShared(std::size_t shard, std::string_view group, std::string_view filter,
                              bool* last) {
  return RemovePath(shard, shared_root_, filter, SharedLeaf(group, filter), last);
}

// ---- Readers -----------------------------------------------------------------------------------

const TopicIndex::Node* TopicIndex::FindPath(const Node* root, std::string_view filter,
                                             std::string_view leaf) const {
  const Node* node = root;
  for (std::size_t pos = 0; pos != kEnd && node != nullptr;) {
    std::size_t next;
    const std::string_view level = LevelAt(filter, pos, &next);
    const ChildTable* t = node->Children();
    node = t ? t->Find(level, Hash(level)) : nullptr;
    pos = next;
  }
  if (node != nullptr && !leaf.empty()) {
    const ChildTable* t = node->Leaves();
    node = t ? t->Find(leaf, Hash(leaf)) : nullptr;
  }
  return node;
}

template <typename Visit>
void TopicIndex::Walk(const Node* node, std::string_view topic, std::size_t pos, bool dollar,
                      Visit& visit) const {
  for (;;) {
    const ChildTable* t = node->Children();
    if (pos == kEnd) {  // all levels consumed: this node's filter, and "x/#" matching "x"
      visit(node);
      if (t != nullptr) {
        if (const Node* hash = t->Find("#", hash_of_hash_)) visit(hash);
      }
      return;
    }
    if (t == nullptr) return;
    std::size_t next;
    const std::string_view level = LevelAt(topic, pos, &next);
    // Leading wildcards never match a '$' topic (MQTT 4.7.2).
    if (pos != 0 || !dollar) {
      if (const Node* hash = t->Find("#", hash_of_hash_)) visit(hash);
      if (const Node* plus = t->Find("+", hash_of_plus_)) Walk(plus, topic, next, dollar, visit);
    }
    const Node* exact = t->Find(level, Hash(level));
    if (exact == nullptr) return;
    node = exact;  // tail call by hand
    pos = next;
  }
}

uint64_t TopicIndex::ShardsFor(std::string_view topic) const {
  uint64_t shards = 0;
  auto visit = [&shards](const Node* n) { shards |= n->Mask(); };
  Walk(root_, topic, 0, !topic.empty() && topic[0] == '$', visit);
  return shards;
}

void TopicIndex::ForEachShared(std::string_view topic, SharedFn fn, void* ctx) const {
  // Group leaves ("\0group\0filter") have a table of their own, apart from the levels below.
  auto visit = [fn, ctx](const Node* n) {
    const ChildTable* t = n->Leaves();
    if (t == nullptr) return;
    for (uint32_t i = 0; i < t->capacity; ++i) {
      const Node* leaf = ChildTable::NodeOf(t->slots()[i].load(std::memory_order_acquire));
      if (leaf == nullptr) continue;
      const uint64_t mask = leaf->Mask();
      if (mask == 0) continue;
      const std::string_view key = leaf->level;
      const std::size_t sep = key.find('\0', 1);
      fn(ctx, key.substr(1, sep - 1), key.substr(sep + 1), mask);
    }
  };
  Walk(shared_root_, topic, 0, !topic.empty() && topic[0] == '$', visit);
}

uint64_t TopicIndex::SharedShards(std::string_view group, std::string_view filter) const {
  const Node* n = FindPath(shared_root_, filter, SharedLeaf(group, filter));
  return n ? n->Mask() : 0;  // acquire, as every reader's (Node::Mask)
}

uint32_t TopicIndex::CountForTest(std::size_t shard, std::string_view filter) const {
  const Node* n = FindPath(root_, filter, {});
  return n ? n->counts[shard].load(std::memory_order_relaxed) : 0;
}

}  // namespace ringmq::route
