// Microbenchmarks of smp/spsc_ring.h: per-item cost of the ring in one thread (no coherence
// traffic), cross-thread throughput by batch size, and the cost of the seq_cst publication that the
// sleep/wake protocol of RingMatrix adds.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "smp/spsc_ring.h"

namespace ringmq::smp {
namespace {

using Ring = SpscRing<uint64_t, 1024>;

// Push a batch, pop it, same thread: the instruction cost per item.
void BM_SameThreadBatch(benchmark::State& state) {
  auto ring = std::make_unique<Ring>();
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::vector<uint64_t> items(batch, 1);
  uint64_t sum = 0;
  for (auto _ : state) {
    ring->TryPushBatch(items.data(), batch);
    ring->PopBatch([&sum](uint64_t&& v) { sum += v; }, batch);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_SameThreadBatch)->Arg(1)->Arg(16)->Arg(64);

// Producer thread -> consumer (benchmark) thread, `range(0)` items per push.
void BM_CrossThread(benchmark::State& state) {
  auto ring = std::make_unique<Ring>();
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    std::vector<uint64_t> items(batch, 1);
    while (!stop.load(std::memory_order_relaxed)) {
      if (ring->TryPushBatch(items.data(), batch) == 0) std::this_thread::yield();
    }
  });
  uint64_t got = 0;
  for (auto _ : state) {
    // One iteration = 4096 items received.
    uint64_t n = 0;
    while (n < 4096) n += ring->PopBatch([](uint64_t&&) {}, 256);
    got += n;
  }
  stop.store(true);
  producer.join();
  state.SetItemsProcessed(static_cast<int64_t>(got));
}
BENCHMARK(BM_CrossThread)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

// Publication cost: release store vs the seq_cst store + flag check of RingMatrix::PushBatch.
void BM_PushRelease(benchmark::State& state) {
  auto ring = std::make_unique<Ring>();
  uint64_t item = 1;
  for (auto _ : state) {
    ring->TryPushBatch(&item, 1, TailOrder::kRelease);
    ring->PopBatch([](uint64_t&&) {}, 1);
  }
}
BENCHMARK(BM_PushRelease);

void BM_MatrixPushWithWakeCheck(benchmark::State& state) {
  RingMatrix<uint64_t, 1024> m(2);
  uint64_t item = 1;
  bool wake = false;
  for (auto _ : state) {
    wake |= m.PushBatch(0, 1, &item, 1).needs_wake;
    m.Drain(
        1, [](std::size_t, uint64_t&&) {}, 1);
  }
  benchmark::DoNotOptimize(wake);
}
BENCHMARK(BM_MatrixPushWithWakeCheck);

}  // namespace
}  // namespace ringmq::smp
