#include "core/topic_index.h"

#include <algorithm>
#include <cassert>
#include <memory>
#include <new>
#include <string>

namespace ringmq::core {
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

}  // namespace

// One level of the trie. Fields marked immutable are written before the node is published by the
// release CAS of its parent's child array (invariant 5).
struct TopicIndex::Node {
  Node(std::string_view lvl, Node* p, std::size_t shards)
      : level(lvl), parent(p), counts(new std::atomic<uint32_t>[shards]()) {}

  // Acquire: the array and the nodes it points to were fully built before the release CAS that
  // published them.
  ChildArray* Children() const { return children.load(std::memory_order_acquire); }
  // acq_rel on success: release publishes the new array; acquire orders our later reads after the
  // array we replaced. Acquire on failure: we re-read the winner's array.
  bool CasChildren(ChildArray* expected, ChildArray* desired) {
    return children.compare_exchange_strong(expected, desired, std::memory_order_acq_rel,
                                            std::memory_order_acquire);
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
  std::atomic<ChildArray*> children{nullptr};
  std::unique_ptr<std::atomic<uint32_t>[]> counts;  // [shards], counts[s] written by shard s only
};

// Immutable sorted array of children, allocated in one block: header then `size` entries.
struct TopicIndex::ChildArray {
  struct Entry {
    std::string_view key;  // views the child's immutable `level`
    Node* node;
  };

  uint32_t size;
  Node* hash;  // the "#" child or nullptr
  Node* plus;  // the "+" child or nullptr

  Entry* entries() { return reinterpret_cast<Entry*>(this + 1); }
  const Entry* entries() const { return reinterpret_cast<const Entry*>(this + 1); }

  static ChildArray* Make(uint32_t n) {
    void* mem = ::operator new(sizeof(ChildArray) + n * sizeof(Entry));
    auto* a = new (mem) ChildArray{n, nullptr, nullptr};
    for (uint32_t i = 0; i < n; ++i) new (&a->entries()[i]) Entry{};
    return a;
  }
  static void Free(void* p) { ::operator delete(p); }  // header and entries are trivial

  Node* Find(std::string_view level) const {
    const Entry* b = entries();
    const Entry* e = b + size;
    const Entry* it =
        std::lower_bound(b, e, level, [](const Entry& x, std::string_view k) { return x.key < k; });
    return it != e && it->key == level ? it->node : nullptr;
  }

  void IndexWildcards() {
    for (uint32_t i = 0; i < size; ++i) {
      if (entries()[i].key == "#") hash = entries()[i].node;
      if (entries()[i].key == "+") plus = entries()[i].node;
    }
  }

  // A copy of `a` (may be null) with `n` inserted. REQUIRES: no entry with n's level in `a`.
  static ChildArray* With(const ChildArray* a, Node* n) {
    const uint32_t old = a ? a->size : 0;
    ChildArray* out = Make(old + 1);
    uint32_t j = 0;
    bool placed = false;
    for (uint32_t i = 0; i < old; ++i) {
      if (!placed && n->level < a->entries()[i].key) {
        out->entries()[j++] = Entry{n->level, n};
        placed = true;
      }
      out->entries()[j++] = a->entries()[i];
    }
    if (!placed) out->entries()[j++] = Entry{n->level, n};
    out->IndexWildcards();
    return out;
  }

