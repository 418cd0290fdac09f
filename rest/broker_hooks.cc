#include "rest/broker_hooks.h"

namespace ringmq::rest {

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

}  // namespace ringmq::rest
