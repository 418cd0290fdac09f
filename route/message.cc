// Building messages from PUBLISH packets and PUBLISH packets from messages.
#include "route/message.h"

namespace ringmq::route {

MessagePtr MakeMessage(const proto::Publish& p, std::string_view topic,
                       std::string_view origin_client_id, int64_t now_ms) {
  auto m = std::make_shared<Message>();
  m->topic = topic;
  m->payload = p.payload;
  m->qos = p.qos;
  m->retain = p.retain;
  m->payload_format_indicator = p.props.payload_format_indicator;
  if (p.props.content_type) m->content_type = std::string(*p.props.content_type);
  if (p.props.response_topic) m->response_topic = std::string(*p.props.response_topic);
  if (p.props.correlation_data) m->correlation_data = std::string(*p.props.correlation_data);
  for (const auto& [k, v] : p.props.user_properties) m->user_properties.emplace_back(k, v);
  if (p.props.message_expiry_interval) {
    m->expires_at_ms = now_ms + int64_t{*p.props.message_expiry_interval} * 1000;
  }
  m->origin_client_id = origin_client_id;
  return m;
}

proto::Publish ToPublish(const Message& m, uint8_t qos, bool retain, uint16_t packet_id,
                         int64_t now_ms) {
  proto::Publish p;
  p.qos = qos;
  p.retain = retain;
  p.topic = m.topic;
  p.packet_id = qos ? packet_id : 0;
  p.payload = m.payload;
  p.props.payload_format_indicator = m.payload_format_indicator;
  if (m.content_type) p.props.content_type = *m.content_type;
  if (m.response_topic) p.props.response_topic = *m.response_topic;
  if (m.correlation_data) p.props.correlation_data = *m.correlation_data;
  for (const auto& [k, v] : m.user_properties) p.props.user_properties.emplace_back(k, v);
  if (m.expires_at_ms != 0) {
    const int64_t left_ms = m.expires_at_ms - now_ms;
    p.props.message_expiry_interval =
        static_cast<uint32_t>(left_ms > 0 ? (left_ms + 999) / 1000 : 0);
  }
  return p;
}

}  // namespace ringmq::route
