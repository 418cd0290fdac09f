// libFuzzer target for every packet decoder. Input: [version selector][byte0][body...].
// A decoder must never crash, read out of bounds or allocate without bound; whatever decodes must
// re-encode to bytes that decode to the same packet (the encoder and decoder agree).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/codec.h"

using namespace ringmq::proto;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr Version kVersions[] = {Version::kV31, Version::kV311, Version::kV5};
  const Version v = kVersions[data[0] % 3];
  const uint8_t byte0 = data[1];
  Result<Packet> r = Decode(byte0, Bytes(data + 2, size - 2), v);
  if (!r.ok()) return 0;
  // CONNECT carries its own version; everything else is encoded in `v`.
  const Version ev = std::holds_alternative<Connect>(*r) ? std::get<Connect>(*r).version : v;
  std::vector<uint8_t> out(EncodedSize(*r, ev));
  if (Encode(*r, ev, out) != out.size()) abort();
  // Skip the fixed header of the encoded packet and decode its body again.
  size_t hdr = 1;
  while (out[hdr] & 0x80) ++hdr;
  ++hdr;
  Result<Packet> back = Decode(out[0], Bytes(out).subspan(hdr), ev);
  if (!back.ok() || !(*back == *r)) abort();
  return 0;
}
