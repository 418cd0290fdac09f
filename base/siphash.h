// SipHash (Aumasson & Bernstein, 2012): a keyed 64-bit hash for tables whose keys come from
// clients. With a random key, nobody who does not know it can compute inputs that collide, so a
// hash table keyed by client-chosen strings (topic levels) cannot be driven into one long probe
// sequence. Written here rather than taken from OpenSSL (EVP_MAC "SIPHASH") because the topic
// index hashes every level of every published topic: the EVP interface allocates a context per
// call, which costs more than the whole lookup.
//
// SipHash13 (1 compression, 3 finalization rounds) is the variant Rust's standard HashMap uses;
// SipHash24 is the paper's and is kept for the test against the paper's vectors.
//
// Thread-safety: pure functions; safe from any thread.
// Invariants:
//   1. SipHash24 returns the reference values of the paper's appendix A (siphash_test.cc).
//   2. The result depends on every byte of the input and of the key, and on the input's length.
#ifndef RINGMQ_BASE_SIPHASH_H_
#define RINGMQ_BASE_SIPHASH_H_

#include <cstdint>
#include <string_view>

namespace ringmq::base {

struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
};

uint64_t SipHash13(const SipKey& key, std::string_view data);
uint64_t SipHash24(const SipKey& key, std::string_view data);

// A key from the OS random source (std::random_device), for one table's lifetime.
SipKey RandomSipKey();

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_SIPHASH_H_
