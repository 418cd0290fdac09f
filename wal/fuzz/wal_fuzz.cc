// libFuzzer target for WAL records (wal/wal_records.h). Two views of the same input:
//   1. a segment body: frames are parsed one after another (skipping a byte after a bad one, as
//      recovery resynchronises); every valid frame's body is decoded;
//   2. a bare body: the first byte picks the record type, the rest is decoded as its body
//      (reaches the decoders without forging a CRC).
// Whatever decodes must survive a round trip: Decode(Encode(r)) == r. Never crashes (invariant 2).
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "wal/wal_records.h"

using namespace ringmq::wal;

namespace {

void CheckRoundTrip(const WalRecord& r) {
  std::string frame;
  AppendWalRecord(r, &frame);
  WalFrame f{};
  if (ParseWalFrame(frame, &f) != WalFrameStatus::kOk || f.size != frame.size()) std::abort();
  std::optional<WalRecord> back = DecodeWalRecord(f.type, f.body);
  if (!back || !(*back == r)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (size_t off = 0; off < in.size();) {
    WalFrame f{};
    if (ParseWalFrame(in.substr(off), &f) != WalFrameStatus::kOk) {
      ++off;
      continue;
    }
    if (std::optional<WalRecord> r = DecodeWalRecord(f.type, f.body)) CheckRoundTrip(*r);
    off += f.size;
  }
  if (!in.empty()) {
    const auto type = static_cast<WalType>(1 + static_cast<uint8_t>(in[0]) % kWalTypeMax);
    if (std::optional<WalRecord> r = DecodeWalRecord(type, in.substr(1))) CheckRoundTrip(*r);
  }
  return 0;
}
