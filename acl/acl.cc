#include "acl/acl.h"

#include <algorithm>

#include "proto/topic.h"

namespace ringmq::acl {

namespace {

bool HasWildcard(std::string_view filter) {
  return filter.find_first_of("+#") != std::string_view::npos;
}

// True when every topic matched by `a` is matched by `b`: a ∩ b is a itself.
bool Covers(std::string_view b, std::string_view a) {
  const std::optional<std::string> i = proto::Intersect(a, b);
  return i.has_value() && *i == a;
}

}  // namespace

std::shared_ptr<const CompiledAcl> CompiledAcl::Compile(const Token& token, uint64_t version) {
  auto acl = std::shared_ptr<CompiledAcl>(new CompiledAcl());
  acl->version_ = version;
  acl->token_id_ = token.id;
  acl->expire_ = token.expire;
  acl->ttl_ = token.ttl;
  acl->max_connections_ = token.max_connections;
  acl->has_origins_ = !token.origins.empty();
  for (const Origin& o : token.origins) {
    IpPrefix prefix;
    std::string ignored;
    // A validated token's origins parse (token.h invariant 5); one that did not is left out,
    // which only narrows who may connect (has_origins_ stays set).
    if (ParseIpPrefix(o.ip, &prefix, &ignored)) acl->origins_.push_back(prefix);
  }
  acl->AddEntries(token.access);
  return acl;
}

std::shared_ptr<const CompiledAcl> CompiledAcl::Compile(const Access& access, uint64_t version) {
  auto acl = std::shared_ptr<CompiledAcl>(new CompiledAcl());
  acl->version_ = version;
  acl->AddEntries(access);
  return acl;
}

void CompiledAcl::AddEntries(const Access& access) {
  type_ = access.type;
  if (type_ != AccessType::kAcl) return;
  for (const AclEntry& e : access.acl) {
    if (e.actions & kActionPublish) {
      if (HasWildcard(e.topic)) {
        publish_wild_.push_back(e.topic);
      } else {
        publish_exact_.insert(e.topic);
      }
    }
    if ((e.actions & kActionSubscribe) &&
        std::find(subscribe_.begin(), subscribe_.end(), e.topic) == subscribe_.end()) {
      subscribe_.push_back(e.topic);
    }
  }
}

bool CompiledAcl::CanPublish(std::string_view topic) const {
  if (type_ != AccessType::kAcl) return true;
  if (publish_exact_.find(topic) != publish_exact_.end()) return true;
  for (const std::string& f : publish_wild_) {
    if (proto::Matches(f, topic)) return true;
  }
  return false;
}

bool CompiledAcl::CanReceive(std::string_view topic) const {
  if (type_ != AccessType::kAcl) return true;
  for (const std::string& p : subscribe_) {
    if (proto::Matches(p, topic)) return true;
  }
  return false;
}

std::vector<std::string> CompiledAcl::EffectiveFilters(std::string_view requested) const {
  if (type_ != AccessType::kAcl) return {std::string(requested)};
  std::string_view prefix;
  std::string_view filter = requested;
  if (const auto shared = proto::ParseSharedFilter(requested)) {
    filter = shared->filter;
    prefix = requested.substr(0, requested.size() - filter.size());
  }
  std::vector<std::string> out;
  for (const std::string& p : subscribe_) {
    std::optional<std::string> i = proto::Intersect(filter, p);
    if (!i) continue;
    // Keep the set minimal: skip a filter covered by one already kept, drop kept ones it covers.
    bool covered = false;
    for (const std::string& kept : out) {
      if (Covers(kept, *i)) {
        covered = true;
        break;
      }
    }
    if (covered) continue;
    std::erase_if(out, [&](const std::string& kept) { return Covers(*i, kept); });
    out.push_back(std::move(*i));
  }
  if (!prefix.empty()) {
    for (std::string& f : out) f.insert(0, prefix);
  }
  return out;
}

}  // namespace ringmq::acl
