// LazyDeque<T>: a std::deque that allocates nothing until an element is added. libstdc++'s deque
// allocates its node map and a first 512-byte node when it is constructed, so the two of every
// session (queue and in-flight window) cost ~1.2 KiB for each client that never receives
// anything: a third of an idle connection's memory (doc/performance.md, "Idle connections").
// Once allocated the storage stays (a client that receives keeps it warm: no allocation per
// message); Release() returns it when the deque is empty.
//
// The subset of std::deque a session uses, with the same complexity. Iterators are std::deque's;
// while nothing is allocated, begin() == end() (value-initialised iterators compare equal).
//
// Thread-safety: none (like std::deque).
// Invariants:
//   1. No d_ implies the deque is empty; an empty deque may still hold storage.
#ifndef RINGMQ_BASE_LAZY_DEQUE_H_
#define RINGMQ_BASE_LAZY_DEQUE_H_

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

namespace ringmq::base {

template <typename T>
class LazyDeque {
 public:
  using iterator = typename std::deque<T>::iterator;
  using const_iterator = typename std::deque<T>::const_iterator;

  bool empty() const { return !d_ || d_->empty(); }
  size_t size() const { return d_ ? d_->size() : 0; }
  // REQUIRES (front, back, pop_front): not empty.
  T& front() { return d_->front(); }
  const T& front() const { return d_->front(); }
  T& back() { return d_->back(); }
  const T& back() const { return d_->back(); }
  void push_back(T v) { Storage().push_back(std::move(v)); }
  void pop_front() { d_->pop_front(); }
  // REQUIRES: `it` is a dereferenceable iterator of this deque.
  iterator erase(const_iterator it) { return d_->erase(it); }
  // Removes the elements for which pred(element) holds; returns how many.
  template <typename Pred>
  size_t EraseIf(Pred pred) {
    return d_ ? std::erase_if(*d_, pred) : 0;
  }
  // Frees the storage of an empty deque (a no-op otherwise).
  void Release() {
    if (d_ && d_->empty()) d_.reset();
  }
  bool allocated() const { return d_.has_value(); }

  iterator begin() { return d_ ? d_->begin() : iterator(); }
  iterator end() { return d_ ? d_->end() : iterator(); }
  const_iterator begin() const { return d_ ? d_->cbegin() : const_iterator(); }
  const_iterator end() const { return d_ ? d_->cend() : const_iterator(); }

 private:
  std::deque<T>& Storage() {
    if (!d_) d_.emplace();
    return *d_;
  }

  // Inline (no pointer to chase on the per-message path); constructed, i.e. allocated, on the
  // first push_back.
  std::optional<std::deque<T>> d_;
};

}  // namespace ringmq::base

#endif  // RINGMQ_BASE_LAZY_DEQUE_H_
