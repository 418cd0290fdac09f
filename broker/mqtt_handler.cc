// The MQTT side of a shard: packets in, dispatched by type to their handlers (connect.cc,
// publish.cc, subscribe.cc), DISCONNECT, protocol errors, and token changes applied to sessions
// (MQTT 5.0 chapter 3 and 4, MQTT 3.1.1 chapter 3 and 4). Every protocol violation gets the
// specification's answer and closes only the offending connection.
#include <algorithm>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/internal/mqtt_rules.h"
#include "broker/shard.h"
#include "proto/codec.h"
#include "proto/framer.h"
#include "proto/topic.h"

namespace ringmq::broker {

using internal::IsV5;
using internal::ReasonCodeText;
using proto::ReasonCode;

void Shard::LogDisconnected(const Connection& c, const Session& s, const char* why,
                            std::optional<ReasonCode> code) {
  if (!base::Logger(base::kMqtt).should_log(spdlog::level::info)) return;
  base::LogEvent e("client disconnected");
  e.Int("shard", id_).Str("client_id", s.client_id());
  if (s.acl != nullptr && s.acl->token_id() != 0) e.Int("token_id", s.acl->token_id());
  e.Str("peer", c.peer).Str("reason", why);
  if (code) e.Str("reason_code", ReasonCodeText(*code));
  LOG_EVENT(kMqtt, info, e);
}

void Shard::ApplyAcl(Session& s, const acl::AclPtr& acl, bool inflight_sent) {
  s.acl = acl;
  for (auto& [requested, sub] : s.subscriptions()) {
    router_.Detach(s, sub);
    if (acl == nullptr || acl->AllowsEverything()) {
      sub.effective = {requested};
    } else {
      sub.effective = acl->EffectiveFilters(requested);  // may be empty: nothing allowed now
    }
    router_.Attach(s, sub);
    LogSubscription(s, requested, &sub);  // a restart must not widen it again
  }
  if (acl == nullptr || acl->AllowsEverything()) return;
  // What the session holds and its client does not have yet was allowed by the old ACL: the new
  // one decides. Not a delivery path: nothing here routes or closes.
  const size_t dropped = s.DropDisallowed(
      !inflight_sent, [&acl](const route::Message& m) { return acl->CanReceive(m.topic); });
  if (dropped == 0) return;
  stats_.dropped_acl.Add(dropped);
  LogFinished(s);  // logged deliveries: WalMessageAcked, so a restart does not bring them back
  LOG_INFO_S(kMqtt, "shard {}: {} message(s) held for {} dropped: its token no longer allows them",
             id_, dropped, s.client_id());
}

void Shard::ApplyTokenChange(const std::string& key, const acl::AclPtr& acl) {
  owner_.Check();
  acl_cache_.Put(key, acl);
  for (auto& [id, s] : sessions_) {
    // Also a session restored from the log whose owner has not reconnected yet (no key known).
    const bool owned = acl != nullptr && s->token_key.empty() && s->owner_token_id != 0 &&
                       s->owner_token_id == acl->token_id();
    if (s->token_key == key || owned) {
      if (owned) s->token_key = key;
      ApplyAcl(*s, acl, /*inflight_sent=*/s->connection != nullptr);
    }
  }
}

void Shard::RevokeToken(const std::string& key, int64_t token_id, ReasonCode reason,
                        bool discard_sessions) {
  owner_.Check();
  acl_cache_.Invalidate(key);
  // By client id: ending a session may end other sessions (a shared message handed on), so
  // nothing is kept across the calls but names (CONVENTIONS 14). Connections are closed through
  // QueueClose, after this walk and the turn's delivery step.
  std::vector<std::string> doomed;
  for (auto& [id, s] : sessions_) {
    const bool uses = s->token_key == key || (token_id != 0 && s->owner_token_id == token_id);
    if (!uses) continue;
    // A will is a publish by its client: without its token it may publish nothing.
    if (s->will) {
      LOG_DEBUG_S(kMqtt, "shard {}: will of {} dropped: its token was revoked", id_,
                  s->client_id());
      s->will.reset();
      s->will_due_ms = 0;
    }
    if (discard_sessions || s->connection != nullptr) doomed.push_back(id);
  }
  for (const std::string& id : doomed) {
    Session* found = sessions_.Find(id);
    if (found == nullptr) continue;
    Session& s = *found;
    if (discard_sessions) {
      LOG_INFO_S(kMqtt, "shard {}: session {} ends: its token {} was deleted or expired", id_, id,
                 token_id);
      s.expiry_interval_s = 0;  // the session ends with its (queued) close, or now
    }
    if (s.connection != nullptr) {
      QueueClose(*s.connection, reason, "token revoked");
    } else if (discard_sessions) {
      sessions_.Destroy(s);
    }
  }
}

bool Shard::MayPublish(const acl::CompiledAcl* acl, std::string_view topic) {
  if (proto::IsSysTopic(topic)) return false;  // the broker's own statistics
  return acl == nullptr || acl->AllowsEverything() || acl->CanPublish(topic);
}

bool Shard::HandleInput(Connection& c) {
  const uint32_t max = cfg_.max_packet_size;
  size_t off = 0;
  for (;;) {
    proto::Frame f;
    const proto::FrameStatus st = proto::NextFrame(std::span(c.in).subspan(off), max, &f);
    if (st == proto::FrameStatus::kIncomplete) break;
    if (st == proto::FrameStatus::kMalformed) {
      ProtocolClose(c, ReasonCode::kMalformedPacket, "malformed remaining length");
      return false;
    }
    if (st == proto::FrameStatus::kTooLarge) {
      ProtocolClose(c, ReasonCode::kPacketTooLarge, "packet larger than max_packet_size");
      return false;
    }
    if ((outbox_backlogged_ || c.input_paused) && c.state == Connection::State::kActive &&
        static_cast<proto::PacketType>(f.byte0 >> 4) == proto::PacketType::kPublish) {
      PauseInput(c);  // this PUBLISH and what follows wait for room between shards
      break;
    }
    if (c.state == Connection::State::kAwaitConnect) {
      // On kHandedOff `c` no longer exists; c.in went to the home shard whole.
      if (HandleConnect(c, f.byte0, f.body) != ConnectResult::kAccepted) return false;
    } else if (!HandlePacket(c, f.byte0, f.body)) {
      return false;
    }
    off += f.size;
  }
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<ptrdiff_t>(off));
  return true;
}

