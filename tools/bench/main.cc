// ringmq-bench: an MQTT load generator on io_uring. The main thread parses the options, starts
// one Worker per --threads, steps them through the phases of the scenario (connect, seed, run,
// drain, disconnect), prints progress and the report. See doc/performance.md.
#include <netdb.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include "net/socket.h"
#include "tools/bench/options.h"
#include "tools/bench/payload.h"
#include "tools/bench/report.h"
#include "tools/bench/scenario.h"
#include "tools/bench/transport.h"
#include "tools/bench/worker.h"

namespace ringmq::bench {
namespace {

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

bool Resolve(const Options& o, sockaddr_storage* addr, socklen_t* len, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(o.host.c_str(), std::to_string(o.port).c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    *error = "cannot resolve " + o.host + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

void MergeInto(Result& into, const Result& r) {
  into.latency.Merge(r.latency);
  into.connect_latency.Merge(r.connect_latency);
  into.ack_latency.Merge(r.ack_latency);
  into.retained_time.Merge(r.retained_time);
  into.published += r.published;
  into.acked += r.acked;
  into.received += r.received;
  into.unique += r.unique;
  into.duplicates += r.duplicates;
  into.late += r.late;
  into.gaps += r.gaps;
  into.untracked += r.untracked;
  into.connected += r.connected;
  into.failed += r.failed;
  into.unexpected_closes += r.unexpected_closes;
  into.rejected_publishes += r.rejected_publishes;
  into.inflight_lost += r.inflight_lost;
  into.retained += r.retained;
  for (int g = 0; g < 2; ++g) {
    if (r.connect_first_ns[g] != 0 &&
        (into.connect_first_ns[g] == 0 || r.connect_first_ns[g] < into.connect_first_ns[g])) {
      into.connect_first_ns[g] = r.connect_first_ns[g];
    }
    into.connect_last_ns[g] = std::max(into.connect_last_ns[g], r.connect_last_ns[g]);
  }
  into.last_publish_ns = std::max(into.last_publish_ns, r.last_publish_ns);
  into.last_receive_ns = std::max(into.last_receive_ns, r.last_receive_ns);
  for (const auto& [why, n] : r.errors) into.errors[why] += n;
}

// Steps the workers through the scenario and watches them.
class Driver {
 public:
  Driver(const Options& o, const Plan& plan, std::vector<std::unique_ptr<Worker>>& workers,
         Control& control)
      : o_(o), plan_(plan), workers_(workers), control_(control) {}

  void Run(Report* report) {
    const bool show = o_.progress && (o_.count != 0 || o_.duration_s > 2);
    if (plan_.group_size[0] > 0) {
      SetPhase(Phase::kConnectGroup0);
      if (!WaitFor([&] { return Sum(&Counters::settled, 0) >= plan_.group_size[0]; },
                   o_.connect_timeout_s, show, "connect")) {
        return Abort(report, "connect phase of group 0 timed out");
      }
    }
    if (plan_.publishers > 0 && !plan_.has_run_phase) {  // retained: seed first
      SetPhase(Phase::kSeed);
      if (!WaitFor([&] { return Sum(&Counters::publishers_done) >= 1; }, o_.connect_timeout_s, show,
                   "seed")) {
        return Abort(report, "seeding retained messages timed out");
      }
    }
    const int64_t storm_start = MonoNs();
    const double cpu_start = CpuSeconds();
    if (plan_.group_size[1] > 0) {
      SetPhase(Phase::kConnectGroup1);
      if (!WaitFor([&] { return Sum(&Counters::settled, 1) >= plan_.group_size[1]; },
                   o_.connect_timeout_s, show, "connect")) {
        return Abort(report, "connect phase of group 1 timed out");
      }
    }
    int64_t run_start = storm_start;
    if (plan_.has_run_phase) {
      run_start = MonoNs() + 1'000'000;
      control_.run_start_ns.store(run_start, std::memory_order_relaxed);
      control_.run_end_ns.store(
          o_.count ? 0 : run_start + static_cast<int64_t>(o_.duration_s * 1e9),
          std::memory_order_relaxed);
      report->cpu_run_s = CpuSeconds();
      SetPhase(Phase::kRun);
      const uint64_t clients = plan_.clients.size();
      if (o_.count != 0 && plan_.publishers > 0) {
        WaitFor([&] { return Sum(&Counters::publishers_done) >= plan_.publishers; }, 1e9, show,
                "run");
      } else {
        WaitFor([&] { return Sum(&Counters::closed) >= clients; }, o_.duration_s + 0.001, show,
                "run");
      }
      SetPhase(Phase::kDrain);
      // Drain: until every QoS>0 publish is acknowledged and every expected delivery arrived,
      // or nothing has arrived for half a second, or --drain passed.
      const uint64_t expected = plan_.deliveries_per_publish * Sum(&Counters::published);
      uint64_t last = Sum(&Counters::received);
      int64_t last_change = MonoNs();
      WaitFor(
          [&] {
            const uint64_t received = Sum(&Counters::received);
            if (received != last) {
              last = received;
              last_change = MonoNs();
            }
            const bool acked = Sum(&Counters::inflight) == 0;
            if (acked && expected != 0 && received >= expected) return true;
            return acked && MonoNs() - last_change > 500'000'000;
          },
          o_.drain_s, show, "drain");
    } else {
      // retained: the subscribe storm is the run; wait until every subscriber has everything.
      WaitFor([&] { return Sum(&Counters::retained_complete) >= plan_.subscribers; },
              o_.connect_timeout_s, show, "storm");
      report->cpu_run_s = cpu_start;
    }
    const int64_t run_end = MonoNs();
    report->cpu_run_s = CpuSeconds() - report->cpu_run_s;
    report->run_s = Seconds(run_end - run_start);
    SetPhase(Phase::kDisconnect);
    WaitFor([&] { return Sum(&Counters::closed) >= plan_.clients.size(); }, 3, false, "");
    SetPhase(Phase::kExit);
    report->run_start_ns = run_start;
  }

 private:
  void SetPhase(Phase p) {
    control_.phase_start_ns.store(MonoNs(), std::memory_order_relaxed);
    control_.phase.store(p, std::memory_order_release);
  }

  uint64_t Sum(std::atomic<uint64_t> Counters::*field) const {
    uint64_t n = 0;
    for (const auto& w : workers_) n += (w->counters().*field).load(std::memory_order_relaxed);
    return n;
  }
  uint64_t Sum(std::atomic<uint64_t> (Counters::*field)[2], int g) const {
    uint64_t n = 0;
    for (const auto& w : workers_) n += (w->counters().*field)[g].load(std::memory_order_relaxed);
    return n;
  }

  void Abort(Report* report, const char* why) {
    report->aborted = true;
    report->abort_reason = why;
    SetPhase(Phase::kDisconnect);
    WaitFor([&] { return Sum(&Counters::closed) >= plan_.clients.size(); }, 2, false, "");
    SetPhase(Phase::kExit);
  }

  // Polls `done` every millisecond for at most `timeout_s`; a progress line every second.
  bool WaitFor(const std::function<bool()>& done, double timeout_s, bool show, const char* what) {
    const int64_t start = MonoNs();
    const int64_t deadline = start + static_cast<int64_t>(timeout_s * 1e9);
    int64_t next_line = start + 1'000'000'000;
    uint64_t last_pub = Sum(&Counters::published);
    uint64_t last_recv = Sum(&Counters::received);
    int64_t last_t = start;
    for (;;) {
      if (done()) return true;
      const int64_t now = MonoNs();
      if (now >= deadline) return false;
      if (show && now >= next_line) {
        const uint64_t pub = Sum(&Counters::published);
        const uint64_t recv = Sum(&Counters::received);
        const double dt = Seconds(now - last_t);
        const uint64_t settled = Sum(&Counters::settled, 0) + Sum(&Counters::settled, 1);
        std::fprintf(stderr,
                     "[%6.1fs] %-7s ready %llu/%zu  failed %llu  closed %llu  pub %.0f/s  recv "
                     "%.0f/s  inflight %llu\n",
                     Seconds(now - start), what, static_cast<unsigned long long>(settled),
                     plan_.clients.size(), static_cast<unsigned long long>(Sum(&Counters::failed)),
                     static_cast<unsigned long long>(Sum(&Counters::closed)),
                     static_cast<double>(pub - last_pub) / dt,
                     static_cast<double>(recv - last_recv) / dt,
                     static_cast<unsigned long long>(Sum(&Counters::inflight)));
        last_pub = pub;
        last_recv = recv;
        last_t = now;
        next_line += 1'000'000'000;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  const Options& o_;
  const Plan& plan_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  Control& control_;
};

int Main(int argc, char** argv) {
  Options o;
  int exit_code = 0;
  if (!ParseOptions(argc, argv, &o, &exit_code)) return exit_code;
  Plan plan;
  std::string error;
  if (!MakePlan(o, &plan, &error)) {
    std::fprintf(stderr, "ringmq-bench: %s\n", error.c_str());
    return 1;
  }
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (!Resolve(o, &addr, &addr_len, &error)) {
    std::fprintf(stderr, "ringmq-bench: %s\n", error.c_str());
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  (void)net::RaiseOpenFileLimit();
  const int64_t t0 = MonoNs();

  TransportOptions to;
  to.kind = o.transport;
  to.host = o.host;
  to.port = o.port;
  to.ws_path = o.ws_path;
  to.cafile = o.cafile;
  to.insecure = o.insecure;
  TransportFactory transports;
  if (!transports.Init(to, &error)) {
    std::fprintf(stderr, "ringmq-bench: %s\n", error.c_str());
    return 1;
  }

  Control control;
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < o.threads; ++i) {
    workers.push_back(std::make_unique<Worker>(o, plan, addr, addr_len, transports, control, i));
  }
  std::vector<std::string> errors(o.threads);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.threads; ++i) {
    threads.emplace_back([&, i] {
      if (!workers[i]->Run(&errors[i])) {
        std::fprintf(stderr, "ringmq-bench: thread %u: %s\n", i, errors[i].c_str());
        std::exit(1);  // setup failure: nothing ran yet
      }
    });
  }
  Report report;
  report.options = &o;
  report.plan = &plan;
  Driver(o, plan, workers, control).Run(&report);
  for (auto& t : threads) t.join();

  for (const auto& w : workers) MergeInto(report.merged, w->result());
  Result& m = report.merged;
  for (int g = 0; g < 2; ++g) {
    if (m.connect_first_ns[g] != 0 && m.connect_last_ns[g] > m.connect_first_ns[g]) {
      report.connect_s[g] = Seconds(m.connect_last_ns[g] - m.connect_first_ns[g]);
    }
  }
  const int64_t start = report.run_start_ns;
  // Duration mode: publishing lasts the whole duration even when a blocked broker stopped the
  // publishers from queueing more (a full socket is the broker's doing, not a shorter run).
  if (o.count == 0 && plan.has_run_phase) {
    report.publish_s = o.duration_s;
  } else if (m.last_publish_ns > start) {
    report.publish_s = Seconds(m.last_publish_ns - start);
  }
  if (m.last_receive_ns > start) report.receive_s = Seconds(m.last_receive_ns - start);
  if (plan.has_run_phase && plan.deliveries_per_publish != 0) {
    report.expected = plan.deliveries_per_publish * m.published;
    report.lost = report.expected > m.unique ? report.expected - m.unique : 0;
  } else {
    report.lost = m.gaps;
  }
  report.cpu_total_s = CpuSeconds();
  report.wall_total_s = Seconds(MonoNs() - t0);

  if (o.json) PrintJson(report, stdout);
  if (!o.quiet) PrintHuman(report, o.json ? stderr : stdout);
  return report.ExitCode();
}

}  // namespace
}  // namespace ringmq::bench

int main(int argc, char** argv) { return ringmq::bench::Main(argc, argv); }
