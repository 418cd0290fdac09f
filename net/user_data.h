// The layout of io_uring user_data, the 64 bits that come back with every completion. This is the
// one place that defines it; net/ only packs and unpacks, the owner of a Ring interprets `kind`
// and `index` as it likes (connection slot, listener number, WAL segment, ...).
//
//   bits 63..56  kind        operation kind, chosen by the owner; 0 is never used, so a zero
//                            user_data (an SQE whose tag was forgotten) is recognisable
//   bits 55..32  generation  24 bits; distinguishes reuses of one index, so a late completion for
//                            a closed connection whose slot was reused is recognised and ignored
//   bits 31..0   index       e.g. a connection slot or a listener number
//
// Thread-safety: pure constexpr functions.
// Invariants:
//   1. UnpackUserData(PackUserData(k, g, i)) == {k, g & kGenerationMask, i}.
//   2. A generation wraps at kGenerationMask + 1; owners skip 0 if they use it as "no generation".
#ifndef RINGMQ_NET_USER_DATA_H_
#define RINGMQ_NET_USER_DATA_H_

#include <cstdint>

namespace ringmq::net {

inline constexpr uint32_t kGenerationMask = 0xFFFFFF;

struct UserData {
  uint8_t kind;
  uint32_t generation;
  uint32_t index;
};

constexpr uint64_t PackUserData(uint8_t kind, uint32_t generation, uint32_t index) {
  return uint64_t{kind} << 56 | uint64_t{generation & kGenerationMask} << 32 | index;
}

constexpr UserData UnpackUserData(uint64_t v) {
  return UserData{static_cast<uint8_t>(v >> 56), static_cast<uint32_t>(v >> 32) & kGenerationMask,
                  static_cast<uint32_t>(v)};
}

}  // namespace ringmq::net

#endif  // RINGMQ_NET_USER_DATA_H_
