// Provided buffer ring registration (liburing 2.3 has no io_uring_setup_buf_ring: map and register
// by hand, as liburing's examples do).
#include "net/buffer_ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ringmq::net {

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_->raw(), group_);
    munmap(br_, ring_bytes_);
  }
  std::free(data_);
}

bool BufferRing::Init(Ring& ring, uint16_t group, unsigned count, unsigned size,
                      std::string* error) {
  ring_ = &ring;
  group_ = group;
  count_ = count;
  size_ = size;
  ring_bytes_ = count * sizeof(io_uring_buf);
  void* mem =
      mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    *error = std::string("mmap buffer ring: ") + std::strerror(errno);
    return false;
  }
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group;
  const int ret = io_uring_register_buf_ring(ring.raw(), &reg, 0);
  if (ret != 0) {
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    *error = std::string("io_uring provided buffer ring: ") + std::strerror(-ret) +
             " (ringmq needs Linux 5.19 or newer)";
    return false;
  }
  data_ = static_cast<uint8_t*>(std::aligned_alloc(64, size_t{count} * size));
  io_uring_buf_ring_init(br_);
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, data_ + size_t{i} * size, size, static_cast<uint16_t>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  return true;
}

void BufferRing::Recycle(uint16_t id) {
  io_uring_buf_ring_add(br_, data_ + size_t{id} * size_, size_, id, io_uring_buf_ring_mask(count_),
                        0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace ringmq::net
