// Tests of stream framing and the Variable Byte Integer.
#include "proto/framer.h"

#include <gtest/gtest.h>

#include <vector>

#include "proto/varint.h"

namespace ringmq::proto {
namespace {

TEST(Varint, SpecBoundaries) {
  const struct {
    uint32_t value;
    std::vector<uint8_t> bytes;
  } kCases[] = {{0, {0x00}},
                {127, {0x7F}},
                {128, {0x80, 0x01}},
                {16'383, {0xFF, 0x7F}},
                {16'384, {0x80, 0x80, 0x01}},
                {2'097'151, {0xFF, 0xFF, 0x7F}},
                {2'097'152, {0x80, 0x80, 0x80, 0x01}},
                {268'435'455, {0xFF, 0xFF, 0xFF, 0x7F}}};
  for (const auto& c : kCases) {
    uint8_t out[4];
    ASSERT_EQ(EncodeVarint(c.value, out), c.bytes.size());
    EXPECT_EQ(std::vector<uint8_t>(out, out + c.bytes.size()), c.bytes);
    EXPECT_EQ(VarintSize(c.value), c.bytes.size());
    uint32_t v = 0;
    size_t used = 0;
    ASSERT_EQ(DecodeVarint(c.bytes.data(), c.bytes.size(), &v, &used), VarintStatus::kOk);
    EXPECT_EQ(v, c.value);
    EXPECT_EQ(used, c.bytes.size());
  }
}

TEST(Varint, FiveBytesIsMalformedNonMinimalIsAccepted) {
  const uint8_t five[] = {0x80, 0x80, 0x80, 0x80, 0x01};
  uint32_t v = 0;
  size_t used = 0;
  EXPECT_EQ(DecodeVarint(five, 5, &v, &used), VarintStatus::kMalformed);
  EXPECT_EQ(DecodeVarint(five, 3, &v, &used), VarintStatus::kIncomplete);
  const uint8_t non_minimal[] = {0x80, 0x00};
  ASSERT_EQ(DecodeVarint(non_minimal, 2, &v, &used), VarintStatus::kOk);
  EXPECT_EQ(v, 0u);
}

TEST(Framer, SplitAnywhereAndManyPerRead) {
  // Three packets: PINGREQ, a PUBLISH with a 200-byte payload (2-byte length), PINGRESP.
  std::vector<uint8_t> stream = {0xC0, 0x00};
  std::vector<uint8_t> pub = {0x30, 0xCB, 0x01, 0x00, 0x01, 't'};
  pub.resize(pub.size() + 200, 'x');
  stream.insert(stream.end(), pub.begin(), pub.end());
  stream.insert(stream.end(), {0xD0, 0x00});
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    // Feed the first `cut` bytes, then the rest, as two reads appended to a buffer.
    std::vector<uint8_t> buf(stream.begin(), stream.begin() + cut);
    std::vector<size_t> sizes;
    size_t off = 0;
    auto drain = [&] {
      Frame f;
      while (NextFrame(std::span(buf).subspan(off), 1024, &f) == FrameStatus::kComplete) {
        sizes.push_back(f.size);
        off += f.size;
      }
    };
    drain();
    buf.insert(buf.end(), stream.begin() + cut, stream.end());
    drain();
    EXPECT_EQ(sizes, (std::vector<size_t>{2, pub.size(), 2})) << "cut at " << cut;
  }
}

TEST(Framer, TooLargeReportedFromHeaderAlone) {
  const std::vector<uint8_t> header = {0x30, 0xFF, 0xFF, 0x03};  // 65535 bytes announced
  Frame f;
  EXPECT_EQ(NextFrame(header, 65539, &f), FrameStatus::kIncomplete);
  EXPECT_EQ(NextFrame(header, 65538, &f), FrameStatus::kTooLarge);
  const std::vector<uint8_t> bad = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
  EXPECT_EQ(NextFrame(bad, 1u << 30, &f), FrameStatus::kMalformed);
  EXPECT_EQ(NextFrame(std::vector<uint8_t>{0x30}, 100, &f), FrameStatus::kIncomplete);
}

TEST(Framer, BodyViewsTheInputWithoutCopying) {
  const std::vector<uint8_t> pkt = {0x30, 0x04, 0x00, 0x01, 't', 'p'};
  Frame f;
  ASSERT_EQ(NextFrame(pkt, 100, &f), FrameStatus::kComplete);
  EXPECT_EQ(f.byte0, 0x30);
  EXPECT_EQ(f.body.data(), pkt.data() + 2);
  EXPECT_EQ(f.body.size(), 4u);
}

}  // namespace
}  // namespace ringmq::proto
