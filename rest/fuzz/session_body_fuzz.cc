// libFuzzer target for the bodies of POST /mqtt/sessions and POST .../subscriptions and for the
// subscription selector (rest/internal/session_body.h). What they accept must be creatable as is:
// valid client ids, none twice, a positive expiry and token id, valid filters, none twice per
// session, options in range and no no_local on a shared subscription.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "proto/topic.h"
#include "rest/internal/session_body.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckSubscriptions(const std::vector<ringmq::admin_api::NewSubscription>& subs) {
  std::set<std::string> filters;
  for (const ringmq::admin_api::NewSubscription& s : subs) {
    Check(ringmq::proto::ValidateTopicFilter(s.filter) == ringmq::proto::ReasonCode::kSuccess);
    Check(filters.insert(s.filter).second);
    Check(s.qos <= 2 && s.retain_handling <= 2 && s.subscription_id <= 268'435'455);
    Check(!s.no_local || !ringmq::proto::ParseSharedFilter(s.filter));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::string error;
  std::vector<ringmq::admin_api::NewSession> sessions;
  if (ringmq::rest::ParseSessionsBody(body, 8, &sessions, &error)) {
    Check(!sessions.empty() && sessions.size() <= 8);
    std::set<std::string> ids;
    for (const ringmq::admin_api::NewSession& s : sessions) {
      Check(!s.client_id.empty() && ringmq::base::IsValidMqttUtf8(s.client_id));
      Check(ids.insert(s.client_id).second);
      Check(s.expiry_interval > 0 && s.token_id > 0 && s.subscriptions.size() <= 8);
      CheckSubscriptions(s.subscriptions);
    }
  } else {
    Check(!error.empty());
  }
  std::vector<ringmq::admin_api::NewSubscription> subs;
  error.clear();
  if (ringmq::rest::ParseSubscriptionsBody(body, 8, &subs, &error)) {
    Check(!subs.empty() && subs.size() <= 8);
    CheckSubscriptions(subs);
  } else {
    Check(!error.empty());
  }
  ringmq::admin_api::IdSet sel;
  error.clear();
  if (ringmq::rest::ParseFilterSelector(body, 8, &sel, &error)) {
    Check(sel.all || (!sel.ids.empty() && sel.ids.size() <= 8));
    for (const std::string& f : sel.ids) {
      Check(ringmq::proto::ValidateTopicFilter(f) == ringmq::proto::ReasonCode::kSuccess);
    }
  } else {
    Check(!error.empty());
  }
  return 0;
}
