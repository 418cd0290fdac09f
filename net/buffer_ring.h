// BufferRing: a ring of provided buffers (IORING_REGISTER_PBUF_RING) from which the kernel picks
// one per receive completion, so idle connections hold no receive memory.
//
// Thread-safety: used by the thread that owns the Ring it is registered with.
// Invariants:
//   1. Every buffer is either owned by the kernel (in the ring) or lent to the caller between the
//      completion that names it and Recycle(id); the caller must recycle each exactly once.
//   2. When the kernel finds no buffer, a receive completes with -ENOBUFS (and a multishot receive
//      ends): the caller re-arms once buffers are back.
#ifndef RINGMQ_NET_BUFFER_RING_H_
#define RINGMQ_NET_BUFFER_RING_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "net/ring.h"

namespace ringmq::net {

class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // Registers `count` buffers of `size` bytes as buffer group `group` of `ring`.
  // REQUIRES: count is a power of two <= 32768.
  bool Init(Ring& ring, uint16_t group, unsigned count, unsigned size, std::string* error);

  uint16_t group() const { return group_; }
  // The first `len` bytes of buffer `id`, as filled by a completion.
  std::span<const uint8_t> Get(uint16_t id, size_t len) const {
    return {data_ + size_t{id} * size_, len};
  }
  // Gives buffer `id` back to the kernel.
  void Recycle(uint16_t id);

 private:
  Ring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t ring_bytes_ = 0;
  unsigned count_ = 0;
  unsigned size_ = 0;
  uint16_t group_ = 0;
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_BUFFER_RING_H_
