// CompiledAcl: a token's access rights in the form the MQTT path checks (DESIGN.md section 5).
//
// Built once per token version by the admin shard (or by a shard from a token snapshot), then
// shared read-only: shards hold shared_ptr<const CompiledAcl> in their AclCache and in the
// connections that authenticated with it.
//
//   auto acl = CompiledAcl::Compile(token, version);
//   if (!acl->CanPublish(topic)) -> PUBACK 0x87 / drop
//   auto filters = acl->EffectiveFilters(requested);  // empty -> SUBACK 0x87 / 0x80
//
// Thread-safety: immutable after Compile; any thread may call the const methods concurrently.
// Invariants:
//   1. For kStandard and kMaster every valid topic may be published and every valid filter is its
//      own single effective filter.
//   2. For kAcl: CanPublish(t) == some entry with the publish action matches t (proto::Matches, so
//      "#" never matches "$SYS/..."); EffectiveFilters(F) is the set of F ∩ P over the entries P
//      with the subscribe action, without duplicates and without a filter that another result
//      already covers, so a message is delivered once per requested subscription.
//   3. version() orders the compiled forms of one token: a larger version is newer.
#ifndef RINGMQ_ACL_ACL_H_
#define RINGMQ_ACL_ACL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "acl/origin.h"
#include "acl/token.h"

namespace ringmq::acl {

class CompiledAcl {
 public:
  // From a validated token (ValidateToken), stamped with `version`.
  static std::shared_ptr<const CompiledAcl> Compile(const Token& token, uint64_t version);
  // From an access description alone (e.g. the configured ACL of anonymous clients); token_id 0.
  static std::shared_ptr<const CompiledAcl> Compile(const Access& access, uint64_t version);

  uint64_t version() const { return version_; }
  int64_t token_id() const { return token_id_; }
  // The token's absolute expiry (0: none) and ttl (0: none). A token is valid while either holds
  // (acl/token.h CheckToken); the ttl half is the admin shard's to judge (it sees `accessed`).
  int64_t expire() const { return expire_; }
  int64_t ttl() const { return ttl_; }
  // True when the token is certainly expired at `now` without asking the admin shard: its
  // `expire` passed and it has no ttl that use could keep alive.
  bool ExpiredAt(int64_t now) const { return expire_ != 0 && now >= expire_ && ttl_ == 0; }
  // The token's own limit of concurrent MQTT connections; 0: the broker's default applies.
  uint32_t max_connections() const { return max_connections_; }
  AccessType type() const { return type_; }
  bool IsMaster() const { return type_ == AccessType::kMaster; }
  // May a client at `peer` ("ip:port", as connections log it) use the token? True when the token
  // has no origins, false for an unknown address when it has (acl/origin.h).
  bool AllowsPeer(std::string_view peer) const {
    return !has_origins_ || (!origins_.empty() && OriginsAllow(origins_, peer));
  }
  // True for kStandard and kMaster: no check is needed on this connection at all.
  bool AllowsEverything() const { return type_ != AccessType::kAcl; }

  // May a client publish to `topic`? REQUIRES: topic is a valid topic name.
  bool CanPublish(std::string_view topic) const;

  // May a client receive a message published to `topic`: does an entry with the subscribe
  // action match it? (A message some EffectiveFilters result matches always passes.) Used to
  // filter what a session holds when its ACL narrows, not per message.
  // REQUIRES: topic is a valid topic name.
  bool CanReceive(std::string_view topic) const;

  // The filters to subscribe for a requested filter (invariant 2), "$share/g/F" handled as F
  // with the "$share/g/" prefix kept on every result. Empty: refused.
  // REQUIRES: requested passed proto::ValidateTopicFilter.
  std::vector<std::string> EffectiveFilters(std::string_view requested) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  CompiledAcl() = default;
  void AddEntries(const Access& access);

  uint64_t version_ = 0;
  int64_t token_id_ = 0;
  int64_t expire_ = 0;
  int64_t ttl_ = 0;
  uint32_t max_connections_ = 0;
  AccessType type_ = AccessType::kStandard;
  bool has_origins_ = false;  // the token names origins (origins_ are those that parse)
  std::vector<IpPrefix> origins_;
  // Publish filters without wildcards, looked up by hash; the others are matched one by one.
  std::unordered_set<std::string, Hash, std::equal_to<>> publish_exact_;
  std::vector<std::string> publish_wild_;
  std::vector<std::string> subscribe_;
};

using AclPtr = std::shared_ptr<const CompiledAcl>;

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_ACL_H_
