// The sessions of a shard and their lifecycle (broker/sessions.h).
#include "broker/sessions.h"

#include <cassert>
#include <utility>
#include <vector>

#include "broker/connection.h"

namespace ringmq::broker {

Session* Sessions::Find(const std::string& client_id) const {
  owner_.Check();
  auto it = map_.find(client_id);
  return it == map_.end() ? nullptr : it->second.get();
}

Session& Sessions::Create(const std::string& client_id, Session::QueueLimits limits) {
  owner_.Check();
  auto [it, inserted] = map_.emplace(client_id, std::make_unique<Session>(client_id, limits));
  assert(inserted && "Sessions::Create: the client id has a session");
  (void)inserted;
  return *it->second;
}

Session& Sessions::Open(const std::string& client_id, bool clean_start, Session::QueueLimits limits,
                        Connection& c, bool* present) {
  Session* s = Find(client_id);
  assert((s == nullptr || s->connection == nullptr) && "Sessions::Open: a live connection");
  *present = false;
  if (s != nullptr && clean_start) {
    Destroy(*s);
    s = nullptr;
  }
  if (s == nullptr) {
    s = &Create(client_id, limits);
  } else {
    *present = true;
  }
  s->connection = &c;
  if (*present) host_.SetSharedLive(*s, true);
  return *s;
}

void Sessions::Disconnected(Session& s, int64_t now_ms, bool publish_will) {
  owner_.Check();
  host_.SetSharedLive(s, false);
  s.connection = nullptr;
  s.offline_since_ms = now_ms;
  if (s.expiry_interval_s != 0) host_.LogSessionEnd(s, /*removed=*/false);
  if (publish_will && s.will) {
    if (s.will->delay_s == 0 || s.expiry_interval_s == 0) {
      PublishWill(s);
    } else {
      s.will_due_ms = s.offline_since_ms + int64_t{s.will->delay_s} * 1000;
    }
  } else {
    s.will.reset();
    s.will_due_ms = 0;
  }
  if (s.expiry_interval_s == 0) Destroy(s);
}

void Sessions::Expire(int64_t now_ms) {
  owner_.Check();
  std::vector<Session*> expired;
  for (auto& [id, s] : map_) {
    s->ReleaseIdleStorage();
    if (s->connection != nullptr) continue;
    if (s->will_due_ms != 0 && now_ms >= s->will_due_ms) PublishWill(*s);
    if (s->expiry_interval_s != 0xFFFFFFFF &&
        now_ms - s->offline_since_ms >= int64_t{s->expiry_interval_s} * 1000) {
      expired.push_back(s.get());
    }
  }
  for (Session* s : expired) Destroy(*s);
}

void Sessions::Destroy(Session& s) {
  owner_.Check();
  if (s.will && s.will_due_ms != 0) PublishWill(s);  // the session ends before the will delay
  host_.LogSessionEnd(s, /*removed=*/true);
  for (const auto& [requested, sub] : s.subscriptions()) host_.Detach(s, sub);
  // Messages that reached this member of a shared subscription but not its client go to another
  // member (MQTT 5.0 section 4.8.2).
  std::vector<Delivery> undelivered;
  s.ForEachUndelivered([&](const Delivery& d) {
    if (d.shared && d.msg) undelivered.push_back(d);
  });
  for (const Delivery& d : undelivered) host_.RouteShared(d.msg, d.shared.get());
  if (s.connection != nullptr) s.connection->session = nullptr;
  const std::string id = s.client_id();
  map_.erase(id);  // frees s
}

void Sessions::PublishWill(Session& s) {
  if (!s.will) return;
  route::MessagePtr m = std::move(s.will->msg);
  s.will.reset();
  s.will_due_ms = 0;
  host_.PublishWill(s, std::move(m));
}

}  // namespace ringmq::broker
