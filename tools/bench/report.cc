// Human and JSON renderings of a run.
#include "tools/bench/report.h"

#include <string>

namespace ringmq::bench {

namespace {

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

void PrintLatencyLine(std::FILE* out, const char* label, const Histogram& h) {
  if (h.count() == 0) return;
  std::fprintf(out, "%-16s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f us  (n=%llu)\n",
               label, Us(h.ValueAtPercentile(50)), Us(h.ValueAtPercentile(90)),
               Us(h.ValueAtPercentile(99)), Us(h.ValueAtPercentile(99.9)), Us(h.max()),
               static_cast<unsigned long long>(h.count()));
}

void PrintLatencyJson(std::FILE* out, const char* name, const Histogram& h) {
  std::fprintf(out,
               "\"%s\":{\"count\":%llu,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
               "\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f}",
               name, static_cast<unsigned long long>(h.count()), Us(h.ValueAtPercentile(50)),
               Us(h.ValueAtPercentile(90)), Us(h.ValueAtPercentile(99)),
               Us(h.ValueAtPercentile(99.9)), Us(h.max()), h.mean() / 1000.0);
}

double ConnectRate(const Report& r, int g) {
  return r.connect_s[g] > 0 ? r.plan->group_size[g] / r.connect_s[g] : 0;
}

}  // namespace

int Report::ExitCode() const {
  if (aborted || merged.failed > 0 || merged.unexpected_closes > 0) return 2;
  if (options->qos > 0 && (lost > 0 || merged.duplicates > 0)) return 3;
  return 0;
}

void PrintHuman(const Report& r, std::FILE* out) {
  const Options& o = *r.options;
  const Result& m = r.merged;
  std::fprintf(out, "ringmq-bench %s  %s %s:%u  MQTT %d  QoS %u  payload %u B  threads %u\n",
               ScenarioName(o.scenario), o.transport.c_str(), o.host.c_str(), o.port,
               static_cast<int>(o.version), o.qos, o.size, o.threads);
  std::fprintf(out, "clients          %zu (%u publishers, %u subscribers)\n",
               r.plan->clients.size(), r.plan->publishers, r.plan->subscribers);
  for (int g = 0; g < 2; ++g) {
    if (r.plan->group_size[g] == 0) continue;
    std::fprintf(out, "connect group %d  %u clients in %.3f s = %.0f/s\n", g, r.plan->group_size[g],
                 r.connect_s[g], ConnectRate(r, g));
  }
  PrintLatencyLine(out, "connect+CONNACK", m.connect_latency);
  if (r.aborted) std::fprintf(out, "ABORTED          %s\n", r.abort_reason);
  if (m.published > 0 || m.received > 0) {
    std::fprintf(out, "messages in      %llu in %.3f s = %.0f msg/s\n",
                 static_cast<unsigned long long>(m.published), r.publish_s, r.rate_in());
    std::fprintf(out, "messages out     %llu in %.3f s = %.0f msg/s\n",
                 static_cast<unsigned long long>(m.received), r.receive_s, r.rate_out());
  }
  PrintLatencyLine(out, "latency", m.latency);
  PrintLatencyLine(out, "ack latency", m.ack_latency);
  PrintLatencyLine(out, "retained storm", m.retained_time);
  if (o.qos > 0) {
    std::fprintf(out, "acknowledged     %llu (rejected %llu, unacked at close %llu)\n",
                 static_cast<unsigned long long>(m.acked),
                 static_cast<unsigned long long>(m.rejected_publishes),
                 static_cast<unsigned long long>(m.inflight_lost));
  }
  if (r.plan->subscribers > 0 && r.plan->has_run_phase) {
    std::fprintf(
        out, "delivery         expected %s, unique %llu, lost %llu, dup %llu, late %llu%s\n",
        r.expected ? std::to_string(r.expected).c_str() : "unknown",
        static_cast<unsigned long long>(m.unique), static_cast<unsigned long long>(r.lost),
        static_cast<unsigned long long>(m.duplicates), static_cast<unsigned long long>(m.late),
        r.plan->check_order ? "" : " (order not checked: shared group)");
  }
  if (m.untracked > 0) {
    std::fprintf(out, "untracked        %llu payloads without a ringmq-bench header\n",
                 static_cast<unsigned long long>(m.untracked));
  }
  std::fprintf(out, "errors           %llu failed, %llu closed unexpectedly\n",
               static_cast<unsigned long long>(m.failed),
               static_cast<unsigned long long>(m.unexpected_closes));
  for (const auto& [why, n] : m.errors) {
    std::fprintf(out, "  %6llu x %s\n", static_cast<unsigned long long>(n), why.c_str());
  }
  std::fprintf(out, "bench CPU        %.2f s over the run (%.0f%% of one core), %.2f s in total\n",
               r.cpu_run_s, r.run_s > 0 ? 100.0 * r.cpu_run_s / r.run_s : 0.0, r.cpu_total_s);
}

void PrintJson(const Report& r, std::FILE* out) {
  const Options& o = *r.options;
  const Result& m = r.merged;
  std::fprintf(out,
               "{\"scenario\":\"%s\",\"transport\":\"%s\",\"host\":\"%s\",\"port\":%u,"
               "\"version\":%d,\"qos\":%u,"
               "\"size\":%u,\"threads\":%u,\"rate\":%g,\"clients\":%zu,\"publishers\":%u,"
               "\"subscribers\":%u,",
               ScenarioName(o.scenario), o.transport.c_str(), JsonEscape(o.host).c_str(), o.port,
               static_cast<int>(o.version), o.qos, o.size, o.threads, o.rate,
               r.plan->clients.size(), r.plan->publishers, r.plan->subscribers);
  std::fprintf(
      out, "\"connect\":{\"clients\":%u,\"seconds\":%.6f,\"rate\":%.1f,\"failed\":%llu},",
      r.plan->group_size[0] + r.plan->group_size[1], r.connect_s[0] + r.connect_s[1],
      (r.connect_s[0] + r.connect_s[1]) > 0
          ? (r.plan->group_size[0] + r.plan->group_size[1]) / (r.connect_s[0] + r.connect_s[1])
          : 0.0,
      static_cast<unsigned long long>(m.failed));
  std::fprintf(out,
               "\"published\":%llu,\"received\":%llu,\"acked\":%llu,\"rate_in\":%.1f,"
               "\"rate_out\":%.1f,\"publish_seconds\":%.6f,\"receive_seconds\":%.6f,",
               static_cast<unsigned long long>(m.published),
               static_cast<unsigned long long>(m.received),
               static_cast<unsigned long long>(m.acked), r.rate_in(), r.rate_out(), r.publish_s,
               r.receive_s);
  std::fprintf(out,
               "\"expected\":%llu,\"unique\":%llu,\"lost\":%llu,\"duplicates\":%llu,"
               "\"late\":%llu,\"gaps\":%llu,\"rejected\":%llu,\"unexpected_closes\":%llu,",
               static_cast<unsigned long long>(r.expected),
               static_cast<unsigned long long>(m.unique), static_cast<unsigned long long>(r.lost),
               static_cast<unsigned long long>(m.duplicates),
               static_cast<unsigned long long>(m.late), static_cast<unsigned long long>(m.gaps),
               static_cast<unsigned long long>(m.rejected_publishes),
               static_cast<unsigned long long>(m.unexpected_closes));
  PrintLatencyJson(out, "latency", m.latency);
  std::fputc(',', out);
  PrintLatencyJson(out, "connect_latency", m.connect_latency);
  std::fputc(',', out);
  PrintLatencyJson(out, "ack_latency", m.ack_latency);
  std::fputc(',', out);
  PrintLatencyJson(out, "retained_time", m.retained_time);
  std::fprintf(out,
               ",\"cpu_run_s\":%.3f,\"cpu_total_s\":%.3f,\"run_s\":%.3f,\"wall_s\":%.3f,"
               "\"aborted\":%s,\"errors\":{",
               r.cpu_run_s, r.cpu_total_s, r.run_s, r.wall_total_s, r.aborted ? "true" : "false");
  bool first = true;
  for (const auto& [why, n] : m.errors) {
    std::fprintf(out, "%s\"%s\":%llu", first ? "" : ",", JsonEscape(why).c_str(),
                 static_cast<unsigned long long>(n));
    first = false;
  }
  std::fprintf(out, "}}\n");
}

}  // namespace ringmq::bench
