#include "admin_api/broker_hooks.h"

#include <algorithm>

namespace ringmq::admin_api {

bool IdSet::Contains(const std::string& id) const {
  return all || std::find(ids.begin(), ids.end(), id) != ids.end();
}

const char* RevokeReasonName(RevokeReason reason) {
  switch (reason) {
    case RevokeReason::kDeleted:
      return "deleted";
    case RevokeReason::kDisabled:
      return "disabled";
    case RevokeReason::kExpired:
      return "expired";
  }
  return "?";
}

}  // namespace ringmq::admin_api
