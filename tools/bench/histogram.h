// Histogram: an HDR-style log-linear histogram of non-negative 64-bit values (latencies in ns).
//
// Values below 256 have one bucket each; above, every power of two is split into 128 equal
// buckets, so a recorded value is known to within 1/128 (< 0.8%) of itself. Recording is one
// count-leading-zeros, a shift and an increment; the whole table is 7,424 counters (58 KiB).
// Thread-safety: none; each load generator thread records into its own and they are merged after
// the threads have joined.
// Invariants:
//   1. count() == the sum of all buckets == the number of Record calls (merges included).
//   2. ValueAtPercentile(q) returns the highest value equivalent to the bucket that holds the
//      q-th percentile, so it never under-reports; max() is exact.
#ifndef RINGMQ_TOOLS_BENCH_HISTOGRAM_H_
#define RINGMQ_TOOLS_BENCH_HISTOGRAM_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace ringmq::bench {

class Histogram {
 public:
  static constexpr unsigned kSubBits = 7;                       // 128 buckets per power of two
  static constexpr uint64_t kLinear = uint64_t{2} << kSubBits;  // 256 exact buckets
  static constexpr size_t kBuckets = kLinear + (64 - kSubBits - 1) * (kLinear / 2);

  static size_t BucketOf(uint64_t v) {
    if (v < kLinear) return static_cast<size_t>(v);
    const unsigned shift = 63 - std::countl_zero(v) - kSubBits;  // >= 1
    const uint64_t mantissa = v >> shift;                        // in [128, 256)
    return kLinear + (shift - 1) * (kLinear / 2) + static_cast<size_t>(mantissa - kLinear / 2);
  }
  // The smallest and largest value that fall in bucket `b`.
  static uint64_t LowestOf(size_t b);
  static uint64_t HighestOf(size_t b);

  void Record(uint64_t v) {
    ++buckets_[BucketOf(v)];
    ++count_;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
    sum_ += v;
  }
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ ? max_ : 0; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // REQUIRES: 0 <= q <= 100. 0 when empty.
  uint64_t ValueAtPercentile(double q) const;

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t sum_ = 0;
};

}  // namespace ringmq::bench

#endif  // RINGMQ_TOOLS_BENCH_HISTOGRAM_H_