bool Shard::HandlePacket(Connection& c, uint8_t byte0, proto::Bytes body) {
  using proto::PacketType;
  const auto type = static_cast<PacketType>(byte0 >> 4);
  switch (type) {
    case PacketType::kPublish: {
      auto r = proto::DecodePublish(byte0, body, c.version);
      if (!r.ok()) break;
      HandlePublish(c, *r);
      return !c.closing();
    }
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp: {
      auto r = proto::DecodeAck(byte0, body, c.version);
      if (!r.ok()) break;
      HandleAck(c, *r);
      return !c.closing();
    }
    case PacketType::kSubscribe: {
      auto r = proto::DecodeSubscribe(byte0, body, c.version);
      if (!r.ok()) break;
      HandleSubscribe(c, *r);
      return !c.closing();
    }
    case PacketType::kUnsubscribe: {
      auto r = proto::DecodeUnsubscribe(byte0, body, c.version);
      if (!r.ok()) break;
      HandleUnsubscribe(c, *r);
      return true;
    }
    case PacketType::kPingreq: {
      auto r = proto::Decode(byte0, body, c.version);
      if (!r.ok()) break;
      c.Queue(proto::Pingresp{});
      MarkDirty(c);
      return true;
    }
    case PacketType::kDisconnect: {
      auto r = proto::DecodeDisconnect(byte0, body, c.version);
      if (!r.ok()) break;
      HandleDisconnect(c, *r);
      return false;
    }
    case PacketType::kAuth: {
      auto r = proto::DecodeAuth(byte0, body, c.version);
      if (!r.ok()) break;
      // No enhanced authentication method is configured (MQTT 5.0 section 4.12).
      ProtocolClose(c, ReasonCode::kProtocolError, "AUTH without an authentication method");
      return false;
    }
    case PacketType::kConnect:
      ProtocolClose(c, ReasonCode::kProtocolError, "second CONNECT");  // [MQTT-3.1.0-2]
      return false;
    default:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP and type 0 are never sent by a client.
      ProtocolClose(c, ReasonCode::kProtocolError, "packet type a client must not send");
      return false;
  }
  // A decode failure: answer with its reason code.
  auto r = proto::Decode(byte0, body, c.version);
  ProtocolClose(c, r.ok() ? ReasonCode::kProtocolError : r.error().code,
                r.ok() ? "invalid packet" : r.error().detail);
  return false;
}

void Shard::HandleDisconnect(Connection& c, const proto::Disconnect& d) {
  Session& s = *c.session;
  if (IsV5(c) && d.props.session_expiry_interval) {
    if (s.expiry_interval_s == 0 && *d.props.session_expiry_interval != 0) {
      // [MQTT-3.14.2-2]: a session that ended with the connection cannot be extended.
      ProtocolClose(c, ReasonCode::kProtocolError, "session expiry set at DISCONNECT after 0");
      return;
    }
    s.expiry_interval_s = std::min(*d.props.session_expiry_interval, cfg_.max_session_expiry);
  }
  // [MQTT-3.14.4-3]: a normal DISCONNECT discards the will; 0x04 asks for it to be sent.
  c.publish_will = IsV5(c) && d.reason == ReasonCode::kDisconnectWithWillMessage;
  CloseConnection(c, "client DISCONNECT", d.reason);
}

void Shard::ProtocolClose(Connection& c, ReasonCode reason, const char* why) {
  if (c.state == Connection::State::kClosing) return;
  if (IsV5(c) && c.state == Connection::State::kActive) {
    proto::Disconnect d{reason, {}};
    if (c.request_problem_information) d.props.reason_string = why;
    if (!c.Queue(d)) c.Queue(proto::Disconnect{reason, {}});
    c.close_when_flushed = true;
    MarkDirty(c);
    ConnectionLost(c, why, reason);
    c.state = Connection::State::kClosing;
  } else {
    CloseConnection(c, why, reason);
  }
}

}  // namespace ringmq::broker
