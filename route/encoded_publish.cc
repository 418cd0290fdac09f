// EncodedPublish (see route/encoded_publish.h).
#include "route/encoded_publish.h"

#include "proto/codec.h"

namespace ringmq::route {

EncodedPublish::Bytes EncodedPublish::Get(const MessagePtr& m, proto::Version version, uint8_t qos,
                                          bool retain) {
  // A large message is not kept (nor its memory held until the next one).
  if (m->topic.size() + m->payload.size() > kMaxCachedBytes || qos > 2) return {};
  if (m != message_) {
    message_ = m;
    for (Entry& e : entries_) e.valid = false;
  }
  Entry& e = entries_[Index(version, qos, retain)];
  if (!e.valid) {
    // Packet id 1 stands in (0 is not a valid one); every copy gets its own (PatchPacketId).
    const proto::Publish p = ToPublish(*m, qos, retain, 1, 0);
    const size_t n = proto::EncodedSize(p, version);
    if (n == 0) return {};
    e.bytes.resize(n);
    if (proto::Encode(p, version, std::span(e.bytes.data(), n)) != n) return {};
    // Fixed header: the type byte and the remaining length (a variable byte integer); then the
    // topic (two length bytes and the name) and, for QoS 1 and 2, the packet id.
    size_t header = 1;
    while ((e.bytes[header] & 0x80) != 0) ++header;
    e.id_offset = header + 1 + 2 + m->topic.size();
    e.valid = true;
  }
  return {e.bytes, e.id_offset};
}

void EncodedPublish::PatchPacketId(std::span<uint8_t> packet, size_t id_offset,
                                   uint16_t packet_id) {
  packet[id_offset] = static_cast<uint8_t>(packet_id >> 8);
  packet[id_offset + 1] = static_cast<uint8_t>(packet_id & 0xFF);
}

}  // namespace ringmq::route
