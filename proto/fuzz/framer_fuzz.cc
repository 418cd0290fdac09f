// libFuzzer target for stream framing: the input is cut into reads of fuzzer-chosen sizes, appended
// to a buffer as a connection would, and every complete packet is decoded. Framing must find the
// same packets however the stream is cut.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/codec.h"
#include "proto/framer.h"

using namespace ringmq::proto;

namespace {

// Frames `stream` fed in pieces of the given sizes; returns the packet sizes found.
std::vector<size_t> FrameAll(const uint8_t* stream, size_t n, size_t piece) {
  std::vector<uint8_t> buf;
  std::vector<size_t> sizes;
  size_t off = 0;
  for (size_t fed = 0; fed < n;) {
    const size_t take = std::min(piece, n - fed);
    buf.insert(buf.end(), stream + fed, stream + fed + take);
    fed += take;
    for (;;) {
      Frame f;
      FrameStatus st = NextFrame(std::span(buf).subspan(off), 4096, &f);
      if (st == FrameStatus::kMalformed || st == FrameStatus::kTooLarge) return sizes;
      if (st == FrameStatus::kIncomplete) break;
      (void)Decode(f.byte0, f.body, Version::kV5);
      sizes.push_back(f.size);
      off += f.size;
    }
  }
  return sizes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t piece = 1 + data[0] % 64;
  if (FrameAll(data + 1, size - 1, piece) != FrameAll(data + 1, size - 1, size)) abort();
  return 0;
}
