// Microbenchmarks of the write-ahead log (wal/wal.h): the encode cost of a queued-message record
// with a 16-byte payload, CRC32C by size, WalWriter::Append throughput, group commit through a
// real io_uring, and the fdatasync latency of the data directory.
//
// The directory is $RINGMQ_WAL_BENCH_DIR, or the current directory: run it from the data
// directory's file system to measure that disk. Results in doc/wal-format.md.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/crc32c.h"
#include "net/ring.h"
#include "net/user_data.h"
#include "wal/wal.h"
#include "wal/wal_records.h"

namespace ringmq::wal {
namespace {

constexpr uint8_t kWalKind = 1;

std::string BenchDir() {
  const char* d = std::getenv("RINGMQ_WAL_BENCH_DIR");
  std::string base = d != nullptr ? d : ".";
  std::string tmpl = base + "/wal-bench-XXXXXX";
  return ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
}

WalMessageQueued Queued16() {
  WalMessageQueued q;
  q.client_id = "sensor-client-0042";
  q.message_id = 1'234'567;
  q.message.topic = "telemetry/site-7/sensor-0042/temp";
  q.message.payload = std::string(16, 'p');
  q.message.qos = 1;
  return q;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Encoding + framing (CRC included) of one record into a reused buffer.
void BM_EncodeQueued16(benchmark::State& state) {
  const WalMessageQueued q = Queued16();
  std::string out;
  out.reserve(256);
  for (auto _ : state) {
    out.clear();
    wal::AppendWalRecord(q, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["record_bytes"] = static_cast<double>(out.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeQueued16);

void BM_DecodeQueued16(benchmark::State& state) {
  std::string body;
  Encode(Queued16(), &body);
  WalMessageQueued q;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Decode(body, &q));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeQueued16);

void BM_Crc32c(benchmark::State& state) {
  const std::string data(static_cast<size_t>(state.range(0)), 'x');
  const bool hardware = state.range(1) != 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(hardware ? base::Crc32c(data)
                                      : base::Crc32cPortable(0, data.data(), data.size()));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.SetLabel(hardware ? (base::Crc32cIsHardware() ? "sse4.2" : "table") : "table");
}
BENCHMARK(BM_Crc32c)->ArgsProduct({{64, 4096}, {0, 1}});

// One iteration = one loop turn: `range(0)` appends, then Flush and the completions that are
// ready (durability none: writes only, no fdatasync). Measures what Append costs the shard.
void BM_WalAppendNone(benchmark::State& state) {
  const std::string dir = BenchDir();
  net::Ring ring;
  std::string error;
  WalWriter w;
  if (dir.empty() || !ring.Init(64, 0, &error) ||
      !w.Open({dir, 0, uint64_t{64} << 20, WalDurability::kNone, 10}, 1, &error)) {
    state.SkipWithError(("setup: " + error).c_str());
    return;
  }
  const WalMessageQueued q = Queued16();
  const auto per_turn = state.range(0);
  for (auto _ : state) {
    for (int64_t i = 0; i < per_turn; ++i) w.Append(q);
    w.Flush(ring, kWalKind, 0);
    ring.SubmitAndWait(0, 0);
    ring.ForEachCqe([&](const net::Completion& c) { w.OnCompletion(c); });
  }
  while (!w.idle()) {
    w.Flush(ring, kWalKind, 0);
    ring.SubmitAndWait(1, 100'000'000);
    ring.ForEachCqe([&](const net::Completion& c) { w.OnCompletion(c); });
  }
  state.SetItemsProcessed(state.iterations() * per_turn);
  state.SetBytesProcessed(static_cast<int64_t>(w.stats().bytes));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalAppendNone)->Arg(1)->Arg(64)->Arg(1024);

// Group commit with durability sync: one iteration = `range(0)` appends, then loop turns until they
// are durable (write + fdatasync through the ring). Time per iteration = commit latency.
void BM_WalSyncCommit(benchmark::State& state) {
  const std::string dir = BenchDir();
  net::Ring ring;
  std::string error;
  WalWriter w;
  if (dir.empty() || !ring.Init(64, 0, &error) ||
      !w.Open({dir, 0, uint64_t{64} << 20, WalDurability::kSync, 10}, 1, &error)) {
    state.SkipWithError(("setup: " + error).c_str());
    return;
  }
  const WalMessageQueued q = Queued16();
  const auto batch = state.range(0);
  for (auto _ : state) {
    uint64_t seq = 0;
    for (int64_t i = 0; i < batch; ++i) seq = w.Append(q);
    while (w.durable_seq() < seq && !w.failed()) {
      w.Flush(ring, kWalKind, NowMs());
      ring.SubmitAndWait(1, 1'000'000'000);
      ring.ForEachCqe([&](const net::Completion& c) { w.OnCompletion(c); });
    }
  }
  if (w.failed()) state.SkipWithError("write failed");
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["fsyncs"] = static_cast<double>(w.stats().syncs);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalSyncCommit)
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The disk itself: append 4 KiB (or range(0) bytes) and fdatasync, with plain syscalls.
void BM_Fdatasync(benchmark::State& state) {
  const std::string dir = BenchDir();
  const std::string path = dir + "/fsync.dat";
  const int fd = dir.empty() ? -1 : ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.SkipWithError("cannot create the file");
    return;
  }
  const std::string block(static_cast<size_t>(state.range(0)), 'w');
  off_t off = 0;
  for (auto _ : state) {
    if (::pwrite(fd, block.data(), block.size(), off) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write or fdatasync failed");
      break;
    }
    off += static_cast<off_t>(block.size());
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Fdatasync)
    ->Arg(64)
    ->Arg(4096)
    ->Arg(65536)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ringmq::wal
