// TopicIndex: the global topic index, the one structure shared by all shards (DESIGN.md sections 2
// and 4; doc/threading.md). It answers "which shards have a subscriber whose filter matches this
// topic?" as a 64-bit shard mask, so a publishing shard pushes one message reference per interested
// shard; each shard then matches its own LocalTrie (route/local_trie.h) for the actual subscribers.
//
// Structure: a trie over topic levels. A node is one filter level; the node reached by the levels
// of filter F carries, for F, a per-shard subscriber count and `mask`, the set of shards whose
// count is non-zero. A node's children are a lock-free open-addressing hash table: writers insert
// and remove entries with a CAS on one slot, and replace the whole table (freeze every slot, copy,
// CAS the table pointer) only when it has doubled or shrunk 8x, so adding or removing n children of
// one node writes and retires O(n) memory in total, also within one grace period (one SUBSCRIBE
// with thousands of filters). Shared subscriptions "$share/{g}/{f}" live in a second trie (shared
// root) as filter f plus one last pseudo-level "\0{g}\0{f}" (no topic level contains U+0000, so it
// never matches a topic level), kept in a table of their own beside the levels below f's node;
// that leaf carries the member-shard mask of group g for filter f.
//
// Thread-safety: every method may be called concurrently from any registered shard thread.
// Readers (ShardsFor, SharedGroupsFor) take no lock and write nothing shared. Writers (Add, Remove,
// AddShared, RemoveShared) use atomic RMW and CAS only. Memory is reclaimed through the Qsbr given
// at construction, so REQUIRES for every method: the caller is shard `shard` (readers: any shard),
// online in that Qsbr, and it holds no pointer from this index across a quiescent point.
//
// Invariants (a node's `refs` word: number of child entries + sum of its per-shard counts +
// transient pins of writers walking through it; plus a DEAD bit):
//   1. A node with refs > 0 is never DEAD; a DEAD node's refs stay DEAD forever, and only the
//      writer that moved refs 0 -> DEAD (or a helper) unlinks it; exactly one CAS removes its entry
//      from the parent (leaving a tombstone that keeps the node), and that writer drops the
//      parent's child reference. The writer that moved refs 0 -> DEAD detaches the node's own
//      tables (tombstones only by then) and retires them, so a tombstone keeps one node only.
//   2. A parent's child tables hold at most one entry per level. A writer that finds a DEAD entry
//      helps unlink it before inserting a fresh node for that level. A slot goes from empty to
//      used at most once per table; a removed entry leaves a tombstone that keeps its DEAD node
//      (hence its level) until an insertion of that same level reuses the slot or the table is
//      freed. An insertion takes the first empty slot or same-level tombstone of its probe
//      sequence by CAS: the slots before it hold other levels, which never turn into its own, so
//      no entry for its level can have appeared earlier in the sequence.
//   3. counts[s] of a node is written only by shard s (Add/Remove REQUIRE the caller to be shard
//   s),
//      and mask bit s is set after counts[s] goes 0 -> 1 and cleared after it goes 1 -> 0; hence
//      mask bit s == (counts[s] > 0) whenever shard s is not inside Add/Remove of that filter.
//   4. Empty nodes are deleted eagerly: when a Remove brings refs to 0 the node is unlinked and the
//      deletion cascades to its parents (the roots are never deleted). The memory of the index is
//      therefore O(live filters) plus tombstones (fewer than a table's capacity, which stays
//      below 8x its live entries or 4 slots) plus what waits in Qsbr for one grace period.
//   5. Child tables, their slots and nodes are published with release CAS and read with acquire
//      loads; node fields other than refs/mask/counts/children/leaves are immutable after
//      publication. A frozen slot never changes again; a frozen table's successor holds exactly
//      its live entries (DEAD ones included, for their unlinker to remove).
//
// Matching (MQTT 5.0 4.7): '+' matches exactly one level (possibly empty), '#' (last level) matches
// the parent level and any number of levels below ("a/#" matches "a"); a filter whose first level
// is a wildcard never matches a topic starting with '$'.
#ifndef RINGMQ_ROUTE_TOPIC_INDEX_H_
#define RINGMQ_ROUTE_TOPIC_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/siphash.h"
#include "smp/qsbr.h"

namespace ringmq::route {

class TopicIndex {
 public:
  // Uses `qsbr` (which must outlive this index) for reclamation; qsbr.shards() is the shard count.
  explicit TopicIndex(smp::Qsbr& qsbr);
  TopicIndex(const TopicIndex&) = delete;
  TopicIndex& operator=(const TopicIndex&) = delete;
  // REQUIRES: no concurrent use.
  ~TopicIndex();

  // ---- Plain subscriptions -----------------------------------------------------------------

