// Issue 16 item 6, wildcard scale: the routing structures of a broker with 1,000,000
// subscriptions, exact and wildcard mixed, on 2 shards (doc/performance.md, "Wildcard scale").
//
// The world: topics "f/{a}/{b}/{c}" with a, b, c in [0, 100) (1M topics); subscriptions drawn
// (fixed seed) from six shapes:
//   60 % f/a/b/c    20 % f/a/b/+    10 % f/a/+/c    5 % f/+/b/c    4 % f/a/#    1 % f/+/+/c
// subscription i belongs to shard i % 2. As in the broker, every subscription goes into the shared
// TopicIndex (filter -> shard mask) and into its shard's LocalTrie, whose value here has the size
// of the broker's (Router::LocalSub: a session pointer and the subscription options, 16 bytes).
// A publish is what a shard does for one message: ShardsFor(topic), then the Match of the trie of
// each shard in the mask.
//
// Reported as counters: bytes per subscription (RSS growth while building, allocator included),
// distinct filters, the build rate, and deliveries per publish. The churn benchmark runs a second
// thread, as shard 1, that subscribes and unsubscribes 50,000 filters a second in the shared index
// while shard 0 publishes.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "route/local_trie.h"
#include "route/topic_index.h"
#include "smp/qsbr.h"

namespace ringmq::route {
namespace {

constexpr std::size_t kShards = 2;
constexpr int kSubscriptions = 1'000'000;
constexpr int kLevel = 100;  // values per topic level

struct LocalSub {  // the size of broker::Router::LocalSub
  void* session;
  uint64_t options;
};

std::string Filter(std::mt19937_64& rng) {
  auto v = [&rng] { return std::to_string(rng() % kLevel); };
  const unsigned shape = static_cast<unsigned>(rng() % 100);
  if (shape < 60) return "f/" + v() + "/" + v() + "/" + v();
  if (shape < 80) return "f/" + v() + "/" + v() + "/+";
  if (shape < 90) return "f/" + v() + "/+/" + v();
  if (shape < 95) return "f/+/" + v() + "/" + v();
  if (shape < 99) return "f/" + v() + "/#";
  return "f/+/+/" + v();
}

std::vector<std::string> Topics(std::mt19937_64& rng) {
  std::vector<std::string> topics;
  topics.reserve(4096);
  for (int i = 0; i < 4096; ++i) {
    topics.push_back("f/" + std::to_string(rng() % kLevel) + "/" + std::to_string(rng() % kLevel) +
                     "/" + std::to_string(rng() % kLevel));
  }
  return topics;
}

long RssBytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

struct World {
  smp::Qsbr qsbr{kShards};
  TopicIndex index{qsbr};
  LocalTrie<LocalSub> tries[kShards];
  std::vector<std::string> topics;
  double bytes_per_sub = 0;
  double build_per_s = 0;
  double distinct = 0;

