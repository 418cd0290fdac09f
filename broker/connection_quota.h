// ConnectionQuota: counts the broker's connected MQTT clients, in total and per token key, for
// max_connections and max_connections_per_token (doc/configuration.md). One instance lives in the
// Broker; every shard uses it.
//
// A client is counted from the moment its CONNECT is accepted (Acquire succeeded) until its
// connection ends (Release), whatever the shard. It is never counted before CONNECT: a connection
// handed to its home shard, waiting for its token, or closed before CONNECT was never counted.
//
// Thread-safety: every method may be called from any thread.
//   - The total is one atomic counter, reserved then committed: Acquire adds first, checks, and
//     takes its addition back when over the limit, so concurrent Acquires on several shards never
//     accept more clients than the limit (apart from the takeover allowance below); total() may
//     briefly read higher, by reservations about to be taken back. Relaxed order
//     suffices: the counter publishes no other data, only its own value matters, and every
//     read-modify-write sees the latest value in the counter's modification order.
//   - The per-key counts are a std::unordered_map behind a mutex. It is touched only on the connect
//     path (a successful CONNECT and the end of a counted connection), never per message.
// Invariants:
//   1. Once no Acquire is running, total() == the number of Acquire calls that returned
//      kAccepted minus the Release calls.
//   2. ForKey(k) == the same, for the calls with key k; keys with a count of 0 are not stored.
//   3. Apart from the takeover allowance, an Acquire is accepted only when the accepted clients,
//      with it, are at most max_total and those of its key at most max_for_key (0: unlimited). With
//      `takeover`, the new connection replaces a counted one that the caller releases right after:
//      the limit is then one higher, so that reconnecting with the same client id is never refused
//      for the connection it replaces.
#ifndef RINGMQ_BROKER_CONNECTION_QUOTA_H_
#define RINGMQ_BROKER_CONNECTION_QUOTA_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ringmq::broker {

class ConnectionQuota {
 public:
  enum class Verdict : uint8_t { kAccepted, kTotalExceeded, kKeyExceeded };

  // What a new connection replaces (a takeover of the same client id), if anything.
  struct Takeover {
    bool total = false;  // it replaces a counted connection
    bool key = false;    // ... that was counted under the same key
  };

  // Counts one more client, under `key` when it is not empty (anonymous clients have no key).
  // max_total and max_for_key: 0 is unlimited. On a refusal nothing stays counted.
  [[nodiscard]] Verdict Acquire(std::string_view key, uint32_t max_total, uint32_t max_for_key,
                                Takeover takeover);
  // One counted client fewer. REQUIRES: a matching Acquire returned kAccepted with this key.
  void Release(std::string_view key);

  uint32_t total() const { return total_.load(std::memory_order_relaxed); }
  uint32_t ForKey(std::string_view key) const;

 private:
  std::atomic<uint32_t> total_{0};
  mutable std::mutex mu_;                              // guards per_key_
  std::unordered_map<std::string, uint32_t> per_key_;  // token key -> counted clients (> 0)
};

}  // namespace ringmq::broker

#endif  // RINGMQ_BROKER_CONNECTION_QUOTA_H_
