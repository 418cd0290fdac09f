// libFuzzer target for the body of POST /mqtt/messages (rest/internal/publish_body.h). What it
// accepts must be publishable as is: 1 to max_items messages with valid topic names, QoS 0-2, a
// valid response topic when there is one, and a UTF-8 payload when the payload format indicator
// says so.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "proto/topic.h"
#include "rest/internal/publish_body.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ringmq::proto::ReasonCode;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::vector<ringmq::route::MessagePtr> messages;
  std::string error;
  if (!ringmq::rest::ParsePublishBody(body, 8, &messages, &error)) {
    Check(!error.empty());
    return 0;
  }
  Check(!messages.empty() && messages.size() <= 8);
  for (const ringmq::route::MessagePtr& p : messages) {
    const ringmq::route::Message& m = *p;
    Check(ringmq::proto::ValidateTopicName(m.topic) == ReasonCode::kSuccess);
    Check(m.qos <= 2);
    Check(!m.response_topic ||
          ringmq::proto::ValidateTopicName(*m.response_topic) == ReasonCode::kSuccess);
    Check(m.content_type.value_or("x") != "" && m.correlation_data.value_or("x") != "");
    Check(!m.payload_format_indicator || *m.payload_format_indicator <= 1);
    if (m.payload_format_indicator == 1) Check(ringmq::base::IsValidMqttUtf8(m.payload));
  }
  return 0;
}
