// RestAccess: what an ACL token (access.type 2) may do over the REST API through the `methods` of
// its mqtt entries (doc/rest-api.md "REST calls by ACL tokens"). Everything else of the REST API
// is the master token's.
//
//   POST   /mqtt/messages            every message's topic matched by an entry listing POST
//   GET    /mqtt/messages/{filter}   the filter meets an entry listing GET; only retained messages
//                                    whose topic such an entry matches are listed
//   DELETE /mqtt/messages/{filter}   the filter lies inside an entry listing DELETE
//
// Thread-safety: pure functions over a token value.
#ifndef RINGMQ_ACL_REST_ACCESS_H_
#define RINGMQ_ACL_REST_ACCESS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "acl/token.h"

namespace ringmq::acl {

// Does some entry list `method` (a kMethod* bit)? False for tokens that are not kAcl.
bool ListsMethod(const Token& token, uint8_t method);
// Does an entry listing `method` match `topic` (a topic name)?
bool MethodAllowsTopic(const std::vector<AclEntry>& acl, uint8_t method, std::string_view topic);
// Does an entry listing `method` match some topic that `filter` matches?
bool MethodMeetsFilter(const std::vector<AclEntry>& acl, uint8_t method, std::string_view filter);
// Does an entry listing `method` match every topic that `filter` matches?
bool MethodCoversFilter(const std::vector<AclEntry>& acl, uint8_t method, std::string_view filter);

}  // namespace ringmq::acl

#endif  // RINGMQ_ACL_REST_ACCESS_H_
