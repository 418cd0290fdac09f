// PUBLISH and its acknowledgements on a shard (MQTT 5.0 sections 3.3-3.7, 4.3): topic aliases,
// limits, the ACL, routing, and answers that wait for durability (broker/ack_gate.h).
#include "base/log.h"
#include "base/utf8.h"
#include "broker/broker.h"
#include "broker/connect_rules.h"
#include "broker/internal/mqtt_rules.h"
#include "broker/shard.h"

namespace ringmq::broker {

using internal::IsV5;
using internal::WithinTopicLimits;
using proto::ReasonCode;

void Shard::HandlePublish(Connection& c, proto::Publish& p) {
  const Config& cfg = cfg_;
  stats_.messages_in.Add();
  const std::optional<std::string_view> resolved = InboundTopic(c, p);
  if (!resolved) return;
  const std::string_view topic = *resolved;
  ReasonCode result = CheckPublishRate(c, p, topic);
  if (result != ReasonCode::kSuccess && p.qos == 0) return;
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
  RouteAndAnswer(c, p, topic, result, store_retained);
}

std::optional<std::string_view> Shard::InboundTopic(Connection& c, const proto::Publish& p) {
  // Topic aliases from the client (MQTT 5.0 section 3.3.2.3.4).
  std::string_view topic = p.topic;
  if (p.props.topic_alias) {
    const uint16_t alias = *p.props.topic_alias;
    if (alias > kTopicAliasMaximum) {
      ProtocolClose(c, ReasonCode::kTopicAliasInvalid, "topic alias above maximum");
      return std::nullopt;
    }
    if (!p.topic.empty()) {
      if (c.aliases == nullptr) c.aliases = std::make_unique<Connection::TopicAliases>();
      c.aliases->in[alias] = std::string(p.topic);
    } else {
      const std::string* known = nullptr;
      if (c.aliases != nullptr) {
        if (auto it = c.aliases->in.find(alias); it != c.aliases->in.end()) known = &it->second;
      }
      if (known == nullptr) {
        ProtocolClose(c, ReasonCode::kProtocolError, "unknown topic alias");
        return std::nullopt;
      }
      topic = *known;
    }
  }
  if (!p.props.subscription_identifiers.empty()) {
    ProtocolClose(c, ReasonCode::kProtocolError, "subscription identifier from a client");
    return std::nullopt;
  }
  if (!WithinTopicLimits(topic, cfg_)) {
    ProtocolClose(c, ReasonCode::kTopicNameInvalid, "topic exceeds configured limits");
    return std::nullopt;
  }
  return topic;
}

ReasonCode Shard::CheckPublishRate(Connection& c, const proto::Publish& p, std::string_view topic) {
  const Config& cfg = cfg_;
  if (cfg.max_publish_rate == 0 && cfg.max_publish_bytes_rate == 0) return ReasonCode::kSuccess;
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
  ReasonCode result = ReasonCode::kSuccess;
  if (cfg.max_publish_rate != 0 && c.rate_packets > cfg.max_publish_rate) {
    result = ReasonCode::kMessageRateTooHigh;
  } else if (cfg.max_publish_bytes_rate != 0 && c.rate_bytes > cfg.max_publish_bytes_rate) {
    result = ReasonCode::kQuotaExceeded;
  }
  if (result != ReasonCode::kSuccess) stats_.dropped_rate_limited.Add();
  return result;
}

void Shard::RouteAndAnswer(Connection& c, const proto::Publish& p, std::string_view topic,
                           ReasonCode result, bool store_retained) {
  Session& s = *c.session;
  // The answer waits until every record the message caused (here and on the shards it went to)
  // is durable (sync) or written to the kernel (batch, none) (broker/ack_gate.h).
  const bool sync = p.qos > 0 && log_.answers_wait();
  const uint64_t appended_before = log_.appended_seq();
  bool deliver = result == ReasonCode::kSuccess;
  bool retransmission = false;
  if (p.qos == 2) {
    if (!s.OnIncomingQos2(p.packet_id)) {
      deliver = false;        // a retransmission: answered, not delivered again
      retransmission = true;  // (its first answer may still wait for the disk: so does this one)
    } else if (IsV5(c) && s.incoming_qos2_count() > cfg_.receive_maximum) {
      ProtocolClose(c, ReasonCode::kReceiveMaximumExceeded, "receive maximum exceeded");
      return;
    }
    if (result != ReasonCode::kSuccess) (void)s.OnPubrel(p.packet_id);
  }
  // A matching session that refuses the message (its queue full under drop-new, or no disk to
  // spill to) makes an MQTT 5 QoS 1 publisher's answer Quota exceeded, rather than leave it to
  // believe that every subscriber has it (a resend reaches the others twice: QoS 1 allows it).
  // Sessions of this shard refuse it in Publish; those of other shards report it before they
  // confirm the message, and the answer waits for that (AckGate, the tag). Not QoS 2: a PUBREC
  // >= 0x80 releases the packet id, so a resend after a lost PUBREC would reach the sessions
  // that took the message a second time. Not 3.1.1: its PUBACK has no reason code.
  const uint64_t tag = p.qos == 1 && IsV5(c) ? log_.gate().NewTag() : 0;
  uint32_t remote_posts = 0;  // posts to other shards whose confirmation the answer waits for
  if (deliver) {
    // Closes nothing (a publisher subscribed to its own topic whose queue overflows has its close
    // queued): c and s are still there after it, and the PUBLISH is answered.
    const uint64_t refused_before = refused_deliveries_;
    remote_posts = router_.Publish(
        route::MakeMessage(p, topic, s.client_id(), NowMs()),
        {.store_retained = store_retained, .await_durable = sync, .answer_tag = tag});
    if (tag != 0 && refused_deliveries_ != refused_before) result = ReasonCode::kQuotaExceeded;
  }
  if (p.qos == 0) return;
  // Exactly once across a restart: a persistent session logs the QoS 2 packet id until PUBREL,
  // after the message's records. When those are on other shards' logs too, the id is logged only
  // once they are durable (at the PUBREC): a crash in between may then deliver the message
  // twice (the client resends it) but never loses it.
  const bool remote = remote_posts != 0;
  const bool log_id = p.qos == 2 && deliver && s.logged;
  if (log_id && !remote) LogInflight(s, 0, p.packet_id, wal::WalInflightPhase::kIncomingQos2);
  const bool logged_here = log_.appended_seq() != appended_before;
  const bool wait_local = sync && (logged_here || retransmission);
  if (wait_local) log_.gate().NoteLocal();
  AnswerPublish(c, p.qos == 1 ? proto::PacketType::kPuback : proto::PacketType::kPubrec,
                p.packet_id, result, wait_local || remote, log_id && remote, tag);
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
      const uint64_t appended_before = log_.appended_seq();
      const bool known = s.OnPubrel(a.packet_id);
      if (known) LogInflight(s, 0, a.packet_id, wal::WalInflightPhase::kIncomingDone);
      // The client may reuse the id after PUBCOMP: the release must be in the log first
      // (durable, or written under batch / none), or a restart would take the new message for a
      // retransmission.
      const bool wait = log_.answers_wait() && log_.appended_seq() != appended_before;
      if (wait) log_.gate().NoteLocal();
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

}  // namespace ringmq::broker
