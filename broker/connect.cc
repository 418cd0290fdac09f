// CONNECT on a shard (MQTT 5.0 section 3.1, 3.1.1 section 3.1): the first packet, the client id
// and its home shard, authentication by token, the rights a connection needs, takeover and session
// resumption, the CONNACK. HandleConnect runs the phases in that order; each refuses with the
// specification's reason code and a log line.
#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/connect_rules.h"
#include "broker/internal/mqtt_rules.h"
#include "broker/shard.h"
#include "proto/codec.h"

namespace ringmq::broker {

using internal::IsV5;
using internal::ReasonCodeText;
using internal::UnixNow;
using proto::ReasonCode;

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
  Connection* c = conns_.Find(slot, generation);
  if (c == nullptr || !c->auth_pending) return;
  c->auth_pending = false;
  c->auth_answered = true;
  Connection::Login& login = c->login_state();
  login.acl = std::move(acl);
  login.key = key;
  ContinueInput(*c);
}

bool Shard::AcquireConnectionQuota(Connection& c, const std::string& client_id,
                                   const std::string& key, const acl::AclPtr& acl) {
  const Config& cfg = cfg_;
  // A takeover replaces a counted connection of the same client id, released right after this:
  // the client is not refused for the connection it replaces (broker/connection_quota.h).
  ConnectionQuota::Takeover takeover;
  if (const Session* s = sessions_.Find(client_id)) {
    const Connection* old = s->connection;
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
  std::optional<proto::Connect> decoded = DecodeFirstPacket(c, byte0, body);
  if (!decoded) return ConnectResult::kClosed;
  const proto::Connect& cn = *decoded;
  std::string client_id;
  std::string assigned;  // the client id this broker assigned (MQTT 5 empty client id)
  if (!ChooseClientId(c, cn, &client_id, &assigned)) {
    return RefuseConnect(c, ReasonCode::kClientIdentifierNotValid, "",
                         "empty client id without clean session");
  }
  if (cn.props.authentication_method) {
    // Enhanced authentication (MQTT 5.0 section 4.12): no method is configured.
    LOG_DEBUG_S(kMqtt, "shard {}: {} asked for authentication method '{}'", id_, c.peer,
                base::Cut(*cn.props.authentication_method));
    return RefuseConnect(c, ReasonCode::kBadAuthenticationMethod, client_id,
                         "authentication method not supported");
  }
  if (const uint16_t home = ShardOfKey(client_id); home != id_) {
    HandOff(c, home, assigned);
    return ConnectResult::kHandedOff;
  }
  std::string key;  // the token's whole key, once known
  acl::AclPtr acl;
  if (auto refused = Authenticate(c, cn, client_id, &key, &acl)) return *refused;
  if (auto refused = CheckConnectRights(c, cn, client_id, key, acl)) return *refused;
  bool present = false;
  Session& s = OpenSession(c, cn, client_id, key, acl, &present);
  AcceptConnection(c, cn, s, !assigned.empty(), present);
  if (present) {
    // Redeliver what was in flight, in order, then what waited in the queue [MQTT-4.4.0-1].
    s.Resend([&](const Inflight& f) {
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
    PumpSession(s);
  }
  return ConnectResult::kAccepted;
}

std::optional<proto::Connect> Shard::DecodeFirstPacket(Connection& c, uint8_t byte0,
                                                       proto::Bytes body) {
  if ((byte0 >> 4) != static_cast<uint8_t>(proto::PacketType::kConnect)) {
    // [MQTT-3.1.0-1]: the first packet must be CONNECT.
    LOG_DEBUG_S(kMqtt, "shard {}: {} sent {} before CONNECT", id_, c.peer,
                proto::PacketTypeName(static_cast<proto::PacketType>(byte0 >> 4)));
    LogConnectRefused(c, "", ReasonCode::kProtocolError, "first packet not CONNECT");
    CloseConnection(c, "first packet not CONNECT");
    return std::nullopt;
  }
  auto r = proto::DecodeConnect(byte0, body);
  if (r.ok()) {
    c.version = r->version;
    return std::move(*r);
  }
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
  return std::nullopt;
}

bool Shard::ChooseClientId(const Connection& c, const proto::Connect& cn, std::string* client_id,
                           std::string* assigned) {
  switch (ClientIdRuleFor(cn)) {
    case ClientIdRule::kAsSent:
      *client_id = std::string(cn.client_id);
      return true;
    case ClientIdRule::kAssign:
      if (c.login != nullptr && !c.login->assigned_client_id.empty()) {
        *assigned = c.login->assigned_client_id;  // assigned by the shard that handed it over
      } else {
        *assigned = "ringmq-" + std::to_string(id_) + "-" + std::to_string(NowMs()) + "-" +
                    std::to_string(++assigned_ids_);
      }
      *client_id = *assigned;
      return true;
    case ClientIdRule::kRefuse:
      break;
  }
  return false;
}

void Shard::HandOff(Connection& c, uint16_t home, const std::string& assigned) {
  // Hand the socket and every byte read so far (this CONNECT included) to the home shard.
  auto h = std::make_unique<Handoff>();
  h->fd = c.fd;
  h->peer = c.peer;
  h->bytes = std::move(c.in);
  h->assigned_client_id = assigned;
  h->transport = std::move(c.transport);  // with e.g. the WebSocket 101, not sent yet
  ShardMsg m;
  m.kind = ShardMsg::Kind::kHandoff;
  m.handoff = std::move(h);
  (void)PostToShard(home, std::move(m));
  FreeConnection(c);  // the fd now belongs to the home shard
}

std::optional<Shard::ConnectResult> Shard::Authenticate(Connection& c, const proto::Connect& cn,
                                                        const std::string& client_id,
                                                        std::string* key, acl::AclPtr* acl) {
  // DESIGN.md section 5, acl/credentials.h: the token key in the user name (bare or
  // "FlespiToken <key>") or in the password, or the token id as user name and the first 16
  // characters of the key as password; anonymous only when allowed.
  const acl::Credentials cred = acl::CredentialsFromConnect(
      cn.has_username ? std::optional<std::string_view>(cn.username) : std::nullopt,
      cn.has_password ? std::optional<std::string_view>(cn.password) : std::nullopt);
  if (cred.empty()) {
    if (cfg_.allow_anonymous) return std::nullopt;
    return RefuseConnect(c, ReasonCode::kNotAuthorized, client_id,
                         "anonymous clients are not allowed");
  }
  if (c.auth_answered) {
    *acl = std::move(c.login->acl);
    *key = std::move(c.login->key);
    c.auth_answered = false;
  } else if (cred.token_id > 0 ? !(*acl = acl_cache_.FindByIdLogin(cred.token_id, cred.secret, key))
                               : !(*acl = acl_cache_.Find(cred.secret))) {
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
    *key = cred.secret;
  }
  if (*acl == nullptr || (*acl)->ExpiredAt(UnixNow())) {
    return RefuseConnect(c, ReasonCode::kBadUserNameOrPassword, client_id,
                         "unknown or expired token");
  }
  if (!(*acl)->AllowsPeer(c.peer)) {
    // The token's origins (IP allow-list) do not include this client's address.
    return RefuseConnect(c, ReasonCode::kNotAuthorized, client_id,
                         "token not allowed from this address (origins)");
  }
  return std::nullopt;
}

std::optional<Shard::ConnectResult> Shard::CheckConnectRights(Connection& c,
                                                              const proto::Connect& cn,
                                                              const std::string& client_id,
                                                              const std::string& key,
                                                              const acl::AclPtr& acl) {
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
  if (const Session* own = sessions_.Find(client_id)) {
    const int64_t owner = own->owner_token_id;
    if (!MayUseSession(owner, acl.get())) {
      LOG_DEBUG_S(kMqtt, "shard {}: {} ({}) refused: the session belongs to token {}, not {}", id_,
                  c.peer, client_id, owner, acl != nullptr ? acl->token_id() : 0);
      // 3.1.1: 2 Identifier rejected.
      return RefuseConnect(c, ReasonCode::kClientIdentifierNotValid, client_id,
                           "client id in use by another token's session");
    }
  }
  if (!AcquireConnectionQuota(c, client_id, key, acl)) {
    // 3.1.1: 3 Server unavailable. AcquireConnectionQuota logged which limit.
    return RefuseConnect(c, ReasonCode::kQuotaExceeded, client_id, "connection limit reached");
  }
  return std::nullopt;
}

Session& Shard::OpenSession(Connection& c, const proto::Connect& cn, const std::string& client_id,
                            const std::string& key, const acl::AclPtr& acl, bool* present) {
  const Config& cfg = cfg_;
  // Takeover of a live connection with the same client id [MQTT-3.1.4-3]. Closed here, not
  // queued: the new connection needs the session now, and HandleConnect runs on the input path
  // (HandleInput), never inside a walk over match lists, sessions or connections.
  if (Session* live = sessions_.Find(client_id); live != nullptr && live->connection != nullptr) {
    LOG_DEBUG_S(kMqtt, "shard {}: client {} taken over by {}", id_, base::Cut(client_id), c.peer);
    ProtocolClose(*live->connection, ReasonCode::kSessionTakenOver, "session taken over");
  }
  Session* s = &sessions_.Open(client_id, cn.clean_start, QueueLimitsOf(cfg, &spill_), c, present);
  // The token that connects owns the session from now on (it created it, owned it already, is
  // a master taking it over, or claims a session without an owner).
  s->owner_token_id = acl != nullptr ? acl->token_id() : 0;
  if (s->token_key != key || s->acl != acl) {
    // Connected with another token (or none): its ACL now governs the session's subscriptions
    // and what it holds (in flight is resent: it was not sent on this connection).
    s->token_key = key;
    ApplyAcl(*s, acl, /*inflight_sent=*/false);
  }
  s->version = cn.version;
  s->will.reset();
  s->will_due_ms = 0;
  s->expiry_interval_s = GrantedSessionExpiry(cn, cfg.max_session_expiry);
  if (cn.has_will) {
    proto::Publish wp;
    wp.qos = cn.will.qos;
    wp.retain = cn.will.retain;
    wp.payload = cn.will.payload;
    wp.props = cn.will.props;
    s->will = std::make_unique<WillMessage>(
        WillMessage{route::MakeMessage(wp, cn.will.topic, client_id, NowMs()),
                    cn.will.props.will_delay_interval.value_or(0)});
  }
  c.session = s;
  s->clean_start = cn.clean_start;
  LogSessionStart(*s);
  return *s;
}

void Shard::AcceptConnection(Connection& c, const proto::Connect& cn, const Session& s,
                             bool id_assigned, bool present) {
  const Config& cfg = cfg_;
  c.connected_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  c.state = Connection::State::kActive;
  c.login.reset();  // used up
  c.publish_will = true;
  c.keep_alive_s = GrantedKeepAlive(cn.keep_alive, cfg.max_keepalive);
  c.client_topic_alias_maximum = cn.props.topic_alias_maximum.value_or(0);
  c.client_receive_maximum = cn.props.receive_maximum.value_or(65535);
  c.client_max_packet_size = cn.props.maximum_packet_size.value_or(268'435'460);
  c.request_problem_information = cn.props.request_problem_information.value_or(1) != 0;
  stats_.connections.Add();

  c.Queue(AcceptingConnack(cn, cfg, present, id_assigned ? s.client_id() : std::string_view(),
                           c.keep_alive_s));
  MarkDirty(c);
  if (ClusterLink* link = broker_.cluster_link()) {
    // The client id is this connection's in the whole cluster: older ones elsewhere close.
    link->SessionClaimed(id_, s.client_id(), c.connected_ns);
  }
  if (base::Logger(base::kMqtt).should_log(spdlog::level::info)) {
    // The token's numeric id, never its key.
    base::LogEvent e("client connected");
    e.Int("shard", id_).Str("client_id", s.client_id());
    if (s.acl != nullptr && s.acl->token_id() != 0) e.Int("token_id", s.acl->token_id());
    e.Str("peer", c.peer)
        .Int("protocol_version", static_cast<int>(cn.version))
        .Bool("clean_start", cn.clean_start)
        .Int("keep_alive", c.keep_alive_s)
        .Bool("session_present", present);
    LOG_EVENT(kMqtt, info, e);
  }
}

void Shard::ClusterSessionClaimed(const std::string& client_id, int64_t stamp_ns,
                                  uint64_t instance) {
  Session* s = sessions_.Find(client_id);
  if (s == nullptr || s->connection == nullptr) return;
  Connection& c = *s->connection;
  const ClusterLink* link = broker_.cluster_link();
  const uint64_t own = link != nullptr ? link->instance() : 0;
  // The later claim wins (ties: the larger instance), whichever order the nodes hear them in.
  if (c.connected_ns > stamp_ns || (c.connected_ns == stamp_ns && own > instance)) return;
  LOG_DEBUG_S(kMqtt, "shard {}: client {} taken over on another node", id_, base::Cut(client_id));
  // Its session stays here (sessions do not move between nodes yet: doc/cluster.md).
  ProtocolClose(c, ReasonCode::kSessionTakenOver, "session taken over on another node");
}

void Shard::AdoptHandoff(std::unique_ptr<Handoff> h) {
  Connection* c = NewConnection(h->fd, std::move(h->peer));
  if (c == nullptr) return;
  c->in = std::move(h->bytes);
  if (!h->assigned_client_id.empty()) {
    c->login_state().assigned_client_id = std::move(h->assigned_client_id);
  }
  c->transport = std::move(h->transport);
  if (c->transport_out_pending()) MarkDirty(*c);
  ContinueInput(*c);
}

}  // namespace ringmq::broker
