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
  const auto it = map_.find(key);
  return it == map_.end() ? nullptr : it->second;
}

bool AclCache::Put(std::string_view key, AclPtr acl) {
  CheckOwner();
  assert(acl != nullptr);
  const auto it = map_.find(key);
  if (it != map_.end()) {
    if (it->second->version() >= acl->version()) return false;
    it->second = std::move(acl);
    return true;
  }
  if (map_.size() >= capacity_) map_.erase(map_.begin());
  map_.emplace(std::string(key), std::move(acl));
  return true;
}

bool AclCache::Invalidate(std::string_view key) {
  CheckOwner();
  const auto it = map_.find(key);
  if (it == map_.end()) return false;
  map_.erase(it);
  return true;
}

}  // namespace ringmq::acl
