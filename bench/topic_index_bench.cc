// Microbenchmarks of route/topic_index.h (global index) and route/local_trie.h (per-shard trie):
// publish-path lookups by number of filters, lookups from several threads at once, and the cost of
// a subscribe/unsubscribe under a node with many siblings (hashed child tables).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "route/local_trie.h"
#include "route/topic_index.h"
#include "smp/qsbr.h"

namespace ringmq::route {
namespace {

constexpr std::size_t kShards = 8;

// The DESIGN.md section 1 shape: `users` filters "data/{u}/#" spread over shards, plus a few
// wildcard subscribers ("data/#", "data/+/s1") and "$SYS/#". Passes quiescent points as shard
// loops would: without them, every replaced child table of the wide "data" node stays retired.
void Populate(smp::Qsbr& qsbr, TopicIndex& index, int users) {
  for (int u = 0; u < users; ++u) {
    index.Add(u % kShards, "data/" + std::to_string(u) + "/#");
    if (u % 64 == 63) {
      for (std::size_t s = 0; s < kShards; ++s) qsbr.Quiescent(s);
      for (std::size_t s = 0; s < kShards; ++s) qsbr.Quiescent(s);
    }
  }
  index.Add(0, "data/#");
  index.Add(1, "data/+/s1");
  index.Add(2, "$SYS/#");
}

std::vector<std::string> Topics(int users) {
  std::vector<std::string> topics;
  topics.reserve(1024);
  for (int i = 0; i < 1024; ++i) {
    topics.push_back("data/" + std::to_string((i * 7919) % users) + "/s" + std::to_string(i % 4));
  }
  return topics;
}

void BM_ShardsFor(benchmark::State& state) {
  const int users = static_cast<int>(state.range(0));
  smp::Qsbr qsbr(kShards);
  TopicIndex index(qsbr);
  Populate(qsbr, index, users);
  const auto topics = Topics(users);
  uint64_t acc = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    acc |= index.ShardsFor(topics[i++ & 1023]);
    if ((i & 255) == 0) qsbr.Quiescent(0);
  }
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ShardsFor)->Arg(100)->Arg(10'000)->Arg(30'000);

// Several shard threads reading at once: reads write nothing shared, so they should scale.
class SharedIndex : public benchmark::Fixture {
 public:
  void SetUp(const benchmark::State& state) override {
    if (state.thread_index() == 0) {
      qsbr = std::make_unique<smp::Qsbr>(kShards);
      index = std::make_unique<TopicIndex>(*qsbr);
      Populate(*qsbr, *index, 10'000);
      topics = Topics(10'000);
    }
  }
  void TearDown(const benchmark::State& state) override {
    if (state.thread_index() == 0) {
      index.reset();
      qsbr.reset();
    }
  }
  std::unique_ptr<smp::Qsbr> qsbr;
  std::unique_ptr<TopicIndex> index;
  std::vector<std::string> topics;
};

BENCHMARK_DEFINE_F(SharedIndex, ShardsForThreads)(benchmark::State& state) {
  const auto self = static_cast<std::size_t>(state.thread_index());
  uint64_t acc = 0;
  std::size_t i = self * 131;
  for (auto _ : state) {
    acc |= index->ShardsFor(topics[i++ & 1023]);
    if ((i & 255) == 0) qsbr->Quiescent(self);
  }
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK_REGISTER_F(SharedIndex, ShardsForThreads)->Threads(1)->Threads(2)->UseRealTime();

// Subscribe + unsubscribe of one filter under a node that already has `range(0)` children.
void BM_AddRemoveWithSiblings(benchmark::State& state) {
  const int users = static_cast<int>(state.range(0));
  smp::Qsbr qsbr(kShards);
  TopicIndex index(qsbr);
  Populate(qsbr, index, users);
  const std::string filter = "data/new-user/#";
  for (auto _ : state) {
    index.Add(3, filter);
    index.Remove(3, filter);
    qsbr.Quiescent(3);
    for (std::size_t s = 0; s < kShards; ++s) qsbr.Quiescent(s);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_AddRemoveWithSiblings)->Arg(10)->Arg(1'000)->Arg(30'000);

// Add/Remove of a subscription that keeps its node alive (count 1 -> 2 -> 1): no CoW.
void BM_AddRemoveExistingFilter(benchmark::State& state) {
  smp::Qsbr qsbr(kShards);
  TopicIndex index(qsbr);
  Populate(qsbr, index, 10'000);
  for (auto _ : state) {
    index.Add(3, "data/11/#");
    index.Remove(3, "data/11/#");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_AddRemoveExistingFilter);

void BM_LocalTrieMatch(benchmark::State& state) {
  const int users = static_cast<int>(state.range(0));
  LocalTrie<int> trie;
  for (int u = 0; u < users; ++u) trie.Insert("data/" + std::to_string(u) + "/#", u);
  trie.Insert("data/+/s1", -1);
  const auto topics = Topics(users);
  int64_t hits = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    trie.Match(topics[i++ & 1023], [&hits](const int&) { ++hits; });
  }
  benchmark::DoNotOptimize(hits);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_LocalTrieMatch)->Arg(100)->Arg(10'000)->Arg(100'000);

}  // namespace
}  // namespace ringmq::route
