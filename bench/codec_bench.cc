// Microbenchmarks of the packet codec: PUBLISH decode/encode (16 B and 1 KiB payloads, 3.1.1 and
// 5), CONNECT and SUBSCRIBE decode, and framing a 64 KiB buffer of small PUBLISH packets.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "proto/codec.h"
#include "proto/framer.h"

namespace ringmq::proto {
namespace {

std::vector<uint8_t> EncodePacket(const Packet& p, Version v) {
  std::vector<uint8_t> out(EncodedSize(p, v));
  (void)Encode(p, v, out);
  return out;
}

Publish SamplePublish(size_t payload_size, std::string& storage) {
  storage.assign(payload_size, 'x');
  Publish p;
  p.qos = 1;
  p.packet_id = 42;
  p.topic = "data/user42/temperature";
  p.payload = storage;
  return p;
}

void BM_DecodePublish(benchmark::State& state) {
  const auto v = static_cast<Version>(state.range(1));
  std::string payload;
  std::vector<uint8_t> wire = EncodePacket(SamplePublish(state.range(0), payload), v);
  Frame f;
  (void)NextFrame(wire, 1u << 28, &f);
  for (auto _ : state) {
    Result<Publish> r = DecodePublish(f.byte0, f.body, v);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodePublish)->ArgsProduct({{16, 1024}, {4, 5}})->ArgNames({"payload", "v"});

void BM_EncodePublish(benchmark::State& state) {
  const auto v = static_cast<Version>(state.range(1));
  std::string payload;
  Publish p = SamplePublish(state.range(0), payload);
  std::vector<uint8_t> out(EncodedSize(p, v));
  for (auto _ : state) {
    size_t n = Encode(p, v, out);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodePublish)->ArgsProduct({{16, 1024}, {4, 5}})->ArgNames({"payload", "v"});

void BM_DecodeConnect(benchmark::State& state) {
  Connect c;
  c.version = Version::kV5;
  c.client_id = "sensor-gateway-0001";
  c.keep_alive = 60;
  c.has_username = true;
  c.username = "FlespiToken abcdefghijklmnopqrstuvwxyz0123456789";
  c.props.session_expiry_interval = 3600;
  c.props.receive_maximum = 100;
  std::vector<uint8_t> wire = EncodePacket(c, Version::kV5);
  Frame f;
  (void)NextFrame(wire, 1u << 28, &f);
  for (auto _ : state) {
    Result<Connect> r = DecodeConnect(f.byte0, f.body);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeConnect);

void BM_DecodeSubscribe(benchmark::State& state) {
  Subscribe s;
  s.packet_id = 7;
  s.subscriptions = {{"data/+/temperature", 1, false, false, 0}, {"alerts/#", 2, false, false, 0}};
  std::vector<uint8_t> wire = EncodePacket(s, Version::kV5);
  Frame f;
  (void)NextFrame(wire, 1u << 28, &f);
  for (auto _ : state) {
    Result<Subscribe> r = DecodeSubscribe(f.byte0, f.body, Version::kV5);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeSubscribe);

// Frames (and decodes) every packet of a 64 KiB buffer of 16-byte-payload QoS 0 PUBLISH packets.
void BM_FrameAndDecode64KiB(benchmark::State& state) {
  std::string payload(16, 'x');
  Publish p;
  p.topic = "data/u1/t";
  p.payload = payload;
  std::vector<uint8_t> one = EncodePacket(p, Version::kV311);
  std::vector<uint8_t> buf;
  while (buf.size() + one.size() <= 65536) buf.insert(buf.end(), one.begin(), one.end());
  const size_t packets = buf.size() / one.size();
  for (auto _ : state) {
    std::span<const uint8_t> rest(buf);
    Frame f;
    while (NextFrame(rest, 1u << 20, &f) == FrameStatus::kComplete) {
      Result<Publish> r = DecodePublish(f.byte0, f.body, Version::kV311);
      benchmark::DoNotOptimize(r);
      rest = rest.subspan(f.size);
    }
  }
  state.SetItemsProcessed(state.iterations() * packets);
}
BENCHMARK(BM_FrameAndDecode64KiB);

}  // namespace
}  // namespace ringmq::proto
