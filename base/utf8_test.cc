// Tests of IsValidMqttUtf8, IsValidUtf8 and Utf8SequenceLength: each RFC 3629 rule at its boundary
// code points, the MQTT exclusions (U+0000, surrogates), the ASCII fast path at every offset, and a
// comparison with a naive decoder.
#include "base/utf8.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace ringmq::base {
namespace {

// Plain encoder, without any validity check, so it can build surrogates and out-of-range values.
std::string Encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Naive reference: decode by the lead byte's length, then check the decoded value.
bool ReferenceValid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    uint32_t min;
    if (c < 0x80) {
      n = 0, cp = c, min = 0;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool Valid(std::initializer_list<uint8_t> bytes) {
  std::string s(bytes.begin(), bytes.end());
  return IsValidMqttUtf8(s);
}

TEST(Utf8, EmptyAndAsciiAreValid) {
  EXPECT_TRUE(IsValidMqttUtf8(""));
  EXPECT_TRUE(IsValidMqttUtf8("a"));
  EXPECT_TRUE(IsValidMqttUtf8("sport/tennis/player1"));
  EXPECT_TRUE(IsValidMqttUtf8(std::string(1000, 'x')));
  EXPECT_TRUE(Valid({0x01}));  // U+0001, lowest allowed
  EXPECT_TRUE(Valid({0x7F}));  // U+007F, highest one-byte
}

TEST(Utf8, NulIsRejectedAtEveryOffset) {
  EXPECT_FALSE(IsValidMqttUtf8(std::string_view("\0", 1)));
  for (size_t len = 1; len <= 33; ++len) {
    for (size_t at = 0; at < len; ++at) {
      std::string s(len, 'a');
      s[at] = '\0';
      EXPECT_FALSE(IsValidMqttUtf8(s)) << "len " << len << " at " << at;
    }
  }
}

TEST(Utf8, TwoByteBoundaries) {
  EXPECT_TRUE(Valid({0xC2, 0x80}));   // U+0080
  EXPECT_TRUE(Valid({0xDF, 0xBF}));   // U+07FF
  EXPECT_FALSE(Valid({0xC0, 0x80}));  // overlong U+0000
  EXPECT_FALSE(Valid({0xC0, 0xAF}));  // overlong '/'
  EXPECT_FALSE(Valid({0xC1, 0xBF}));  // overlong U+007F
}

TEST(Utf8, ThreeByteBoundaries) {
  EXPECT_TRUE(Valid({0xE0, 0xA0, 0x80}));   // U+0800
  EXPECT_FALSE(Valid({0xE0, 0x9F, 0xBF}));  // overlong U+07FF
  EXPECT_FALSE(Valid({0xE0, 0x80, 0x80}));  // overlong U+0000
  EXPECT_TRUE(Valid({0xED, 0x9F, 0xBF}));   // U+D7FF, just below the surrogates
  EXPECT_TRUE(Valid({0xEE, 0x80, 0x80}));   // U+E000, just above them
  EXPECT_TRUE(Valid({0xEF, 0xBB, 0xBF}));   // U+FEFF (BOM) is allowed
  EXPECT_TRUE(Valid({0xEF, 0xBF, 0xBF}));   // U+FFFF
}

TEST(Utf8, SurrogatesAreRejected) {
  EXPECT_FALSE(Valid({0xED, 0xA0, 0x80}));  // U+D800
  EXPECT_FALSE(Valid({0xED, 0xAF, 0xBF}));  // U+DBFF
  EXPECT_FALSE(Valid({0xED, 0xB0, 0x80}));  // U+DC00
  EXPECT_FALSE(Valid({0xED, 0xBF, 0xBF}));  // U+DFFF
  // A CESU-8 surrogate pair for U+10000.
  EXPECT_FALSE(Valid({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}));
}

TEST(Utf8, FourByteBoundaries) {
  EXPECT_TRUE(Valid({0xF0, 0x90, 0x80, 0x80}));   // U+10000
  EXPECT_FALSE(Valid({0xF0, 0x8F, 0xBF, 0xBF}));  // overlong U+FFFF
  EXPECT_TRUE(Valid({0xF4, 0x8F, 0xBF, 0xBF}));   // U+10FFFF
  EXPECT_FALSE(Valid({0xF4, 0x90, 0x80, 0x80}));  // U+110000
  EXPECT_FALSE(Valid({0xF5, 0x80, 0x80, 0x80}));
  EXPECT_FALSE(Valid({0xF7, 0xBF, 0xBF, 0xBF}));  // U+1FFFFF
  for (int lead = 0xF5; lead <= 0xFF; ++lead) {
    EXPECT_FALSE(Valid({static_cast<uint8_t>(lead), 0x80, 0x80, 0x80})) << lead;
  }
}

TEST(Utf8, TruncatedSequencesAreRejected) {
  EXPECT_FALSE(Valid({0xC2}));
  EXPECT_FALSE(Valid({0xE0, 0xA0}));
  EXPECT_FALSE(Valid({0xE1}));
  EXPECT_FALSE(Valid({0xF0, 0x90, 0x80}));
  EXPECT_FALSE(Valid({0xF0}));
  // Truncated by the next character rather than by the end.
  EXPECT_FALSE(Valid({0xC2, 'a'}));
  EXPECT_FALSE(Valid({0xE1, 0x80, 'a'}));
  EXPECT_FALSE(Valid({0xF1, 0x80, 0x80, 'a'}));
  EXPECT_FALSE(Valid({'a', 'b', 'c', 'd', 'e', 'f', 'g', 0xE2, 0x82}));
}

TEST(Utf8, StrayContinuationBytesAreRejected) {
  EXPECT_FALSE(Valid({0x80}));
  EXPECT_FALSE(Valid({0xBF}));
  EXPECT_FALSE(Valid({'a', 0x80, 'b'}));
  EXPECT_FALSE(Valid({0xC2, 0x80, 0x80}));  // one continuation too many
  EXPECT_FALSE(Valid({0xFE}));
  EXPECT_FALSE(Valid({0xFF}));
}

TEST(Utf8, EveryCodePoint) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const bool want = cp != 0 && (cp < 0xD800 || cp > 0xDFFF);
    const std::string e = Encode(cp);
    ASSERT_EQ(IsValidMqttUtf8(e), want) << std::hex << cp;
    // Also inside ASCII so that the fast path runs on either side of it.
    if (cp % 97 == 0) {
      ASSERT_EQ(IsValidMqttUtf8("abcdefghijk" + e + "lmnopqrstuvw"), want) << std::hex << cp;
    }
  }
}

