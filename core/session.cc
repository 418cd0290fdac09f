// Session state machines for QoS 1 and 2 (MQTT 5.0 section 4.3, 4.4).
#include "core/session.h"

#include <algorithm>

namespace ringmq::core {

bool Session::Enqueue(Delivery d, bool online) {
  if (d.qos == 0 && !online) return false;
  if (queue_.size() >= max_queued_) {
    ++dropped_;
    if (policy_ == QueuePolicy::kDropNew || queue_.empty()) return false;
    queue_.pop_front();
    queue_.push_back(std::move(d));
    return false;
  }
  queue_.push_back(std::move(d));
  return true;
}

uint16_t Session::NextPacketId() {
  // Skip 0 and ids still in flight (a wrapped counter may meet an old one).
  for (;;) {
    if (++last_packet_id_ == 0) last_packet_id_ = 1;
    const uint16_t id = last_packet_id_;
    if (std::none_of(inflight_.begin(), inflight_.end(),
                     [id](const Inflight& f) { return f.packet_id == id; })) {
      return id;
    }
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
  inflight_.erase(it);
  return true;
}

bool Session::OnPubrec(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end()) return false;
  if (it->state == Inflight::State::kAwaitPuback) return false;
  // The message is now stored by the receiver: drop it, keep the id until PUBCOMP.
  it->state = Inflight::State::kAwaitPubcomp;
  it->delivery.msg.reset();
  return true;
}

bool Session::OnPubcomp(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end() || it->state != Inflight::State::kAwaitPubcomp) return false;
  inflight_.erase(it);
  return true;
}

bool Session::Discard(uint16_t id) {
  auto it = FindId(inflight_, id);
  if (it == inflight_.end()) return false;
  inflight_.erase(it);
  return true;
}

}  // namespace ringmq::core
