#include "base/siphash.h"

#include <gtest/gtest.h>

#include <string>

namespace ringmq::base {
namespace {

// The paper's key 00 01 .. 0f and messages 00 01 .. (n-1). The expected values are the paper's
// appendix A for SipHash-2-4, and OpenSSL's SIPHASH MAC with c-rounds 1, d-rounds 3 for
// SipHash-1-3 (both printed there as little-endian bytes, read here as integers).
SipKey PaperKey() { return {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull}; }
std::string Message(std::size_t n) {
  std::string m;
  for (std::size_t i = 0; i < n; ++i) m.push_back(static_cast<char>(i));
  return m;
}

TEST(SipHash, MatchesReferenceVectors) {
  struct Case {
    std::size_t n;
    uint64_t sip24;
    uint64_t sip13;
  };
  // Lengths around the 8-byte word boundary and a long one.
  const Case cases[] = {
      {0, 0x726fdb47dd0e0e31ull, 0xabac0158050fc4dcull},
      {7, 0xab0200f58b01d137ull, 0xd3927d989bb11140ull},
      {8, 0x93f5f5799a932462ull, 0x369095118d299a8eull},
      {15, 0xa129ca6149be45e5ull, 0xd320d86d2a519956ull},
      {63, 0x958a324ceb064572ull, 0x9d199062b7bbb3a8ull},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(SipHash24(PaperKey(), Message(c.n)), c.sip24) << c.n << " bytes";
    EXPECT_EQ(SipHash13(PaperKey(), Message(c.n)), c.sip13) << c.n << " bytes";
  }
}

TEST(SipHash, DependsOnTheKeyAndTheLength) {
  const SipKey a = PaperKey();
  SipKey b = a;
  b.k1 ^= 1;
  EXPECT_NE(SipHash13(a, "sensor"), SipHash13(b, "sensor"));
  // A trailing NUL changes the length byte even though the padding bytes are zeros too.
  EXPECT_NE(SipHash13(a, std::string_view("ab", 2)), SipHash13(a, std::string_view("ab\0", 3)));
  const SipKey r1 = RandomSipKey();
  const SipKey r2 = RandomSipKey();
  EXPECT_FALSE(r1.k0 == r2.k0 && r1.k1 == r2.k1);
}

}  // namespace
}  // namespace ringmq::base
