// AdminBridge: the broker's side of the seam with the admin shard (admin_api/broker_hooks.h). Every
// call arrives on the admin thread; it posts a task to each shard (Shard::PostTask) and gathers
// their answers back on the admin thread (admin_api::PostToAdmin), so no shard state is ever read
// from the admin thread and nothing blocks.
//
// Thread-safety: the BrokerHooks methods run on the admin thread; the shard tasks on the shards;
// a Gather is touched only on the admin thread. Token events reach every shard in the order they
// were posted (one FIFO task queue per shard), so an invalidation is never overtaken.
#ifndef RINGMQ_BROKER_ADMIN_BRIDGE_H_
#define RINGMQ_BROKER_ADMIN_BRIDGE_H_

#include <utility>

#include "admin_api/broker_hooks.h"

namespace ringmq::broker {

class Broker;

class AdminBridge : public admin_api::BrokerHooks {
 public:
  explicit AdminBridge(Broker& broker) : broker_(broker) {}
  // REQUIRES: before the admin server starts; what `post` reaches outlives the bridge's use.
  void set_post_to_admin(admin_api::PostToAdmin post) { post_ = std::move(post); }

  void TokenChanged(const acl::Token& token, acl::AclPtr acl) override;
  void TokenRevoked(const acl::Token& token, admin_api::RevokeReason reason) override;
  void ListSessions(const admin_api::IdSet& selector,
                    Done<std::vector<admin_api::SessionInfo>> done) override;
  void DeleteSessions(const admin_api::IdSet& selector,
                      Done<std::vector<std::string>> done) override;
  void ListSubscriptions(const admin_api::IdSet& selector,
                         Done<std::vector<admin_api::SubscriptionInfo>> done) override;
  void CreateSessions(std::vector<admin_api::NewSession> sessions,
                      Done<std::vector<admin_api::SessionResult>> done) override;
  void AddSubscriptions(std::vector<admin_api::SessionSubscriptions> sessions,
                        Done<std::vector<admin_api::SessionResult>> done) override;
  void DeleteSubscriptions(const admin_api::IdSet& sessions, const admin_api::IdSet& filters,
                           Done<std::vector<admin_api::SubscriptionInfo>> done) override;
  void Publish(std::vector<route::MessagePtr> messages, Done<bool> done) override;
  void ListRetained(const std::string& filter, Done<std::vector<route::MessagePtr>> done) override;
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
                    Done<std::vector<admin_api::SessionResult>> done);

  Broker& broker_;
  admin_api::PostToAdmin post_;
  uint32_t next_publisher_ = 0;  // admin thread only: spreads REST publishes over shards
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_ADMIN_BRIDGE_H_
