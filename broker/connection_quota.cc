#include "broker/connection_quota.h"

#include <cstdlib>

#include "base/log.h"

namespace ringmq::broker {

ConnectionQuota::Verdict ConnectionQuota::Acquire(std::string_view key, uint32_t max_total,
                                                  uint32_t max_for_key, Takeover takeover) {
  // Reserve, check, and undo on a refusal (see the header for why relaxed suffices).
  const uint32_t n = total_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (max_total != 0 && n > max_total + (takeover.total ? 1 : 0)) {
    total_.fetch_sub(1, std::memory_order_relaxed);
    return Verdict::kTotalExceeded;
  }
  if (key.empty()) return Verdict::kAccepted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = per_key_.find(std::string(key));
    const uint32_t have = it == per_key_.end() ? 0 : it->second;
    if (max_for_key == 0 || have < max_for_key + (takeover.key ? 1 : 0)) {
      if (it == per_key_.end()) {
        per_key_.emplace(std::string(key), 1);
      } else {
        ++it->second;
      }
      return Verdict::kAccepted;
    }
  }
  total_.fetch_sub(1, std::memory_order_relaxed);
  return Verdict::kKeyExceeded;
}

void ConnectionQuota::Release(std::string_view key) {
  const uint32_t before = total_.fetch_sub(1, std::memory_order_relaxed);
  if (before == 0) {
    LOG_CRITICAL_S(kBroker, "connection quota released more often than acquired");
    std::abort();
  }
  if (key.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_key_.find(std::string(key));
  if (it == per_key_.end()) {
    LOG_CRITICAL_S(kBroker, "connection quota released for a token that holds none");
    std::abort();
  }
  if (--it->second == 0) per_key_.erase(it);
}

uint32_t ConnectionQuota::ForKey(std::string_view key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_key_.find(std::string(key));
  return it == per_key_.end() ? 0 : it->second;
}

}  // namespace ringmq::broker
