// AclCache: one shard's map from token key to the token's compiled ACL (DESIGN.md section 5).
//
// A CONNECT looks up its key here; on a miss the shard asks the admin shard (asynchronously) and
// Put()s the answer. The admin shard's messages keep the cache true: TokenChanged -> Put (a newer
// version), TokenDeleted / disabled / expired -> Invalidate.
//
// Thread-safety: none; a cache belongs to one shard and only that thread touches it (no lock on
// lookup). Debug builds assert the owner (the thread of the first call).
// Invariants:
//   1. At most `capacity` entries; when full, Put evicts an arbitrary entry (a later miss asks the
//      admin shard again, which is always correct).
//   2. Put never replaces an entry with an older version (a reply that raced with a change).
//   3. Replies and invalidations for one shard must travel one FIFO channel from the admin shard,
//      so an invalidation is never overtaken by the lookup reply it invalidates.
//   4. Entries are indexed by the SHA-256 of their key (acl/credentials.h "Timing") and by their
//      token id; both indexes always hold the same entries.
#ifndef RINGMQ_ACL_ACL_CACHE_H_
#define RINGMQ_ACL_ACL_CACHE_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "acl/acl.h"
#include "acl/credentials.h"

namespace ringmq::acl {

class AclCache {
 public:
  explicit AclCache(size_t capacity = 100'000) : capacity_(capacity == 0 ? 1 : capacity) {}
  AclCache(const AclCache&) = delete;
  AclCache& operator=(const AclCache&) = delete;

  // The compiled ACL of `key`, or nullptr on a miss.
  AclPtr Find(std::string_view key) const;
  // Login by token id: the compiled ACL of token `id` when its key begins with `prefix`
  // (KeyPrefixMatches, constant time), its key in *key; nullptr when the token is not cached or
  // the prefix is wrong (the caller asks the admin shard, which decides).
  AclPtr FindByIdLogin(int64_t id, std::string_view prefix, std::string* key) const;
  // Inserts or replaces (invariant 2). Returns false when an equal or newer version was kept.
  // REQUIRES: acl != nullptr.
  bool Put(std::string_view key, AclPtr acl);
  // Removes `key`; returns whether it was cached.
  bool Invalidate(std::string_view key);
  void Clear() {
    map_.clear();
    by_id_.clear();
  }
  size_t size() const { return map_.size(); }

 private:
  struct Entry {
    std::string key;
    AclPtr acl;
  };
  using Map = std::unordered_map<KeyDigest, Entry, KeyDigestHash>;
  void CheckOwner() const;
  void Erase(Map::iterator it);

  size_t capacity_;
  Map map_;
  std::unordered_map<int64_t, KeyDigest> by_id_;  // token id -> map_ entry (token_id() > 0 only)
  mutable std::thread::id owner_;
};

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_ACL_CACHE_H_
