// The histogram's buckets and the Prometheus text: one HELP/TYPE per family, samples of several
// shards grouped under it.
#include "base/metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace ringmq::base {
namespace {

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(Metrics, CounterGrowsGaugeIsSet) {
  Counter c;
  c.Add();
  c.Add(41);
  EXPECT_EQ(c.Get(), 42u);
  Gauge g;
  g.Set(7);
  g.Set(3);
  EXPECT_EQ(g.Get(), 3u);
}

TEST(LatencyHistogram, BucketsByUpperBound) {
  LatencyHistogram h;
  h.Observe(0);
  h.Observe(10'000);  // exactly a bound: counted in that bucket (le = less or equal)
  h.Observe(10'001);
  h.Observe(2'000'000);
  h.Observe(60'000'000);  // above every bound: +Inf
  const LatencyHistogram::Snapshot s = h.Read();
  EXPECT_EQ(s.buckets[0], 2u);
  EXPECT_EQ(s.buckets[1], 1u);
  EXPECT_EQ(s.buckets[5], 1u);
  EXPECT_EQ(s.buckets[8], 1u);
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.sum_ns, 0u + 10'000 + 10'001 + 2'000'000 + 60'000'000);
}

TEST(MetricsText, FamiliesAreGroupedAcrossShards) {
  MetricsText a, b, all;
  LatencyHistogram h;
  h.Observe(20'000);
  a.Add(Metric::kConnections, "shard=\"0\"", 3);
  a.Add(Metric::kMessagesIn, "shard=\"0\"", 7);
  a.AddHistogram(Metric::kLoopTurn, "shard=\"0\"", h.Read());
  b.Add(Metric::kConnections, "shard=\"1\"", 4);
  b.Add(Metric::kMessagesIn, "shard=\"1\"", 8);
  all.Append(a);
  all.Append(b);
  const std::string text = all.Render();
  EXPECT_EQ(Count(text, "# TYPE ringmq_connections gauge\n"), 1u);
  EXPECT_EQ(Count(text, "# HELP ringmq_connections "), 1u);
  EXPECT_NE(text.find("# TYPE ringmq_connections gauge\n"
                      "ringmq_connections{shard=\"0\"} 3\n"
                      "ringmq_connections{shard=\"1\"} 4\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ringmq_messages_in_total{shard=\"0\"} 7\n"
                      "ringmq_messages_in_total{shard=\"1\"} 8\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE ringmq_loop_turn_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("ringmq_loop_turn_seconds_bucket{shard=\"0\",le=\"1e-05\"} 0\n"
                      "ringmq_loop_turn_seconds_bucket{shard=\"0\",le=\"5e-05\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ringmq_loop_turn_seconds_bucket{shard=\"0\",le=\"+Inf\"} 1\n"
                      "ringmq_loop_turn_seconds_sum{shard=\"0\"} 2e-05\n"
                      "ringmq_loop_turn_seconds_count{shard=\"0\"} 1\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace ringmq::base
