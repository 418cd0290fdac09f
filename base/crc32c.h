// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78): the checksum of WAL records
// and snapshot files (doc/wal-format.md). Uses the SSE4.2 crc32 instruction when the CPU has it
// (checked once, at the first call), a slicing-by-8 table otherwise; both give the same values
// (RFC 3720 appendix B.4 test vectors in crc32c_test.cc).
//
// Thread-safety: pure functions; safe from any thread.
// Invariants:
//   1. Crc32cExtend(Crc32cExtend(0, a), b) == Crc32c(a + b): checksums compose over pieces.
//   2. Crc32cPortable and the hardware path return identical values for every input.
#ifndef RINGMQ_BASE_CRC32C_H_
#define RINGMQ_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringmq::base {

// The CRC32C of `crc`'s data followed by [data, data+n). Start with crc = 0.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }
inline uint32_t Crc32c(std::string_view s) { return Crc32cExtend(0, s.data(), s.size()); }

// The table implementation, always available (for tests and benchmarks).
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t n);

// True when Crc32cExtend uses the CPU's crc32 instruction.
bool Crc32cIsHardware();

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_CRC32C_H_
