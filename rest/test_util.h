// Test helpers shared by rest/*_test.cc: a temporary data directory and a fake BrokerHooks.
// Not part of the library (header-only, included by tests only).
#ifndef RINGMQ_REST_TEST_UTIL_H_
#define RINGMQ_REST_TEST_UTIL_H_

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "admin_api/broker_hooks.h"

namespace ringmq::rest::testing {

// A fresh directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ringmq-rest-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Records every call; answers synchronously, unless `defer` is set, in which case the callbacks
// are kept in `deferred` for the test to run later (out of order if it likes).
class FakeHooks : public admin_api::BrokerHooks {
 public:
  std::vector<std::string> events;  // "changed:<id>:v<version>", "revoked:<id>:<reason>"
  std::vector<admin_api::SessionInfo> sessions;
  std::vector<route::MessagePtr> retained;
  std::vector<route::MessagePtr> published;
  admin_api::IdSet last_selector;
  admin_api::IdSet last_filters;                                   // of DeleteSubscriptions
  std::vector<admin_api::NewSession> new_sessions;                 // CreateSessions, in call order
  std::vector<admin_api::SessionSubscriptions> new_subscriptions;  // AddSubscriptions
  std::string last_filter;
  std::string fail;  // non-empty: every answer fails with this error
  bool defer = false;
  std::vector<std::function<void()>> deferred;

  void TokenChanged(const acl::Token& token, acl::AclPtr acl) override {
    events.push_back("changed:" + std::to_string(token.id) + ":v" + std::to_string(acl->version()));
  }
  void TokenRevoked(const acl::Token& token, admin_api::RevokeReason reason) override {
    events.push_back("revoked:" + std::to_string(token.id) + ":" +
                     admin_api::RevokeReasonName(reason));
  }
  void ListSessions(const admin_api::IdSet& selector,
                    Done<std::vector<admin_api::SessionInfo>> done) override {
    last_selector = selector;
    std::vector<admin_api::SessionInfo> out;
    for (const admin_api::SessionInfo& s : sessions) {
      if (selector.Contains(s.client_id)) out.push_back(s);
    }
    Answer(std::move(done), std::move(out));
  }
  void DeleteSessions(const admin_api::IdSet& selector,
                      Done<std::vector<std::string>> done) override {
    last_selector = selector;
    std::vector<std::string> out;
    std::erase_if(sessions, [&](const admin_api::SessionInfo& s) {
      if (!selector.Contains(s.client_id)) return false;
      out.push_back(s.client_id);
      return true;
    });
    Answer(std::move(done), std::move(out));
  }
  void ListSubscriptions(const admin_api::IdSet& selector,
                         Done<std::vector<admin_api::SubscriptionInfo>> done) override {
    last_selector = selector;
    std::vector<admin_api::SubscriptionInfo> out;
    for (const admin_api::SessionInfo& s : sessions) {
      if (!selector.Contains(s.client_id)) continue;
      admin_api::SubscriptionInfo sub;
      sub.client_id = s.client_id;
      sub.filter = "#";
      sub.qos = 1;
      sub.effective = {"data/" + s.client_id + "/#"};
      out.push_back(sub);
    }
    Answer(std::move(done), std::move(out));
  }
  // Creates what it is asked to (kExists for a client id in `sessions`).
  void CreateSessions(std::vector<admin_api::NewSession> created,
                      Done<std::vector<admin_api::SessionResult>> done) override {
    std::vector<admin_api::SessionResult> out;
    for (admin_api::NewSession& n : created) {
      admin_api::SessionResult r;
      r.client_id = n.client_id;
      const bool exists =
          std::any_of(sessions.begin(), sessions.end(),
                      [&](const admin_api::SessionInfo& s) { return s.client_id == n.client_id; });
      if (exists) {
        r.outcome = admin_api::SessionResult::Outcome::kExists;
        r.detail = "exists";
      } else {
        r.session.client_id = n.client_id;
        r.session.clean = false;
        r.session.expiry_interval = n.expiry_interval;
        r.session.token_id = n.token_id;
        r.session.subscriptions = n.subscriptions.size();
        sessions.push_back(r.session);
      }
      out.push_back(std::move(r));
      new_sessions.push_back(std::move(n));
    }
    Answer(std::move(done), std::move(out));
  }
  void AddSubscriptions(std::vector<admin_api::SessionSubscriptions> added,
                        Done<std::vector<admin_api::SessionResult>> done) override {
    std::vector<admin_api::SessionResult> out;
    for (admin_api::SessionSubscriptions& a : added) {
      admin_api::SessionResult r;
      r.client_id = a.client_id;
      out.push_back(std::move(r));
      new_subscriptions.push_back(std::move(a));
    }
    Answer(std::move(done), std::move(out));
  }
  void DeleteSubscriptions(const admin_api::IdSet& selector, const admin_api::IdSet& filters,
                           Done<std::vector<admin_api::SubscriptionInfo>> done) override {
    last_selector = selector;
    last_filters = filters;
    Answer(std::move(done), std::vector<admin_api::SubscriptionInfo>{});
  }
  void Publish(std::vector<route::MessagePtr> messages, Done<bool> done) override {
    for (auto& m : messages) published.push_back(std::move(m));
    Answer(std::move(done), true);
  }
  void ListRetained(const std::string& filter, Done<std::vector<route::MessagePtr>> done) override {
    last_filter = filter;
    Answer(std::move(done), retained);
  }
  void DeleteRetained(const std::string& filter, Done<std::vector<std::string>> done) override {
    last_filter = filter;
    std::vector<std::string> out;
    for (const route::MessagePtr& m : retained) out.push_back(m->topic);
    retained.clear();
    Answer(std::move(done), std::move(out));
  }
  void Metrics(Done<std::string> done) override {
    Answer(std::move(done), std::string("ringmq_connections{shard=\"0\"} 3\n"));
  }

 private:
  template <typename T>
  void Answer(Done<T> done, T value) {
    auto run = [this, done = std::move(done), value = std::move(value)]() mutable {
      done(fail, std::move(value));
    };
    if (defer) {
      deferred.push_back(std::move(run));
    } else {
      run();
    }
  }
};

}  // namespace ringmq::rest::testing

#endif  // RINGMQ_REST_TEST_UTIL_H_
