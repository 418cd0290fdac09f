// Session state machines for QoS 1 and 2 (MQTT 5.0 section 4.3, 4.4).
#include "broker/session.h"

#include <algorithm>

namespace ringmq::broker {

size_t QueuedBytes(const Delivery& d) {
  size_t n = sizeof(Delivery) + d.subscription_ids.size() * sizeof(uint32_t);
  if (d.msg == nullptr) return n;
  const route::Message& m = *d.msg;
  n += m.topic.size() + m.payload.size() + m.content_type.value_or("").size() +
       m.response_topic.value_or("").size() + m.correlation_data.value_or("").size();
  for (const auto& [k, v] : m.user_properties) n += k.size() + v.size();
  return n;
}

bool Session::Fits(size_t bytes) const {
  return queued_bytes_ + bytes <= limits_.max_bytes &&
         (limits_.max_messages == 0 || queue_.size() < limits_.max_messages);
}

void Session::PushQueued(Delivery d) {
  queued_bytes_ += QueuedBytes(d);
  queue_.push_back(std::move(d));
}

void Session::PopQueued(size_t bytes) {
  queued_bytes_ -= bytes;
  queue_.pop_front();
}

bool Session::Enqueue(Delivery d, bool online) {
  if (d.qos == 0 && !online) return false;
  const size_t bytes = QueuedBytes(d);
  if (Fits(bytes)) {
    PushQueued(std::move(d));
    return true;
  }
  if (limits_.policy == QueuePolicy::kDropNew || bytes > limits_.max_bytes) {
    ++dropped_;
    return false;
  }
  while (!queue_.empty() && !Fits(bytes)) {
    if (queue_.front().wal_id != 0) finished_.push_back(queue_.front().wal_id);
    PopQueued(QueuedBytes(queue_.front()));
    ++dropped_;
  }
  PushQueued(std::move(d));
  return true;
}

void Session::RestoreQueued(Delivery d) { PushQueued(std::move(d)); }

uint16_t Session::NextPacketId() {
  if (++last_packet_id_ == 0) last_packet_id_ = 1;
  if (inflight_.empty()) {
    ids_in_order_ = true;
    return last_packet_id_;
  }
  // In order (invariant 5), the ids in flight lie on the walk from the oldest one's up to the
  // last one given: the next id is taken only when the walk went all the way round to it.
  if (ids_in_order_ && last_packet_id_ != inflight_.front().packet_id) return last_packet_id_;
  // Wrapped round to an id still in flight, or restored ids in any order: skip every id in use
  // (linear, and from now on until nothing is in flight).
  ids_in_order_ = false;
  for (;;) {
    const uint16_t id = last_packet_id_;
    if (std::none_of(inflight_.begin(), inflight_.end(),
                     [id](const Inflight& f) { return f.packet_id == id; })) {
      return id;
    }
    if (++last_packet_id_ == 0) last_packet_id_ = 1;
  }
}

namespace {

template <typename Q>
auto FindId(Q& q, uint16_t id) {
  return std::find_if(q.begin(), q.end(), [id](const Inflight& f) { return f.packet_id == id; });
}

}  // namespace

bool Session::OnPuback(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end() || it->state != Inflight::State::kAwaitPuback) return false;
  if (it->delivery.wal_id != 0) finished_.push_back(it->delivery.wal_id);
  inflight_.erase(it);
  return true;
}

bool Session::OnPubrec(uint16_t id, uint64_t* wal_id) {
  if (wal_id != nullptr) *wal_id = 0;
  auto it = FindId(inflight_, id);
  if (it == inflight_.end()) return false;
  if (it->state == Inflight::State::kAwaitPuback) return false;
  // The message is now stored by the receiver: drop it, keep the id until PUBCOMP.
  if (it->state == Inflight::State::kAwaitPubrec && wal_id != nullptr) {
    *wal_id = it->delivery.wal_id;
  }
  it->state = Inflight::State::kAwaitPubcomp;
  it->delivery.msg.reset();
  return true;
}

bool Session::OnPubcomp(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end() || it->state != Inflight::State::kAwaitPubcomp) return false;
  if (it->delivery.wal_id != 0) finished_.push_back(it->delivery.wal_id);
  inflight_.erase(it);
  return true;
}

bool Session::Discard(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end()) return false;
  if (it->delivery.wal_id != 0) finished_.push_back(it->delivery.wal_id);
  inflight_.erase(it);
  return true;
}

void Session::RemoveQueued(uint64_t wal_id) {
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [wal_id](const Delivery& d) { return d.wal_id == wal_id; });
  if (it != queue_.end()) {
    queued_bytes_ -= QueuedBytes(*it);
    queue_.erase(it);
    return;
  }
  auto f = std::find_if(inflight_.begin(), inflight_.end(),
                        [wal_id](const Inflight& i) { return i.delivery.wal_id == wal_id; });
  if (f != inflight_.end()) inflight_.erase(f);
}

void Session::DropPlaceholders() {
  std::erase_if(queue_, [this](const Delivery& d) {
    if (d.msg != nullptr && !d.msg->topic.empty()) return false;
    queued_bytes_ -= QueuedBytes(d);
    return true;
  });
}

bool Session::RestoreInflight(uint64_t wal_id, uint16_t packet_id, Inflight::State state) {
  auto f = std::find_if(inflight_.begin(), inflight_.end(),
                        [wal_id](const Inflight& i) { return i.delivery.wal_id == wal_id; });
  if (f == inflight_.end()) {
    auto q = std::find_if(queue_.begin(), queue_.end(),
                          [wal_id](const Delivery& d) { return d.wal_id == wal_id; });
    if (q == queue_.end()) return false;
    queued_bytes_ -= QueuedBytes(*q);
    inflight_.push_back(Inflight{packet_id, state, std::move(*q)});
    queue_.erase(q);
    f = inflight_.end() - 1;
  }
  f->packet_id = packet_id;
  f->state = state;
  if (state == Inflight::State::kAwaitPubcomp) f->delivery.msg.reset();  // only the id matters
  last_packet_id_ = packet_id;  // new ids continue after the restored ones
  ids_in_order_ = false;        // ... which may be in any order
  return true;
}

}  // namespace ringmq::broker
