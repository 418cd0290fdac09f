// Unit tests of the load generator's pure parts: histogram, stream checks, payload header,
// scenario plans. No sockets.
#include <gtest/gtest.h>

#include <random>

#include "proto/codec.h"
#include "proto/framer.h"
#include "tools/bench/histogram.h"
#include "tools/bench/payload.h"
#include "tools/bench/scenario.h"
#include "tools/bench/seq_tracker.h"

namespace ringmq::bench {
namespace {

TEST(Histogram, BucketsCoverEveryValueWithinOnePercent) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const size_t b = Histogram::BucketOf(v);
    ASSERT_LT(b, Histogram::kBuckets);
    ASSERT_LE(Histogram::LowestOf(b), v);
    ASSERT_GE(Histogram::HighestOf(b), v);
    const double width = static_cast<double>(Histogram::HighestOf(b) - Histogram::LowestOf(b));
    ASSERT_LE(width, 0.01 * static_cast<double>(v) + 1) << v;
  }
  EXPECT_EQ(Histogram::BucketOf(UINT64_MAX), Histogram::kBuckets - 1);
  EXPECT_EQ(Histogram::BucketOf(255), 255u);
  EXPECT_EQ(Histogram::BucketOf(256), 256u);
}

TEST(Histogram, PercentilesOfAUniformSequence) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);  // 1 us .. 100 ms
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_NEAR(static_cast<double>(h.ValueAtPercentile(50)), 50e6, 50e6 * 0.01);
  EXPECT_NEAR(static_cast<double>(h.ValueAtPercentile(99)), 99e6, 99e6 * 0.01);
  EXPECT_GE(h.ValueAtPercentile(99), 99'000'000u);  // never under-reports
  EXPECT_EQ(h.ValueAtPercentile(100), 100'000'000u);
  EXPECT_EQ(h.max(), 100'000'000u);
  Histogram other;
  other.Record(5);
  h.Merge(other);
  EXPECT_EQ(h.count(), 100001u);
  EXPECT_EQ(h.min(), 5u);
  EXPECT_EQ(h.ValueAtPercentile(0), 5u);
}

TEST(SeqTracker, CountsGapsLateAndDuplicates) {
  SeqTracker t;
  for (uint64_t s : {0, 1, 2, 4, 5, 3, 3, 5, 9}) t.Add(s);
  EXPECT_EQ(t.next(), 10u);
  EXPECT_EQ(t.unique(), 7u);  // 0 1 2 3 4 5 9
  EXPECT_EQ(t.duplicates(), 2u);
  EXPECT_EQ(t.late(), 1u);     // 3
  EXPECT_EQ(t.missing(), 3u);  // 6 7 8
  EXPECT_EQ(t.Add(7), SeqTracker::Verdict::kLate);
  EXPECT_EQ(t.missing(), 2u);
  EXPECT_EQ(t.Add(7), SeqTracker::Verdict::kDuplicate);
}

TEST(SeqTracker, WindowWrapsWithoutFalseDuplicates) {
  SeqTracker t;
  for (uint64_t s = 0; s < 10000; s += 2) t.Add(s);  // every odd number skipped
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.missing(), 4999u);
  EXPECT_EQ(t.Add(9997), SeqTracker::Verdict::kLate);  // inside the window, never seen
  EXPECT_EQ(t.Add(9998), SeqTracker::Verdict::kDuplicate);
}

TEST(Payload, HeaderRoundTrips) {
  uint8_t buf[32] = {};
  WritePayloadHeader({123456789012345ull, 77, 9}, buf);
  PayloadHeader h;
  ASSERT_TRUE(ReadPayloadHeader(buf, sizeof(buf), &h));
  EXPECT_EQ(h.timestamp_ns, 123456789012345ull);
  EXPECT_EQ(h.seq, 77u);
  EXPECT_EQ(h.publisher, 9u);
  EXPECT_FALSE(ReadPayloadHeader(buf, 15, &h));
}

TEST(Scenario, TemplatesAndWildcards) {
  EXPECT_EQ(ExpandTemplate("bench/%i/x", 42), "bench/42/x");
  EXPECT_EQ(WildcardOf("bench/%i/x"), "bench/+/x");
  EXPECT_EQ(WildcardOf("bench/dev%i"), "bench/+");
  EXPECT_EQ(WildcardOf("plain"), "plain");
}

TEST(Scenario, FanInSubscribersConnectFirst) {
  Options o;
  o.scenario = ScenarioKind::kFanIn;
  o.pubs = 16;
  o.subs = 1;
  o.topic = "bench/in/%i";
  o.client_prefix = "t-";
  Plan plan;
  std::string error;
  ASSERT_TRUE(MakePlan(o, &plan, &error)) << error;
  EXPECT_EQ(plan.publishers, 16u);
  EXPECT_EQ(plan.subscribers, 1u);
  EXPECT_EQ(plan.deliveries_per_publish, 1u);
  EXPECT_EQ(plan.clients[0].role, Role::kSubscriber);
  EXPECT_EQ(plan.clients[0].group, 0);
  EXPECT_EQ(plan.clients[0].filter, "bench/in/+");
  EXPECT_EQ(plan.clients[5].topic, "bench/in/4");
  EXPECT_EQ(plan.clients[5].group, 1);
}

TEST(Scenario, SharedUsesAShareFilterAndNoOrderCheck) {
  Options o;
  o.scenario = ScenarioKind::kShared;
  o.pubs = 2;
  o.subs = 3;
  o.topic = "s/%i";
  Plan plan;
  std::string error;
  ASSERT_TRUE(MakePlan(o, &plan, &error));
  EXPECT_EQ(plan.clients[0].filter, "$share/bench/s/+");
  EXPECT_FALSE(plan.check_order);
  EXPECT_EQ(plan.deliveries_per_publish, 1u);
}

// The publisher patches a pre-encoded PUBLISH at fixed offsets: check the offsets against the
// codec for both protocol versions.
TEST(PublishTemplate, OffsetsMatchTheCodec) {
  for (proto::Version v : {proto::Version::kV311, proto::Version::kV5}) {
    std::vector<uint8_t> payload(16, 'x');
    proto::Publish p;
    p.qos = 1;
    p.topic = "bench/in/3";
    p.packet_id = 1;
    p.payload = std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size());
    std::vector<uint8_t> bytes(proto::EncodedSize(p, v));
    ASSERT_EQ(proto::Encode(p, v, bytes), bytes.size());
    const size_t payload_offset = bytes.size() - payload.size();
    const size_t id_offset = payload_offset - (v == proto::Version::kV5 ? 1 : 0) - 2;
    bytes[id_offset] = 0x12;
    bytes[id_offset + 1] = 0x34;
    WritePayloadHeader({99, 5, 6}, bytes.data() + payload_offset);
    proto::Frame f;
    ASSERT_EQ(proto::NextFrame(bytes, 1 << 20, &f), proto::FrameStatus::kComplete);
    auto d = proto::DecodePublish(f.byte0, f.body, v);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->packet_id, 0x1234);
    PayloadHeader h;
    ASSERT_TRUE(ReadPayloadHeader(reinterpret_cast<const uint8_t*>(d->payload.data()),
                                  d->payload.size(), &h));
    EXPECT_EQ(h.timestamp_ns, 99u);
    EXPECT_EQ(h.seq, 5u);
    EXPECT_EQ(h.publisher, 6u);
  }
}

}  // namespace
}  // namespace ringmq::bench
