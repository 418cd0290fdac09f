// SeqTracker: per (subscriber, publisher) stream checking of sequence numbers: how many distinct
// messages arrived, duplicates, late arrivals (reordering) and gaps.
//
// It keeps the next expected sequence number and a 256-bit window of which of the 256 numbers
// below it arrived, so a duplicate or a late message within that window is told apart exactly;
// older than the window, a message counts as late (it cannot be told from a duplicate).
// Thread-safety: none; owned by one subscriber on one thread.
// Invariants:
//   1. unique() <= next(): every distinct number seen is below next().
//   2. missing() == next() - unique(): numbers skipped and not (yet) seen late.
#ifndef RINGMQ_TOOLS_BENCH_SEQ_TRACKER_H_
#define RINGMQ_TOOLS_BENCH_SEQ_TRACKER_H_

#include <array>
#include <cstdint>

namespace ringmq::bench {

class SeqTracker {
 public:
  static constexpr uint64_t kWindow = 256;

  enum class Verdict : uint8_t { kInOrder, kAhead, kLate, kDuplicate };

  Verdict Add(uint64_t seq) {
    if (seq >= next_) {
      const Verdict v = seq == next_ ? Verdict::kInOrder : Verdict::kAhead;
      // Numbers in [next_, seq) were skipped: their window bits become "not seen".
      if (seq - next_ >= kWindow) {
        bits_.fill(0);
      } else {
        for (uint64_t s = next_; s < seq; ++s) Clear(s);
      }
      Set(seq);
      next_ = seq + 1;
      ++unique_;
      return v;
    }
    if (next_ - seq > kWindow) {
      ++unique_;  // too old to tell; assume a late original
      ++late_;
      return Verdict::kLate;
    }
    if (Test(seq)) {
      ++duplicates_;
      return Verdict::kDuplicate;
    }
    Set(seq);
    ++unique_;
    ++late_;
    return Verdict::kLate;
  }

  uint64_t next() const { return next_; }
  uint64_t unique() const { return unique_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t late() const { return late_; }
  uint64_t missing() const { return next_ - unique_; }

 private:
  void Set(uint64_t s) { bits_[(s % kWindow) / 64] |= uint64_t{1} << (s % 64); }
  void Clear(uint64_t s) { bits_[(s % kWindow) / 64] &= ~(uint64_t{1} << (s % 64)); }
  bool Test(uint64_t s) const { return bits_[(s % kWindow) / 64] >> (s % 64) & 1; }

  std::array<uint64_t, kWindow / 64> bits_{};
  uint64_t next_ = 0;
  uint64_t unique_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t late_ = 0;
};

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_SEQ_TRACKER_H_