  World() {
    std::mt19937_64 rng(42);
    std::vector<std::string> filters;
    filters.reserve(kSubscriptions);
    for (int i = 0; i < kSubscriptions; ++i) filters.push_back(Filter(rng));
    distinct =
        static_cast<double>(std::unordered_set<std::string>(filters.begin(), filters.end()).size());
    topics = Topics(rng);
    const long before = RssBytes();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kSubscriptions; ++i) {
      const std::size_t shard = static_cast<std::size_t>(i) % kShards;
      index.Add(shard, filters[static_cast<std::size_t>(i)]);
      tries[shard].Insert(filters[static_cast<std::size_t>(i)],
                          LocalSub{&tries[shard], static_cast<uint64_t>(i)});
      if (i % 64 == 63) {  // quiescent points, as the shard loops pass them
        for (std::size_t s = 0; s < kShards; ++s) qsbr.Quiescent(s);
      }
    }
    for (std::size_t s = 0; s < kShards; ++s) qsbr.Quiescent(s);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bytes_per_sub = static_cast<double>(RssBytes() - before) / kSubscriptions;
    build_per_s = kSubscriptions / seconds;
    qsbr.Offline(1);  // shard 1 comes back for the churn benchmark only
  }
};

World& TheWorld() {
  static World w;
  return w;
}

void Report(benchmark::State& state, const World& w, double deliveries) {
  state.counters["bytes_per_sub"] = w.bytes_per_sub;
  state.counters["distinct_filters"] = w.distinct;
  state.counters["subscribes_per_s_build"] = w.build_per_s;
  state.counters["deliveries_per_publish"] =
      deliveries / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// One publish: the shards to post to, then each shard's match.
int64_t Publish(World& w, const std::string& topic) {
  int64_t n = 0;
  const uint64_t mask = w.index.ShardsFor(topic);
  for (std::size_t s = 0; s < kShards; ++s) {
    if (mask >> s & 1) w.tries[s].Match(topic, [&n](const LocalSub&) { ++n; });
  }
  return n;
}

void BM_WildcardScale_Publish(benchmark::State& state) {
  World& w = TheWorld();
  int64_t deliveries = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    deliveries += Publish(w, w.topics[i++ & 4095]);
    if ((i & 255) == 0) w.qsbr.Quiescent(0);
  }
  Report(state, w, static_cast<double>(deliveries));
}
BENCHMARK(BM_WildcardScale_Publish)->Unit(benchmark::kNanosecond);

// A client subscribes to a filter and unsubscribes again, on shard 0: index and trie.
void BM_WildcardScale_SubscribeUnsubscribe(benchmark::State& state) {
  World& w = TheWorld();
  std::mt19937_64 rng(7);
  std::vector<std::string> filters;
  filters.reserve(4096);
  for (int i = 0; i < 4096; ++i) filters.push_back(Filter(rng));
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& f = filters[i++ & 4095];
    w.index.Add(0, f);
    w.tries[0].Insert(f, LocalSub{nullptr, 0});
    w.index.Remove(0, f);
    w.tries[0].Erase(f, [](const LocalSub& v) { return v.session == nullptr; });
    if ((i & 63) == 0) w.qsbr.Quiescent(0);
  }
  w.qsbr.Quiescent(0);
  Report(state, w, 0);
}
BENCHMARK(BM_WildcardScale_SubscribeUnsubscribe);

// Publishing on shard 0 while shard 1 subscribes and unsubscribes 50,000 filters a second in the
// shared index (batches of 500 every 10 ms): the lock-free readers against a writer.
void BM_WildcardScale_PublishUnderChurn(benchmark::State& state) {
  World& w = TheWorld();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> churned{0};
  std::thread churn([&w, &stop, &churned] {
    w.qsbr.Online(1);
    std::mt19937_64 rng(9);
    std::vector<std::string> filters;
    filters.reserve(500);
    for (int i = 0; i < 500; ++i) filters.push_back(Filter(rng));
    auto next = std::chrono::steady_clock::now();
    while (!stop.load(std::memory_order_relaxed)) {
      // Half the filters in, the other half out, then the reverse (the first pass removes
      // filters not there yet: a no-op).
      for (int k = 0; k < 250; ++k) {
        w.index.Add(1, filters[static_cast<std::size_t>(k)]);
        w.index.Remove(1, filters[static_cast<std::size_t>(k) + 250]);
      }
      for (int k = 0; k < 250; ++k) {
        w.index.Remove(1, filters[static_cast<std::size_t>(k)]);
        w.index.Add(1, filters[static_cast<std::size_t>(k) + 250]);
      }
      churned.fetch_add(1000, std::memory_order_relaxed);
      w.qsbr.Quiescent(1);
      next += std::chrono::milliseconds(20);  // 1,000 operations per 20 ms: 50,000/s
      std::this_thread::sleep_until(next);
    }
    w.qsbr.Offline(1);
  });
  int64_t deliveries = 0;
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    deliveries += Publish(w, w.topics[i++ & 4095]);
    if ((i & 255) == 0) w.qsbr.Quiescent(0);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop.store(true);
  churn.join();
  Report(state, w, static_cast<double>(deliveries));
  state.counters["churn_per_s"] = static_cast<double>(churned.load()) / seconds;
}
BENCHMARK(BM_WildcardScale_PublishUnderChurn)->UseRealTime();

}  // namespace
}  // namespace ringmq::route
