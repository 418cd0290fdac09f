// The Prometheus text of the shards' metric families.
#include "base/metrics.h"

#include <fmt/format.h>

namespace ringmq::base {

namespace {

struct Family {
  const char* name;
  const char* type;
  const char* help;
};

// Indexed by Metric.
constexpr std::array<Family, kMetricCount> kFamilies = {{
    {"ringmq_connections", "gauge", "Connections with a completed CONNECT"},
    {"ringmq_connects_total", "counter", "CONNECTs accepted"},
    {"ringmq_sessions", "gauge", "Sessions, online and offline"},
    {"ringmq_subscriptions", "gauge", "Subscriptions of the sessions"},
    {"ringmq_retained_messages", "gauge", "Retained messages"},
    {"ringmq_queued_messages", "gauge", "QoS 1/2 messages waiting in session queues"},
    {"ringmq_queued_bytes", "gauge",
     "Bytes of the queued messages, as max_session_queue_bytes counts them"},
    {"ringmq_spilled_messages", "gauge",
     "Queued messages in spill files on disk (past queue_memory_bytes of their session)"},
    {"ringmq_queue_memory_bytes", "gauge",
     "Bytes of the queues' in-memory parts on this shard (bounded by max_queue_memory_bytes)"},
    {"ringmq_inflight_messages", "gauge", "QoS 1/2 messages sent and not yet acknowledged"},
    {"ringmq_messages_in_total", "counter", "PUBLISH packets received (and REST publishes)"},
    {"ringmq_messages_out_total", "counter", "PUBLISH packets sent"},
    {"ringmq_bytes_in_total", "counter", "Bytes received from MQTT connections"},
    {"ringmq_bytes_out_total", "counter", "Bytes sent to MQTT connections"},
    {"ringmq_dropped_total", "counter", "Messages dropped, by reason"},
    {"ringmq_refused_total", "counter",
     "CONNECTs refused and messages not stored or not acknowledged, by limit"},
    {"ringmq_retained_bytes", "gauge", "Topic and payload bytes of the retained messages"},
    {"ringmq_shared_round_robin_groups", "gauge",
     "Shared subscription groups this shard publishes to round robin (dropped without members)"},
    {"ringmq_clients_counted", "gauge",
     "Connections counted against max_connections (broker-wide)"},
    {"ringmq_retained_bytes_total", "gauge",
     "Retained bytes counted against max_retained_bytes (broker-wide)"},
    {"ringmq_queue_disk_bytes", "gauge",
     "Disk bytes of the spill files, counted against max_queue_disk_bytes (broker-wide)"},
    {"ringmq_log_lines_dropped_total", "counter",
     "Log lines dropped because stderr was not read fast enough (the log queue was full)"},
    {"ringmq_cross_shard_ring_messages", "gauge",
     "Messages in the ring from one shard to another, not yet taken by the receiver"},
    {"ringmq_cross_shard_outbox_messages", "gauge",
     "Messages waiting for room in the ring to another shard"},
    {"ringmq_input_pauses_total", "counter",
     "Connections whose PUBLISH input paused because an outbox to another shard was full"},
    {"ringmq_input_paused_seconds_total", "counter",
     "Time during which a shard's PUBLISH input was paused by a full outbox to another shard"},
    {"ringmq_accept_pauses_total", "counter",
     "Times a listener stopped accepting for a tick because the process was out of file "
     "descriptors"},
    {"ringmq_loop_turn_seconds", "histogram",
     "Work time of one event loop turn, from wake-up to the next wait"},
    {"ringmq_wal_records_total", "counter", "Records appended to the write-ahead log"},
    {"ringmq_wal_bytes_total", "counter", "Bytes written to the write-ahead log"},
    {"ringmq_wal_syncs_total", "counter", "fdatasyncs of the write-ahead log completed"},
    {"ringmq_wal_fsync_seconds", "histogram",
     "Time from submitting an fdatasync of the write-ahead log to its completion"},
}};

// The bucket bounds of kLatencyBoundsNs in seconds.
constexpr std::array<const char*, LatencyHistogram::kBuckets> kLe = {
    "1e-05", "5e-05", "0.0001", "0.0005", "0.001", "0.005", "0.01", "0.05", "+Inf"};

}  // namespace

void MetricsText::Add(Metric m, std::string_view labels, uint64_t value) {
  fmt::format_to(std::back_inserter(samples_[static_cast<size_t>(m)]), "{}{{{}}} {}\n",
                 kFamilies[static_cast<size_t>(m)].name, labels, value);
}

void MetricsText::AddSeconds(Metric m, std::string_view labels, uint64_t ns) {
  fmt::format_to(std::back_inserter(samples_[static_cast<size_t>(m)]), "{}{{{}}} {}\n",
                 kFamilies[static_cast<size_t>(m)].name, labels, static_cast<double>(ns) / 1e9);
}

void MetricsText::AddHistogram(Metric m, std::string_view labels,
                               const LatencyHistogram::Snapshot& h) {
  std::string& out = samples_[static_cast<size_t>(m)];
  const char* name = kFamilies[static_cast<size_t>(m)].name;
  const char* sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    cumulative += h.buckets[i];
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep,
                   kLe[i], cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels,
                 static_cast<double>(h.sum_ns) / 1e9, name, labels, h.count);
}

void MetricsText::Append(const MetricsText& other) {
  for (size_t i = 0; i < kMetricCount; ++i) samples_[i] += other.samples_[i];
}

std::string MetricsText::Render() const {
  std::string out;
  for (size_t i = 0; i < kMetricCount; ++i) {
    const Family& f = kFamilies[i];
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name,
                   f.type);
    out += samples_[i];
  }
  return out;
}

}  // namespace ringmq::base
