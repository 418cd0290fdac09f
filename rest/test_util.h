// Test helpers shared by rest/*_test.cc: a temporary data directory and a fake BrokerHooks.
// Not part of the library (header-only, included by tests only).
#ifndef RINGMQ_REST_TEST_UTIL_H_
#define RINGMQ_REST_TEST_UTIL_H_

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "rest/broker_hooks.h"

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
class FakeHooks : public BrokerHooks {
 public:
  std::vector<std::string> events;  // "changed:<id>:v<version>", "revoked:<id>:<reason>"
  std::vector<SessionInfo> sessions;
  std::vector<MqttMessage> retained;
  std::vector<MqttMessage> published;
  Selector last_selector;
  Selector last_filters;                                // of DeleteSubscriptions
  std::vector<NewSession> new_sessions;                 // CreateSessions, in call order
  std::vector<SessionSubscriptions> new_subscriptions;  // AddSubscriptions
  std::string last_filter;
  std::string fail;  // non-empty: every answer fails with this error
  bool defer = false;
  std::vector<std::function<void()>> deferred;

  void TokenChanged(const acl::Token& token, acl::AclPtr acl) override {
    events.push_back("changed:" + std::to_string(token.id) + ":v" + std::to_string(acl->version()));
  }
  void TokenRevoked(const acl::Token& token, RevokeReason reason) override {
    events.push_back("revoked:" + std::to_string(token.id) + ":" + RevokeReasonName(reason));
  }
  void ListSessions(const Selector& selector, Done<std::vector<SessionInfo>> done) override {
    last_selector = selector;
    std::vector<SessionInfo> out;
    for (const SessionInfo& s : sessions) {
      if (selector.Contains(s.client_id)) out.push_back(s);
    }
    Answer(std::move(done), std::move(out));
  }
  void DeleteSessions(const Selector& selector, Done<std::vector<std::string>> done) override {
    last_selector = selector;
    std::vector<std::string> out;
    std::erase_if(sessions, [&](const SessionInfo& s) {
      if (!selector.Contains(s.client_id)) return false;
      out.push_back(s.client_id);
      return true;
    });
    Answer(std::move(done), std::move(out));
  }
  void ListSubscriptions(const Selector& selector,
                         Done<std::vector<SubscriptionInfo>> done) override {
    last_selector = selector;
    std::vector<SubscriptionInfo> out;
    for (const SessionInfo& s : sessions) {
      if (!selector.Contains(s.client_id)) continue;
      SubscriptionInfo sub;
      sub.client_id = s.client_id;
      sub.filter = "#";
      sub.qos = 1;
      sub.effective = {"data/" + s.client_id + "/#"};
      out.push_back(sub);
    }
    Answer(std::move(done), std::move(out));
  }
  // Creates what it is asked to (kExists for a client id in `sessions`).
  void CreateSessions(std::vector<NewSession> created,
                      Done<std::vector<SessionResult>> done) override {
    std::vector<SessionResult> out;
    for (NewSession& n : created) {
      SessionResult r;
      r.client_id = n.client_id;
      const bool exists = std::any_of(sessions.begin(), sessions.end(), [&](const SessionInfo& s) {
        return s.client_id == n.client_id;
      });
      if (exists) {
        r.outcome = SessionResult::Outcome::kExists;
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
  void AddSubscriptions(std::vector<SessionSubscriptions> added,
                        Done<std::vector<SessionResult>> done) override {
    std::vector<SessionResult> out;
    for (SessionSubscriptions& a : added) {
      SessionResult r;
      r.client_id = a.client_id;
      out.push_back(std::move(r));
      new_subscriptions.push_back(std::move(a));
    }
    Answer(std::move(done), std::move(out));
  }
  void DeleteSubscriptions(const Selector& selector, const Selector& filters,
                           Done<std::vector<SubscriptionInfo>> done) override {
    last_selector = selector;
    last_filters = filters;
    Answer(std::move(done), std::vector<SubscriptionInfo>{});
  }
  void Publish(std::vector<MqttMessage> messages, Done<bool> done) override {
    for (auto& m : messages) published.push_back(std::move(m));
    Answer(std::move(done), true);
  }
  void ListRetained(const std::string& filter, Done<std::vector<MqttMessage>> done) override {
    last_filter = filter;
    Answer(std::move(done), retained);
  }
  void DeleteRetained(const std::string& filter, Done<std::vector<std::string>> done) override {
    last_filter = filter;
    std::vector<std::string> out;
    for (const MqttMessage& m : retained) out.push_back(m.topic);
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
