#include "base/siphash.h"

#include <bit>
#include <cstring>
#include <random>

namespace ringmq::base {
namespace {

struct State {
  uint64_t v0, v1, v2, v3;

  void Round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }
};

uint64_t LoadLe64(const char* p) {
  uint64_t w = 0;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

template <int kCompression, int kFinalization>
uint64_t SipHash(const SipKey& key, std::string_view data) {
  State s{key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull,
          key.k0 ^ 0x6c7967656e657261ull, key.k1 ^ 0x7465646279746573ull};
  auto absorb = [&s](uint64_t m) {
    s.v3 ^= m;
    for (int i = 0; i < kCompression; ++i) s.Round();
    s.v0 ^= m;
  };
  const std::size_t whole = data.size() / 8 * 8;
  for (std::size_t i = 0; i < whole; i += 8) absorb(LoadLe64(data.data() + i));
  // The last word: the remaining bytes, little-endian, and the length's low byte on top.
  uint64_t last = uint64_t{static_cast<unsigned char>(data.size())} << 56;
  for (std::size_t i = whole; i < data.size(); ++i) {
    last |= uint64_t{static_cast<unsigned char>(data[i])} << (8 * (i - whole));
  }
  absorb(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < kFinalization; ++i) s.Round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace

uint64_t SipHash13(const SipKey& key, std::string_view data) { return SipHash<1, 3>(key, data); }
uint64_t SipHash24(const SipKey& key, std::string_view data) { return SipHash<2, 4>(key, data); }

SipKey RandomSipKey() {
  std::random_device rd;
  auto word = [&rd] { return (uint64_t{rd()} << 32) ^ rd(); };
  SipKey key;
  key.k0 = word();
  key.k1 = word();
  return key;
}

}  // namespace ringmq::base