  // A copy of `a` without `n`, or nullptr when it would be empty. REQUIRES: `n` in `a`.
  static ChildArray* Without(const ChildArray* a, const Node* n) {
    if (a->size == 1) return nullptr;
    ChildArray* out = Make(a->size - 1);
    uint32_t j = 0;
    for (uint32_t i = 0; i < a->size; ++i) {
      if (a->entries()[i].node != n) out->entries()[j++] = a->entries()[i];
    }
    out->IndexWildcards();
    return out;
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

TopicIndex::TopicIndex(Qsbr& qsbr)
    : qsbr_(qsbr),
      shards_(qsbr.shards()),
      root_(new Node("", nullptr, qsbr.shards())),
      shared_root_(new Node("", nullptr, qsbr.shards())) {
  // The roots keep their creation pin forever, so they never become DEAD.
  linked_nodes_.store(2, std::memory_order_relaxed);
}

TopicIndex::~TopicIndex() {
  DeleteTree(root_);
  DeleteTree(shared_root_);
}

void TopicIndex::DeleteNode(void* node) {
  Node* n = static_cast<Node*>(node);
  // A DEAD node has no children (refs counted them), so its array is null; free it anyway.
  if (ChildArray* a = n->children.load(std::memory_order_relaxed)) ChildArray::Free(a);
  delete n;
}

void TopicIndex::DeleteTree(Node* node) {
  if (ChildArray* a = node->children.load(std::memory_order_relaxed)) {
    for (uint32_t i = 0; i < a->size; ++i) DeleteTree(a->entries()[i].node);
  }
  DeleteNode(node);
}

// ---- Writers -----------------------------------------------------------------------------------

TopicIndex::Node* TopicIndex::GetOrCreateChild(std::size_t shard, Node* parent,
                                               std::string_view level) {
  for (;;) {
    ChildArray* arr = parent->Children();
    if (Node* c = arr ? arr->Find(level) : nullptr) {
      if (TryPin(c->refs)) return c;
      // DEAD but still linked: help unlink it, then insert a fresh node (invariant 2). `parent`
      // is pinned by us, so dropping its child reference cannot delete it.
      if (Node* p = UnlinkDead(shard, parent, c)) Unref(shard, p);
      continue;
    }
    auto* fresh = new Node(level, parent, shards_);  // pinned for us (refs == 1)
    ChildArray* next = ChildArray::With(arr, fresh);
    if (parent->CasChildren(arr, next)) {
      parent->refs.fetch_add(1, std::memory_order_acq_rel);  // the new child entry
      linked_nodes_.fetch_add(1, std::memory_order_relaxed);
      if (arr != nullptr) qsbr_.Retire(shard, arr, &ChildArray::Free);
      return fresh;
    }
    ChildArray::Free(next);  // never published
    delete fresh;
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
    node = UnlinkDead(shard, node->parent, node);
  }
}

TopicIndex::Node* TopicIndex::UnlinkDead(std::size_t shard, Node* parent, Node* dead) {
  for (;;) {
    ChildArray* arr = parent->Children();
    if (arr == nullptr || arr->Find(dead->level) != dead) return nullptr;  // another writer did it
    ChildArray* next = ChildArray::Without(arr, dead);
    if (parent->CasChildren(arr, next)) {
      // This CAS removed the entry, so this writer owns the cleanup (invariant 1).
      linked_nodes_.fetch_sub(1, std::memory_order_relaxed);
      qsbr_.Retire(shard, arr, &ChildArray::Free);
      qsbr_.Retire(shard, dead, &TopicIndex::DeleteNode);
      return parent;  // the caller drops the parent's reference for that entry
    }
    if (next != nullptr) ChildArray::Free(next);
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
                            std::string_view leaf) {
  assert(shard < shards_);
  // If this shard subscribes to the filter, its node holds a reference and is live and linked.
  Node* node = const_cast<Node*>(FindPath(root, filter, leaf));
  if (node == nullptr) return false;
  std::atomic<uint32_t>& count = node->counts[shard];
  const uint32_t c = count.load(std::memory_order_relaxed);  // single writer (invariant 3)
  if (c == 0) return false;
  count.store(c - 1, std::memory_order_relaxed);
  if (c == 1) node->mask.fetch_and(~(uint64_t{1} << shard), std::memory_order_release);
  Unref(shard, node);
  return true;
}

bool TopicIndex::Add(std::size_t shard, std::string_view filter) {
  return AddPath(shard, root_, filter, {});
}

bool TopicIndex::Remove(std::size_t shard, std::string_view filter) {
  return RemovePath(shard, root_, filter, {});
}

bool TopicIndex::AddShared(std::size_t shard, std::string_view group, std::string_view filter) {
  return AddPath(shard, shared_root_, filter, SharedLeaf(group, filter));
}

bool TopicIndex::RemoveShared(std::size_t shard, std::string_view group, std::string_view filter) {
  return RemovePath(shard, shared_root_, filter, SharedLeaf(group, filter));
}

// ---- Readers -----------------------------------------------------------------------------------

const TopicIndex::Node* TopicIndex::FindPath(const Node* root, std::string_view filter,
                                             std::string_view leaf) const {
  const Node* node = root;
  for (std::size_t pos = 0; pos != kEnd && node != nullptr;) {
    std::size_t next;
    const std::string_view level = LevelAt(filter, pos, &next);
    const ChildArray* arr = node->Children();
    node = arr ? arr->Find(level) : nullptr;
    pos = next;
  }
  if (node != nullptr && !leaf.empty()) {
    const ChildArray* arr = node->Children();
    node = arr ? arr->Find(leaf) : nullptr;
  }
  return node;
}

template <typename Visit>
void TopicIndex::Walk(const Node* node, std::string_view topic, std::size_t pos, bool dollar,
                      Visit& visit) {
  for (;;) {
    const ChildArray* arr = node->Children();
    if (pos == kEnd) {  // all levels consumed: this node's filter, and "x/#" matching "x"
      visit(node);
      if (arr != nullptr && arr->hash != nullptr) visit(arr->hash);
      return;
    }
    if (arr == nullptr) return;
    std::size_t next;
    const std::string_view level = LevelAt(topic, pos, &next);
    // Leading wildcards never match a '$' topic (MQTT 4.7.2).
    if (pos != 0 || !dollar) {
      if (arr->hash != nullptr) visit(arr->hash);
      if (arr->plus != nullptr) Walk(arr->plus, topic, next, dollar, visit);
    }
    const Node* exact = arr->Find(level);
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
  // Group leaves ("\0group\0filter") sort before every real level except the empty one (of a
  // filter with a trailing or double '/'), which comes first: they follow it as one run.
  auto visit = [fn, ctx](const Node* n) {
    const ChildArray* arr = n->Children();
    if (arr == nullptr) return;
    for (uint32_t i = 0; i < arr->size; ++i) {
      const std::string_view key = arr->entries()[i].key;
      if (key.empty()) continue;
      if (key[0] != '\0') break;
      const uint64_t mask = arr->entries()[i].node->Mask();
      if (mask == 0) continue;
      const std::size_t sep = key.find('\0', 1);
      fn(ctx, key.substr(1, sep - 1), key.substr(sep + 1), mask);
    }
  };
  Walk(shared_root_, topic, 0, !topic.empty() && topic[0] == '$', visit);
}

uint32_t TopicIndex::CountForTest(std::size_t shard, std::string_view filter) const {
  const Node* n = FindPath(root_, filter, {});
  return n ? n->counts[shard].load(std::memory_order_relaxed) : 0;
}

}  // namespace ringmq::core
