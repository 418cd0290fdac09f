// The load generator's payload header: what a publisher writes into the first 16 bytes of every
// payload and a subscriber reads back to measure end-to-end latency and check the stream.
//
//   bytes 0..7   send timestamp, ns, CLOCK_MONOTONIC, little endian. For a rate-limited publisher
//                this is the time the message was *scheduled* for, not when it left, so a stalled
//                broker shows up as latency (no coordinated omission).
//   bytes 8..11  sequence number per publisher, from 0, little endian
//   bytes 12..15 publisher id (unique within one run; see --start-number), little endian
// The rest of the payload is filler. Payloads shorter than kPayloadHeader are refused by the
// option parser. Thread-safety: pure functions.
#ifndef RINGMQ_TOOLS_BENCH_PAYLOAD_H_
#define RINGMQ_TOOLS_BENCH_PAYLOAD_H_

#include <time.h>

#include <cstdint>
#include <cstring>

namespace ringmq::bench {

inline constexpr size_t kPayloadHeader = 16;

struct PayloadHeader {
  uint64_t timestamp_ns = 0;
  uint32_t seq = 0;
  uint32_t publisher = 0;
};

inline int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// REQUIRES: out has kPayloadHeader bytes. (x86-64 and aarch64 Linux are little endian.)
inline void WritePayloadHeader(const PayloadHeader& h, uint8_t* out) {
  std::memcpy(out, &h.timestamp_ns, 8);
  std::memcpy(out + 8, &h.seq, 4);
  std::memcpy(out + 12, &h.publisher, 4);
}

// False when the payload is too short to carry a header.
inline bool ReadPayloadHeader(const uint8_t* p, size_t n, PayloadHeader* h) {
  if (n < kPayloadHeader) return false;
  std::memcpy(&h->timestamp_ns, p, 8);
  std::memcpy(&h->seq, p + 8, 4);
  std::memcpy(&h->publisher, p + 12, 4);
  return true;
}

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_PAYLOAD_H_
