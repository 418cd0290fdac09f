// CRC32C against the RFC 3720 appendix B.4 vectors, hardware and table paths alike.
#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ringmq::base {
namespace {

struct Vector {
  std::vector<uint8_t> data;
  uint32_t crc;
};

std::vector<Vector> Rfc3720Vectors() {
  std::vector<Vector> v;
  v.push_back({std::vector<uint8_t>(32, 0x00), 0x8A9136AA});
  v.push_back({std::vector<uint8_t>(32, 0xFF), 0x62A8AB43});
  std::vector<uint8_t> inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  v.push_back({inc, 0x46DD794E});
  v.push_back({dec, 0x113FDB5C});
  // An iSCSI SCSI Read (10) command PDU.
  v.push_back({{0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
               0xD9963A56});
  return v;
}

TEST(Crc32c, Rfc3720Vectors) {
  for (const Vector& v : Rfc3720Vectors()) {
    EXPECT_EQ(Crc32c(v.data.data(), v.data.size()), v.crc);
    EXPECT_EQ(Crc32cPortable(0, v.data.data(), v.data.size()), v.crc);
  }
}

TEST(Crc32c, CheckValueAndEmpty) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32c, ExtendComposesAtEverySplit) {
  std::string s;
  for (int i = 0; i < 100; ++i) s.push_back(static_cast<char>(i * 37 + 11));
  const uint32_t whole = Crc32c(s);
  for (size_t k = 0; k <= s.size(); ++k) {
    EXPECT_EQ(Crc32cExtend(Crc32c(s.data(), k), s.data() + k, s.size() - k), whole) << k;
    EXPECT_EQ(Crc32cPortable(Crc32cPortable(0, s.data(), k), s.data() + k, s.size() - k), whole);
  }
}

TEST(Crc32c, HardwareAndTableAgreeOnUnalignedLengths) {
  std::string s(300, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i * 131) ^ (i >> 3));
  for (size_t off = 0; off < 9; ++off) {
    for (size_t len = 0; len + off <= s.size(); len += 7) {
      EXPECT_EQ(Crc32cExtend(0, s.data() + off, len), Crc32cPortable(0, s.data() + off, len));
    }
  }
  ::testing::Test::RecordProperty("crc32c_hardware", Crc32cIsHardware() ? "yes" : "no");
}

TEST(Crc32c, DetectsASingleFlippedBit) {
  std::string s(64, 'a');
  const uint32_t c = Crc32c(s);
  s[17] ^= 0x04;
  EXPECT_NE(Crc32c(s), c);
}

}  // namespace
}  // namespace ringmq::base