TEST(Utf8, NonAsciiAtEveryOffsetOfTheFastPath) {
  const std::string kEuro = "\xE2\x82\xAC";  // U+20AC
  for (size_t at = 0; at <= 24; ++at) {
    std::string s(24, 'x');
    s.insert(at, kEuro);
    EXPECT_TRUE(IsValidMqttUtf8(s)) << at;
    std::string bad(24, 'x');
    bad.insert(at, "\xE2\x82");  // truncated
    EXPECT_FALSE(IsValidMqttUtf8(bad)) << at;
    std::string stray(24, 'x');
    stray[at < 24 ? at : 23] = static_cast<char>(0x80);
    EXPECT_FALSE(IsValidMqttUtf8(stray)) << at;
  }
}

TEST(Utf8, AgreesWithReferenceOnAllShortStrings) {
  for (int a = 0; a < 256; ++a) {
    const std::string s1(1, static_cast<char>(a));
    ASSERT_EQ(IsValidMqttUtf8(s1), ReferenceValid(s1)) << a;
    for (int b = 0; b < 256; ++b) {
      const std::string s2 = s1 + static_cast<char>(b);
      ASSERT_EQ(IsValidMqttUtf8(s2), ReferenceValid(s2)) << a << " " << b;
    }
  }
  // Every three-byte string led by a three-byte lead (E0..EF).
  for (int a = 0xE0; a <= 0xEF; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        const char s[3] = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
        ASSERT_EQ(IsValidMqttUtf8({s, 3}), ReferenceValid({s, 3})) << a << " " << b << " " << c;
      }
    }
  }
}

// IsValidUtf8 is the same rule with U+0000 allowed (WebSocket text), on both paths.
TEST(Utf8, PlainUtf8AllowsNulAndNothingElse) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x10000 ? 1 : 61)) {
    const std::string e = Encode(cp);
    ASSERT_EQ(IsValidUtf8(e), cp < 0xD800 || cp > 0xDFFF) << std::hex << cp;
  }
  EXPECT_TRUE(IsValidUtf8(std::string(17, '\0')));  // NUL bytes on the 8-byte fast path
  EXPECT_FALSE(IsValidUtf8(std::string(9, '\0') + "\xC0\x80"));  // overlong NUL
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s2{static_cast<char>(a), static_cast<char>(b)};
      // Without NUL bytes both validators agree.
      if (a == 0 || b == 0) continue;
      ASSERT_EQ(IsValidUtf8(s2), IsValidMqttUtf8(s2)) << a << " " << b;
    }
  }
}

// The sequence length: what the log writer uses to replace invalid bytes one by one.
TEST(Utf8, SequenceLengthOfEachForm) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength(std::string(1, '\0'), 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9", 0), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC", 0), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x98\x80", 0), 4u);
  EXPECT_EQ(Utf8SequenceLength("x\xE2\x82\xAC", 1), 3u);
  EXPECT_EQ(Utf8SequenceLength("\x80", 0), 0u);              // stray continuation
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82", 0), 0u);          // truncated
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80", 0), 0u);      // surrogate
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xE0\x80\x80", 0), 0u);      // overlong
}

}  // namespace
}  // namespace ringmq::base
