// AdminBridge: the core's side of the seam with the admin shard (rest/broker_hooks.h). Every call
// arrives on the admin thread; it posts a task to each shard (Shard::PostTask) and gathers their
// answers back on the admin thread (AdminServer::Post), so no shard state is ever read from the
// admin thread and nothing blocks.
//
// Thread-safety: the BrokerHooks methods run on the admin thread; the shard tasks on the shards;
// a Gather is touched only on the admin thread. Token events reach every shard in the order they
// were posted (one FIFO task queue per shard), so an invalidation is never overtaken.
#ifndef RINGMQ_CORE_ADMIN_BRIDGE_H_
#define RINGMQ_CORE_ADMIN_BRIDGE_H_

#include "rest/admin_server.h"
#include "rest/broker_hooks.h"

namespace ringmq::core {

class Broker;

class AdminBridge : public rest::BrokerHooks {
 public:
  explicit AdminBridge(Broker& broker) : broker_(broker) {}
  // REQUIRES: before the admin server starts; `admin` outlives the bridge's use.
  void set_admin(rest::AdminServer* admin) { admin_ = admin; }

  void TokenChanged(const acl::Token& token, acl::AclPtr acl) override;
  void TokenRevoked(const acl::Token& token, rest::RevokeReason reason) override;
  void ListSessions(const rest::Selector& selector,
                    Done<std::vector<rest::SessionInfo>> done) override;
  void DeleteSessions(const rest::Selector& selector, Done<std::vector<std::string>> done) override;
  void ListSubscriptions(const rest::Selector& selector,
                         Done<std::vector<rest::SubscriptionInfo>> done) override;
  void CreateSessions(std::vector<rest::NewSession> sessions,
                      Done<std::vector<rest::SessionResult>> done) override;
  void AddSubscriptions(std::vector<rest::SessionSubscriptions> sessions,
                        Done<std::vector<rest::SessionResult>> done) override;
  void DeleteSubscriptions(const rest::Selector& sessions, const rest::Selector& filters,
                           Done<std::vector<rest::SubscriptionInfo>> done) override;
  void Publish(std::vector<rest::MqttMessage> messages, Done<bool> done) override;
  void ListRetained(const std::string& filter, Done<std::vector<rest::MqttMessage>> done) override;
  void DeleteRetained(const std::string& filter, Done<std::vector<std::string>> done) override;
  void Metrics(Done<std::string> done) override;

 private:
  // Runs part(shard, out) on every shard, appends the parts on the admin thread, then done.
  template <typename T, typename Part>
  void Gather(Part part, Done<std::vector<T>> done);

  // Runs apply(shard, item, result) on the home shard of each item's client id, then done with
  // the results.
  template <typename Item, typename Apply>
  void ToHomeShards(std::vector<Item> items, Apply apply,
                    Done<std::vector<rest::SessionResult>> done);

  Broker& broker_;
  rest::AdminServer* admin_ = nullptr;
  uint32_t next_publisher_ = 0;  // admin thread only: spreads REST publishes over shards
};

}  // namespace ringmq::core

#endif  // RINGMQ_CORE_ADMIN_BRIDGE_H_
