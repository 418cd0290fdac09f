// Provided buffer ring registration. liburing 2.3 has no io_uring_setup_buf_ring (2.4 added it),
// so the ring memory is mapped and registered by hand, as liburing's examples do.
#include "net/buffer_ring.h"

#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstring>

namespace ringmq::net {

BufferRing::~BufferRing() {
  if (br_ == nullptr) return;
  if (io_uring_unregister_buf_ring(ring_->raw(), group_) != 0) return;  // invariant 3: leak
  munmap(br_, ring_bytes_);
  munmap(data_, data_bytes_);
}

bool BufferRing::Init(Ring& ring, uint16_t group, unsigned count, unsigned size,
                      std::string* error) {
  assert(br_ == nullptr);
  if (count == 0 || count > kMaxBuffers || !std::has_single_bit(count) || size == 0) {
    *error = "buffer ring: " + std::to_string(count) + " buffers of " + std::to_string(size) +
             " bytes (the count must be a power of two <= 32768, the size > 0)";
    return false;
  }
  // Ring descriptors and buffer memory both come from mmap: page-aligned as the kernel requires
  // for the ring, and buffer pages cost nothing until a receive touches them.
  const size_t ring_bytes = size_t{count} * sizeof(io_uring_buf);
  const size_t data_bytes = size_t{count} * size;
  void* ring_mem =
      mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  void* data_mem =
      mmap(nullptr, data_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED || data_mem == MAP_FAILED) {
    *error = std::string("buffer ring: mmap: ") + std::strerror(errno);
    if (ring_mem != MAP_FAILED) munmap(ring_mem, ring_bytes);
    if (data_mem != MAP_FAILED) munmap(data_mem, data_bytes);
    return false;
  }
  auto* br = static_cast<io_uring_buf_ring*>(ring_mem);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br);
  reg.ring_entries = count;
  reg.bgid = group;
  const int ret = io_uring_register_buf_ring(ring.raw(), &reg, 0);
  if (ret != 0) {
    munmap(ring_mem, ring_bytes);
    munmap(data_mem, data_bytes);
    *error = std::string("io_uring provided buffer ring (group ") + std::to_string(group) +
             "): " + std::strerror(-ret);
    if (ret == -EINVAL) *error += " (kernel older than 5.19, or the group is already in use)";
    return false;
  }
  ring_ = &ring;
  br_ = br;
  data_ = static_cast<uint8_t*>(data_mem);
  ring_bytes_ = ring_bytes;
  data_bytes_ = data_bytes;
  count_ = count;
  size_ = size;
  group_ = group;
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, data_ + size_t{i} * size, size, static_cast<uint16_t>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));  // store-release of the tail
  return true;
}

void BufferRing::Recycle(uint16_t id) {
  assert(id < count_);
  io_uring_buf_ring_add(br_, data_ + size_t{id} * size_, size_, id, io_uring_buf_ring_mask(count_),
                        0);
  io_uring_buf_ring_advance(br_, 1);  // store-release: the descriptor before the new tail
}

}  // namespace ringmq::net
