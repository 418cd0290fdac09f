// BufferRing: a ring of provided buffers (IORING_REGISTER_PBUF_RING) from which the kernel picks
// one buffer per receive completion, so that idle connections hold no receive memory. It serves
// Ring::PrepRecv / PrepMultishotRecv through its buffer group id.
//
//   ring.PrepMultishotRecv(fd, buffers.group(), ud);
//   ... in ForEachCqe:
//     if (c.has_buffer()) {
//       Consume(buffers.Get(c.buffer_id(), c.res));
//       buffers.Recycle(c.buffer_id());
//     }
//     if (c.res == -ENOBUFS): re-arm after buffers were recycled (e.g. at the end of the turn)
//     else if (!c.more() && c.res > 0): re-arm now
//
// Thread-safety: used only by the thread that owns the Ring it is registered with (the kernel
// refuses (un)registration from any other thread of a SINGLE_ISSUER ring).
// Invariants:
//   1. Every buffer is either owned by the kernel (in the ring) or lent to the caller from the
//      completion that names it until Recycle(id); the caller recycles each exactly once.
//   2. When the kernel finds no buffer, a receive completes with -ENOBUFS and a multishot receive
//      ends (no F_MORE): the caller re-arms after recycling. Nothing is lost: the bytes stay in the
//      socket.
//   3. Buffer memory is freed only after the kernel has let go of the group; if unregistration
//      fails, the memory is deliberately leaked rather than risk a kernel write into freed memory.
#ifndef RINGMQ_NET_BUFFER_RING_H_
#define RINGMQ_NET_BUFFER_RING_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "net/ring.h"

namespace ringmq::net {

class BufferRing {
 public:
  // The kernel's limit on buffers in one ring.
  static constexpr unsigned kMaxBuffers = 32768;

  BufferRing() = default;
  // REQUIRES: called by the owner of the Ring, before the Ring is destroyed.
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // Registers `count` buffers of `size` bytes as buffer group `group` of `ring` and hands them
  // all to the kernel. Returns false with *error when the arguments are invalid or the kernel
  // lacks provided buffer rings (Linux < 5.19).
  // REQUIRES: count is a power of two in [1, kMaxBuffers], size > 0; `ring` outlives this object;
  // called by the ring's owner; not yet initialized.
  bool Init(Ring& ring, uint16_t group, unsigned count, unsigned size, std::string* error);

  uint16_t group() const { return group_; }
  unsigned count() const { return count_; }
  unsigned buffer_size() const { return size_; }

  // The first `len` bytes of buffer `id`, as filled by the completion that named it.
  // REQUIRES: id < count(), len <= buffer_size(), the buffer is lent to the caller.
  std::span<const uint8_t> Get(uint16_t id, size_t len) const {
    assert(id < count_ && len <= size_);
    return {data_ + size_t{id} * size_, len};
  }
  // Gives buffer `id` back to the kernel; it is visible to the next receive at once.
  // REQUIRES: the buffer is lent to the caller (invariant 1).
  void Recycle(uint16_t id);

 private:
  Ring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;  // shared with the kernel: `count_` buffer descriptors
  uint8_t* data_ = nullptr;          // count_ * size_ bytes of buffer memory
  size_t ring_bytes_ = 0;
  size_t data_bytes_ = 0;
  unsigned count_ = 0;
  unsigned size_ = 0;
  uint16_t group_ = 0;
};

}  // namespace ringmq::net

#endif  // RINGMQ_NET_BUFFER_RING_H_