  // One more subscriber of shard `shard` to `filter`. Returns true when shard's count went 0 -> 1
  // (its bit was set). REQUIRES: `filter` valid (proto::ValidateTopicFilter) and not "$share/...";
  // caller is shard `shard`.
  bool Add(std::size_t shard, std::string_view filter);

  // One subscriber fewer. Returns false (and changes nothing) when shard has no subscriber to
  // `filter`; with `last`, *last says whether shard's count went 1 -> 0. REQUIRES: as Add.
  bool Remove(std::size_t shard, std::string_view filter, bool* last = nullptr);

  // The shards that have a subscriber whose filter matches `topic`. Never locks, never writes
  // shared memory. REQUIRES: `topic` a valid topic name.
  uint64_t ShardsFor(std::string_view topic) const;

  // ---- Shared subscriptions ($share/{group}/{filter}) ---------------------------------------

  // As Add/Remove for member counts of `group` on `filter` (the part after "$share/{group}/").
  bool AddShared(std::size_t shard, std::string_view group, std::string_view filter);
  bool RemoveShared(std::size_t shard, std::string_view group, std::string_view filter,
                    bool* last = nullptr);

  // Calls fn(std::string_view group, std::string_view filter, uint64_t member_shards) once per
  // shared subscription (group, filter) with filter matching `topic` and a non-empty shard mask.
  // The views are valid until the caller's next quiescent point. The publisher picks one shard of
  // `member_shards` per call.
  template <typename Fn>
  void SharedGroupsFor(std::string_view topic, Fn&& fn) const {
    ForEachShared(
        topic,
        [](void* ctx, std::string_view g, std::string_view f, uint64_t mask) {
          (*static_cast<Fn*>(ctx))(g, f, mask);
        },
        &fn);
  }

  // ---- Introspection (tests, metrics) ---------------------------------------------------------

  // The shards with a member of `group` on `filter` (0: the group has no member left).
  // REQUIRES: as ShardsFor.
  uint64_t SharedShards(std::string_view group, std::string_view filter) const;

  // Shard's subscriber count on `filter` (0 if absent). REQUIRES: as ShardsFor.
  uint32_t CountForTest(std::size_t shard, std::string_view filter) const;
  // Nodes currently linked in both tries, roots included.
  std::size_t LinkedNodes() const { return linked_nodes_.load(std::memory_order_relaxed); }
  // Nodes the tries keep allocated: linked ones and those held by tombstones, with what they hold
  // (not counting what waits in Qsbr). REQUIRES: no concurrent writer.
  // Slots a lookup of the last level of `filter` reads in its parent's table (0 if absent).
  std::size_t ProbeLengthForTest(std::string_view filter) const;
  std::size_t RetainedNodesForTest() const {
    return CountRetained(root_) + CountRetained(shared_root_);
  }

 private:
  struct Node;
  struct ChildTable;
  using SharedFn = void (*)(void* ctx, std::string_view group, std::string_view filter,
                            uint64_t mask);

  bool AddPath(std::size_t shard, Node* root, std::string_view filter, std::string_view leaf);
  bool RemovePath(std::size_t shard, Node* root, std::string_view filter, std::string_view leaf,
                  bool* last = nullptr);
  const Node* FindPath(const Node* root, std::string_view filter, std::string_view leaf) const;
  Node* GetOrCreateChild(std::size_t shard, Node* parent, std::string_view level);
  // Freezes `old` (the table `table` points to, or pointed to), copies its live entries into a
  // table sized for them and installs it unless another writer did; retires `old` if it did.
  void ReplaceTable(std::size_t shard, std::atomic<ChildTable*>& table, ChildTable* old);
  void Unref(std::size_t shard, Node* node);
  // Removes DEAD `dead` from `parent`; returns `parent` when this call removed the entry (the
  // caller then owes Unref(parent)), nullptr when another writer had already removed it.
  Node* UnlinkDead(std::size_t shard, Node* parent, Node* dead);
  void ForEachShared(std::string_view topic, SharedFn fn, void* ctx) const;
  // Calls visit(const Node*) for every node whose filter matches the levels of `topic` from `pos`.
  template <typename Visit>
  void Walk(const Node* node, std::string_view topic, std::size_t pos, bool dollar,
            Visit& visit) const;
  uint64_t Hash(std::string_view level) const;
  static void DeleteTree(Node* node);
  static std::size_t CountRetained(const Node* node);
  static void DeleteNode(void* node);

  smp::Qsbr& qsbr_;
  std::size_t shards_;
  Node* root_;                   // plain filters
  Node* shared_root_;            // shared filters
  const base::SipKey hash_key_;  // of the level hash, random per index
  const uint64_t hash_of_hash_;
  const uint64_t hash_of_plus_;
  std::atomic<std::size_t> linked_nodes_{0};
};

}  // namespace ringmq::route

#endif  // RINGMQ_ROUTE_TOPIC_INDEX_H_
