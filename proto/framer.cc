// Stream framing of MQTT packets (MQTT 5.0 section 2.1).
#include "proto/framer.h"

#include "proto/varint.h"

namespace ringmq::proto {

FrameStatus NextFrame(std::span<const uint8_t> data, uint32_t max_packet_size, Frame* frame) {
  if (data.size() < 2) return FrameStatus::kIncomplete;
  uint32_t remaining = 0;
  size_t used = 0;
  switch (DecodeVarint(data.data() + 1, data.size() - 1, &remaining, &used)) {
    case VarintStatus::kIncomplete:
      return FrameStatus::kIncomplete;
    case VarintStatus::kMalformed:
      return FrameStatus::kMalformed;
    case VarintStatus::kOk:
      break;
  }
  const size_t header = 1 + used;
  const size_t total = header + remaining;
  if (total > max_packet_size) return FrameStatus::kTooLarge;
  if (data.size() < total) return FrameStatus::kIncomplete;
  frame->byte0 = data[0];
  frame->body = data.subspan(header, remaining);
  frame->size = total;
  return FrameStatus::kComplete;
}

}  // namespace ringmq::proto
