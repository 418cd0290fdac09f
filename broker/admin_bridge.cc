// The admin shard's requests, answered by the shards through tasks.
#include "broker/admin_bridge.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "base/log.h"
#include "base/metrics.h"
#include "broker/broker.h"
#include "broker/shard.h"
#include "proto/topic.h"

namespace ringmq::broker {

namespace {

// Captured by a shard task that must answer the admin shard: if the task is destroyed without
// having run (its shard stopped, Shard::PostTask), `unrun` is posted to the admin thread instead,
// so the REST call is answered (503) rather than left hanging.
class AnswerIfUnrun {
 public:
  AnswerIfUnrun(const admin_api::PostToAdmin* post, std::function<void()> unrun)
      : post_(post), unrun_(std::move(unrun)) {}
  ~AnswerIfUnrun() {
    if (unrun_) (void)(*post_)(std::move(unrun_));  // dropped once the admin shard stopped
  }
  AnswerIfUnrun(const AnswerIfUnrun&) = delete;
  AnswerIfUnrun& operator=(const AnswerIfUnrun&) = delete;
  void Ran() { unrun_ = nullptr; }

 private:
  const admin_api::PostToAdmin* post_;
  std::function<void()> unrun_;
};

std::string StoppingError(uint16_t shard) {
  return "shard " + std::to_string(shard) + " is stopping";
}

}  // namespace

template <typename T, typename Part>
void AdminBridge::Gather(Part part, Done<std::vector<T>> done) {
  struct State {
    std::vector<T> all;
    size_t remaining;
    Done<std::vector<T>> done;
    std::string error;  // set when a shard could not answer
  };
  auto state = std::make_shared<State>(State{{}, broker_.shard_count(), std::move(done), {}});
  const admin_api::PostToAdmin* post = &post_;
  for (uint16_t i = 0; i < broker_.shard_count(); ++i) {
    // One guard per shard: a stopped shard fails the request, once every shard has reported.
    auto guard = std::make_shared<AnswerIfUnrun>(post, [state, i] {
      if (state->error.empty()) state->error = StoppingError(i);
      if (--state->remaining == 0) state->done(state->error, {});
    });
    broker_.shard(i).PostTask([state, part, post, guard](Shard& shard) {
      guard->Ran();
      std::vector<T> mine;
      part(shard, &mine);
      (*post)([state, mine = std::move(mine)]() mutable {
        for (T& x : mine) state->all.push_back(std::move(x));
        if (--state->remaining != 0) return;
        if (!state->error.empty()) return state->done(state->error, {});
        state->done("", std::move(state->all));
      });
    });
  }
}

void AdminBridge::TokenChanged(const acl::Token& token, acl::AclPtr acl) {
  broker_.ForEachShard([key = token.key, acl](Shard& s) { s.ApplyTokenChange(key, acl); });
}

void AdminBridge::TokenRevoked(const acl::Token& token, admin_api::RevokeReason reason) {
  // MQTT 5 clients learn why: 0x87 Not authorized (deleted, disabled or expired alike). The
  // sessions a deleted or expired token owns end with it; a disabled one may be enabled again and
  // keeps them (doc/rest-api.md, "Session ownership").
  const bool discard = reason != admin_api::RevokeReason::kDisabled;
  LOG_INFO_S(kRest, "token {} {}: closing its MQTT connections{}", token.id,
             admin_api::RevokeReasonName(reason), discard ? " and discarding its sessions" : "");
  broker_.ForEachShard([key = token.key, id = token.id, discard](Shard& s) {
    s.RevokeToken(key, id, proto::ReasonCode::kNotAuthorized, discard);
  });
}

void AdminBridge::ListSessions(const admin_api::IdSet& selector,
                               Done<std::vector<admin_api::SessionInfo>> done) {
  Gather<admin_api::SessionInfo>(
      [selector](Shard& s, std::vector<admin_api::SessionInfo>* out) {
        s.CollectSessions(selector, out);
      },
      std::move(done));
}

void AdminBridge::DeleteSessions(const admin_api::IdSet& selector,
                                 Done<std::vector<std::string>> done) {
  Gather<std::string>(
      [selector](Shard& s, std::vector<std::string>* out) { s.DeleteSessions(selector, out); },
      std::move(done));
}

void AdminBridge::ListSubscriptions(const admin_api::IdSet& selector,
                                    Done<std::vector<admin_api::SubscriptionInfo>> done) {
  Gather<admin_api::SubscriptionInfo>(
      [selector](Shard& s, std::vector<admin_api::SubscriptionInfo>* out) {
        s.CollectSubscriptions(selector, out);
      },
      std::move(done));
}

template <typename Item, typename Apply>
void AdminBridge::ToHomeShards(std::vector<Item> items, Apply apply,
                               Done<std::vector<admin_api::SessionResult>> done) {
  // Every shard is asked (most have nothing to do): Gather's guard answers for a stopped one.
  auto shared = std::make_shared<const std::vector<Item>>(std::move(items));
  const uint16_t shards = broker_.shard_count();
  Gather<admin_api::SessionResult>(
      [shared, apply, shards](Shard& s, std::vector<admin_api::SessionResult>* out) {
        for (const Item& item : *shared) {
          if (smp::ShardOfKey(item.client_id, shards) != s.id()) continue;
          out->emplace_back();
          apply(s, item, &out->back());
        }
      },
      std::move(done));
}

void AdminBridge::CreateSessions(std::vector<admin_api::NewSession> sessions,
                                 Done<std::vector<admin_api::SessionResult>> done) {
  ToHomeShards(
      std::move(sessions),
      [](Shard& s, const admin_api::NewSession& n, admin_api::SessionResult* out) {
        s.CreateSessionFromAdmin(n, out);
      },
      std::move(done));
}

void AdminBridge::AddSubscriptions(std::vector<admin_api::SessionSubscriptions> sessions,
                                   Done<std::vector<admin_api::SessionResult>> done) {
  ToHomeShards(
      std::move(sessions),
      [](Shard& s, const admin_api::SessionSubscriptions& a, admin_api::SessionResult* out) {
        s.AddSubscriptionsFromAdmin(a, out);
      },
      std::move(done));
}

void AdminBridge::DeleteSubscriptions(const admin_api::IdSet& sessions,
                                      const admin_api::IdSet& filters,
                                      Done<std::vector<admin_api::SubscriptionInfo>> done) {
  Gather<admin_api::SubscriptionInfo>(
      [sessions, filters](Shard& s, std::vector<admin_api::SubscriptionInfo>* out) {
        s.DeleteSubscriptionsFromAdmin(sessions, filters, out);
      },
      std::move(done));
}

void AdminBridge::Publish(std::vector<route::MessagePtr> messages, Done<bool> done) {
  const uint16_t shard = static_cast<uint16_t>(next_publisher_++ % broker_.shard_count());
  const admin_api::PostToAdmin* post = &post_;
  auto msgs = std::make_shared<std::vector<route::MessagePtr>>(std::move(messages));
  auto answer = std::make_shared<Done<bool>>(std::move(done));
  auto guard = std::make_shared<AnswerIfUnrun>(
      post, [answer, shard] { (*answer)(StoppingError(shard), false); });
  broker_.shard(shard).PostTask([msgs, post, answer, guard](Shard& s) {
    guard->Ran();
    for (route::MessagePtr& m : *msgs) s.PublishFromAdmin(std::move(m));
    (*post)([answer] { (*answer)("", true); });
  });
}

void AdminBridge::ListRetained(const std::string& filter,
                               Done<std::vector<route::MessagePtr>> done) {
  Gather<route::MessagePtr>(
      [filter](Shard& s, std::vector<route::MessagePtr>* out) { s.CollectRetained(filter, out); },
      std::move(done));
}

void AdminBridge::DeleteRetained(const std::string& filter, Done<std::vector<std::string>> done) {
  Gather<std::string>(
      [filter](Shard& s, std::vector<std::string>* out) { s.DeleteRetained(filter, out); },
      std::move(done));
}

void AdminBridge::Metrics(Done<std::string> done) {
  using Part = std::pair<uint16_t, base::MetricsText>;  // (shard, its samples)
  Gather<Part>(
      [](Shard& s, std::vector<Part>* out) {
        out->emplace_back(s.id(), base::MetricsText());
        s.CollectMetrics(&out->back().second);
      },
      [done = std::move(done)](std::string error, std::vector<Part> parts) {
        // Family by family, shard by shard: one HELP and TYPE per family (MetricsText).
        std::sort(parts.begin(), parts.end(),
                  [](const Part& a, const Part& b) { return a.first < b.first; });
        base::MetricsText all;
        for (const Part& p : parts) all.Append(p.second);
        done(std::move(error), all.Render());
      });
}

}  // namespace ringmq::broker
