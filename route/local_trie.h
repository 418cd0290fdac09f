// LocalTrie<V>: the subscription trie of one shard (DESIGN.md section 4). It holds the actual
// subscribers (values V, e.g. a session handle + subscription options) of that shard's clients and
// answers "which local subscribers match this topic?" when a message reaches the shard.
// The global TopicIndex (route/topic_index.h) only says which shards to send a message to.
//
// Thread-safety: none. Owned and used by one shard thread; no atomics (doc/threading.md).
//
// Invariants:
//   1. Every node except the root has at least one value or one child (empty nodes are pruned by
//      Erase), so the memory is O(total length of the live filters + values).
//   2. A node's children are unique by level. Small fan-out: a flat vector searched linearly;
//      above kIndexThreshold children an unordered index (level -> child) is kept beside it.
//   3. The '+' and '#' children are also reachable through dedicated pointers, kept in sync.
//   4. Values of one filter keep their insertion order.
//
// Matching is that of MQTT 5.0 4.7: '+' matches one level, a last '#' matches the parent level and
// all levels below ("a/#" matches "a"); a filter starting with a wildcard never matches a topic
// starting with '$'. Filters are matched as given: a caller that stores "$share/g/f" subscriptions
// here inserts them under "f" (the value carries the group).
#ifndef RINGMQ_ROUTE_LOCAL_TRIE_H_
#define RINGMQ_ROUTE_LOCAL_TRIE_H_

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ringmq::route {

template <typename V>
class LocalTrie {
 public:
  LocalTrie() = default;
  LocalTrie(const LocalTrie&) = delete;
  LocalTrie& operator=(const LocalTrie&) = delete;
  LocalTrie(LocalTrie&&) noexcept = default;
  LocalTrie& operator=(LocalTrie&&) noexcept = default;

  // Adds `value` under `filter`. Duplicates are kept (the caller decides what a duplicate is).
  // REQUIRES: `filter` valid (proto::ValidateTopicFilter), not "$share/...".
  void Insert(std::string_view filter, V value) {
    Node* node = &root_;
    ForEachLevel(filter, [&node](std::string_view level) { node = node->GetOrAdd(level); });
    node->values.push_back(std::move(value));
    ++size_;
  }

  // Removes every value under exactly `filter` for which pred(const V&) is true, prunes nodes left
  // empty (invariant 1) and returns the number of values removed.
  template <typename Pred>
  std::size_t Erase(std::string_view filter, Pred&& pred) {
    std::vector<Node*> path;
    path.reserve(8);
    Node* node = &root_;
    bool found = true;
    ForEachLevel(filter, [&](std::string_view level) {
      if (!found) return;
      path.push_back(node);
      node = node->Find(level);
      found = node != nullptr;
    });
    if (!found) return 0;
    auto& vals = node->values;
    const auto it =
        std::remove_if(vals.begin(), vals.end(), [&pred](const V& v) { return pred(v); });
    const std::size_t removed = static_cast<std::size_t>(vals.end() - it);
    vals.erase(it, vals.end());
    size_ -= removed;
    // Prune upwards while the node is empty (path[i] is the parent of the node at depth i + 1).
    while (!path.empty() && node->Empty()) {
      Node* parent = path.back();
      path.pop_back();
      parent->RemoveChild(node);
      node = parent;
    }
    return removed;
  }

  // Calls fn(const V&) for every value whose filter matches `topic` (a valid topic name). A value
  // is reported once per matching filter. `fn` must not modify this trie.
  template <typename Fn>
  void Match(std::string_view topic, Fn&& fn) const {
    const bool dollar = !topic.empty() && topic[0] == '$';
    MatchFrom(&root_, topic, 0, dollar, fn);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Nodes including the root (checks invariant 1 in tests). O(nodes).
  std::size_t NodesForTest() const { return CountNodes(&root_); }

 private:
  static constexpr std::size_t kEnd = std::string_view::npos;
  static constexpr std::size_t kIndexThreshold = 16;

  struct Node {
    std::string level;
    std::vector<std::unique_ptr<Node>> children;  // unique by level (invariant 2)
    // Built when children.size() > kIndexThreshold; keys view the children's `level`.
    std::unique_ptr<std::unordered_map<std::string_view, Node*>> index;
    Node* plus = nullptr;
    Node* hash = nullptr;
    std::vector<V> values;

    bool Empty() const { return values.empty() && children.empty(); }

    Node* Find(std::string_view l) const {
      if (index != nullptr) {
        const auto it = index->find(l);
        return it == index->end() ? nullptr : it->second;
      }
      for (const auto& c : children) {
        if (c->level == l) return c.get();
      }
      return nullptr;
    }

    Node* GetOrAdd(std::string_view l) {
      if (Node* c = Find(l)) return c;
      auto owned = std::make_unique<Node>();
      owned->level.assign(l);
      Node* c = owned.get();
      children.push_back(std::move(owned));
      if (l == "+") plus = c;
      if (l == "#") hash = c;
      if (index != nullptr) {
        index->emplace(c->level, c);
      } else if (children.size() > kIndexThreshold) {
        index = std::make_unique<std::unordered_map<std::string_view, Node*>>();
        index->reserve(children.size() * 2);
        for (const auto& ch : children) index->emplace(ch->level, ch.get());
      }
      return c;
    }

    void RemoveChild(Node* c) {
      if (c == plus) plus = nullptr;
      if (c == hash) hash = nullptr;
      if (index != nullptr) index->erase(c->level);  // before `c` (owner of the key) dies
      const auto it = std::find_if(children.begin(), children.end(),
                                   [c](const std::unique_ptr<Node>& p) { return p.get() == c; });
      // Order of children does not matter: swap with the last instead of shifting.
      if (it != children.end()) {
        std::swap(*it, children.back());
        children.pop_back();
      }
      if (index != nullptr && children.size() < kIndexThreshold / 2) index.reset();
    }
  };

  static std::size_t CountNodes(const Node* n) {
    std::size_t total = 1;
    for (const auto& c : n->children) total += CountNodes(c.get());
    return total;
  }

  template <typename Fn>
  static void ForEachLevel(std::string_view s, Fn&& fn) {
    std::size_t pos = 0;
    for (;;) {
      const std::size_t slash = s.find('/', pos);
      if (slash == std::string_view::npos) {
        fn(s.substr(pos));
        return;
      }
      fn(s.substr(pos, slash - pos));
      pos = slash + 1;
    }
  }

  template <typename Fn>
  static void Emit(const Node* n, Fn& fn) {
    for (const V& v : n->values) fn(v);
  }

  template <typename Fn>
  static void MatchFrom(const Node* node, std::string_view topic, std::size_t pos, bool dollar,
                        Fn& fn) {
    for (;;) {
      if (pos == kEnd) {  // all levels consumed: this filter, and "x/#" matching "x"
        Emit(node, fn);
        if (node->hash != nullptr) Emit(node->hash, fn);
        return;
      }
      const std::size_t slash = topic.find('/', pos);
      const std::size_t next = slash == std::string_view::npos ? kEnd : slash + 1;
      const std::string_view level =
          topic.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
      if (pos != 0 || !dollar) {  // leading wildcards never match '$' topics
        if (node->hash != nullptr) Emit(node->hash, fn);
        if (node->plus != nullptr) MatchFrom(node->plus, topic, next, dollar, fn);
      }
      const Node* exact = node->Find(level);
      if (exact == nullptr) return;
      node = exact;
      pos = next;
    }
  }

  Node root_;
  std::size_t size_ = 0;
};

}  // namespace ringmq::route

#endif  // RINGMQ_ROUTE_LOCAL_TRIE_H_
