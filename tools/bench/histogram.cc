// Log-linear histogram: bucket bounds, merging, percentiles.
#include "tools/bench/histogram.h"

#include <algorithm>
#include <cmath>

namespace ringmq::bench {

uint64_t Histogram::LowestOf(size_t b) {
  if (b < kLinear) return b;
  const size_t k = b - kLinear;
  const unsigned shift = static_cast<unsigned>(k / (kLinear / 2)) + 1;
  const uint64_t mantissa = kLinear / 2 + k % (kLinear / 2);
  return mantissa << shift;
}

uint64_t Histogram::HighestOf(size_t b) {
  if (b < kLinear) return b;
  const size_t k = b - kLinear;
  const unsigned shift = static_cast<unsigned>(k / (kLinear / 2)) + 1;
  return LowestOf(b) + ((uint64_t{1} << shift) - 1);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  if (other.count_) {
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }
}

void Histogram::Reset() { *this = Histogram(); }

uint64_t Histogram::ValueAtPercentile(double q) const {
  if (count_ == 0) return 0;
  // The rank of the q-th percentile, 1-based: at least one value is at or below it.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(HighestOf(i), max_);
  }
  return max_;
}

}  // namespace ringmq::bench
