// Report: the merged outcome of a run and its two renderings, a human summary and one JSON object
// (for tools/compare.sh and other scripts; field names are stable, times in microseconds).
// Thread-safety: built and printed by the main thread after the workers joined.
#ifndef RINGMQ_TOOLS_BENCH_REPORT_H_
#define RINGMQ_TOOLS_BENCH_REPORT_H_

#include <cstdint>
#include <cstdio>

#include "tools/bench/options.h"
#include "tools/bench/scenario.h"
#include "tools/bench/worker.h"

namespace ringmq::bench {

struct Report {
  const Options* options = nullptr;
  const Plan* plan = nullptr;
  Result merged;             // every worker's Result merged
  int64_t run_start_ns = 0;  // the first scheduled publish (or the start of the storm)
  double run_s = 0;          // from run_start_ns to the end of the drain
  double publish_s = 0;      // from the first scheduled publish to the last publish
  double receive_s = 0;      // from the first scheduled publish to the last receipt
  double connect_s[2] = {0, 0};
  double cpu_run_s = 0;    // this process's user+system CPU over the run (getrusage)
  double cpu_total_s = 0;  // over the whole process life
  double wall_total_s = 0;
  uint64_t expected = 0;  // deliveries expected (0: unknown)
  uint64_t lost = 0;
  bool aborted = false;  // a phase timed out
  const char* abort_reason = "";

  double rate_in() const { return publish_s > 0 ? merged.published / publish_s : 0; }
  double rate_out() const { return receive_s > 0 ? merged.received / receive_s : 0; }
  // Exit status: 0 fine, 2 clients failed or closed unexpectedly, 3 QoS >= 1 messages lost or
  // duplicated (which no broker may do without a reconnect).
  int ExitCode() const;
};

void PrintHuman(const Report& r, std::FILE* out);
void PrintJson(const Report& r, std::FILE* out);

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_REPORT_H_
