// The MQTT side of a shard: packets in, state changes and packets out (MQTT 5.0 chapter 3 and 4,
// MQTT 3.1.1 chapter 3 and 4). Every protocol violation gets the specification's answer and closes
// only the offending connection.
#include <algorithm>
#include <cstring>
#include <ctime>

#include "base/log.h"
#include "base/utf8.h"
#include "broker/broker.h"
#include "broker/shard.h"
#include "proto/codec.h"
#include "proto/framer.h"
#include "proto/topic.h"

namespace ringmq::broker {

using proto::ReasonCode;
using proto::Version;

namespace {

constexpr uint16_t kTopicAliasMaximum = 64;

bool IsV5(const Connection& c) { return c.version == Version::kV5; }

// Topic depth and length limits of the configuration.
bool WithinTopicLimits(std::string_view topic, const Config& cfg) {
  return topic.size() <= cfg.max_topic_length &&
         static_cast<size_t>(std::count(topic.begin(), topic.end(), '/')) < cfg.max_topic_levels;
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// "0x87": how reason codes appear in log events.
std::string ReasonCodeText(ReasonCode code) {
  return fmt::format("0x{:02X}", static_cast<unsigned>(code));
}

}  // namespace

void Shard::LogConnectRefused(const Connection& c, std::string_view client_id, ReasonCode code,
                              const char* why) {
  LOG_EVENT(kMqtt, info,
            base::LogEvent("connect refused")
                .Int("shard", id_)
                .Str("client_id", client_id)
                .Str("peer", c.peer)
                .Int("protocol_version", static_cast<int>(c.version))
                .Str("reason_code", ReasonCodeText(code))
                .Str("reason", why));
}

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

Shard::ConnectResult Shard::RefuseConnect(Connection& c, ReasonCode reason,
                                          std::string_view client_id, const char* why) {
  LogConnectRefused(c, client_id, reason, why);
  c.Queue(proto::Connack{false, reason, {}});
  c.close_when_flushed = true;
  c.state = Connection::State::kClosing;
  MarkDirty(c);
  return ConnectResult::kClosed;
}

void Shard::OnTokenAnswer(uint32_t slot, uint32_t generation, const std::string& key,
                          acl::AclPtr acl) {
  if (acl != nullptr) acl_cache_.Put(key, acl);
  Connection* c = slot < conns_.size() ? conns_[slot].get() : nullptr;
  if (c == nullptr || c->generation != generation || !c->auth_pending) return;
  c->auth_pending = false;
  c->auth_answered = true;
  c->auth_acl = std::move(acl);
  c->auth_key = key;
  if (HandleInput(*c)) ArmRecv(*c);
}

void Shard::ApplyAcl(Session& s, const acl::AclPtr& acl, bool inflight_sent) {
  s.acl = acl;
  for (auto& [requested, sub] : s.subscriptions()) {
    Detach(s, sub);
    if (acl == nullptr || acl->AllowsEverything()) {
      sub.effective = {requested};
    } else {
      sub.effective = acl->EffectiveFilters(requested);  // may be empty: nothing allowed now
    }
    Attach(s, sub);
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
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    Session& s = *it->second;
    if (discard_sessions) {
      LOG_INFO_S(kMqtt, "shard {}: session {} ends: its token {} was deleted or expired", id_, id,
                 token_id);
      s.expiry_interval_s = 0;  // the session ends with its (queued) close, or now
    }
    if (s.connection != nullptr) {
      QueueClose(*s.connection, reason, "token revoked");
    } else if (discard_sessions) {
      DestroySession(s);
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

bool Shard::AcquireConnectionQuota(Connection& c, const std::string& client_id,
                                   const std::string& key, const acl::AclPtr& acl) {
  const Config& cfg = cfg_;
  // A takeover replaces a counted connection of the same client id, released right after this:
  // the client is not refused for the connection it replaces (broker/connection_quota.h).
  ConnectionQuota::Takeover takeover;
  if (auto it = sessions_.find(client_id); it != sessions_.end()) {
    const Connection* old = it->second->connection;
    if (old != nullptr && old->quota_counted) {
      takeover.total = true;
      takeover.key = !key.empty() && old->quota_key == key;
    }
  }
  // A token's own limit wins over the broker's default.
  const uint32_t per_token = acl != nullptr && acl->max_connections() != 0
                                 ? acl->max_connections()
                                 : cfg.max_connections_per_token;
  switch (broker_.connection_quota().Acquire(key, cfg.max_connections, per_token, takeover)) {
    case ConnectionQuota::Verdict::kAccepted:
      c.quota_counted = true;
      c.quota_key = key;
      return true;
    case ConnectionQuota::Verdict::kTotalExceeded:
      stats_.refused_max_connections.Add();
      LOG_WARN_S(kMqtt, "shard {}: {} ({}) refused: max_connections ({}) reached", id_, c.peer,
                 client_id, cfg.max_connections);
      return false;
    case ConnectionQuota::Verdict::kKeyExceeded:
      stats_.refused_max_connections_per_token.Add();
      LOG_INFO_S(kMqtt, "shard {}: {} ({}) refused: token {} has its maximum of {} connections",
                 id_, c.peer, client_id, acl != nullptr ? acl->token_id() : 0, per_token);
      return false;
  }
  return false;
}

Shard::ConnectResult Shard::HandleConnect(Connection& c, uint8_t byte0, proto::Bytes body) {
  const Config& cfg = cfg_;
  if ((byte0 >> 4) != static_cast<uint8_t>(proto::PacketType::kConnect)) {
    // [MQTT-3.1.0-1]: the first packet must be CONNECT.
    LOG_DEBUG_S(kMqtt, "shard {}: {} sent {} before CONNECT", id_, c.peer,
                proto::PacketTypeName(static_cast<proto::PacketType>(byte0 >> 4)));
    LogConnectRefused(c, "", ReasonCode::kProtocolError, "first packet not CONNECT");
    CloseConnection(c, "first packet not CONNECT");
    return ConnectResult::kClosed;
  }
  auto r = proto::DecodeConnect(byte0, body);
  if (!r.ok()) {
    c.version = proto::PeekConnectVersion(body);
    const ReasonCode code = r.error().code;
    LOG_DEBUG_S(kMqtt, "shard {}: bad CONNECT from {}: {}", id_, c.peer, r.error().detail);
    LogConnectRefused(c, "", code, "malformed CONNECT");
    if (code == ReasonCode::kUnsupportedProtocolVersion || IsV5(c)) {
      c.Queue(proto::Connack{false, code, {}});
      c.close_when_flushed = true;
      c.state = Connection::State::kClosing;
      MarkDirty(c);
    } else {
      CloseConnection(c, "malformed CONNECT");
    }
    return ConnectResult::kClosed;
  }
  proto::Connect& cn = *r;
  c.version = cn.version;
  // Client identifier rules: 3.1.1 [MQTT-3.1.3-7], [MQTT-3.1.3-8]; 3.1 needs one; 5.0 assigns one.
  std::string client_id(cn.client_id);
  std::string assigned;
  if (client_id.empty() && !c.assigned_client_id.empty()) {
    client_id = assigned = c.assigned_client_id;  // assigned by the shard that handed it over
  }
  if (client_id.empty()) {
    if (cn.version == Version::kV5 || (cn.version == Version::kV311 && cn.clean_start)) {
      assigned = "ringmq-" + std::to_string(id_) + "-" + std::to_string(NowMs()) + "-" +
                 std::to_string(++assigned_ids_);
      client_id = assigned;
    } else {
      return RefuseConnect(c, ReasonCode::kClientIdentifierNotValid, "",
                           "empty client id without clean session");
    }
  }
  if (cn.props.authentication_method) {
    // Enhanced authentication (MQTT 5.0 section 4.12): no method is configured.
    LOG_DEBUG_S(kMqtt, "shard {}: {} asked for authentication method '{}'", id_, c.peer,
                base::Cut(*cn.props.authentication_method));
    return RefuseConnect(c, ReasonCode::kBadAuthenticationMethod, client_id,
                         "authentication method not supported");
  }
  const uint16_t home = ShardOfKey(client_id);
  if (home != id_) {
    // Hand the socket and every byte read so far (this CONNECT included) to the home shard.
    auto h = std::make_unique<Handoff>();
    h->fd = c.fd;
    h->peer = c.peer;
    h->bytes = std::move(c.in);
    h->assigned_client_id = assigned;
    h->tls = std::move(c.tls);
    h->ws = std::move(c.ws);
    h->pending_out = std::move(c.transport_out);  // e.g. the WebSocket 101, not sent yet
    ShardMsg m;
    m.kind = ShardMsg::Kind::kHandoff;
    m.handoff = std::move(h);
    PostToShard(home, std::move(m));
    FreeConnection(c);  // the fd now belongs to the home shard
    return ConnectResult::kHandedOff;
  }

  // Authentication (DESIGN.md section 5, acl/credentials.h): the token key in the user name (bare
  // or "FlespiToken <key>") or in the password, or the token id as user name and the first 16
  // characters of the key as password; anonymous only when allowed.
  const acl::Credentials cred = acl::CredentialsFromConnect(
      cn.has_username ? std::optional<std::string_view>(cn.username) : std::nullopt,
      cn.has_password ? std::optional<std::string_view>(cn.password) : std::nullopt);
  std::string key;  // the token's whole key, once known
  acl::AclPtr acl;
  if (cred.empty()) {
    if (!cfg.allow_anonymous) {
      return RefuseConnect(c, ReasonCode::kNotAuthorized, client_id,
                           "anonymous clients are not allowed");
    }
  } else if (c.auth_answered) {
    acl = std::move(c.auth_acl);
    key = std::move(c.auth_key);
    c.auth_answered = false;
  } else if (cred.token_id > 0 ? !(acl = acl_cache_.FindByIdLogin(cred.token_id, cred.secret, &key))
                               : !(acl = acl_cache_.Find(cred.secret))) {
    if (!broker_.token_lookup()) {
      return RefuseConnect(c, ReasonCode::kBadUserNameOrPassword, client_id, "unknown token");
    }
    // Ask the admin shard; the connection waits (nothing more is read), the shard does not.
    c.auth_pending = true;
    Shard* self = this;
    broker_.token_lookup()(
        cred, [self, slot = c.slot, gen = c.generation](acl::AclPtr a, std::string k) {
          self->PostTask([slot, gen, k = std::move(k), a = std::move(a)](Shard& s) {
            s.OnTokenAnswer(slot, gen, k, a);
          });
        });
    return ConnectResult::kPending;
  } else if (cred.token_id == 0) {
    key = cred.secret;
  }
  if (!cred.empty() && (acl == nullptr || acl->ExpiredAt(UnixNow()))) {
    return RefuseConnect(c, ReasonCode::kBadUserNameOrPassword, client_id,
                         "unknown or expired token");
  }
  if (acl != nullptr && !acl->AllowsPeer(c.peer)) {
    // The token's origins (IP allow-list) do not include this client's address.
    return RefuseConnect(c, ReasonCode::kNotAuthorized, client_id,
                         "token not allowed from this address (origins)");
  }

  // A will is a publish by this client: refused at CONNECT when the token may not publish there
  // (3.1.1: 5 Not authorized). PublishWill checks again when it is sent.
  if (cn.has_will && !MayPublish(acl.get(), cn.will.topic)) {
    LOG_DEBUG_S(kMqtt, "shard {}: {} may not publish its will to '{}'", id_, client_id,
                cn.will.topic);
    return RefuseConnect(c, ReasonCode::kNotAuthorized, client_id, "will topic not allowed");
  }

  // A session belongs to its token (doc/rest-api.md, "Session ownership"): another token or an
  // anonymous client may neither resume it nor end it with a clean start, and does not take
  // over its connection. A master token may; a session without an owner is anyone's.
  if (auto own = sessions_.find(client_id); own != sessions_.end()) {
    const int64_t owner = own->second->owner_token_id;
    const int64_t mine = acl != nullptr ? acl->token_id() : 0;
    if (owner != 0 && owner != mine && (acl == nullptr || !acl->IsMaster())) {
      LOG_DEBUG_S(kMqtt, "shard {}: {} ({}) refused: the session belongs to token {}, not {}", id_,
                  c.peer, client_id, owner, mine);
      // 3.1.1: 2 Identifier rejected.
      return RefuseConnect(c, ReasonCode::kClientIdentifierNotValid, client_id,
                           "client id in use by another token's session");
    }
  }

  if (!AcquireConnectionQuota(c, client_id, key, acl)) {
    // 3.1.1: 3 Server unavailable. AcquireConnectionQuota logged which limit.
    return RefuseConnect(c, ReasonCode::kQuotaExceeded, client_id, "connection limit reached");
  }

  // Takeover of a live connection with the same client id [MQTT-3.1.4-3]. Closed here, not
  // queued: the new connection needs the session now, and HandleConnect runs on the input path
  // (HandleInput), never inside a walk over match lists, sessions or connections.
  auto it = sessions_.find(client_id);
  if (it != sessions_.end() && it->second->connection != nullptr) {
    Connection& old = *it->second->connection;
    LOG_DEBUG_S(kMqtt, "shard {}: client {} taken over by {}", id_, base::Cut(client_id), c.peer);
    ProtocolClose(old, ReasonCode::kSessionTakenOver, "session taken over");
  }
  it = sessions_.find(client_id);
  bool present = false;
  if (it != sessions_.end() && cn.clean_start) {
    DestroySession(*it->second);
    it = sessions_.end();
  }
  Session* s;
  if (it == sessions_.end()) {
    auto owned = std::make_unique<Session>(client_id, cfg.max_queued_messages,
                                           cfg.queue_full_policy == QueueFullPolicy::kDropOldest
                                               ? Session::QueuePolicy::kDropOldest
                                               : Session::QueuePolicy::kDropNew);
    s = owned.get();
    sessions_.emplace(client_id, std::move(owned));
  } else {
    s = it->second.get();
    present = true;
  }
  s->connection = &c;
  if (present) SetSharedLive(*s, true);
  // The token that connects owns the session from now on (it created it, owned it already, is
  // a master taking it over, or claims a session without an owner).
  s->owner_token_id = acl != nullptr ? acl->token_id() : 0;
  if (s->token_key != key || s->acl != acl) {
    // Connected with another token (or none): its ACL now governs the session's subscriptions
    // and what it holds (in flight is resent below: it was not sent on this connection).
    s->token_key = key;
    ApplyAcl(*s, acl, /*inflight_sent=*/false);
  }
  s->version = cn.version;
  s->will.reset();
  s->will_due_ms = 0;
  if (cn.version == Version::kV5) {
    s->expiry_interval_s =
        std::min(cn.props.session_expiry_interval.value_or(0), cfg.max_session_expiry);
  } else {
    s->expiry_interval_s = cn.clean_start ? 0 : 0xFFFFFFFF;  // 3.1.1: kept until cleaned
  }
  if (cn.has_will) {
    proto::Publish wp;
    wp.qos = cn.will.qos;
    wp.retain = cn.will.retain;
    wp.payload = cn.will.payload;
    wp.props = cn.will.props;
    s->will = WillMessage{route::MakeMessage(wp, cn.will.topic, client_id, NowMs()),
                          cn.will.props.will_delay_interval.value_or(0)};
  }
  c.session = s;
  s->clean_start = cn.clean_start;
  LogSessionStart(*s);
  c.connected_unix = UnixNow();
  c.state = Connection::State::kActive;
  c.publish_will = true;
  c.client_id = client_id;
  c.keep_alive_s = cn.keep_alive;
  // Server Keep Alive: a client asking for more than max_keepalive (or, when max_keepalive is set
  // below 65535, for none at all) is held to max_keepalive; MQTT 5 clients are told so.
  if (cn.keep_alive > cfg.max_keepalive || (cn.keep_alive == 0 && cfg.max_keepalive < 65535)) {
    c.keep_alive_s = cfg.max_keepalive;
  }
  c.client_topic_alias_maximum = cn.props.topic_alias_maximum.value_or(0);
  c.client_receive_maximum = cn.props.receive_maximum.value_or(65535);
  c.client_max_packet_size = cn.props.maximum_packet_size.value_or(268'435'460);
  c.request_problem_information = cn.props.request_problem_information.value_or(1) != 0;
  stats_.connections.Add();

  proto::Connack ack{present, ReasonCode::kSuccess, {}};
  if (IsV5(c)) {
    ack.props.receive_maximum = cfg.receive_maximum;
    ack.props.maximum_packet_size = cfg.max_packet_size;
    ack.props.topic_alias_maximum = kTopicAliasMaximum;
    if (!assigned.empty()) ack.props.assigned_client_identifier = client_id;
    if (c.keep_alive_s != cn.keep_alive) ack.props.server_keep_alive = c.keep_alive_s;
    if (cn.props.session_expiry_interval.value_or(0) > cfg.max_session_expiry) {
      ack.props.session_expiry_interval = cfg.max_session_expiry;
    }
  }
  c.Queue(ack);
  MarkDirty(c);
  if (base::Logger(base::kMqtt).should_log(spdlog::level::info)) {
    // The token's numeric id, never its key.
    base::LogEvent e("client connected");
    e.Int("shard", id_).Str("client_id", client_id);
    if (acl != nullptr && acl->token_id() != 0) e.Int("token_id", acl->token_id());
    e.Str("peer", c.peer)
        .Int("protocol_version", static_cast<int>(cn.version))
        .Bool("clean_start", cn.clean_start)
        .Int("keep_alive", c.keep_alive_s)
        .Bool("session_present", present);
    LOG_EVENT(kMqtt, info, e);
  }
  if (present) {
    // Redeliver what was in flight, in order, then what waited in the queue [MQTT-4.4.0-1].
    s->Resend([&](const Inflight& f) {
      if (f.state == Inflight::State::kAwaitPubcomp) {
        c.Queue(proto::Ack{proto::PacketType::kPubrel, f.packet_id, ReasonCode::kSuccess, {}});
        return;
      }
      proto::Publish p =
          ToPublish(*f.delivery.msg, f.delivery.qos, f.delivery.retain, f.packet_id, NowMs());
      p.dup = true;
      if (IsV5(c)) p.props.subscription_identifiers = f.delivery.subscription_ids;
      (void)QueuePublish(c, p);
    });
    PumpSession(*s);
  }
  return ConnectResult::kAccepted;
}

void Shard::HandlePublish(Connection& c, proto::Publish& p) {
  const Config& cfg = cfg_;
  stats_.messages_in.Add();
  // Topic aliases from the client (MQTT 5.0 section 3.3.2.3.4).
  std::string_view topic = p.topic;
  if (p.props.topic_alias) {
    const uint16_t alias = *p.props.topic_alias;
    if (alias > kTopicAliasMaximum) {
      ProtocolClose(c, ReasonCode::kTopicAliasInvalid, "topic alias above maximum");
      return;
    }
    if (!p.topic.empty()) {
      c.topic_aliases[alias] = std::string(p.topic);
    } else {
      auto it = c.topic_aliases.find(alias);
      if (it == c.topic_aliases.end()) {
        ProtocolClose(c, ReasonCode::kProtocolError, "unknown topic alias");
        return;
      }
      topic = it->second;
    }
  }
  if (!p.props.subscription_identifiers.empty()) {
    ProtocolClose(c, ReasonCode::kProtocolError, "subscription identifier from a client");
    return;
  }
  if (!WithinTopicLimits(topic, cfg)) {
    ProtocolClose(c, ReasonCode::kTopicNameInvalid, "topic exceeds configured limits");
    return;
  }
  ReasonCode result = ReasonCode::kSuccess;
  if (cfg.max_publish_rate != 0 || cfg.max_publish_bytes_rate != 0) {
    // Per-connection quotas over a one-second window: beyond them a message is refused (MQTT 5:
    // 0x96 Message rate too high / 0x97 Quota exceeded in the acknowledgement) and counted.
    const int64_t now = NowMs();
    if (now - c.rate_window_ms >= 1000) {
      c.rate_window_ms = now;
      c.rate_packets = 0;
      c.rate_bytes = 0;
    }
    ++c.rate_packets;
    c.rate_bytes += p.payload.size() + topic.size();
    if (cfg.max_publish_rate != 0 && c.rate_packets > cfg.max_publish_rate) {
      result = ReasonCode::kMessageRateTooHigh;
    } else if (cfg.max_publish_bytes_rate != 0 && c.rate_bytes > cfg.max_publish_bytes_rate) {
      result = ReasonCode::kQuotaExceeded;
    }
    if (result != ReasonCode::kSuccess) {
      stats_.dropped_rate_limited.Add();
      if (p.qos == 0) return;
    }
  }
  if (cfg.max_message_expiry != 0 &&
      p.props.message_expiry_interval.value_or(UINT32_MAX) > cfg.max_message_expiry) {
    p.props.message_expiry_interval = cfg.max_message_expiry;
  }
  if (p.props.payload_format_indicator.value_or(0) == 1 && !base::IsValidMqttUtf8(p.payload)) {
    result = ReasonCode::kPayloadFormatInvalid;
    if (p.qos == 0) {
      ProtocolClose(c, result, "payload is not UTF-8 as its format indicator says");
      return;
    }
  }
  Session& s = *c.session;
  if (result == ReasonCode::kSuccess && !MayPublish(s.acl.get(), topic)) {
    // Not allowed by the token, or a $SYS topic: MQTT 5 learns it from the acknowledgement,
    // 3.1.1 loses the message (its acknowledgements carry no reason). Counted either way.
    LOG_DEBUG_S(kMqtt, "shard {}: {} may not publish to '{}'", id_, base::Cut(s.client_id()),
                base::Cut(topic));
    stats_.dropped_not_authorized.Add();
    result = ReasonCode::kNotAuthorized;
    if (!IsV5(c) && p.qos == 0) return;
  }
  bool store_retained = true;
  if (result == ReasonCode::kSuccess && p.retain &&
      RetainedQuotaExceeded(topic, p.payload.size())) {
    // max_retained_bytes: MQTT 5 refuses the message (0x97, neither stored nor delivered);
    // 3.1.1 cannot say so: the message is delivered but not stored as retained.
    if (!c.retained_refusal_logged) {
      c.retained_refusal_logged = true;
      LOG_INFO_S(
          kMqtt,
          "shard {}: {} retained message on '{}' {}: max_retained_bytes ({}) reached (further "
          "ones on this connection are only counted)",
          id_, base::Cut(s.client_id()), base::Cut(topic),
          IsV5(c) ? "refused" : "delivered, not stored", cfg.max_retained_bytes);
    }
    if (IsV5(c)) {
      result = ReasonCode::kQuotaExceeded;
      if (p.qos == 0) return;
    } else {
      store_retained = false;
    }
  }
  // The answer waits until every record the message caused (here and on the shards it went to)
  // is durable (sync) or written to the kernel (batch, none) (broker/ack_gate.h).
  const bool sync = p.qos > 0 && sync_acks_;
  const uint64_t appended_before = wal_ != nullptr ? wal_->appended_seq() : 0;
  const uint64_t posts_before = durable_posts_;
  bool deliver = result == ReasonCode::kSuccess;
  bool retransmission = false;
  if (p.qos == 2) {
    if (!s.OnIncomingQos2(p.packet_id)) {
      deliver = false;        // a retransmission: answered, not delivered again
      retransmission = true;  // (its first answer may still wait for the disk: so does this one)
    } else if (IsV5(c) && s.incoming_qos2_count() > cfg.receive_maximum) {
      ProtocolClose(c, ReasonCode::kReceiveMaximumExceeded, "receive maximum exceeded");
      return;
    }
    if (result != ReasonCode::kSuccess) (void)s.OnPubrel(p.packet_id);
  }
  if (deliver) {
    durable_publish_ = sync;
    // Closes nothing (a publisher subscribed to its own topic whose queue overflows has its close
    // queued): c and s are still there after it, and the PUBLISH is answered.
    Publish(route::MakeMessage(p, topic, s.client_id(), NowMs()), store_retained);
    durable_publish_ = false;
  }
  if (p.qos == 0) return;
  // Exactly once across a restart: a persistent session logs the QoS 2 packet id until PUBREL,
  // after the message's records. When those are on other shards' logs too, the id is logged only
  // once they are durable (at the PUBREC): a crash in between may then deliver the message
  // twice (the client resends it) but never loses it.
  const bool remote = durable_posts_ != posts_before;
  const bool log_id = p.qos == 2 && deliver && s.logged;
  if (log_id && !remote) LogInflight(s, 0, p.packet_id, wal::WalInflightPhase::kIncomingQos2);
  const bool logged_here = wal_ != nullptr && wal_->appended_seq() != appended_before;
  if (sync && (logged_here || retransmission)) ack_gate_.NoteLocal();
  AnswerPublish(c, p.qos == 1 ? proto::PacketType::kPuback : proto::PacketType::kPubrec,
                p.packet_id, result, sync && (logged_here || retransmission || remote),
                log_id && remote);
}

void Shard::HandleAck(Connection& c, const proto::Ack& a) {
  Session& s = *c.session;
  using proto::PacketType;
  switch (a.type) {
    case PacketType::kPuback:
      (void)s.OnPuback(a.packet_id);
      break;
    case PacketType::kPubrec:
      if (proto::IsError(a.reason)) {
        (void)s.Discard(a.packet_id);  // the receiver refused: the exchange ends
      } else if (uint64_t wal_id = 0; s.OnPubrec(a.packet_id, &wal_id)) {
        if (wal_id != 0) LogInflight(s, wal_id, a.packet_id, wal::WalInflightPhase::kAwaitPubcomp);
        c.Queue(proto::Ack{PacketType::kPubrel, a.packet_id, ReasonCode::kSuccess, {}});
      } else {
        c.Queue(proto::Ack{
            PacketType::kPubrel, a.packet_id, ReasonCode::kPacketIdentifierNotFound, {}});
      }
      break;
    case PacketType::kPubrel: {
      const uint64_t appended_before = wal_ != nullptr ? wal_->appended_seq() : 0;
      const bool known = s.OnPubrel(a.packet_id);
      if (known) LogInflight(s, 0, a.packet_id, wal::WalInflightPhase::kIncomingDone);
      // The client may reuse the id after PUBCOMP: the release must be in the log first
      // (durable, or written under batch / none), or a restart would take the new message for a
      // retransmission.
      const bool wait = sync_acks_ && wal_ != nullptr && wal_->appended_seq() != appended_before;
      if (wait) ack_gate_.NoteLocal();
      AnswerPublish(c, PacketType::kPubcomp, a.packet_id,
                    known ? ReasonCode::kSuccess : ReasonCode::kPacketIdentifierNotFound, wait);
      break;
    }
    case PacketType::kPubcomp:
      (void)s.OnPubcomp(a.packet_id);
      break;
    default:
      break;
  }
  LogFinished(s);
  PumpSession(s);
  MarkDirty(c);
}

void Shard::HandleSubscribe(Connection& c, const proto::Subscribe& sub) {
  const Config& cfg = cfg_;
  Session& s = *c.session;
  proto::Suback ack;
  ack.packet_id = sub.packet_id;
  const uint32_t sub_id =
      sub.props.subscription_identifiers.empty() ? 0 : sub.props.subscription_identifiers[0];
  struct Retained {
    std::string requested;
    std::string filter;
    SubOptions options;
  };
  std::vector<Retained> want_retained;
  // Filters refused by max_subscriptions: one log line per packet, not one per filter.
  std::size_t over_limit = 0;
  std::string_view first_over_limit;
  for (const proto::Subscription& req : sub.subscriptions) {
    ReasonCode code = proto::ValidateTopicFilter(req.filter);
    if (code == ReasonCode::kSuccess && !WithinTopicLimits(req.filter, cfg)) {
      code = ReasonCode::kTopicFilterInvalid;
    }
    if (code != ReasonCode::kSuccess) {
      LOG_INFO_S(kMqtt, "shard {}: {} SUBSCRIBE '{}' refused: {}", id_, base::Cut(s.client_id()),
                 base::Cut(req.filter), proto::ReasonCodeName(code));
      ack.reasons.push_back(code);
      continue;
    }
    SubOptions o{req.qos, req.no_local, req.retain_as_published, req.retain_handling, sub_id};
    if (!IsV5(c)) o = SubOptions{req.qos, false, false, 0, 0};
    Subscription next{o, {std::string(req.filter)}};
    if (s.acl && !s.acl->AllowsEverything()) {
      // The token's ACL: subscribe to the intersections of the filter with what it allows.
      next.effective = s.acl->EffectiveFilters(req.filter);
      if (next.effective.empty()) {
        LOG_INFO_S(kMqtt, "shard {}: {} SUBSCRIBE '{}' refused by the token's ACL", id_,
                   base::Cut(s.client_id()), base::Cut(req.filter));
        ack.reasons.push_back(ReasonCode::kNotAuthorized);
        continue;
      }
    }
    std::string filter(req.filter);
    auto it = s.subscriptions().find(filter);
    const bool added = it == s.subscriptions().end();
    if (added && cfg.max_subscriptions != 0 && s.subscriptions().size() >= cfg.max_subscriptions) {
      if (over_limit++ == 0) first_over_limit = req.filter;
      ack.reasons.push_back(ReasonCode::kQuotaExceeded);
      continue;
    }
    if (!added) Detach(s, it->second);  // an identical filter replaces it [MQTT-3.8.4-3]
    Subscription& stored = s.subscriptions()[filter];
    stored = std::move(next);
    Attach(s, stored);
    LogSubscription(s, filter, &stored);
    ack.reasons.push_back(static_cast<ReasonCode>(req.qos));
    // Retained messages are not sent on a shared subscription (MQTT 5.0 section 4.8.2).
    if (proto::ParseSharedFilter(filter)) continue;
    if (o.retain_handling == 0 || (o.retain_handling == 1 && added)) {
      for (const std::string& eff : stored.effective) want_retained.push_back({filter, eff, o});
    }
  }
  if (over_limit != 0) {
    LOG_INFO_S(kMqtt,
               "shard {}: {} SUBSCRIBE: {} filter(s) from '{}' on refused: max_subscriptions "
               "({}) reached",
               id_, base::Cut(s.client_id()), over_limit, base::Cut(first_over_limit),
               cfg.max_subscriptions);
  }
  c.Queue(ack);
  MarkDirty(c);
  // Retained messages are partitioned by topic hash: ask every shard [MQTT-3.3.1-6].
  for (Retained& r : want_retained) {
    for (uint16_t to = 0; to < broker_.shard_count(); ++to) {
      auto q = std::make_unique<RetainQuery>();
      q->filter = r.filter;
      q->client_id = s.client_id();
      q->sub_filter = r.requested;
      q->options = r.options;
      if (to == id_) {
        AnswerRetainQuery(*q);
        SendRetained(s, q->sub_filter, q->options, q->matches);
      } else {
        ShardMsg m;
        m.kind = ShardMsg::Kind::kRetainQuery;
        m.from = id_;
        m.query = std::move(q);
        PostToShard(to, std::move(m));
      }
    }
  }
}

void Shard::HandleUnsubscribe(Connection& c, const proto::Unsubscribe& u) {
  Session& s = *c.session;
  proto::Unsuback ack;
  ack.packet_id = u.packet_id;
  for (std::string_view f : u.filters) {
    auto it = s.subscriptions().find(std::string(f));
    if (it == s.subscriptions().end()) {
      ack.reasons.push_back(ReasonCode::kNoSubscriptionExisted);
      continue;
    }
    Detach(s, it->second);
    LogSubscription(s, it->first, nullptr);
    s.subscriptions().erase(it);
    ack.reasons.push_back(ReasonCode::kSuccess);
  }
  c.Queue(ack);
  MarkDirty(c);
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

void Shard::AdoptHandoff(std::unique_ptr<Handoff> h) {
  Connection* c = NewConnection(h->fd, std::move(h->peer));
  if (c == nullptr) return;
  c->in = std::move(h->bytes);
  c->assigned_client_id = std::move(h->assigned_client_id);
  c->tls = std::move(h->tls);
  c->ws = std::move(h->ws);
  c->transport_out = std::move(h->pending_out);
  if (!c->transport_out.empty()) MarkDirty(*c);
  if (HandleInput(*c)) ArmRecv(*c);
}

}  // namespace ringmq::broker
