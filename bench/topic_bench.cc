// Microbenchmarks of topic matching and MQTT UTF-8 validation on typical broker inputs: Matches
// with a '+' and a '#' filter against "data/user42/temp", and IsValidMqttUtf8 on a 64-byte ASCII
// topic.
#include <benchmark/benchmark.h>

#include <string_view>

#include "base/utf8.h"
#include "proto/topic.h"

namespace ringmq::proto {
namespace {

void BM_MatchesPlus(benchmark::State& state) {
  std::string_view filter = "data/+/temp";
  std::string_view topic = "data/user42/temp";
  for (auto _ : state) {
    benchmark::DoNotOptimize(filter);
    benchmark::DoNotOptimize(topic);
    benchmark::DoNotOptimize(Matches(filter, topic));
  }
}
BENCHMARK(BM_MatchesPlus);

void BM_MatchesHash(benchmark::State& state) {
  std::string_view filter = "data/#";
  std::string_view topic = "data/user42/temp";
  for (auto _ : state) {
    benchmark::DoNotOptimize(filter);
    benchmark::DoNotOptimize(topic);
    benchmark::DoNotOptimize(Matches(filter, topic));
  }
}
BENCHMARK(BM_MatchesHash);

void BM_IsValidMqttUtf8Ascii64(benchmark::State& state) {
  std::string_view s = "building-7/floor-12/room-1234/sensors/temperature/celsius/latest";  // 64 B
  for (auto _ : state) {
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(base::IsValidMqttUtf8(s));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 64);
}
BENCHMARK(BM_IsValidMqttUtf8Ascii64);

}  // namespace
}  // namespace ringmq::proto
