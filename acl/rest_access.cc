#include "acl/rest_access.h"

#include "proto/topic.h"

namespace ringmq::acl {

bool ListsMethod(const Token& token, uint8_t method) {
  if (token.access.type != AccessType::kAcl) return false;
  for (const AclEntry& e : token.access.acl) {
    if (e.methods & method) return true;
  }
  return false;
}

bool MethodAllowsTopic(const std::vector<AclEntry>& acl, uint8_t method, std::string_view topic) {
  for (const AclEntry& e : acl) {
    if ((e.methods & method) && proto::Matches(e.topic, topic)) return true;
  }
  return false;
}

bool MethodMeetsFilter(const std::vector<AclEntry>& acl, uint8_t method, std::string_view filter) {
  for (const AclEntry& e : acl) {
    if ((e.methods & method) && proto::Intersect(e.topic, filter).has_value()) return true;
  }
  return false;
}

bool MethodCoversFilter(const std::vector<AclEntry>& acl, uint8_t method, std::string_view filter) {
  for (const AclEntry& e : acl) {
    if ((e.methods & method) == 0) continue;
    const std::optional<std::string> i = proto::Intersect(e.topic, filter);
    if (i.has_value() && *i == filter) return true;
  }
  return false;
}

}  // namespace ringmq::acl
