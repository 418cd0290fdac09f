#include "broker/connect_rules.h"

#include <algorithm>

namespace ringmq::broker {

using proto::Version;

ClientIdRule ClientIdRuleFor(const proto::Connect& cn) {
  if (!cn.client_id.empty()) return ClientIdRule::kAsSent;
  // 3.1.1 [MQTT-3.1.3-7], [MQTT-3.1.3-8]; 3.1 needs one; 5.0 assigns one.
  if (cn.version == Version::kV5 || (cn.version == Version::kV311 && cn.clean_start)) {
    return ClientIdRule::kAssign;
  }
  return ClientIdRule::kRefuse;
}

bool MayUseSession(int64_t owner, const acl::CompiledAcl* acl) {
  const int64_t mine = acl != nullptr ? acl->token_id() : 0;
  return owner == 0 || owner == mine || (acl != nullptr && acl->IsMaster());
}

uint16_t GrantedKeepAlive(uint16_t asked, uint16_t max_keepalive) {
  if (asked > max_keepalive || (asked == 0 && max_keepalive < 65535)) return max_keepalive;
  return asked;
}

uint32_t GrantedSessionExpiry(const proto::Connect& cn, uint32_t max_session_expiry) {
  if (cn.version == Version::kV5) {
    return std::min(cn.props.session_expiry_interval.value_or(0), max_session_expiry);
  }
  return cn.clean_start ? 0 : 0xFFFFFFFF;
}

proto::Connack AcceptingConnack(const proto::Connect& cn, const Config& cfg, bool session_present,
                                std::string_view assigned_client_id, uint16_t keep_alive) {
  proto::Connack ack{session_present, proto::ReasonCode::kSuccess, {}};
  if (cn.version != Version::kV5) return ack;
  ack.props.receive_maximum = cfg.receive_maximum;
  ack.props.maximum_packet_size = cfg.max_packet_size;
  ack.props.topic_alias_maximum = kTopicAliasMaximum;
  if (!assigned_client_id.empty()) ack.props.assigned_client_identifier = assigned_client_id;
  if (keep_alive != cn.keep_alive) ack.props.server_keep_alive = keep_alive;
  if (cn.props.session_expiry_interval.value_or(0) > cfg.max_session_expiry) {
    ack.props.session_expiry_interval = cfg.max_session_expiry;
  }
  return ack;
}

uint64_t ShardQueueMemory(const Config& cfg) {
  if (cfg.max_queue_memory_bytes == 0) return 0;
  return std::max<uint64_t>(1, cfg.max_queue_memory_bytes / std::max<uint32_t>(1, cfg.shards));
}

Session::QueueLimits QueueLimitsOf(const Config& cfg, SpillContext* spill) {
  Session::QueueLimits l;
  if (cfg.max_queue_disk_bytes != 0) {
    l.memory_bytes = cfg.queue_memory_bytes;
    l.spill = spill;
  }
  l.max_bytes = cfg.max_session_queue_bytes;
  l.max_messages = cfg.max_queued_messages;
  l.policy = cfg.queue_full_policy == QueueFullPolicy::kDropOldest
                 ? Session::QueuePolicy::kDropOldest
                 : Session::QueuePolicy::kDropNew;
  return l;
}

}  // namespace ringmq::broker
