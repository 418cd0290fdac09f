#include "acl/acl_cache.h"

#include <cassert>

namespace ringmq::acl {

void AclCache::CheckOwner() const {
#ifndef NDEBUG
  if (owner_ == std::thread::id()) owner_ = std::this_thread::get_id();
  assert(owner_ == std::this_thread::get_id() && "AclCache used by a thread that does not own it");
#endif
}

AclPtr AclCache::Find(std::string_view key) const {
  CheckOwner();
  const auto it = map_.find(DigestKey(key));
  return it == map_.end() ? nullptr : it->second.acl;
}

AclPtr AclCache::FindByIdLogin(int64_t id, std::string_view prefix, std::string* key) const {
  CheckOwner();
  const auto by_id = by_id_.find(id);
  if (by_id == by_id_.end()) return nullptr;
  const auto it = map_.find(by_id->second);
  assert(it != map_.end());  // invariant 4
  if (!KeyPrefixMatches(it->second.key, prefix)) return nullptr;
  *key = it->second.key;
  return it->second.acl;
}

void AclCache::Erase(Map::iterator it) {
  const int64_t id = it->second.acl->token_id();
  if (const auto by_id = by_id_.find(id); by_id != by_id_.end() && by_id->second == it->first) {
    by_id_.erase(by_id);
  }
  map_.erase(it);
}

bool AclCache::Put(std::string_view key, AclPtr acl) {
  CheckOwner();
  assert(acl != nullptr);
  const KeyDigest digest = DigestKey(key);
  const auto it = map_.find(digest);
  if (it != map_.end()) {
    if (it->second.acl->version() >= acl->version()) return false;
    Erase(it);
  } else if (map_.size() >= capacity_) {
    Erase(map_.begin());
  }
  // A login by id finds the key cached last for that id (the store keeps one key per id; an
  // older key's entry stays until the admin shard invalidates it, as before).
  if (acl->token_id() > 0) by_id_[acl->token_id()] = digest;
  map_.emplace(digest, Entry{std::string(key), std::move(acl)});
  return true;
}

bool AclCache::Invalidate(std::string_view key) {
  CheckOwner();
  const auto it = map_.find(DigestKey(key));
  if (it == map_.end()) return false;
  Erase(it);
  return true;
}

}  // namespace ringmq::acl
