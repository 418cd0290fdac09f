#include "route/encoded_publish.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "proto/codec.h"

namespace ringmq::route {
namespace {

MessagePtr Msg(std::string topic, std::string payload) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->content_type = "text/plain";
  m->user_properties = {{"k", "v"}, {"k2", "v2"}};
  return m;
}

std::vector<uint8_t> Encoded(const Message& m, proto::Version v, uint8_t qos, bool retain,
                             uint16_t id) {
  const proto::Publish p = ToPublish(m, qos, retain, id, 0);
  std::vector<uint8_t> out(proto::EncodedSize(p, v));
  EXPECT_EQ(proto::Encode(p, v, std::span(out.data(), out.size())), out.size());
  return out;
}

TEST(EncodedPublish, ACopyWithItsPacketIdIsTheEncodedPacket) {
  EncodedPublish cache;
  // 200 bytes of payload: a remaining length of two bytes, so the id's offset moves by one.
  for (const std::string& payload : {std::string("22.5"), std::string(200, 'x')}) {
    const MessagePtr m = Msg("data/u1/temp", payload);
    for (proto::Version v : {proto::Version::kV311, proto::Version::kV5}) {
      for (uint8_t qos = 0; qos <= 2; ++qos) {
        for (bool retain : {false, true}) {
          const EncodedPublish::Bytes b = cache.Get(m, v, qos, retain);
          ASSERT_FALSE(b.packet.empty());
          std::vector<uint8_t> copy(b.packet.begin(), b.packet.end());
          const uint16_t id = qos != 0 ? 0x1234 : 0;
          if (qos != 0) EncodedPublish::PatchPacketId(copy, b.id_offset, id);
          EXPECT_EQ(copy, Encoded(*m, v, qos, retain, id))
              << "v" << static_cast<int>(v) << " qos " << int{qos} << " retain " << retain;
        }
      }
    }
  }
}

TEST(EncodedPublish, ANewMessageIsEncodedAfresh) {
  EncodedPublish cache;
  const MessagePtr a = Msg("a", "1");
  const MessagePtr b = Msg("b", "22");
  const auto first = cache.Get(a, proto::Version::kV311, 0, false);
  EXPECT_EQ(std::vector<uint8_t>(first.packet.begin(), first.packet.end()),
            Encoded(*a, proto::Version::kV311, 0, false, 0));
  const auto second = cache.Get(b, proto::Version::kV311, 0, false);
  EXPECT_EQ(std::vector<uint8_t>(second.packet.begin(), second.packet.end()),
            Encoded(*b, proto::Version::kV311, 0, false, 0));
}

TEST(EncodedPublish, ALargeMessageIsLeftToTheCaller) {
  EncodedPublish cache;
  const MessagePtr m = Msg("t", std::string(EncodedPublish::kMaxCachedBytes, 'x'));
  EXPECT_TRUE(cache.Get(m, proto::Version::kV5, 1, false).packet.empty());
}

}  // namespace
}  // namespace ringmq::route
