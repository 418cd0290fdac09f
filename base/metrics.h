// What shards count and how /metrics shows it (doc/rest-api.md lists the families).
//
//   Counter           a 64-bit count that only grows, one writer thread (its shard), any readers.
//   Gauge             a 64-bit value that is set (a size, a number of connections), same threads.
//   LatencyHistogram  fixed buckets (10us .. 50ms, +Inf) of Counters plus a sum: one Observe per
//                     loop turn or fdatasync, no lock, no allocation.
//   MetricsText       the Prometheus text of one scrape, kept per family so that the samples of
//                     every shard end up grouped under one HELP and one TYPE line each, as the
//                     text format requires.
//
// Thread-safety: Counter, Gauge and LatencyHistogram have a single writer; readers on other threads
// load relaxed and may see a slightly old value (a histogram read concurrently with its writer may
// be off by the observations in progress; read on the writer's thread it is exact). MetricsText is
// a plain value.
#ifndef RINGMQ_BASE_METRICS_H_
#define RINGMQ_BASE_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringmq::base {

// A counter with one writer and any number of readers ($SYS on shard 0, /metrics): the writer adds
// with a relaxed load and store (no locked instruction on the hot path); readers load relaxed and
// may see a slightly old value, which is all statistics need.
class Counter {
 public:
  void Add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A value its writer sets (Prometheus "gauge"); the same threading as Counter.
class Gauge {
 public:
  void Set(uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Durations in fixed buckets. Bucket i counts observations <= kLatencyBoundsNs[i] (and above the
// previous bound); the last bucket counts those above every bound (+Inf).
inline constexpr std::array<uint64_t, 8> kLatencyBoundsNs = {
    10'000, 50'000, 100'000, 500'000, 1'000'000, 5'000'000, 10'000'000, 50'000'000};

class LatencyHistogram {
 public:
  static constexpr size_t kBuckets = kLatencyBoundsNs.size() + 1;

  // REQUIRES: called by the single writer.
  void Observe(uint64_t ns) {
    size_t i = 0;
    while (i < kLatencyBoundsNs.size() && ns > kLatencyBoundsNs[i]) ++i;
    buckets_[i].Add();
    sum_ns_.Add(ns);
  }

  struct Snapshot {
    std::array<uint64_t, kBuckets> buckets{};  // not cumulative
    uint64_t sum_ns = 0;
    uint64_t count = 0;  // the sum of the buckets
  };
  Snapshot Read() const {
    Snapshot s;
    for (size_t i = 0; i < kBuckets; ++i) {
      s.buckets[i] = buckets_[i].Get();
      s.count += s.buckets[i];
    }
    s.sum_ns = sum_ns_.Get();
    return s;
  }

 private:
  std::array<Counter, kBuckets> buckets_;
  Counter sum_ns_;
};

// The metric families of the shards, in output order.
enum class Metric : uint8_t {
  kConnections,
  kConnectsTotal,
  kSessions,
  kSubscriptions,
  kRetained,
  kQueued,
  kQueuedBytes,
  kSpilledMessages,
  kQueueMemoryBytes,
  kInflight,
  kMessagesIn,
  kMessagesOut,
  kBytesIn,
  kBytesOut,
  kDropped,
  kRefused,
  kRetainedBytes,
  kSharedRoundRobin,
  kClientsCounted,
  kRetainedBytesTotal,
  kQueueDiskBytes,
  kLogLinesDropped,
  kRingMessages,
  kOutboxMessages,
  kInputPauses,
  kInputPausedSeconds,
  kAcceptPauses,
  kLoopTurn,
  kWalRecords,
  kWalBytes,
  kWalSyncs,
  kWalFsync,
  kCount,
};
inline constexpr size_t kMetricCount = static_cast<size_t>(Metric::kCount);

class MetricsText {
 public:
  // One sample: `labels` without braces, e.g. shard="0",reason="queue_full".
  void Add(Metric m, std::string_view labels, uint64_t value);
  // A sample in seconds, from nanoseconds.
  void AddSeconds(Metric m, std::string_view labels, uint64_t ns);
  // A histogram's _bucket (cumulative, le in seconds), _sum (seconds) and _count samples.
  void AddHistogram(Metric m, std::string_view labels, const LatencyHistogram::Snapshot& h);
  // Appends other's samples after this one's, family by family.
  void Append(const MetricsText& other);
  // HELP and TYPE once per family, then its samples.
  std::string Render() const;

 private:
  std::array<std::string, kMetricCount> samples_;
};

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_METRICS_H_
