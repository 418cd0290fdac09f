// RingDeque<T>: a double-ended queue in one growable circular buffer, 24 bytes when empty and
// allocating nothing until the first element. Written here rather than taken from the standard
// library because of what a session costs at 100k connections: every session holds two queues
// (its messages and its in-flight window), and std::deque is 80 bytes even when empty and
// allocates a 64-byte map plus a 512-byte node at its first element, where most sessions hold
// zero to a few messages. (boost::circular_buffer has a fixed capacity; nothing in DESIGN.md
// section 9 does this.)
//
// Supports what a session queue needs: push_back, pop_front, front/back, random-access iteration,
// erase of one element, EraseIf, and Release (return the storage of an empty queue; called by
// the owner at a quiet moment, never per element, so that a queue that empties and fills again
// within a turn does not allocate each time).
//
// Thread-safety: none (a value type owned by one thread).
// Invariants:
//   1. capacity_ is 0 (data_ == nullptr) or a power of two; size_ <= capacity_.
//   2. Elements i in [0, size_) live at data_[(head_ + i) & (capacity_ - 1)], constructed; every
//      other slot is raw storage.
#ifndef RINGMQ_BASE_RING_DEQUE_H_
#define RINGMQ_BASE_RING_DEQUE_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace ringmq::base {

template <typename T>
class RingDeque {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>,
                "elements are moved when the buffer grows and on erase");

  template <bool kConst>
  class Iter {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<kConst, const T*, T*>;
    using reference = std::conditional_t<kConst, const T&, T&>;
    using Owner = std::conditional_t<kConst, const RingDeque, RingDeque>;

    Iter() = default;
    Iter(Owner* d, uint32_t i) : d_(d), i_(i) {}
    operator Iter<true>() const { return Iter<true>(d_, i_); }  // NOLINT: iterator -> const

    reference operator*() const { return (*d_)[i_]; }
    pointer operator->() const { return &(*d_)[i_]; }
    reference operator[](difference_type n) const { return *(*this + n); }
    Iter& operator++() {
      ++i_;
      return *this;
    }
    Iter operator++(int) { return Iter(d_, i_++); }
    Iter& operator--() {
      --i_;
      return *this;
    }
    Iter operator--(int) { return Iter(d_, i_--); }
    Iter& operator+=(difference_type n) {
      i_ = static_cast<uint32_t>(static_cast<difference_type>(i_) + n);
      return *this;
    }
    Iter& operator-=(difference_type n) { return *this += -n; }
    friend Iter operator+(Iter it, difference_type n) { return it += n; }
    friend Iter operator+(difference_type n, Iter it) { return it += n; }
    friend Iter operator-(Iter it, difference_type n) { return it -= n; }
    friend difference_type operator-(const Iter& a, const Iter& b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(const Iter& a, const Iter& b) { return a.i_ == b.i_; }
    friend auto operator<=>(const Iter& a, const Iter& b) { return a.i_ <=> b.i_; }
    uint32_t index() const { return i_; }

   private:
    Owner* d_ = nullptr;
    uint32_t i_ = 0;
  };

 public:
  using value_type = T;
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;

  RingDeque() = default;
  RingDeque(const RingDeque&) = delete;
  RingDeque& operator=(const RingDeque&) = delete;
  RingDeque(RingDeque&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        head_(std::exchange(o.head_, 0)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  RingDeque& operator=(RingDeque&& o) noexcept {
    if (this != &o) {
      Free();
      data_ = std::exchange(o.data_, nullptr);
      head_ = std::exchange(o.head_, 0);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~RingDeque() { Free(); }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool allocated() const { return data_ != nullptr; }

  // REQUIRES (operator[], front, back, pop_front): i < size(), not empty.
  T& operator[](size_t i) { return data_[Wrap(head_ + i)]; }
  const T& operator[](size_t i) const { return data_[Wrap(head_ + i)]; }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  void push_back(T v) {
    if (size_ == capacity_) Grow();
    new (&data_[Wrap(head_ + size_)]) T(std::move(v));
    ++size_;
  }
  void pop_front() {
    assert(size_ != 0);
    data_[head_].~T();
    head_ = static_cast<uint32_t>(Wrap(head_ + 1));
    --size_;
  }

  // Removes the element at `it`, moving the shorter side over it (an acknowledgement erases at
  // or near the front: O(1) there); returns the iterator to the element after it.
  // REQUIRES: `it` is a dereferenceable iterator of this deque.
  iterator erase(const_iterator it) {
    const uint32_t at = it.index();
    assert(at < size_);
    if (at < size_ / 2) {
      for (uint32_t i = at; i > 0; --i) (*this)[i] = std::move((*this)[i - 1]);
      pop_front();
    } else {
      for (uint32_t i = at; i + 1 < size_; ++i) (*this)[i] = std::move((*this)[i + 1]);
      back().~T();
      --size_;
    }
    return iterator(this, at);
  }

  // Removes the elements for which pred(element) holds, keeping the others' order; returns how
  // many were removed.
  template <typename Pred>
  size_t EraseIf(Pred pred) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < size_; ++i) {
      if (pred(std::as_const((*this)[i]))) continue;
      if (kept != i) (*this)[kept] = std::move((*this)[i]);
      ++kept;
    }
    const size_t removed = size_ - kept;
    while (size_ > kept) {
      back().~T();
      --size_;
    }
    return removed;
  }

  // Frees the storage of an empty deque (a no-op otherwise).
  void Release() {
    if (size_ == 0) Free();
  }

  iterator begin() { return iterator(this, 0); }
  iterator end() { return iterator(this, size_); }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }

 private:
  static constexpr uint32_t kFirstCapacity = 4;

  size_t Wrap(size_t i) const { return i & (capacity_ - 1); }

  // Doubles the capacity, moving the elements to the start of the new buffer (invariant 1).
  void Grow() {
    const uint32_t cap = capacity_ == 0 ? kFirstCapacity : capacity_ * 2;
    assert(cap > capacity_);  // 2^31 elements: never reached by a session queue
    T* fresh = std::allocator<T>().allocate(cap);
    for (uint32_t i = 0; i < size_; ++i) {
      T* old = &(*this)[i];
      std::construct_at(&fresh[i], std::move(*old));
      std::destroy_at(old);
    }
    if (data_ != nullptr) std::allocator<T>().deallocate(data_, capacity_);
    data_ = fresh;
    head_ = 0;
    capacity_ = cap;
  }

  void Free() {
    while (size_ != 0) pop_front();
    if (data_ != nullptr) std::allocator<T>().deallocate(data_, capacity_);
    data_ = nullptr;
    head_ = 0;
    capacity_ = 0;
  }

  T* data_ = nullptr;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
  uint32_t capacity_ = 0;
};

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_RING_DEQUE_H_
